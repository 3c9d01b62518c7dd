// Lesson `attention`: multi-head (MHA), grouped-query (GQA) and multi-query (MQA) attention compared
// by parameter count and KV-cache size; GQA with kvHeadCount == headCount is exactly MHA.
//   KV cache per token = layers · 2 · kvHeadCount · headSize floats.
import AlignKitNN

public enum AttentionLesson {
    public struct Variant: Sendable {
        public let name: String
        public let kvHeadCount: Int
        public let parameterCount: Int
        /// Bytes of Float32 KV cache for `contextLength` tokens over `layerCount` layers.
        public let kvCacheBytes: Int
    }

    public struct Result: Sendable {
        public let variants: [Variant]
        /// max |GQA(kvHeads = heads) - MHA| on a random input, same weights.
        public let gqaVersusMHADifference: Float
    }

    public static func run(modelSize: Int = 512, headCount: Int = 8, layerCount: Int = 12, contextLength: Int = 1024,
                           report: (String) -> Void = { _ in }) -> Result {
        var variants: [Variant] = []
        report("model \(modelSize), \(headCount) query heads, \(layerCount) layers, context \(contextLength), Float32")
        for (name, kv) in [("MHA", headCount), ("GQA", max(1, headCount / 4)), ("MQA", 1)] {
            var g = RandomGenerator(seed: 0)
            let layer = MultiHeadAttention(modelSize: modelSize, headCount: headCount, kvHeadCount: kv, generator: &g)
            let bytes = layerCount * contextLength * layer.kvCacheFloatsPerToken * 4
            variants.append(Variant(name: name, kvHeadCount: kv, parameterCount: layer.parameterCount, kvCacheBytes: bytes))
            report("\(name) (kv heads \(kv)): \(layer.parameterCount) parameters per layer, KV cache \(bytes / 1024) KiB")
        }
        // Same seed, same weights: the grouped path with one KV head per query head is MHA.
        var g1 = RandomGenerator(seed: 1), g2 = RandomGenerator(seed: 1)
        let mha = MultiHeadAttention(modelSize: 64, headCount: 4, generator: &g1)
        let gqa = MultiHeadAttention(modelSize: 64, headCount: 4, kvHeadCount: 4, generator: &g2)
        let x = Tensor(randomNormal: [2, 6, 64], seed: 2)
        let difference = (mha(x) - gqa(x)).absoluteValue().max().scalar
        report("GQA with kvHeadCount == headCount vs MHA: max difference \(difference)")
        return Result(variants: variants, gqaVersusMHADifference: difference)
    }
}

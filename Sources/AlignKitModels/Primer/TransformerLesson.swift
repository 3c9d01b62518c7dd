// Lesson `transformer` (seed 000 §4): a tiny decoder on "What is your name": word tokens,
// embeddings + learned positions, one pre-norm block with causal attention, a language-model head.
// It shows the 4 x 4 causal attention matrix (zero above the diagonal, rows summing to 1) and
// learns to predict each next word.
import AlignKitNN

/// A decoder-only transformer over token ids: [B, T] → logits [B, T, V].
public struct TinyDecoder: NamedParameters {
    public var tokens: Embedding
    public var positions: LearnedPositionalEmbedding
    public var blocks: [TransformerBlock]
    public var finalNorm: Norm
    public var head: Linear

    public init(vocabularySize: Int, modelSize: Int, headCount: Int, layerCount: Int, contextLength: Int,
                preNorm: Bool = true, seed: UInt64) {
        var g = RandomGenerator(seed: seed)
        tokens = Embedding(vocabularySize: vocabularySize, dimension: modelSize, standardDeviation: 0.3, generator: &g)
        positions = LearnedPositionalEmbedding(maximumLength: contextLength, dimension: modelSize, generator: &g)
        blocks = (0..<layerCount).map { _ in
            TransformerBlock(attention: MultiHeadAttention(modelSize: modelSize, headCount: headCount, generator: &g),
                             feedForward: FeedForward(modelSize: modelSize, hiddenSize: 4 * modelSize, kind: .gelu, generator: &g),
                             preNorm: preNorm)
        }
        finalNorm = LayerNorm(modelSize)
        head = Linear(inputSize: modelSize, outputSize: vocabularySize, generator: &g)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try tokens.forEachNamedParameter(prefix: joinName(prefix, "wte"), body)
        try positions.forEachNamedParameter(prefix: joinName(prefix, "wpe"), body)
        try blocks.forEachNamedParameter(prefix: joinName(prefix, "h"), body)
        try finalNorm.forEachNamedParameter(prefix: joinName(prefix, "ln_f"), body)
        try head.forEachNamedParameter(prefix: joinName(prefix, "lm_head"), body)
    }

    /// The hidden states entering block `index` (after embeddings and earlier blocks): [B, T, C].
    public func hidden(_ ids: [[Int]], upToBlock index: Int) -> Tensor {
        let t = ids[0].count
        var x = positions(tokens(ids.flatMap { $0 }, shape: [ids.count, t]))
        for block in blocks.prefix(index) { x = block(x) }
        return x
    }

    /// Logits [B, T, V].
    public func callAsFunction(_ ids: [[Int]]) -> Tensor {
        head(finalNorm(blocks.last.map { $0(hidden(ids, upToBlock: blocks.count - 1)) } ?? hidden(ids, upToBlock: 0)))
    }

    /// Mean next-token cross-entropy: position t predicts targets[t].
    public func loss(_ ids: [[Int]], targets: [[Int]]) -> Tensor {
        let logits = self(ids)
        return crossEntropy(logits: logits.reshaped(to: [-1, logits.shape[2]]), labels: targets.flatMap { $0 })
    }
}

public enum TransformerLesson {
    public static let sentence = ["What", "is", "your", "name"]
    /// The vocabulary: the four words and an end marker.
    public static let vocabulary = sentence + ["<end>"]

    public struct Result: Sendable {
        /// The first block's head-0 attention probabilities over the sentence, [4][4].
        public let attention: [[Float]]
        public let initialLoss: Float, finalLoss: Float
        /// The predicted next word after each word.
        public let predictions: [String]
    }

    public static func run(steps: Int = 200, seed: UInt64 = 0, report: (String) -> Void = { _ in }) -> Result {
        let ids = [sentence.indices.map { $0 }]                 // What is your name
        let targets = [Array(1...sentence.count)]                // is your name <end>
        var model = TinyDecoder(vocabularySize: vocabulary.count, modelSize: 16, headCount: 2, layerCount: 1,
                                contextLength: 8, seed: seed)
        var optimizer = Adam(learningRate: 0.01)
        let initial = model.loss(ids, targets: targets).scalar
        report("tokens: " + sentence.enumerated().map { "\($1)=\($0)" }.joined(separator: " ") + "; targets: the next word")
        for step in 1...steps {
            let loss = optimizer.step(&model) { $0.loss(ids, targets: targets) }
            if step % max(1, steps / 4) == 0 { report("step \(step): loss \(loss.scalar)") }
        }
        let block = model.blocks[0]
        let weights = withoutGradient { block.attention.attentionWeights(block.norm1(model.hidden(ids, upToBlock: 0))) }
        let matrix = (0..<4).map { i in (0..<4).map { j in weights[0, 0, i, j] } }
        report("causal attention (head 0), row = query word, column = key word:")
        report("        " + sentence.map { $0.padding(toLength: 7, withPad: " ", startingAt: 0) }.joined())
        for (i, row) in matrix.enumerated() {
            report(sentence[i].padding(toLength: 8, withPad: " ", startingAt: 0) + row.map { String(format: "%-7.3f", $0) }.joined())
        }
        let predictions = withoutGradient { model(ids) }.argmaxAlongLastAxis().map { vocabulary[$0] }
        report("next-word predictions: " + zip(sentence, predictions).map { "\($0)→\($1)" }.joined(separator: ", "))
        return Result(attention: matrix, initialLoss: initial, finalLoss: model.loss(ids, targets: targets).scalar, predictions: predictions)
    }
}

#if canImport(Foundation)
import Foundation
#endif

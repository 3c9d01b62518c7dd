// Lesson `lottery`: the lottery ticket hypothesis (Frankle & Carbin 2019). Train an MLP on the
// digits, prune the smallest-magnitude 20% of each layer's remaining weights (10% for the output
// layer), rewind the survivors to their original initialization, and repeat. The rewound sparse
// network trains to the dense accuracy; the same mask with a fresh random initialization falls behind.
import AlignKitNN
import AlignKitText

public enum LotteryLesson {
    public struct Round: Sendable {
        public let sparsity: Float
        public let rewoundAccuracy: Float
    }

    public struct Result: Sendable {
        public let denseAccuracy: Float
        public let rounds: [Round]
        /// The final mask trained from a random re-initialization.
        public let randomReinitAccuracy: Float
        public var finalSparsity: Float { rounds.last?.sparsity ?? 0 }
        public var finalRewoundAccuracy: Float { rounds.last?.rewoundAccuracy ?? denseAccuracy }
    }

    /// Trains `model` with its weight matrices held to `masks` (1 keep, 0 pruned); returns it and its test accuracy.
    static func train(_ initial: MLP, masks: [Tensor], train: DigitsDataset, test: DigitsDataset, epochs: Int, seed: UInt64) -> (MLP, Float) {
        var model = initial
        func applyMasks(_ m: inout MLP) {
            for i in m.layers.indices { m.layers[i].weight = withoutGradient { m.layers[i].weight * masks[i] } }
        }
        applyMasks(&model)
        var optimizer = Adam(learningRate: 2e-3)
        var g = RandomGenerator(seed: seed)
        let x = train.images.reshaped(to: [train.count, 64])
        for _ in 0..<epochs {
            var order = Array(0..<train.count)
            order.shuffle(using: &g)
            for start in stride(from: 0, to: order.count, by: 32) {
                let rows = Array(order[start..<min(start + 32, order.count)])
                let labels = rows.map { train.labels[$0] }
                let batch = x.gathering(atIndices: rows, alongAxis: 0)
                _ = optimizer.step(&model) { crossEntropy(logits: $0(batch), labels: labels) }
                applyMasks(&model)
            }
        }
        let predictions = withoutGradient { model(test.images.reshaped(to: [test.count, 64])) }.argmaxAlongLastAxis()
        let correct = zip(predictions, test.labels).filter { $0 == $1 }.count
        return (model, Float(correct) / Float(test.count))
    }

    public static func run(digits: DigitsDataset, rounds: Int = 10, epochs: Int = 15, seed: UInt64 = 0,
                           report: (String) -> Void = { _ in }) -> Result {
        let (trainSet, testSet) = digits.split(testFraction: 0.2, seed: seed)
        let sizes = [64, 128, 64, 10]
        let original = MLP(sizes: sizes, activation: .relu, initializer: .heUniform, seed: seed)
        var masks = original.layers.map { Tensor.ones($0.weight.shape) }
        let (dense, denseAccuracy) = train(original, masks: masks, train: trainSet, test: testSet, epochs: epochs, seed: seed)
        report("MLP \(sizes) on digits: dense test accuracy \(percent(denseAccuracy))")
        var trained = dense
        var history: [Round] = []
        let total = Float(masks.reduce(0) { $0 + $1.scalarCount })
        for round in 1...rounds {
            // Prune by magnitude of the trained weights, per layer, among the survivors.
            for i in masks.indices {
                let rate: Float = i == masks.count - 1 ? 0.1 : 0.2
                let magnitudes = (trained.layers[i].weight * masks[i]).absoluteValue().scalars
                let alive = zip(magnitudes, masks[i].scalars).filter { $1 != 0 }.map { $0.0 }.sorted()
                let cut = alive[min(alive.count - 1, Int(Float(alive.count) * rate))]
                masks[i] = Tensor(zip(magnitudes, masks[i].scalars).map { $1 != 0 && $0 >= cut ? 1 : 0 }, shape: masks[i].shape)
            }
            let kept = Float(masks.reduce(0) { $0 + Int($1.sum().scalar) })
            // Rewind the survivors to their original values and retrain.
            let (model, accuracy) = train(original, masks: masks, train: trainSet, test: testSet, epochs: epochs, seed: seed)
            trained = model
            history.append(Round(sparsity: 1 - kept / total, rewoundAccuracy: accuracy))
            report("round \(round): sparsity \(percent(1 - kept / total)), rewound to θ₀: test accuracy \(percent(accuracy))")
        }
        let fresh = MLP(sizes: sizes, activation: .relu, initializer: .heUniform, seed: seed &+ 1000)
        let (_, randomAccuracy) = train(fresh, masks: masks, train: trainSet, test: testSet, epochs: epochs, seed: seed)
        report("same mask, random re-initialization: test accuracy \(percent(randomAccuracy))")
        return Result(denseAccuracy: denseAccuracy, rounds: history, randomReinitAccuracy: randomAccuracy)
    }

    static func percent(_ v: Float) -> String { "\(Float(Int(v * 1000)) / 10)%" }
}

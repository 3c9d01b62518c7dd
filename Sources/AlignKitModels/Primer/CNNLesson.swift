// Lesson `cnn` (seed 000 §3): convolution → pooling → MLP on the 8 x 8 handwritten digits, and the
// primer's horizontal-edge kernel [[1,1,1],[0,0,0],[-1,-1,-1]] on a 5 x 5 "0".
//   [N,1,8,8] → Conv 3x3 (16) → ReLU → MaxPool 2 → [N,16,4,4] → Conv 3x3 (32) → ReLU → MaxPool 2
//   → [N,32,2,2] → Flatten [N,128] → Linear 64 → ReLU → Linear 10 → softmax cross-entropy
import AlignKitNN
import AlignKitText

public enum CNNLesson {
    /// A 5 x 5 grayscale "0": values near 1 are ink.
    public static let zero = Tensor([
        0.1, 0.9, 0.9, 0.9, 0.1,
        0.9, 0.1, 0.0, 0.1, 0.9,
        0.9, 0.0, 0.0, 0.0, 0.9,
        0.9, 0.1, 0.0, 0.1, 0.9,
        0.1, 0.9, 0.9, 0.9, 0.1,
    ], shape: [1, 1, 5, 5])

    /// The horizontal-edge kernel of §3.1.
    public static let horizontalEdge = Tensor([1, 1, 1, 0, 0, 0, -1, -1, -1], shape: [1, 1, 3, 3])

    /// The 3 x 3 response of the edge kernel over the "0": high where ink gives way to background
    /// going down (the top stroke), low where background gives way to ink (the bottom stroke).
    public static func edgeResponse() -> Tensor { conv2D(zero, filter: horizontalEdge).reshaped(to: [3, 3]) }

    public struct Network: Layer {
        public var conv1: Conv2D, conv2: Conv2D, hidden: Linear, output: Linear
        public init(seed: UInt64) {
            var g = RandomGenerator(seed: seed)
            conv1 = Conv2D(inputChannels: 1, outputChannels: 16, kernelSize: 3, padding: 1, generator: &g)
            conv2 = Conv2D(inputChannels: 16, outputChannels: 32, kernelSize: 3, padding: 1, generator: &g)
            hidden = Linear(inputSize: 128, outputSize: 64, initializer: .heUniform, generator: &g)
            output = Linear(inputSize: 64, outputSize: 10, generator: &g)
        }
        public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
            try conv1.forEachNamedParameter(prefix: joinName(prefix, "conv1"), body)
            try conv2.forEachNamedParameter(prefix: joinName(prefix, "conv2"), body)
            try hidden.forEachNamedParameter(prefix: joinName(prefix, "hidden"), body)
            try output.forEachNamedParameter(prefix: joinName(prefix, "output"), body)
        }
        public func callAsFunction(_ x: Tensor) -> Tensor {
            var h = maxPool2D(conv1(x).relu(), size: 2)   // [N, 16, 4, 4]
            h = maxPool2D(conv2(h).relu(), size: 2)       // [N, 32, 2, 2]
            return output(hidden(h.reshaped(to: [h.shape[0], 128])).relu())
        }
    }

    public struct Result {
        public let testAccuracy: Float
        public let trainAccuracy: Float
        public let finalLoss: Float
        /// The trained classifier (other lessons use it as a judge of generated digits).
        public let network: Network
    }

    /// Predicted labels and their softmax probabilities for images [N, 1, 8, 8].
    public static func classify(_ network: Network, _ images: Tensor) -> (labels: [Int], confidences: [Float]) {
        let probabilities = withoutGradient { withLearningPhase(.inference) { network(images).softmax() } }
        return (probabilities.argmaxAlongLastAxis(), probabilities.max(squeezingAxes: [-1]).scalars)
    }

    static func accuracy(_ network: Network, _ data: DigitsDataset) -> Float {
        let predictions = classify(network, data.images).labels
        return Float(zip(predictions, data.labels).filter { $0 == $1 }.count) / Float(data.count)
    }

    /// Trains on 80% of the digits (seeded split) and reports accuracy on the held-out 20%.
    public static func run(digits: DigitsDataset, epochs: Int = 12, batchSize: Int = 32, learningRate: Float = 3e-3,
                           seed: UInt64 = 0, report: (String) -> Void = { _ in }) -> Result {
        let response = edgeResponse()
        report("edge kernel [[1,1,1],[0,0,0],[-1,-1,-1]] over a 5x5 \"0\":")
        for row in 0..<3 { report("  " + (0..<3).map { String(format: "%5.1f", response[row, $0]) }.joined(separator: " ")) }
        let (train, test) = digits.split(testFraction: 0.2, seed: seed)
        report("digits: \(train.count) train, \(test.count) test; conv(16) → pool → conv(32) → pool → MLP [128, 64, 10]")
        var network = Network(seed: seed)
        var optimizer = Adam(learningRate: learningRate)
        var generator = RandomGenerator(seed: seed &+ 1)
        var loss: Float = 0
        for epoch in 1...epochs {
            var order = Array(0..<train.count)
            order.shuffle(using: &generator)
            var total: Float = 0, batches = 0
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let batch = train.subset(Array(order[start..<min(start + batchSize, order.count)]))
                let value = optimizer.step(&network) { crossEntropy(logits: $0(batch.images), labels: batch.labels) }
                total += value.scalar
                batches += 1
            }
            loss = total / Float(batches)
            report(String(format: "epoch %2d: loss %.4f  test accuracy %.1f%%", epoch, loss, accuracy(network, test) * 100))
        }
        return Result(testAccuracy: accuracy(network, test), trainAccuracy: accuracy(network, train), finalLoss: loss, network: network)
    }
}


#if canImport(Foundation)
import Foundation
#endif

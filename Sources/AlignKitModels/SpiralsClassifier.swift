// The interim demo: an MLP learns to separate two interleaved spirals (a classic non-linear
// classification task), trained with Adam on binary cross-entropy. Runs until the DPO demo lands.
import AlignKitNN

/// Two interleaved spirals in the plane: class 0 at angle θ, class 1 rotated by π.
/// Point i of n: r = 0.1 + 0.9 i/n, θ = 3π i/n, plus Gaussian noise of `noise`.
public struct TwoSpirals: Sendable {
    /// Points [2n, 2].
    public let points: Tensor
    /// Labels [2n, 1], 0 or 1.
    public let labels: Tensor

    public init(pointsPerClass n: Int, noise: Float = 0.02, seed: UInt64 = 0) {
        var generator = RandomGenerator(seed: seed)
        var xy: [Float] = [], y: [Float] = []
        for label in 0..<2 {
            for i in 0..<n {
                let t = Float(i) / Float(n)
                let r = 0.1 + 0.9 * t, angle = 3 * Float.pi * t + Float(label) * Float.pi
                xy.append(r * cosf(angle) + noise * generator.nextNormal())
                xy.append(r * sinf(angle) + noise * generator.nextNormal())
                y.append(Float(label))
            }
        }
        points = Tensor(xy, shape: [2 * n, 2])
        labels = Tensor(y, shape: [2 * n, 1])
    }
}

/// Trains an MLP on `TwoSpirals` and reports progress.
public struct SpiralsClassifierTraining {
    public struct Configuration: Sendable {
        public var sizes = [2, 64, 64, 1]
        public var steps = 1500
        public var learningRate: Float = 0.01
        public var pointsPerClass = 200
        public var seed: UInt64 = 0
        public init() {}
    }

    /// What one reported step looked like.
    public struct Progress: Sendable {
        public let step: Int, steps: Int
        public let loss: Float
        public let accuracy: Float
    }

    public let configuration: Configuration
    public init(configuration: Configuration = Configuration()) { self.configuration = configuration }

    /// Runs training; `progress` is called every `every` steps and at the end.
    /// Returns the trained model and its final accuracy on the training points.
    public func run(every: Int = 100, progress: (Progress) -> Void) -> (model: MLP, accuracy: Float) {
        let data = TwoSpirals(pointsPerClass: configuration.pointsPerClass, seed: configuration.seed)
        var model = MLP(sizes: configuration.sizes, activation: .tanh, seed: configuration.seed)
        var optimizer = Adam(learningRate: configuration.learningRate)
        var accuracy: Float = 0
        for step in 1...configuration.steps {
            let (loss, gradient) = valueWithGradient(at: model) { m in
                binaryCrossEntropy(logits: m(data.points), labels: data.labels)
            }
            optimizer.update(&model, along: gradient)
            if step % every == 0 || step == configuration.steps {
                accuracy = Self.accuracy(model, data)
                progress(Progress(step: step, steps: configuration.steps, loss: loss.scalar, accuracy: accuracy))
            }
        }
        return (model, accuracy)
    }

    static func accuracy(_ model: MLP, _ data: TwoSpirals) -> Float {
        let predictions = withoutGradient { model(data.points) }.scalars
        let labels = data.labels.scalars
        let correct = zip(predictions, labels).filter { ($0 > 0 ? 1 : 0) == $1 }.count
        return Float(correct) / Float(labels.count)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

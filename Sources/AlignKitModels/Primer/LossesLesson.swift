// Lesson `losses` (seed 004): the surrogate losses φ(y f(x)) for a linear classifier f(x) = w·x + b
// with labels y ∈ {-1, +1}: 0-1 I(m < 0), exponential e^{-m}, logistic log(1 + e^{-m}), hinge
// max(1 - m, 0). The 0-1 loss has zero gradient almost everywhere, so gradient descent cannot move;
// the smooth (or subdifferentiable) surrogates can, and they drive the 0-1 error down.
import AlignKitNN

public enum LossesLesson {
    public struct Outcome: Sendable {
        public let loss: SurrogateLoss
        public let initialError: Float, finalError: Float
        /// How far the weights moved during training (‖Δθ‖).
        public let distanceMoved: Float
    }

    struct Classifier: Parameterized {
        var w = Tensor([0.3, -0.8]), b = Tensor([0.1])
        mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows { try body(&w); try body(&b) }
        func margins(_ x: Tensor, _ y: Tensor) -> Tensor { (matmul(x, w.reshaped(to: [2, 1])).reshaped(to: [-1]) + b) * y }
    }

    /// Two Gaussian blobs centred at ±(1, 1) with standard deviation 0.7 (some overlap).
    public static func data(count: Int, seed: UInt64) -> (x: Tensor, y: Tensor) {
        var g = RandomGenerator(seed: seed)
        var points: [Float] = [], labels: [Float] = []
        for i in 0..<count {
            let label: Float = i % 2 == 0 ? 1 : -1
            points += [label + 0.7 * g.nextNormal(), label + 0.7 * g.nextNormal()]
            labels.append(label)
        }
        return (Tensor(points, shape: [count, 2]), Tensor(labels))
    }

    public static func run(steps: Int = 200, learningRate: Float = 0.1, seed: UInt64 = 0, report: (String) -> Void = { _ in }) -> [Outcome] {
        let (x, y) = data(count: 400, seed: seed)
        var outcomes: [Outcome] = []
        report("linear classifier on two overlapping blobs (400 points), \(steps) steps of gradient descent:")
        for loss in SurrogateLoss.allCases {
            var model = Classifier()
            let start = model
            let initialError = SurrogateLoss.zeroOne(margins: model.margins(x, y)).scalar
            var optimizer = SGD(learningRate: learningRate)
            for _ in 0..<steps { _ = optimizer.step(&model) { loss(margins: $0.margins(x, y)) } }
            let finalError = SurrogateLoss.zeroOne(margins: model.margins(x, y)).scalar
            let moved = ((model.w - start.w).raised(toPower: 2).sum() + (model.b - start.b).raised(toPower: 2).sum()).squareRoot().scalar
            outcomes.append(Outcome(loss: loss, initialError: initialError, finalError: finalError, distanceMoved: moved))
            report("  \(loss.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) 0-1 error \(percent(initialError)) → \(percent(finalError)), weights moved \(moved)")
        }
        return outcomes
    }

    static func percent(_ v: Float) -> String { "\(Float(Int(v * 1000)) / 10)%" }
}

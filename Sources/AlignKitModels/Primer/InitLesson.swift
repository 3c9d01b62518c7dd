// Lesson `init` (seed 004): activation variance through 50 layers. For y = Σ wᵢxᵢ with independent
// zero-mean terms, Var[y] = n Var[w] Var[x]: Var[w] = 1/n keeps the variance (Xavier, linear or tanh
// units near 0), ReLU zeroes half the units so Var[w] = 2/n is needed (He); N(0, 1) multiplies the
// variance by n each layer and explodes.
import AlignKitNN

public enum InitLesson {
    public struct Trace: Sendable {
        public let name: String
        /// Var of the activations after each layer (index 0: the input).
        public let variances: [Float]
    }

    public static func run(width: Int = 256, depth: Int = 50, batch: Int = 256, report: (String) -> Void = { _ in }) -> [Trace] {
        let cases: [(String, Initializer, Activation)] = [
            ("N(0,1) + ReLU", .normal(standardDeviation: 1), .relu),
            ("N(0,1/n) + linear", .normal(standardDeviation: (1 / Float(width)).squareRoot()), .identity),
            ("N(0,1/n) + ReLU", .normal(standardDeviation: (1 / Float(width)).squareRoot()), .relu),
            ("He N(0,2/n) + ReLU", .heNormal, .relu),
            ("Xavier + tanh", .xavierNormal, .tanh),
        ]
        let input = Tensor(randomNormal: [batch, width], seed: 1)
        var traces: [Trace] = []
        report("Var of activations through \(depth) layers of width \(width) (input variance ≈ 1):")
        for (name, initializer, activation) in cases {
            var g = RandomGenerator(seed: 2)
            var x = input
            var variances = [input.variance().scalar]
            withoutGradient {
                for _ in 0..<depth {
                    x = activation(matmul(x, initializer.tensor([width, width], generator: &g)))
                    // ReLU outputs are not zero-mean: track E[x²], the quantity the derivation propagates.
                    variances.append(activation == .relu ? x.raised(toPower: 2).mean().scalar : x.variance().scalar)
                }
            }
            traces.append(Trace(name: name, variances: variances))
            let shown = [1, 5, 10, 25, 50].filter { $0 <= depth }.map { "L\($0) \(format(variances[$0]))" }.joined(separator: "  ")
            report("\(name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(shown)")
        }
        return traces
    }

    static func format(_ v: Float) -> String {
        if !v.isFinite { return "inf" }
        if v == 0 { return "0" }
        return v >= 1e-3 && v < 1e4 ? String(Float(Int(v * 1000)) / 1000) : "\(v)"
    }
}

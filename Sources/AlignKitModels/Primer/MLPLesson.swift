// Lesson `mlp`: the primer's soccer-draft network n = [2, 3, 4, 3, 1] (seed 000 §2), trained once
// with the hand-derived backpropagation of §2.2 and checked against autodiff.
//   Feedforward:  Z_i = W_i A_{i-1} + B_i,  A_i = σ(Z_i),  A_0 = Xᵀ   (W_i is n_i x n_{i-1}; columns are players)
//   Cost:         C = -mean[ y log ŷ + (1 - y) log(1 - ŷ) ]
//   Backward:     δ_L = (A_L - Y) / b                    (dC/dA_L · σ'(Z_L) simplified)
//                 δ_i = (W_{i+1}ᵀ δ_{i+1}) ⊙ A_i ⊙ (1 - A_i)
//                 dC/dW_i = δ_i A_{i-1}ᵀ,  dC/dB_i = Σ_columns δ_i
//   Update:       W_i = W_i - lr · dC/dW_i,  B_i = B_i - lr · dC/dB_i
import AlignKitNN

public enum MLPLesson {
    /// Ten players: goals per game, pass accuracy, and whether they were drafted.
    public static let players: [(goals: Float, passAccuracy: Float, drafted: Float)] = [
        (0.90, 0.85, 1), (0.10, 0.60, 0), (0.70, 0.90, 1), (0.20, 0.55, 0), (0.80, 0.75, 1),
        (0.30, 0.65, 0), (0.60, 0.88, 1), (0.15, 0.70, 0), (0.75, 0.80, 1), (0.25, 0.58, 0),
    ]

    /// The layer sizes of the primer's Fig. 1.
    public static let sizes = [2, 3, 4, 3, 1]

    /// Weights W_i [n_i, n_{i-1}] and biases B_i [n_i, 1], in the primer's column layout.
    public struct Network: Parameterized {
        public var weights: [Tensor]
        public var biases: [Tensor]

        public init(sizes: [Int], seed: UInt64) {
            var g = RandomGenerator(seed: seed)
            weights = zip(sizes.dropFirst(), sizes).map { Initializer.xavierNormal.tensor([$0, $1], generator: &g) }
            biases = sizes.dropFirst().map { Tensor.zeros([$0, 1]) }
        }

        public mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows {
            try weights.forEachParameter(body)
            try biases.forEachParameter(body)
        }

        /// Every activation A_0 ... A_L (A_0 = Xᵀ).
        public func activations(_ x: Tensor) -> [Tensor] {
            var a = [x.transposed()]
            for (w, b) in zip(weights, biases) { a.append((matmul(w, a.last!) + b).sigmoid()) }
            return a
        }

        /// Binary cross-entropy of the output against labels y [1, b].
        public func cost(_ x: Tensor, _ y: Tensor) -> Tensor {
            let out = activations(x).last!
            return -(y * out.log() + (1 - y) * (1 - out).log()).mean()
        }

        /// dC/dW_i and dC/dB_i by the hand-derived rules above (no tape).
        public func handGradients(_ x: Tensor, _ y: Tensor) -> (weights: [Tensor], biases: [Tensor]) {
            withoutGradient {
                let a = activations(x)
                let batch = Float(x.shape[0])
                var delta = (a.last! - y) / batch                    // δ_L
                var dW = [Tensor](repeating: Tensor(0), count: weights.count), dB = dW
                for i in stride(from: weights.count - 1, through: 0, by: -1) {
                    dW[i] = matmul(delta, a[i], transposeB: true)        // δ_i A_{i-1}ᵀ
                    dB[i] = delta.sum(alongAxes: [1])                     // Σ over players
                    if i > 0 {
                        delta = matmul(weights[i], delta, transposeA: true) * a[i] * (1 - a[i])
                    }
                }
                return (dW, dB)
            }
        }
    }

    public struct Result: Sendable {
        /// Largest |hand-derived - autodiff| over all gradient entries, at the initial weights.
        public let largestGradientDifference: Float
        public let initialCost: Float, finalCost: Float
        /// Output probabilities after training with the hand-derived rule, one per player.
        public let predictions: [Float]
        /// The same after training the same initial network with autodiff gradients.
        public let autodiffPredictions: [Float]
        public let autodiffFinalCost: Float
        public var accuracy: Float { Self.accuracy(predictions) }
        public var autodiffAccuracy: Float { Self.accuracy(autodiffPredictions) }
        static func accuracy(_ predictions: [Float]) -> Float {
            Float(zip(predictions, players).filter { ($0 > 0.5 ? 1 : 0) == $1.drafted }.count) / Float(players.count)
        }
    }

    /// Checks the hand-derived gradients against autodiff, then trains with the hand-derived rule.
    public static func run(steps: Int = 4000, learningRate: Float = 2, seed: UInt64 = 0, report: (String) -> Void = { _ in }) -> Result {
        let x = Tensor(players.flatMap { [$0.goals, $0.passAccuracy] }, shape: [players.count, 2])   // (b, f) = (10, 2)
        let y = Tensor(players.map(\.drafted), shape: [1, players.count])                           // (1, 10)
        var network = Network(sizes: sizes, seed: seed)

        let hand = network.handGradients(x, y)
        let automatic = gradient(at: network) { $0.cost(x, y) }
        var largest: Float = 0
        for (h, a) in zip(hand.weights + hand.biases, automatic.weights + automatic.biases) {
            largest = max(largest, (h - a).absoluteValue().max().scalar)
        }
        report("n = \(sizes), sigmoid everywhere, binary cross-entropy, \(players.count) players")
        report("hand-derived vs autodiff gradients: largest difference \(largest)")

        let initial = network.cost(x, y).scalar
        // Once with autodiff: the same initial network, the same learning rate, SGD on the tape's gradients.
        var automaticNetwork = network
        var sgd = SGD(learningRate: learningRate)
        for _ in 0..<steps { _ = sgd.step(&automaticNetwork) { $0.cost(x, y) } }
        // And once with the hand-derived rule.
        for step in 0..<steps {
            let g = network.handGradients(x, y)
            withoutGradient {
                for i in network.weights.indices {
                    network.weights[i] = network.weights[i] - g.weights[i] * learningRate
                    network.biases[i] = network.biases[i] - g.biases[i] * learningRate
                }
            }
            if (step + 1) % max(1, steps / 4) == 0 { report("step \(step + 1): cost \(network.cost(x, y).scalar)") }
        }
        let predictions = network.activations(x).last!.scalars
        let result = Result(largestGradientDifference: largest, initialCost: initial, finalCost: network.cost(x, y).scalar,
                            predictions: predictions, autodiffPredictions: automaticNetwork.activations(x).last!.scalars,
                            autodiffFinalCost: automaticNetwork.cost(x, y).scalar)
        report("drafted?  " + zip(players, predictions).map { "\(Int($0.drafted))→\(String(format: "%.2f", $1))" }.joined(separator: " "))
        report("training accuracy: hand-derived \(Int(result.accuracy * 100))% (cost \(result.finalCost)), "
               + "autodiff \(Int(result.autodiffAccuracy * 100))% (cost \(result.autodiffFinalCost))")
        return result
    }
}

#if canImport(Foundation)
import Foundation
#endif

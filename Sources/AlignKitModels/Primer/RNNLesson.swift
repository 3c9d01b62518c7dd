// Lesson `rnn` (seed 000): Elman, Jordan and LSTM networks on a task that needs memory: a bit shown
// at the first step must be reported after `gap` steps of noise. The LSTM's gated cell state keeps
// it; the simple recurrences lose it as the gap grows (vanishing gradients through tanh).
import AlignKitNN

public enum RNNLesson {
    public struct Outcome: Sendable {
        public let model: String
        public let gap: Int
        /// Accuracy on fresh sequences after training.
        public let accuracy: Float
    }

    /// Sequences [B, gap + 1, 2]: step 0 holds (bit, 1); later steps hold (noise, 0). Targets: the bit.
    static func batch(_ size: Int, gap: Int, generator: inout RandomGenerator) -> (Tensor, Tensor) {
        var x = [Float](repeating: 0, count: size * (gap + 1) * 2), y: [Float] = []
        for b in 0..<size {
            let bit: Float = generator.nextUniform() < 0.5 ? 0 : 1
            y.append(bit)
            x[b * (gap + 1) * 2] = bit * 2 - 1
            x[b * (gap + 1) * 2 + 1] = 1
            for t in 1...max(gap, 1) where t <= gap { x[(b * (gap + 1) + t) * 2] = generator.nextNormal() }
        }
        return (Tensor(x, shape: [size, gap + 1, 2]), Tensor(y, shape: [size, 1]))
    }

    /// A recurrent trunk and a readout of its last step.
    struct Classifier: NamedParameters {
        enum Kind: String { case elman = "Elman", jordan = "Jordan", lstm = "LSTM" }
        let kind: Kind
        var elman: ElmanRNN?, jordan: JordanRNN?, lstm: LSTM?
        var readout: Linear

        init(_ kind: Kind, hidden: Int, seed: UInt64) {
            var g = RandomGenerator(seed: seed)
            self.kind = kind
            switch kind {
            case .elman: elman = ElmanRNN(inputSize: 2, hiddenSize: hidden, generator: &g)
            case .jordan: jordan = JordanRNN(inputSize: 2, hiddenSize: hidden, outputSize: hidden, generator: &g)
            case .lstm:
                lstm = LSTM(inputSize: 2, hiddenSize: hidden, generator: &g)
                // Forget-gate bias 3: σ(3) ≈ 0.95 per step keeps the cell state (and its gradient)
                // alive across the gap, which is what the gate makes possible and tanh cannot.
                lstm!.cell.input.bias = Tensor([Float](repeating: 0, count: hidden) + [Float](repeating: 3, count: hidden)
                                               + [Float](repeating: 0, count: 2 * hidden))
            }
            readout = Linear(inputSize: hidden, outputSize: 1, generator: &g)
        }

        mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
            if elman != nil { try elman!.forEachNamedParameter(prefix: "elman", body) }
            if jordan != nil { try jordan!.forEachNamedParameter(prefix: "jordan", body) }
            if lstm != nil { try lstm!.forEachNamedParameter(prefix: "lstm", body) }
            try readout.forEachNamedParameter(prefix: "readout", body)
        }

        func callAsFunction(_ x: Tensor) -> Tensor {
            let states = elman.map { $0(x) } ?? jordan.map { $0(x) } ?? lstm!(x)   // [B, T, H]
            let t = states.shape[1]
            return readout(states.slice(alongAxis: 1, range: (t - 1)..<t).squeezingShape(at: 1))
        }
    }

    public static func run(gaps: [Int] = [5, 60], steps: Int = 300, hidden: Int = 8, seed: UInt64 = 0,
                           report: (String) -> Void = { _ in }) -> [Outcome] {
        var outcomes: [Outcome] = []
        report("remember a bit across a gap of noise; hidden size \(hidden), \(steps) Adam steps of 32 sequences:")
        for gap in gaps {
            var line = "gap \(gap):"
            for kind in [Classifier.Kind.elman, .jordan, .lstm] {
                var model = Classifier(kind, hidden: hidden, seed: seed)
                var optimizer = Adam(learningRate: 0.01)
                var g = RandomGenerator(seed: seed &+ UInt64(gap))
                for _ in 0..<steps {
                    let (x, y) = batch(32, gap: gap, generator: &g)
                    var gradient = gradient(at: model) { binaryCrossEntropy(logits: $0(x), labels: y) }
                    clipByGlobalNorm(&gradient, maximumNorm: 1)
                    optimizer.update(&model, along: gradient)
                }
                let (x, y) = batch(500, gap: gap, generator: &g)
                let predictions = withoutGradient { model(x) }.scalars
                let accuracy = Float(zip(predictions, y.scalars).filter { ($0 > 0 ? 1 : 0) == $1 }.count) / 500
                outcomes.append(Outcome(model: kind.rawValue, gap: gap, accuracy: accuracy))
                line += "  \(kind.rawValue) \(Int(accuracy * 100))%"
            }
            report(line)
        }
        return outcomes
    }
}

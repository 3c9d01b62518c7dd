// Recurrent networks over sequences x [B, T, C], unrolled in time (backpropagation through time).
//   Elman:  hₜ = tanh(W xₜ + U hₜ₋₁ + b)                       → hidden states [B, T, H]
//   Jordan: hₜ = tanh(W xₜ + U yₜ₋₁ + b), yₜ = V hₜ + c         → outputs [B, T, O]
//   LSTM (Hochreiter & Schmidhuber; forget gate of Gers et al.):
//     [i, f, g, o] = W xₜ + U hₜ₋₁ + b;  cₜ = σ(f) ⊙ cₜ₋₁ + σ(i) ⊙ tanh(g);  hₜ = σ(o) ⊙ tanh(cₜ)

/// The step-t slice [B, C] of x [B, T, C].
@inline(__always) func timeStep(_ x: Tensor, _ t: Int) -> Tensor {
    x.slice(alongAxis: 1, range: t..<(t + 1)).squeezingShape(at: 1)
}

/// Elman's simple recurrent network.
public struct ElmanRNN: Layer {
    public var input: Linear, recurrent: Linear
    public let hiddenSize: Int

    public init(inputSize: Int, hiddenSize: Int, generator: inout RandomGenerator) {
        self.hiddenSize = hiddenSize
        input = Linear(inputSize: inputSize, outputSize: hiddenSize, generator: &generator)
        recurrent = Linear(inputSize: hiddenSize, outputSize: hiddenSize, useBias: false, generator: &generator)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try input.forEachNamedParameter(prefix: joinName(prefix, "input"), body)
        try recurrent.forEachNamedParameter(prefix: joinName(prefix, "recurrent"), body)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let projected = input(x)  // all time steps at once: [B, T, H]
        var h = Tensor.zeros([b, hiddenSize])
        var states: [Tensor] = []
        for step in 0..<t {
            h = (timeStep(projected, step) + recurrent(h)).tanh()
            states.append(h)
        }
        return stack(states, alongAxis: 1)
    }
}

/// Jordan's network: the previous output, not the hidden state, is fed back.
public struct JordanRNN: Layer {
    public var input: Linear, feedback: Linear, readout: Linear
    public let hiddenSize: Int, outputSize: Int

    public init(inputSize: Int, hiddenSize: Int, outputSize: Int, generator: inout RandomGenerator) {
        self.hiddenSize = hiddenSize
        self.outputSize = outputSize
        input = Linear(inputSize: inputSize, outputSize: hiddenSize, generator: &generator)
        feedback = Linear(inputSize: outputSize, outputSize: hiddenSize, useBias: false, generator: &generator)
        readout = Linear(inputSize: hiddenSize, outputSize: outputSize, generator: &generator)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try input.forEachNamedParameter(prefix: joinName(prefix, "input"), body)
        try feedback.forEachNamedParameter(prefix: joinName(prefix, "feedback"), body)
        try readout.forEachNamedParameter(prefix: joinName(prefix, "readout"), body)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let projected = input(x)
        var y = Tensor.zeros([b, outputSize])
        var outputs: [Tensor] = []
        for step in 0..<t {
            let h = (timeStep(projected, step) + feedback(y)).tanh()
            y = readout(h)
            outputs.append(y)
        }
        return stack(outputs, alongAxis: 1)
    }
}

/// One LSTM step: (x [B, C], h [B, H], c [B, H]) → (h', c').
public struct LSTMCell: NamedParameters {
    public var input: Linear, recurrent: Linear  // C → 4H, H → 4H; gates in order i, f, g, o
    public let hiddenSize: Int

    public init(inputSize: Int, hiddenSize: Int, generator: inout RandomGenerator) {
        self.hiddenSize = hiddenSize
        input = Linear(inputSize: inputSize, outputSize: 4 * hiddenSize, generator: &generator)
        recurrent = Linear(inputSize: hiddenSize, outputSize: 4 * hiddenSize, useBias: false, generator: &generator)
        // Forget-gate bias 1 (Jozefowicz et al.): remember by default.
        input.bias = Tensor([Float](repeating: 0, count: hiddenSize) + [Float](repeating: 1, count: hiddenSize)
                            + [Float](repeating: 0, count: 2 * hiddenSize))
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try input.forEachNamedParameter(prefix: joinName(prefix, "input"), body)
        try recurrent.forEachNamedParameter(prefix: joinName(prefix, "recurrent"), body)
    }

    /// One step from the input's projection `projectedInput` = W x + b [B, 4H].
    public func step(projectedInput: Tensor, hidden: Tensor, cell: Tensor) -> (hidden: Tensor, cell: Tensor) {
        let gates = (projectedInput + recurrent(hidden)).split(sizes: [hiddenSize, hiddenSize, hiddenSize, hiddenSize], alongAxis: 1)
        let c = gates[1].sigmoid() * cell + gates[0].sigmoid() * gates[2].tanh()
        let h = gates[3].sigmoid() * c.tanh()
        return (h, c)
    }

    public func callAsFunction(_ x: Tensor, hidden: Tensor, cell: Tensor) -> (hidden: Tensor, cell: Tensor) {
        step(projectedInput: input(x), hidden: hidden, cell: cell)
    }
}

/// An LSTM over a sequence: x [B, T, C] → hidden states [B, T, H].
public struct LSTM: Layer {
    public var cell: LSTMCell

    public init(inputSize: Int, hiddenSize: Int, generator: inout RandomGenerator) {
        cell = LSTMCell(inputSize: inputSize, hiddenSize: hiddenSize, generator: &generator)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try cell.forEachNamedParameter(prefix: joinName(prefix, "cell"), body)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        let projected = cell.input(x)  // [B, T, 4H]
        var h = Tensor.zeros([b, cell.hiddenSize]), c = Tensor.zeros([b, cell.hiddenSize])
        var states: [Tensor] = []
        for step in 0..<t {
            (h, c) = cell.step(projectedInput: timeStep(projected, step), hidden: h, cell: c)
            states.append(h)
        }
        return stack(states, alongAxis: 1)
    }
}

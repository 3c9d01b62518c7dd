// Fully connected layers: Linear, the primer's MLP, activations, Flatten, Dropout.

/// y = x W + b. Input [..., inputSize] → output [..., outputSize]; W [inputSize, outputSize], b [outputSize].
public struct Linear: Layer {
    public var weight: Tensor
    public var bias: Tensor?
    /// A low-rank adapter (LoRA) added to the output when present; see `LowRankAdapter`.
    public var adapter: LowRankAdapter?

    /// Weights from `initializer` (default Xavier-uniform), zero bias.
    public init(inputSize: Int, outputSize: Int, useBias: Bool = true, initializer: Initializer = .xavierUniform,
                generator: inout RandomGenerator) {
        precondition(inputSize > 0 && outputSize > 0, "Linear: sizes \(inputSize) x \(outputSize) must be positive")
        weight = initializer.tensor([inputSize, outputSize], generator: &generator)
        bias = useBias ? Tensor.zeros([outputSize]) : nil
    }

    /// A layer with the given weight [in, out] and bias [out].
    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2, "Linear: weight \(weight.shape) must be rank 2")
        if let bias { precondition(bias.shape == [weight.shape[1]], "Linear: bias \(bias.shape) must be [\(weight.shape[1])]") }
        self.weight = weight
        self.bias = bias
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(joinName(prefix, "weight"), &weight)
        if bias != nil { try body(joinName(prefix, "bias"), &bias!) }
        if adapter != nil { try adapter!.forEachNamedParameter(prefix: prefix, body) }
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        var y = linear(input, weight, bias: bias)
        if let adapter { y = y + adapter(input) }
        return y
    }
}

/// An elementwise activation function.
public enum Activation: String, Sendable, CaseIterable, Codable {
    case relu, tanh, sigmoid, gelu, geluTanh, silu, identity

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .relu: x.relu()
        case .tanh: x.tanh()
        case .sigmoid: x.sigmoid()
        case .gelu: x.gelu()
        case .geluTanh: x.geluTanh()
        case .silu: x.silu()
        case .identity: x
        }
    }
}

/// A multilayer perceptron with layer sizes as the primer writes them (`[2, 3, 4, 3, 1]`: two
/// inputs, hidden layers of 3, 4 and 3 units, one output). The activation follows every layer
/// but the last, which returns raw scores (logits).
public struct MLP: Layer {
    public var layers: [Linear]
    public let activation: Activation

    public init(sizes: [Int], activation: Activation = .relu, initializer: Initializer = .xavierUniform, seed: UInt64 = 0) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MLP: sizes \(sizes) need at least two positive entries")
        var generator = RandomGenerator(seed: seed)
        layers = zip(sizes, sizes.dropFirst()).map {
            Linear(inputSize: $0, outputSize: $1, initializer: initializer, generator: &generator)
        }
        self.activation = activation
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try layers.forEachNamedParameter(prefix: joinName(prefix, "layers"), body)
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        var x = input
        for (index, layer) in layers.enumerated() {
            x = layer(x)
            if index < layers.count - 1 { x = activation(x) }
        }
        return x
    }
}

/// [N, ...] → [N, product of the rest].
public struct Flatten: Layer {
    public init() {}
    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {}
    public func callAsFunction(_ input: Tensor) -> Tensor { input.reshaped(to: [input.shape[0], -1]) }
}

/// Inverted dropout in training (zero with `probability`, scale the rest by 1/(1-p)); identity in inference.
public struct Dropout: Layer {
    public let probability: Float
    let source: SharedGenerator

    public init(probability: Float, seed: UInt64 = 0) {
        precondition(probability >= 0 && probability < 1, "Dropout: probability \(probability) must be in [0, 1)")
        self.probability = probability
        source = SharedGenerator(seed: seed)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {}

    /// Restarts the mask generator (shared by every copy of this layer) from `seed`.
    public func reseed(_ seed: UInt64) { source.generator = RandomGenerator(seed: seed) }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        guard LearningPhase.current == .training, probability > 0 else { return input }
        return input.dropout(probability: probability, generator: &source.generator)
    }
}

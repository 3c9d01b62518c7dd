// Layer: a differentiable function with trainable parameters, and the building blocks of an MLP.

/// A differentiable function of one tensor with parameters reachable through `forEachParameter`.
public protocol Layer: Parameterized {
    /// Applies the layer. Shapes are documented by each conforming type.
    func callAsFunction(_ input: Tensor) -> Tensor
}

/// y = x W + b. Input [..., inputSize] → output [..., outputSize]; W [inputSize, outputSize], b [outputSize].
public struct Linear: Layer {
    public var weight: Tensor
    public var bias: Tensor?

    /// Xavier/Glorot-uniform weights, U(-√(6/(in+out)), √(6/(in+out))), and zero bias.
    public init(inputSize: Int, outputSize: Int, useBias: Bool = true, generator: inout RandomGenerator) {
        let limit = (6 / Float(inputSize + outputSize)).squareRoot()
        weight = Tensor(randomUniform: [inputSize, outputSize], lowerBound: -limit, upperBound: limit, generator: &generator)
        bias = useBias ? Tensor.zeros([outputSize]) : nil
    }

    public mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows {
        try body(&weight)
        if bias != nil { try body(&bias!) }
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        let y = matmul(input, weight)
        return bias.map { y + $0 } ?? y
    }
}

/// An elementwise activation function.
public enum Activation: String, Sendable, CaseIterable, Codable {
    case relu, tanh, sigmoid, gelu, silu, identity

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .relu: x.relu()
        case .tanh: x.tanh()
        case .sigmoid: x.sigmoid()
        case .gelu: x.gelu()
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

    public init(sizes: [Int], activation: Activation = .relu, seed: UInt64 = 0) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MLP: sizes \(sizes) need at least two positive entries")
        var generator = RandomGenerator(seed: seed)
        layers = zip(sizes, sizes.dropFirst()).map { Linear(inputSize: $0, outputSize: $1, generator: &generator) }
        self.activation = activation
    }

    public mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows {
        try layers.forEachParameter(body)
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

// Layer: a differentiable function with named trainable parameters, and the learning phase.

/// A value whose parameters carry names (checkpoint keys such as "layers.0.weight"). Visiting
/// by name is the single source of truth; `forEachParameter` (used by gradients and optimizers)
/// is derived from it.
public protocol NamedParameters: Parameterized {
    /// Calls `body` with each parameter's dotted name (prefixed by `prefix`) and the parameter.
    mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows
}

extension NamedParameters {
    public mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows {
        try forEachNamedParameter(prefix: "") { _, parameter in try body(&parameter) }
    }

    /// Parameter names in visiting order.
    public var parameterNames: [String] {
        var copy = self
        var names: [String] = []
        copy.forEachNamedParameter(prefix: "") { name, _ in names.append(name) }
        return names
    }

    /// Scalars over all parameters (a tied weight visited once counts once).
    public var parameterScalarCount: Int {
        var copy = self
        var count = 0
        copy.forEachNamedParameter(prefix: "") { _, p in count += p.scalarCount }
        return count
    }
}

/// `prefix.name`, or `name` when the prefix is empty.
@inline(__always) public func joinName(_ prefix: String, _ name: String) -> String {
    prefix.isEmpty ? name : prefix + "." + name
}

extension Array: NamedParameters where Element: NamedParameters {
    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        for i in indices { try self[i].forEachNamedParameter(prefix: joinName(prefix, "\(i)"), body) }
    }
}

/// A differentiable function of one tensor with named parameters.
public protocol Layer: NamedParameters {
    /// Applies the layer. Shapes are documented by each conforming type.
    func callAsFunction(_ input: Tensor) -> Tensor
}

/// Whether layers run for training (dropout active, batch statistics) or inference.
public enum LearningPhase: Sendable {
    case training, inference

    @TaskLocal static var value: LearningPhase = .training

    /// The phase in effect (training unless inside `withLearningPhase(.inference)`).
    public static var current: LearningPhase { value }
}

/// Runs `body` with layers in `phase` (for example `.inference` for evaluation).
public func withLearningPhase<R>(_ phase: LearningPhase, _ body: () throws -> R) rethrows -> R {
    try LearningPhase.$value.withValue(phase) { try body() }
}

/// A reference to a random generator, for layers that draw numbers in their forward pass (dropout).
/// @unchecked Sendable: a layer's forward pass runs on one thread at a time; the lock-free
/// generator state is only touched there.
public final class SharedGenerator: @unchecked Sendable {
    public var generator: RandomGenerator
    public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
}

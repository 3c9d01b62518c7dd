// Reverse-mode automatic differentiation on a tape (Griewank & Walther, "Evaluating Derivatives").
// Each primitive records its inputs and a closure mapping the output's gradient to the inputs'
// gradients (its vector–Jacobian product); the backward walk visits nodes in reverse
// topological order and accumulates with `+` where a tensor was used more than once.

/// One recorded operation: its inputs' nodes and its vector–Jacobian product.
final class TapeNode {
    /// The nodes of the inputs, nil for inputs that are not being differentiated.
    let parents: [TapeNode?]
    /// Maps the output's gradient to one gradient per parent (nil: nothing flows there).
    var pullback: ((Tensor) -> [Tensor?])?
    /// The gradient accumulated so far during a backward walk.
    var gradient: Tensor?
    let shape: [Int]
    let isLeaf: Bool
    var mark = 0

    init(shape: [Int], parents: [TapeNode?], pullback: ((Tensor) -> [Tensor?])?) {
        self.shape = shape
        self.parents = parents
        self.pullback = pullback
        self.isLeaf = pullback == nil
    }
}

/// Whether operations are recorded, per task or thread.
public enum GradientRecording {
    @TaskLocal static var isDisabled = false

    /// True inside `withoutGradient`.
    public static var isEnabled: Bool { !isDisabled }
}

/// Runs `body` without recording operations on the tape: its results are constants.
public func withoutGradient<R>(_ body: () throws -> R) rethrows -> R {
    try GradientRecording.$isDisabled.withValue(true) { try body() }
}

extension Tensor {
    /// Whether this tensor depends on a tensor being differentiated.
    public var isTracked: Bool { node != nil }

    /// The same values, cut from the tape: no gradient flows through the result.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// Records `self` as the output of an operation on `inputs` when any input is tracked.
    /// `pullback` receives the output's gradient and returns one gradient per input (nil to skip);
    /// it may use `tracked[i]` to skip work for inputs that need no gradient.
    func recorded(from inputs: [Tensor], pullback: @escaping (_ gradient: Tensor, _ tracked: [Bool]) -> [Tensor?]) -> Tensor {
        guard GradientRecording.isEnabled else { return self }
        var any = false
        for input in inputs where input.node != nil { any = true; break }
        guard any else { return self }
        let parents = inputs.map(\.node)
        let tracked = parents.map { $0 != nil }
        var result = self
        result.node = TapeNode(shape: shape, parents: parents, pullback: { gradient in pullback(gradient, tracked) })
        return result
    }

    /// A copy that is a leaf of a new tape: gradients with respect to it can be taken.
    func trackedLeaf() -> Tensor {
        var result = detached()
        result.node = TapeNode(shape: shape, parents: [], pullback: nil)
        return result
    }
}

/// Walks the tape backward from `root`, seeding its gradient with `seed`; leaves keep theirs.
func backpropagate(from root: TapeNode, seed: Tensor) {
    // Reverse topological order by an iterative depth-first search (no recursion limit).
    var order: [TapeNode] = []
    var stack: [(TapeNode, Int)] = [(root, 0)]
    root.mark = 1
    while let (node, next) = stack.popLast() {
        if next < node.parents.count {
            stack.append((node, next + 1))
            if let parent = node.parents[next], parent.mark == 0 {
                parent.mark = 1
                stack.append((parent, 0))
            }
        } else {
            order.append(node)
        }
    }
    root.gradient = seed
    withoutGradient {
        for node in order.reversed() {
            node.mark = 0
            guard let pullback = node.pullback, let gradient = node.gradient else { continue }
            let gradients = pullback(gradient)
            node.pullback = nil
            node.gradient = nil
            for (parent, g) in zip(node.parents, gradients) {
                guard let parent, let g else { continue }
                precondition(g.shape == parent.shape,
                             "backpropagate: gradient of shape \(g.shape) for an input of shape \(parent.shape)")
                if var existing = parent.gradient {
                    parent.gradient = nil   // so that `existing` can be the only owner, and be added to in place
                    existing.accumulate(g)
                    parent.gradient = existing
                } else {
                    parent.gradient = g
                }
            }
        }
    }
}

/// A value whose trainable tensors can be visited in a fixed order: a tensor, an array of them,
/// a layer or a whole model. Gradients and optimizers find parameters through this visit,
/// never through string keys.
public protocol Parameterized {
    /// Calls `body` on each trainable tensor, always in the same order.
    mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows
}

extension Tensor: Parameterized {
    public mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows { try body(&self) }
}

extension Array: Parameterized where Element: Parameterized {
    public mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows {
        for i in indices { try self[i].forEachParameter(body) }
    }
}

extension Parameterized {
    /// The parameters in visiting order.
    public var parameters: [Tensor] {
        var copy = self
        var result: [Tensor] = []
        copy.forEachParameter { result.append($0) }
        return result
    }

    /// The total number of scalars in all parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.scalarCount } }

    /// Replaces the parameters, in visiting order, with `newValues`.
    public mutating func setParameters(_ newValues: [Tensor]) {
        var index = 0
        forEachParameter { parameter in
            precondition(index < newValues.count, "setParameters: \(newValues.count) tensors for more parameters")
            precondition(newValues[index].shape == parameter.shape,
                         "setParameters: parameter \(index) has shape \(parameter.shape), new value \(newValues[index].shape)")
            parameter = newValues[index]
            index += 1
        }
        precondition(index == newValues.count, "setParameters: \(newValues.count) tensors for \(index) parameters")
    }
}

/// The value of `f` at `x` and its gradient with respect to every parameter of `x`.
///
/// `f` must return a one-element tensor (a loss). The gradient has the same type and structure
/// as `x`: each parameter replaced by d f / d parameter (zeros where `f` does not depend on it).
public func valueWithGradient<Model: Parameterized>(
    at x: Model, of f: (Model) throws -> Tensor
) rethrows -> (value: Tensor, gradient: Model) {
    var tracked = x
    var leaves: [TapeNode] = []
    tracked.forEachParameter { parameter in
        parameter = parameter.trackedLeaf()
        leaves.append(parameter.node!)
    }
    let value = try f(tracked)
    precondition(value.scalarCount == 1, "valueWithGradient: f returned shape \(value.shape); a one-element loss is needed")
    if let root = value.node {
        backpropagate(from: root, seed: Tensor(repeating: 1, shape: value.shape))
    }
    var gradient = x
    var index = 0
    gradient.forEachParameter { parameter in
        parameter = leaves[index].gradient ?? Tensor.zeros(parameter.shape)
        leaves[index].gradient = nil
        index += 1
    }
    return (value.detached(), gradient)
}

/// The gradient of `f` at `x`; see `valueWithGradient(at:of:)`.
public func gradient<Model: Parameterized>(at x: Model, of f: (Model) throws -> Tensor) rethrows -> Model {
    try valueWithGradient(at: x, of: f).gradient
}

/// The value of `f` at `(x, y)` and its gradients with respect to both.
public func valueWithGradient<A: Parameterized, B: Parameterized>(
    at x: A, _ y: B, of f: (A, B) throws -> Tensor
) rethrows -> (value: Tensor, gradient: (A, B)) {
    let pair = Pair(first: x, second: y)
    let (value, gradient) = try valueWithGradient(at: pair) { try f($0.first, $0.second) }
    return (value, (gradient.first, gradient.second))
}

private struct Pair<A: Parameterized, B: Parameterized>: Parameterized {
    var first: A
    var second: B
    mutating func forEachParameter(_ body: (inout Tensor) throws -> Void) rethrows {
        try first.forEachParameter(body)
        try second.forEachParameter(body)
    }
}

/// A value that a pullback takes once and then no longer holds, so that the backward pass can reuse
/// its buffer when nothing else refers to it (see `logSoftmaxGathering`).
final class TakeOnce<Value>: @unchecked Sendable {
    private var value: Value?
    init(_ value: Value) { self.value = value }

    func take() -> Value {
        guard let taken = value else { preconditionFailure("TakeOnce: a pullback ran twice") }
        value = nil
        return taken
    }
}

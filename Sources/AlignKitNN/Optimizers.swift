// Optimizers: one per-parameter update rule plus its state (seed 004's formulas).

/// Updates a model's parameters from their gradients. State is kept per parameter, in visiting order.
public protocol Optimizer {
    /// One step: each parameter moves according to its gradient (same structure as the model).
    mutating func update<Model: Parameterized>(_ model: inout Model, along gradient: Model)
}

extension Optimizer {
    /// Pairs each parameter with its gradient and index, in visiting order.
    func forEachPair<Model: Parameterized>(_ model: inout Model, _ gradient: Model,
                                           _ body: (_ index: Int, _ parameter: inout Tensor, _ gradient: Tensor) -> Void) {
        let gradients = gradient.parameters
        var index = 0
        model.forEachParameter { parameter in
            precondition(index < gradients.count && gradients[index].shape == parameter.shape,
                         "Optimizer: gradient structure does not match the model at parameter \(index)")
            body(index, &parameter, gradients[index])
            index += 1
        }
    }
}

/// Stochastic gradient descent, optionally with momentum: v = μ v + g; θ = θ - lr v.
public struct SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float
    private var velocity: [Tensor] = []

    public init(learningRate: Float, momentum: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
    }

    public mutating func update<Model: Parameterized>(_ model: inout Model, along gradient: Model) {
        let (lr, mu) = (learningRate, momentum)
        var velocity = self.velocity
        forEachPair(&model, gradient) { index, parameter, g in
            if mu == 0 { parameter = withoutGradient { parameter - g * lr }; return }
            if index == velocity.count { velocity.append(Tensor.zeros(g.shape)) }
            velocity[index] = withoutGradient { velocity[index] * mu + g }
            parameter = withoutGradient { parameter - velocity[index] * lr }
        }
        self.velocity = velocity
    }
}

/// Adam with bias correction (Kingma & Ba): m = β₁m + (1-β₁)g; v = β₂v + (1-β₂)g²;
/// θ = θ - lr · m̂ / (√v̂ + ε), m̂ = m / (1-β₁ᵗ), v̂ = v / (1-β₂ᵗ).
public struct Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float
    private var step = 0
    private var first: [Tensor] = [], second: [Tensor] = []

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
    }

    public mutating func update<Model: Parameterized>(_ model: inout Model, along gradient: Model) {
        step += 1
        let (b1, b2, eps, lr) = (beta1, beta2, epsilon, learningRate)
        let c1 = 1 - Float.pow(b1, step), c2 = 1 - Float.pow(b2, step)
        var first = self.first, second = self.second
        forEachPair(&model, gradient) { index, parameter, g in
            if index == first.count { first.append(Tensor.zeros(g.shape)); second.append(Tensor.zeros(g.shape)) }
            withoutGradient {
                first[index] = first[index] * b1 + g * (1 - b1)
                second[index] = second[index] * b2 + g * g * (1 - b2)
                parameter = parameter - (first[index] / c1) / ((second[index] / c2).squareRoot() + eps) * lr
            }
        }
        self.first = first; self.second = second
    }
}

extension Float {
    static func pow(_ base: Float, _ exponent: Int) -> Float {
        var result: Float = 1
        for _ in 0..<exponent { result *= base }
        return result
    }
}

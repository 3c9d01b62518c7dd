// Optimizers as seed 004 writes them: one per-parameter update rule plus its state.
//   SGD:       θ ← θ - α g
//   Momentum:  v ← β v + α g;  θ ← θ - v
//   Nesterov:  ϑ = θ - β v;  v ← β v + α g(ϑ);  θ ← θ - v        (gradient at the look-ahead point)
//   AdaGrad:   n ← n + g ⊙ g;  θ ← θ - α g / (√n + ε)
//   RMSProp:   n ← ρ n + (1 - ρ) g ⊙ g;  θ ← θ - α g / (√n + ε)
//   Adam:      m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²;  θ ← θ - α m̂ / (√v̂ + ε),  m̂ = m/(1-β₁ᵗ), v̂ = v/(1-β₂ᵗ)
//   AdamW:     θ ← θ - α λ θ, then the Adam step (decay decoupled from the gradient, Loshchilov & Hutter)
import CAlignKitKernels

/// Updates a model's parameters from their gradients. State is kept per parameter, in visiting order.
public protocol Optimizer {
    /// The step size α; schedules set it before each step.
    var learningRate: Float { get set }
    /// One step with a gradient taken at the current parameters (same structure as the model).
    mutating func update<Model: Parameterized>(_ model: inout Model, along gradient: Model)
    /// One step that evaluates `loss` (and its gradient) wherever the rule needs it; returns the loss.
    mutating func step<Model: Parameterized>(_ model: inout Model, loss: (Model) -> Tensor) -> Tensor
}

extension Optimizer {
    public mutating func step<Model: Parameterized>(_ model: inout Model, loss: (Model) -> Tensor) -> Tensor {
        let (value, gradient) = valueWithGradient(at: model, of: loss)
        update(&model, along: gradient)
        return value
    }

    /// Visits each parameter with its gradient and index, in visiting order, without recording.
    func forEachPair<Model: Parameterized>(_ model: inout Model, _ gradient: Model,
                                           _ body: (_ index: Int, _ parameter: inout Tensor, _ gradient: Tensor) -> Void) {
        let gradients = gradient.parameters
        var index = 0
        withoutGradient {
            model.forEachParameter { parameter in
                precondition(index < gradients.count && gradients[index].shape == parameter.shape,
                             "Optimizer: gradient structure does not match the model at parameter \(index)")
                body(index, &parameter, gradients[index])
                index += 1
            }
        }
    }
}

/// State tensors created on first use, one per parameter.
struct SlotStore {
    var slots: [Tensor] = []
    mutating func slot(_ index: Int, like g: Tensor) -> Tensor {
        while slots.count <= index { slots.append(Tensor.zeros(g.shape)) }
        return slots[index]
    }
}

/// Stochastic gradient descent; with `momentum` β > 0 the heavy-ball rule, and with
/// `nesterov: true` the seed's look-ahead form (use `step(_:loss:)`, which takes the gradient at ϑ).
public struct SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float
    public var nesterov: Bool
    private var velocity = SlotStore()

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false) {
        precondition(momentum >= 0 && momentum < 1, "SGD: momentum \(momentum) must be in [0, 1)")
        precondition(!nesterov || momentum > 0, "SGD: Nesterov needs momentum > 0")
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
    }

    /// ϑ = θ - β v: where Nesterov's rule evaluates the gradient.
    public func lookAhead<Model: Parameterized>(_ model: Model) -> Model {
        var result = model
        var index = 0
        let beta = momentum
        withoutGradient {
            result.forEachParameter { p in
                if index < velocity.slots.count { p = p - velocity.slots[index] * beta }
                index += 1
            }
        }
        return result
    }

    public mutating func step<Model: Parameterized>(_ model: inout Model, loss: (Model) -> Tensor) -> Tensor {
        let point = nesterov ? lookAhead(model) : model
        let (value, gradient) = valueWithGradient(at: point, of: loss)
        update(&model, along: gradient)
        return value
    }

    public mutating func update<Model: Parameterized>(_ model: inout Model, along gradient: Model) {
        let (alpha, beta) = (learningRate, momentum)
        var velocity = self.velocity
        forEachPair(&model, gradient) { index, parameter, g in
            if beta == 0 { parameter = parameter - g * alpha; return }
            let v = velocity.slot(index, like: g) * beta + g * alpha
            velocity.slots[index] = v
            parameter = parameter - v
        }
        self.velocity = velocity
    }
}

/// AdaGrad (Duchi et al.): each coordinate's step shrinks with its accumulated squared gradients.
public struct AdaGrad: Optimizer {
    public var learningRate: Float
    public var epsilon: Float
    private var accumulated = SlotStore()

    public init(learningRate: Float, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.epsilon = epsilon
    }

    public mutating func update<Model: Parameterized>(_ model: inout Model, along gradient: Model) {
        let (alpha, eps) = (learningRate, epsilon)
        var accumulated = self.accumulated
        forEachPair(&model, gradient) { index, parameter, g in
            let n = accumulated.slot(index, like: g) + g * g
            accumulated.slots[index] = n
            parameter = parameter - g / (n.squareRoot() + eps) * alpha
        }
        self.accumulated = accumulated
    }

    /// The current per-coordinate step sizes α / (√n + ε), in visiting order (for the lesson that
    /// shows them shrinking).
    public var effectiveStepSizes: [Tensor] {
        let (alpha, eps) = (learningRate, epsilon)
        return accumulated.slots.map { n in withoutGradient { alpha / (n.squareRoot() + eps) } }
    }
}

/// RMSProp (Tieleman & Hinton): a decaying average ρ of squared gradients instead of AdaGrad's sum.
public struct RMSProp: Optimizer {
    public var learningRate: Float
    public var rho: Float
    public var epsilon: Float
    private var average = SlotStore()

    public init(learningRate: Float, rho: Float = 0.9, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.rho = rho
        self.epsilon = epsilon
    }

    public mutating func update<Model: Parameterized>(_ model: inout Model, along gradient: Model) {
        let (alpha, rho, eps) = (learningRate, rho, epsilon)
        var average = self.average
        forEachPair(&model, gradient) { index, parameter, g in
            let n = average.slot(index, like: g) * rho + g * g * (1 - rho)
            average.slots[index] = n
            parameter = parameter - g / (n.squareRoot() + eps) * alpha
        }
        self.average = average
    }
}

/// Adam with bias correction (Kingma & Ba); with `weightDecay` λ > 0, AdamW's decoupled decay.
public struct Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float
    public var weightDecay: Float
    /// Steps taken so far (t in the bias corrections).
    public private(set) var stepCount = 0
    private var first = SlotStore(), second = SlotStore()

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// The moments and step count, for checkpoints.
    public struct State {
        public var stepCount: Int
        /// First and second moments, one per parameter in visiting order (empty before the first step).
        public var first: [Tensor], second: [Tensor]
        public init(stepCount: Int, first: [Tensor], second: [Tensor]) { self.stepCount = stepCount; self.first = first; self.second = second }
    }

    public var state: State {
        get { State(stepCount: stepCount, first: first.slots, second: second.slots) }
        set {
            precondition(newValue.first.count == newValue.second.count, "Adam: \(newValue.first.count) first moments but \(newValue.second.count) second")
            stepCount = newValue.stepCount; first.slots = newValue.first; second.slots = newValue.second
        }
    }

    public mutating func update<Model: Parameterized>(_ model: inout Model, along gradient: Model) {
        stepCount += 1
        let (b1, b2, eps, alpha, decay) = (beta1, beta2, epsilon, learningRate, weightDecay)
        let c1 = 1 - Float.power(b1, stepCount), c2 = 1 - Float.power(b2, stepCount)
        // The moments move out of self for the update, so that their storage is uniquely held and written
        // in place (a copy left in self made every step copy both moments of every parameter first).
        var first = SlotStore(), second = SlotStore()
        swap(&first, &self.first); swap(&second, &self.second)
        defer { self.first = first; self.second = second }
        // One fused pass per parameter, in place: decay, both moments, the step.
        let decayFactor = 1 - alpha * decay, stepSize = alpha / c1, inverseC2 = 1 / c2
        forEachPair(&model, gradient) { index, parameter, g in
            _ = first.slot(index, like: g); _ = second.slot(index, like: g)
            g.withUnsafeBufferPointer { gb in
                first.slots[index].withUnsafeMutableBufferPointer { mb in
                    second.slots[index].withUnsafeMutableBufferPointer { vb in
                        parameter.withUnsafeMutableBufferPointer { pb in
                            let gp = UncheckedSendable(gb.baseAddress!), mp = UncheckedSendable(mb.baseAddress!)
                            let vp = UncheckedSendable(vb.baseAddress!), pp = UncheckedSendable(pb.baseAddress!)
                            // In C: Swift's loop stayed 4 SSE lanes wide with a divide and a square root per
                            // 4 values (2.9% of a dpo-small fp32 step); the C loop runs 16 lanes.
                            Parallel.forChunks(gb.count, grain: 1 << 15) { range in
                                let o = range.lowerBound
                                ak_adam_update(pp.value + o, gp.value + o, mp.value + o, vp.value + o, Int64(range.count),
                                               b1, b2, decayFactor, stepSize, inverseC2, eps)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// AdamW: Adam with decoupled weight decay λ (default 0.01, as PyTorch).
public func AdamW(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                  weightDecay: Float = 0.01) -> Adam {
    Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
}

extension Float {
    /// base^exponent for a small non-negative integer exponent.
    static func power(_ base: Float, _ exponent: Int) -> Float {
        var result: Float = 1
        for _ in 0..<exponent { result *= base }
        return result
    }
}

// Learning-rate schedules, gradient clipping by global norm, and gradient accumulation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A learning rate as a function of the step (0-based).
public enum LearningRateSchedule: Sendable, Equatable {
    /// The same rate at every step.
    case constant(Float)
    /// Linear warm-up from 0 to `peak` over `warmupSteps`, then constant.
    case linearWarmup(peak: Float, warmupSteps: Int)
    /// Linear warm-up to `peak`, then cosine decay to `minimum` at `totalSteps`:
    /// lr = min + (peak - min) (1 + cos(π p)) / 2, p = (step - warmup) / (total - warmup).
    case cosine(peak: Float, minimum: Float, warmupSteps: Int, totalSteps: Int)

    /// The rate at `step`.
    public func learningRate(at step: Int) -> Float {
        switch self {
        case .constant(let rate):
            return rate
        case .linearWarmup(let peak, let warmup):
            return warmup > 0 && step < warmup ? peak * Float(step + 1) / Float(warmup) : peak
        case .cosine(let peak, let minimum, let warmup, let total):
            if warmup > 0 && step < warmup { return peak * Float(step + 1) / Float(warmup) }
            let span = max(1, total - warmup)
            let progress = min(1, Float(step - warmup) / Float(span))
            return minimum + (peak - minimum) * 0.5 * (1 + cosf(Float.pi * progress))
        }
    }
}

/// The global L2 norm of all gradient tensors: √(Σ ‖g‖²).
public func globalNorm<Model: Parameterized>(_ gradient: Model) -> Float {
    let total = gradient.parameters.reduce(Double(0)) { sum, g in
        sum + g.scalars.reduce(Double(0)) { $0 + Double($1) * Double($1) }
    }
    return Float(total.squareRoot())
}

/// Scales the gradient so that its global norm is at most `maximumNorm`; returns the norm before
/// clipping (as PyTorch's clip_grad_norm_).
@discardableResult
public func clipByGlobalNorm<Model: Parameterized>(_ gradient: inout Model, maximumNorm: Float) -> Float {
    let norm = globalNorm(gradient)
    if norm > maximumNorm && norm > 0 {
        let scale = maximumNorm / (norm + 1e-6)
        withoutGradient { gradient.forEachParameter { $0 = $0 * scale } }
    }
    return norm
}

/// One guarded optimizer step. When the loss and the gradient's global norm are finite, clips the
/// gradient to `maximumNorm` and applies it; otherwise changes nothing (weights, moments, step count),
/// so a non-finite value never reaches the model or a checkpoint. A finite global norm (summed in
/// Double) means every gradient element is finite. Returns the norm before clipping and whether the
/// step was applied.
public func clipAndApply<Model: Parameterized, O: Optimizer>(_ optimizer: inout O, to model: inout Model, gradient: Model,
                                                           loss: Float, maximumNorm: Float) -> (norm: Float, applied: Bool) {
    var clipped = gradient
    let norm = clipByGlobalNorm(&clipped, maximumNorm: maximumNorm)
    guard loss.isFinite, norm.isFinite else { return (norm, false) }
    optimizer.update(&model, along: clipped)
    return (norm, true)
}

/// Sums gradients over micro-batches, then yields their mean for one optimizer step.
public struct GradientAccumulator<Model: Parameterized> {
    private var sum: [Tensor] = []
    /// Micro-batches added since the last `mean`.
    public private(set) var count = 0

    public init() {}

    /// Adds one micro-batch's gradient.
    public mutating func add(_ gradient: Model) {
        let parts = gradient.parameters
        if sum.isEmpty { sum = parts } else { sum = withoutGradient { zip(sum, parts).map { $0 + $1 } } }
        count += 1
    }

    /// The mean of the added gradients, shaped like `template`, and a reset.
    public mutating func mean(like template: Model) -> Model {
        precondition(count > 0, "GradientAccumulator: no gradients added")
        var result = template
        let scale = 1 / Float(count)
        result.setParameters(withoutGradient { sum.map { $0 * scale } })
        sum = []
        count = 0
        return result
    }
}

// Finite-difference gradient checking for Float32 tensors.
//
// The loss is L(x) = Σ f(x) ⊙ r with a fixed random cotangent r, accumulated in Float64 from
// the Float32 outputs. Central differences with step h = 1e-2 have truncation error
// h²/6 · |L'''| ≈ 2e-5 · |L'''| and rounding error about ε₃₂ · |L| · √n / h ≈ 1e-5 for our sizes,
// so a gradient entry is accepted when |numeric - analytic| ≤ 2e-3 · (1 + |numeric|): two orders
// of magnitude above both errors, and far below the size of any wrong derivative we would make
// (a missing factor or sign is an O(1) relative error).
import AlignKitTensor

public struct GradientCheckFailure: CustomStringConvertible, Sendable {
    public let input: Int, index: Int, numeric: Double, analytic: Double
    public var description: String { "input \(input) element \(index): numeric \(numeric), analytic \(analytic)" }
}

/// Returns the mismatches between analytic and numeric gradients of `f` at `inputs`.
public func gradientMismatches(_ inputs: [Tensor], step h: Float = 1e-2, tolerance: Double = 2e-3,
                        _ f: ([Tensor]) -> Tensor) -> [GradientCheckFailure] {
    let output = withoutGradient { f(inputs) }
    let cotangent = Tensor(randomUniform: output.shape, lowerBound: -1, upperBound: 1, seed: 99)
    let r = cotangent.scalars.map(Double.init)
    func loss(_ xs: [Tensor]) -> Double {
        let y = withoutGradient { f(xs) }.scalars
        var total = 0.0
        for (a, b) in zip(y, r) { total += Double(a) * b }
        return total
    }
    let analytic = gradient(at: inputs) { xs in (f(xs) * cotangent).sum() }
    var failures: [GradientCheckFailure] = []
    for (which, input) in inputs.enumerated() {
        let grad = analytic[which].scalars
        for i in 0..<input.scalarCount {
            var plus = inputs, minus = inputs
            plus[which].withUnsafeMutableBufferPointer { $0[i] += h }
            minus[which].withUnsafeMutableBufferPointer { $0[i] -= h }
            let numeric = (loss(plus) - loss(minus)) / Double(2 * h)
            let a = Double(grad[i])
            if abs(numeric - a) > tolerance * (1 + abs(numeric)) {
                failures.append(GradientCheckFailure(input: which, index: i, numeric: numeric, analytic: a))
            }
        }
    }
    return failures
}

/// How test inputs are drawn.
public enum InputKind: Sendable {
    /// Uniform in [-2, 2].
    case any
    /// Uniform in [0.5, 2] (log, sqrt, division, powers).
    case positive
    /// Distinct values spaced 0.1 apart, shuffled: no ties for max, no kinks near a perturbation
    /// of h = 0.01 (relu, abs, clamp, max, pooling).
    case distinct
}

public func makeInput(_ shape: [Int], _ kind: InputKind, seed: UInt64) -> Tensor {
    switch kind {
    case .any: return Tensor(randomUniform: shape, lowerBound: -2, upperBound: 2, seed: seed)
    case .positive: return Tensor(randomUniform: shape, lowerBound: 0.5, upperBound: 2, seed: seed)
    case .distinct:
        let count = shape.reduce(1, *)
        var generator = RandomGenerator(seed: seed)
        var values = (0..<count).map { Float($0) * 0.1 - Float(count) * 0.05 + 0.05 }
        values.shuffle(using: &generator)
        return Tensor(values, shape: shape)
    }
}

/// The mismatches for every parameter of `model` (see `gradientMismatches(_:step:tolerance:_:)`).
public func gradientMismatches<Model: Parameterized>(model: Model, step h: Float = 1e-2, tolerance: Double = 2e-3,
                                                     _ f: (Model) -> Tensor) -> [GradientCheckFailure] {
    gradientMismatches(model.parameters, step: h, tolerance: tolerance) { parameters in
        var copy = model
        copy.setParameters(parameters)
        return f(copy)
    }
}

import Foundation

/// Tests that change process-wide kernel settings (`GEMM.path`, `Parallel.threadCount`) and tests that
/// need bit-for-bit repeatable numerics both run inside this lock, since Swift Testing runs suites
/// concurrently in one process.
private let kernelSettingsLock = NSLock()
public func withKernelSettingsLock<R>(_ body: () throws -> R) rethrows -> R {
    kernelSettingsLock.lock()
    defer { kernelSettingsLock.unlock() }
    return try body()
}

/// ‖a − b‖∞ / ‖b‖∞.
public func relativeDifference(_ a: Tensor, _ b: Tensor) -> Float {
    let x = a.scalars, y = b.scalars
    let scale = y.map(abs).max() ?? 0
    return zip(x, y).map { abs($0 - $1) }.max()! / max(scale, .leastNormalMagnitude)
}

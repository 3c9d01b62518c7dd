// Normalization layers.
//   LayerNorm (Ba et al.):  y = (x - μ) / √(σ² + ε) · γ + β over the last axis
//   RMSNorm (Zhang & Sennrich): y = x / √(mean(x²) + ε) · γ
//   BatchNorm (Ioffe & Szegedy): per channel over the batch (and space); running averages for inference
//   Weight norm (Salimans & Kingma): w = g · v / ‖v‖ per output unit

/// LayerNorm or RMSNorm over the last axis, with a learned scale γ (and offset β for LayerNorm).
public struct Norm: Layer {
    public enum Kind: String, Sendable, Codable { case layer, rms }
    public let kind: Kind
    public var scale: Tensor
    public var offset: Tensor?
    public let epsilon: Float

    public init(kind: Kind, size: Int, epsilon: Float = 1e-5, useOffset: Bool? = nil) {
        self.kind = kind
        self.epsilon = epsilon
        scale = Tensor.ones([size])
        offset = (useOffset ?? (kind == .layer)) ? Tensor.zeros([size]) : nil
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(joinName(prefix, "weight"), &scale)
        if offset != nil { try body(joinName(prefix, "bias"), &offset!) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == scale.shape[0], "\(kind)Norm: last axis of \(x.shape) must be \(scale.shape[0])")
        switch kind {
        case .layer: return x.layerNormalized(scale: scale, offset: offset, epsilon: epsilon)
        case .rms:
            let y = x.rmsNormalized(scale: scale, epsilon: epsilon)
            return offset.map { y + $0 } ?? y
        }
    }
}

/// LayerNorm over the last axis of size `size`.
public func LayerNorm(_ size: Int, epsilon: Float = 1e-5, useBias: Bool = true) -> Norm {
    Norm(kind: .layer, size: size, epsilon: epsilon, useOffset: useBias)
}

/// RMSNorm over the last axis of size `size`.
public func RMSNorm(_ size: Int, epsilon: Float = 1e-6) -> Norm { Norm(kind: .rms, size: size, epsilon: epsilon) }

/// Running statistics of BatchNorm, shared by copies of the layer (they describe the data seen).
/// @unchecked Sendable: updated only in a training forward pass, on one thread at a time.
public final class RunningStatistics: @unchecked Sendable {
    public var mean: Tensor
    public var variance: Tensor
    init(size: Int) { mean = Tensor.zeros([size]); variance = Tensor.ones([size]) }
}

/// BatchNorm over channel axis 1 of [N, C] or [N, C, H, W]. Training: batch statistics, and the
/// running averages move by `momentum` (unbiased variance, as PyTorch). Inference: running averages.
public struct BatchNorm: Layer {
    public var scale: Tensor, offset: Tensor
    public let momentum: Float, epsilon: Float
    public let running: RunningStatistics

    public init(channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        scale = Tensor.ones([channels]); offset = Tensor.zeros([channels])
        self.momentum = momentum; self.epsilon = epsilon
        running = RunningStatistics(size: channels)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(joinName(prefix, "weight"), &scale)
        try body(joinName(prefix, "bias"), &offset)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2 || x.rank == 4, "BatchNorm: input \(x.shape) must be [N, C] or [N, C, H, W]")
        let c = scale.shape[0]
        precondition(x.shape[1] == c, "BatchNorm: input \(x.shape) must have \(c) channels on axis 1")
        let axes = x.rank == 2 ? [0] : [0, 2, 3]
        let broadcastShape = x.rank == 2 ? [1, c] : [1, c, 1, 1]
        let mean: Tensor, variance: Tensor
        if LearningPhase.current == .training {
            mean = x.mean(alongAxes: axes)
            variance = (x - mean).raised(toPower: 2).mean(alongAxes: axes)
            let n = Float(axes.reduce(1) { $0 * x.shape[$1] })
            withoutGradient {
                running.mean = running.mean * (1 - momentum) + mean.reshaped(to: [c]).detached() * momentum
                let unbiased = variance.reshaped(to: [c]).detached() * (n / Swift.max(n - 1, 1))
                running.variance = running.variance * (1 - momentum) + unbiased * momentum
            }
        } else {
            mean = running.mean.reshaped(to: broadcastShape)
            variance = running.variance.reshaped(to: broadcastShape)
        }
        let normalized = (x - mean) / (variance + epsilon).squareRoot()
        return normalized * scale.reshaped(to: broadcastShape) + offset.reshaped(to: broadcastShape)
    }
}

/// A linear layer with weight normalization: W[:, j] = g[j] · v[:, j] / ‖v[:, j]‖.
public struct WeightNormLinear: Layer {
    public var direction: Tensor  // v [in, out]
    public var magnitude: Tensor  // g [out]
    public var bias: Tensor

    public init(inputSize: Int, outputSize: Int, generator: inout RandomGenerator) {
        let v = Initializer.xavierUniform.tensor([inputSize, outputSize], generator: &generator)
        direction = v
        magnitude = v.raised(toPower: 2).sum(squeezingAxes: [0]).squareRoot()  // W starts equal to v
        bias = Tensor.zeros([outputSize])
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(joinName(prefix, "weight_v"), &direction)
        try body(joinName(prefix, "weight_g"), &magnitude)
        try body(joinName(prefix, "bias"), &bias)
    }

    /// The effective weight W [in, out].
    public var weight: Tensor { direction * (magnitude / direction.raised(toPower: 2).sum(alongAxes: [0]).squareRoot()) }

    public func callAsFunction(_ input: Tensor) -> Tensor { linear(input, weight, bias: bias) }
}

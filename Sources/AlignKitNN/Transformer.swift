// The transformer block, pre-norm (GPT-2, Llama) or post-norm (the original transformer), and its
// feed-forward network with GELU or SwiGLU (Shazeer, "GLU Variants Improve Transformer").
//   pre-norm:  x = x + Attn(Norm₁(x));  x = x + FFN(Norm₂(x))
//   post-norm: x = Norm₁(x + Attn(x));  x = Norm₂(x + FFN(x))

/// The position-wise feed-forward network.
public struct FeedForward: Layer {
    public enum Kind: String, Sendable, Codable { case gelu, geluTanh, swiglu }
    public let kind: Kind
    public var up: Linear, down: Linear
    public var gate: Linear?

    public init(modelSize: Int, hiddenSize: Int, kind: Kind, useBias: Bool = true, generator: inout RandomGenerator) {
        let up = Linear(inputSize: modelSize, outputSize: hiddenSize, useBias: useBias, generator: &generator)
        let gate = kind == .swiglu ? Linear(inputSize: modelSize, outputSize: hiddenSize, useBias: useBias, generator: &generator) : nil
        self.init(kind: kind, up: up, down: Linear(inputSize: hiddenSize, outputSize: modelSize, useBias: useBias, generator: &generator), gate: gate)
    }

    /// The network from its layers; `gate` is required for SwiGLU and absent otherwise.
    public init(kind: Kind, up: Linear, down: Linear, gate: Linear? = nil) {
        precondition((kind == .swiglu) == (gate != nil), "FeedForward: \(kind) \(kind == .swiglu ? "needs" : "has no") gate")
        self.kind = kind
        self.up = up
        self.down = down
        self.gate = gate
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        if gate != nil { try gate!.forEachNamedParameter(prefix: joinName(prefix, "gate_proj"), body) }
        try up.forEachNamedParameter(prefix: joinName(prefix, "up_proj"), body)
        try down.forEachNamedParameter(prefix: joinName(prefix, "down_proj"), body)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch kind {
        case .gelu: down(up(x).gelu())
        case .geluTanh: down(up(x).geluTanh())
        case .swiglu: down(Tensor.swiglu(gate!(x), up(x)))  // W₂ (SiLU(W_g x) ⊙ W_u x)
        }
    }
}

/// One transformer block over [B, T, C].
public struct TransformerBlock: Layer {
    public var attention: MultiHeadAttention
    public var feedForward: FeedForward
    public var norm1: Norm, norm2: Norm
    public let preNorm: Bool

    public init(attention: MultiHeadAttention, feedForward: FeedForward, norm: Norm.Kind = .layer, normEpsilon: Float = 1e-5,
                preNorm: Bool = true) {
        let size = attention.output.weight.shape[1]
        self.attention = attention
        self.feedForward = feedForward
        norm1 = Norm(kind: norm, size: size, epsilon: normEpsilon)
        norm2 = Norm(kind: norm, size: size, epsilon: normEpsilon)
        self.preNorm = preNorm
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try norm1.forEachNamedParameter(prefix: joinName(prefix, "norm1"), body)
        try attention.forEachNamedParameter(prefix: joinName(prefix, "attention"), body)
        try norm2.forEachNamedParameter(prefix: joinName(prefix, "norm2"), body)
        try feedForward.forEachNamedParameter(prefix: joinName(prefix, "mlp"), body)
    }

    /// The block over x [B, T, C]; with a cache, x holds the positions after the cached ones.
    public func callAsFunction(_ x: Tensor, cache: AttentionCache?) -> Tensor {
        residual(x) { attention($0, cache: cache) }
    }

    /// The block over rows packed by `layout` (x [R, C]; see `SharedPrefixLayout`).
    /// With `keeping`, the block's output for those rows only ([rows.count, C], in that order, repeats
    /// allowed): all rows' keys and values, then the output projection, residual, norm and feed-forward of
    /// the kept rows alone (a last layer whose other rows nothing reads).
    public func callAsFunction(_ x: Tensor, layout: SharedPrefixLayout, keeping rows: [Int]? = nil) -> Tensor {
        residual(x, keeping: rows) { attention($0, layout: layout, keeping: rows) }
    }

    /// The block around `attend` (which returns the kept rows when `rows` is given).
    func residual(_ x: Tensor, keeping rows: [Int]? = nil, _ attend: (Tensor) -> Tensor) -> Tensor {
        let skip = rows.map { x.gathering(atIndices: $0) } ?? x
        if preNorm {
            let h = skip + attend(norm1(x))
            return h + feedForward(norm2(h))
        }
        let h = norm1(skip + attend(x))
        return norm2(h + feedForward(h))
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { self(x, cache: nil) }
}

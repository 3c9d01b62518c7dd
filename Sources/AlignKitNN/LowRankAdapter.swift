// LoRA (Hu et al. 2021): a frozen weight W [in, out] plus a trainable low-rank update,
//
//   y = x W + b + (α / r) · dropout(x) A B,    A [in, r], B [r, out]
//
// A starts uniform in ±1/√in (PEFT's Kaiming-uniform with a = √5) and B at zero, so an adapted layer
// starts as the base layer. Merging folds the update into the weight: W ← W + (α / r) A B.

public struct LowRankAdapter: NamedParameters {
    /// [in, r]
    public var a: Tensor
    /// [r, out]
    public var b: Tensor
    public let rank: Int
    public let alpha: Float
    public let dropout: Dropout?

    public var scale: Float { alpha / Float(rank) }

    /// A fresh adapter for a layer of `inputSize` → `outputSize`.
    public init(inputSize: Int, outputSize: Int, rank: Int, alpha: Float, dropout: Float = 0, generator: inout RandomGenerator) {
        precondition(rank > 0, "LowRankAdapter: rank \(rank) must be positive")
        let bound = 1 / Float(inputSize).squareRoot()
        a = Tensor(randomUniform: [inputSize, rank], lowerBound: -bound, upperBound: bound, generator: &generator)
        b = Tensor.zeros([rank, outputSize])
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout > 0 ? Dropout(probability: dropout, seed: generator.next()) : nil
    }

    /// An adapter with given factors (a loaded one).
    public init(a: Tensor, b: Tensor, alpha: Float, dropout: Float = 0, seed: UInt64 = 0) {
        precondition(a.rank == 2 && b.rank == 2 && a.shape[1] == b.shape[0], "LowRankAdapter: factors \(a.shape) and \(b.shape) do not chain")
        self.a = a
        self.b = b
        rank = a.shape[1]
        self.alpha = alpha
        self.dropout = dropout > 0 ? Dropout(probability: dropout, seed: seed) : nil
    }

    /// PEFT's names: `lora_A.weight`, `lora_B.weight` under the adapted layer's name.
    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(joinName(prefix, "lora_A.weight"), &a)
        try body(joinName(prefix, "lora_B.weight"), &b)
    }

    /// (α / r) · dropout(x) A B. Dropout acts only while gradients are recorded (training steps), never
    /// in sampling or evaluation.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let input = GradientRecording.isEnabled ? dropout.map { $0(x) } ?? x : x
        return scale * matmul(matmul(input, a), b)
    }

    /// The update (α / r) A B [in, out].
    public var delta: Tensor { scale * matmul(a, b) }
}

extension Linear {
    /// This layer with its adapter folded into the weight (and no adapter).
    public func merged() -> Linear {
        guard let adapter else { return self }
        return Linear(weight: withoutGradient { weight + adapter.delta }, bias: bias)
    }
}

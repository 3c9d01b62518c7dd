// One decoder-only transformer for the GPT-2 family and the Llama family, chosen by its configuration.
//
//   GPT-2 (Radford et al. 2019): learned positions, LayerNorm, GELU (tanh form), biases, tied head.
//   Llama (Touvron et al. 2023): rotary positions, RMSNorm, SwiGLU, grouped-query attention, no biases,
//                                optionally an untied head.
//
//   h₀ = E[tokens] (+ P[positions]);  hₗ = Blockₗ(hₗ₋₁) (pre-norm);  logits = Norm(h_L) Wᵀ
// where W is E when the head is tied.
import AlignKitNN
import AlignKitTensor

/// The shape and family of a `GPT`.
public struct GPTConfiguration: Codable, Equatable, Sendable {
    public enum Architecture: String, Codable, Sendable, CaseIterable { case gpt2, llama }

    public var architecture: Architecture
    public var vocabularySize: Int
    /// The longest sequence (GPT-2's learned position table has this many rows).
    public var contextLength: Int
    public var modelSize: Int
    public var layerCount: Int
    public var headCount: Int
    /// Key/value heads (Llama's grouped-query attention); equal to `headCount` for GPT-2.
    public var kvHeadCount: Int
    /// The feed-forward network's inner size.
    public var hiddenSize: Int
    public var normEpsilon: Float
    /// Rotary base θ (Llama).
    public var ropeTheta: Float
    /// Whether the output head reuses the token embedding.
    public var tiedEmbeddings: Bool

    public var headSize: Int { modelSize / headCount }

    public init(architecture: Architecture, vocabularySize: Int, contextLength: Int, modelSize: Int, layerCount: Int,
                headCount: Int, kvHeadCount: Int? = nil, hiddenSize: Int? = nil, normEpsilon: Float? = nil,
                ropeTheta: Float = 10000, tiedEmbeddings: Bool? = nil) {
        self.architecture = architecture
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        self.modelSize = modelSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount ?? headCount
        self.hiddenSize = hiddenSize ?? (architecture == .gpt2 ? 4 * modelSize : Self.llamaHiddenSize(modelSize))
        self.normEpsilon = normEpsilon ?? (architecture == .gpt2 ? 1e-5 : 1e-6)
        self.ropeTheta = ropeTheta
        self.tiedEmbeddings = tiedEmbeddings ?? (architecture == .gpt2)
    }

    /// Llama's rule: 2/3 of 4C, rounded up to a multiple of 64 (parameters as a GELU network of 4C).
    static func llamaHiddenSize(_ c: Int) -> Int { ((8 * c / 3) + 63) / 64 * 64 }

    /// Checks the sizes fit together; the message names the field.
    public func validate() throws(ConfigurationError) {
        for (name, value) in [("vocabularySize", vocabularySize), ("contextLength", contextLength), ("modelSize", modelSize),
                              ("layerCount", layerCount), ("headCount", headCount), ("kvHeadCount", kvHeadCount), ("hiddenSize", hiddenSize)]
        where value <= 0 { throw ConfigurationError("\(name) is \(value); it must be positive") }
        // Bounds far above any model this CPU library trains, low enough that no size product overflows.
        for (name, value, limit) in [("vocabularySize", vocabularySize, 1 << 24), ("contextLength", contextLength, 1 << 24),
                                     ("modelSize", modelSize, 1 << 16), ("layerCount", layerCount, 1 << 10), ("headCount", headCount, 1 << 12),
                                     ("hiddenSize", hiddenSize, 1 << 18)]
        where value > limit { throw ConfigurationError("\(name) is \(value); AlignKit allows at most \(limit)") }
        if modelSize % headCount != 0 { throw ConfigurationError("modelSize \(modelSize) is not a multiple of headCount \(headCount)") }
        if headCount % kvHeadCount != 0 { throw ConfigurationError("headCount \(headCount) is not a multiple of kvHeadCount \(kvHeadCount)") }
        if architecture == .gpt2 && kvHeadCount != headCount { throw ConfigurationError("GPT-2 has one key/value head per query head") }
        if architecture == .llama && headSize % 2 != 0 { throw ConfigurationError("rotary positions need an even head size, not \(headSize)") }
    }

    /// Parameters, counting a tied head once.
    public var parameterCount: Int {
        let c = modelSize, d = headSize
        let attention = c * headCount * d * 2 + c * kvHeadCount * d * 2
        let ffn = architecture == .gpt2 ? 2 * c * hiddenSize + hiddenSize + c : 3 * c * hiddenSize
        let norms = architecture == .gpt2 ? 4 * c : 2 * c
        let biases = architecture == .gpt2 ? 3 * c + c : 0
        var total = layerCount * (attention + ffn + norms + biases)
        total += vocabularySize * c + (architecture == .gpt2 ? contextLength * c + 2 * c : c)
        if !tiedEmbeddings { total += vocabularySize * c }
        return total
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A decoder-only language model.
public struct GPT: NamedParameters {
    public let configuration: GPTConfiguration
    public var tokenEmbedding: Embedding
    /// Learned positions (GPT-2 only).
    public var positionEmbedding: Embedding?
    public var blocks: [TransformerBlock]
    public var finalNorm: Norm
    /// The output head when it is not tied: weight [C, V], no bias.
    public var head: Linear?
    /// LoRA fine-tuning: only the adapters are parameters (the base weights are frozen); see LoRA.swift.
    public internal(set) var trainsAdaptersOnly = false

    /// A randomly initialized model: weights N(0, 0.02), the two residual projections of each block
    /// N(0, 0.02/√(2L)) (GPT-2's scaling), biases zero, norm scales one.
    public init(configuration: GPTConfiguration, seed: UInt64 = 0) {
        var generator = RandomGenerator(seed: seed)
        self.init(configuration: configuration) { shape, std in Tensor(randomNormal: shape, standardDeviation: std, generator: &generator) }
    }

    /// A model whose weight matrices come from `weight(shape, standard deviation)`; a checkpoint
    /// loader passes zeros, since every parameter is then replaced.
    init(configuration c: GPTConfiguration, weight: (_ shape: [Int], _ standardDeviation: Float) -> Tensor) {
        do { try c.validate() } catch { preconditionFailure("GPT: \(error.message)") }
        configuration = c
        let std: Float = 0.02, residualStd = 0.02 / Float(2 * c.layerCount).squareRoot()
        let gpt2 = c.architecture == .gpt2
        func linear(_ i: Int, _ o: Int, _ s: Float = std) -> Linear {
            Linear(weight: weight([i, o], s), bias: gpt2 ? Tensor.zeros([o]) : nil)
        }
        tokenEmbedding = Embedding(table: weight([c.vocabularySize, c.modelSize], std))
        positionEmbedding = gpt2 ? Embedding(table: weight([c.contextLength, c.modelSize], std)) : nil
        let rotary = gpt2 ? nil : RotaryEmbedding(dimension: c.headSize, maximumLength: c.contextLength, base: c.ropeTheta)
        blocks = (0..<c.layerCount).map { _ in
            let attention = MultiHeadAttention(
                query: linear(c.modelSize, c.headCount * c.headSize), key: linear(c.modelSize, c.kvHeadCount * c.headSize),
                value: linear(c.modelSize, c.kvHeadCount * c.headSize), output: linear(c.headCount * c.headSize, c.modelSize, residualStd),
                headCount: c.headCount, kvHeadCount: c.kvHeadCount, rotary: rotary)
            let ffn = FeedForward(kind: gpt2 ? .geluTanh : .swiglu, up: linear(c.modelSize, c.hiddenSize),
                                  down: linear(c.hiddenSize, c.modelSize, residualStd), gate: gpt2 ? nil : linear(c.modelSize, c.hiddenSize))
            return TransformerBlock(attention: attention, feedForward: ffn, norm: gpt2 ? .layer : .rms, normEpsilon: c.normEpsilon, preNorm: true)
        }
        finalNorm = Norm(kind: gpt2 ? .layer : .rms, size: c.modelSize, epsilon: c.normEpsilon)
        head = c.tiedEmbeddings ? nil : Linear(weight: weight([c.modelSize, c.vocabularySize], std), bias: nil)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        if trainsAdaptersOnly {
            try forEachProjection { name, layer in
                if layer.adapter != nil { try layer.adapter!.forEachNamedParameter(prefix: joinName(prefix, name), body) }
            }
            return
        }
        try tokenEmbedding.forEachNamedParameter(prefix: joinName(prefix, "embed"), body)
        if positionEmbedding != nil { try positionEmbedding!.forEachNamedParameter(prefix: joinName(prefix, "positions"), body) }
        try blocks.forEachNamedParameter(prefix: joinName(prefix, "blocks"), body)
        try finalNorm.forEachNamedParameter(prefix: joinName(prefix, "norm"), body)
        if head != nil { try head!.forEachNamedParameter(prefix: joinName(prefix, "head"), body) }
    }

    /// A fresh cache for incremental decoding (one per sequence batch).
    public func makeCache() -> GPTCache { GPTCache(layers: blocks.map { _ in AttentionCache() }) }

    /// The final hidden states [B, T, C] for `tokens` (B·T ids, row-major); with a cache, the tokens
    /// follow the cached positions and the cache grows by T.
    public func hiddenStates(_ tokens: [Int], batch: Int, cache: GPTCache? = nil) -> Tensor {
        precondition(batch > 0 && tokens.count % batch == 0, "GPT: \(tokens.count) tokens do not split into \(batch) rows")
        let t = tokens.count / batch
        let offset = cache?.length ?? 0
        precondition(offset + t <= configuration.contextLength,
                     "GPT: positions up to \(offset + t) exceed the context length \(configuration.contextLength)")
        for id in tokens {
            precondition(id >= 0 && id < configuration.vocabularySize, "GPT: token id \(id) is outside the vocabulary of \(configuration.vocabularySize)")
        }
        var h = tokenEmbedding(tokens, shape: [batch, t])
        if let positionEmbedding { h = h + positionEmbedding.table.slice(alongAxis: 0, range: offset..<(offset + t)) }
        for (l, block) in blocks.enumerated() { h = block(h, cache: cache?.layers[l]) }
        cache?.length = offset + t
        return finalNorm(h)
    }

    /// The final hidden states [R, C] of sequences packed by `layout` (one token per packed row), each
    /// shared prefix computed once (see `SharedPrefixLayout`). With `keeping`, only those rows' states
    /// ([rows.count, C], in that order): the last block then runs its projection, feed-forward and norms on
    /// them alone (the same values as gathering them from all rows).
    public func hiddenStates(_ tokens: [Int], layout: SharedPrefixLayout, keeping rows: [Int]? = nil) -> Tensor {
        precondition(tokens.count == layout.rowCount, "GPT: \(tokens.count) tokens for a layout of \(layout.rowCount) rows")
        for id in tokens {
            precondition(id >= 0 && id < configuration.vocabularySize, "GPT: token id \(id) is outside the vocabulary of \(configuration.vocabularySize)")
        }
        let positions = layout.positions
        precondition(positions.allSatisfy { $0 < configuration.contextLength },
                     "GPT: positions up to \(positions.max() ?? 0) exceed the context length \(configuration.contextLength)")
        var h = tokenEmbedding(tokens)
        if let positionEmbedding { h = h + positionEmbedding(positions) }
        for (l, block) in blocks.enumerated() { h = block(h, layout: layout, keeping: l == blocks.count - 1 ? rows : nil) }
        if blocks.isEmpty, let rows { h = h.gathering(atIndices: rows) }
        return finalNorm(h)
    }

    /// Logits [B, T, V] from hidden states [B, T, C].
    public func logits(fromHidden h: Tensor) -> Tensor {
        if let head { return head(h) }
        return matmul(h, tokenEmbedding.table, transposeB: true)
    }

    /// Logits [B, T, V] for `tokens` (B·T ids, row-major).
    public func logits(_ tokens: [Int], batch: Int = 1, cache: GPTCache? = nil) -> Tensor {
        logits(fromHidden: hiddenStates(tokens, batch: batch, cache: cache))
    }

    /// The logits [B, V] of each row's last position: what sampling needs (a 64-token prompt's other 63
    /// positions would each cost a vocabulary-wide product).
    public func nextTokenLogits(_ tokens: [Int], batch: Int = 1, cache: GPTCache? = nil) -> Tensor {
        precondition(!tokens.isEmpty, "GPT.nextTokenLogits: no tokens to continue from")
        let h = hiddenStates(tokens, batch: batch, cache: cache)
        let t = h.shape[1]
        let last = t == 1 ? h : h.slice(alongAxis: 1, range: (t - 1)..<t)
        return logits(fromHidden: last).reshaped(to: [batch, configuration.vocabularySize])
    }

    /// The mean next-token cross-entropy of `tokens` [B, T+1] (inputs are the first T of each row,
    /// targets the last T).
    public func loss(_ tokens: [Int], batch: Int) -> Tensor {
        let width = tokens.count / batch
        var inputs: [Int] = [], targets: [Int] = []
        inputs.reserveCapacity(batch * (width - 1)); targets.reserveCapacity(batch * (width - 1))
        for b in 0..<batch {
            inputs += tokens[(b * width)..<(b * width + width - 1)]
            targets += tokens[(b * width + 1)..<(b * width + width)]
        }
        let l = logits(inputs, batch: batch)
        return crossEntropy(logits: l.reshaped(to: [-1, configuration.vocabularySize]), labels: targets)
    }
}

/// The per-layer key/value caches of one batch of sequences.
public final class GPTCache: @unchecked Sendable {
    public let layers: [AttentionCache]
    /// Positions held.
    public internal(set) var length = 0
    init(layers: [AttentionCache]) { self.layers = layers }
}

// Multi-head scaled dot-product attention (Vaswani et al.) with grouped key/value heads:
// kvHeadCount == headCount is MHA, 1 is MQA (Shazeer), anything between is GQA (Ainslie et al.).
// Legend: B batch, T time, C channels, H query heads, K key/value heads, D head size.
//   attention(Q, K, V) = softmax(Q Kᵀ / √D + causal mask) V

/// Multi-head attention over x [B, T, C] → [B, T, C].
public struct MultiHeadAttention: Layer {
    public var query: Linear, key: Linear, value: Linear, output: Linear
    public let headCount: Int, kvHeadCount: Int, headSize: Int
    public let isCausal: Bool
    public let rotary: RotaryEmbedding?

    public init(modelSize: Int, headCount: Int, kvHeadCount: Int? = nil, isCausal: Bool = true, useBias: Bool = true,
                rotary: RotaryEmbedding? = nil, generator: inout RandomGenerator) {
        let kv = kvHeadCount ?? headCount
        precondition(modelSize % headCount == 0, "MultiHeadAttention: modelSize \(modelSize) must divide by headCount \(headCount)")
        precondition(kv >= 1 && headCount % kv == 0, "MultiHeadAttention: headCount \(headCount) must be a multiple of kvHeadCount \(kv)")
        let d = modelSize / headCount
        self.init(query: Linear(inputSize: modelSize, outputSize: headCount * d, useBias: useBias, generator: &generator),
                  key: Linear(inputSize: modelSize, outputSize: kv * d, useBias: useBias, generator: &generator),
                  value: Linear(inputSize: modelSize, outputSize: kv * d, useBias: useBias, generator: &generator),
                  output: Linear(inputSize: headCount * d, outputSize: modelSize, useBias: useBias, generator: &generator),
                  headCount: headCount, kvHeadCount: kv, isCausal: isCausal, rotary: rotary)
    }

    /// Attention from its four projections (query [C, H·D], key and value [C, K·D], output [H·D, C]).
    public init(query: Linear, key: Linear, value: Linear, output: Linear, headCount: Int, kvHeadCount: Int,
                isCausal: Bool = true, rotary: RotaryEmbedding? = nil) {
        let d = query.weight.shape[1] / headCount
        precondition(d * headCount == query.weight.shape[1] && key.weight.shape[1] == kvHeadCount * d && value.weight.shape == key.weight.shape,
                     "MultiHeadAttention: projections \(query.weight.shape), \(key.weight.shape), \(value.weight.shape) do not fit \(headCount) heads and \(kvHeadCount) key/value heads")
        precondition(headCount % kvHeadCount == 0, "MultiHeadAttention: headCount \(headCount) must be a multiple of kvHeadCount \(kvHeadCount)")
        self.query = query; self.key = key; self.value = value; self.output = output
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headSize = d
        self.isCausal = isCausal
        self.rotary = rotary
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try query.forEachNamedParameter(prefix: joinName(prefix, "q_proj"), body)
        try key.forEachNamedParameter(prefix: joinName(prefix, "k_proj"), body)
        try value.forEachNamedParameter(prefix: joinName(prefix, "v_proj"), body)
        try output.forEachNamedParameter(prefix: joinName(prefix, "o_proj"), body)
    }

    /// Floats a KV cache holds per token and layer: 2 (keys and values) · K · D.
    public var kvCacheFloatsPerToken: Int { 2 * kvHeadCount * headSize }

    /// [B, T, heads·D] → [B, heads, T, D]
    func splitHeads(_ x: Tensor, heads: Int) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        return x.reshaped(to: [b, t, heads, headSize]).transposed(permutation: [0, 2, 1, 3])
    }

    /// [B, K, T, D] → [B, H, T, D], each key/value head serving H/K query heads.
    func repeatKV(_ x: Tensor) -> Tensor {
        let groups = headCount / kvHeadCount
        if groups == 1 { return x }
        let (b, t) = (x.shape[0], x.shape[2])
        return x.expandingShape(at: 2).expanded(to: [b, kvHeadCount, groups, t, headSize]).reshaped(to: [b, headCount, t, headSize])
    }

    /// The attention probabilities [B, H, T, T] (each row sums to 1; zero above the diagonal when causal).
    public func attentionWeights(_ x: Tensor) -> Tensor {
        let (q, k, _) = projections(x)
        return scores(q, k).softmax()
    }

    /// Whether x·[Wq | Wk | Wv] (+ [bq | bk | bv]) gives the three projections: no adapters, and biases on all
    /// three or none. Each column's sum runs in the same order either way, so the values are the same.
    var projectionsFuse: Bool {
        query.adapter == nil && key.adapter == nil && value.adapter == nil
            && (query.bias == nil) == (key.bias == nil) && (key.bias == nil) == (value.bias == nil)
    }

    /// The query, key and value projections of x [B, T, C] while decoding. In fp32, one product against
    /// [Wq | Wk | Wv], joined once per cache: a token's products are bound by reading the weights, and the
    /// three 384 x 384 products of a small model ran at 12 GB/s against 18-22 for the wider ones. (Under
    /// bf16 each projection reads the weight's own bf16 copy, see `GEMM.withBF16Copies`.)
    func decodingProjections(_ x: Tensor, cache: AttentionCache) -> (Tensor, Tensor, Tensor) {
        guard GEMM.precision == .fp32, projectionsFuse else { return (query(x), key(x), value(x)) }
        let joined = cache.joinedProjections {
            (concatenate([query.weight, key.weight, value.weight], alongAxis: 1),
             query.bias.map { concatenate([$0, key.bias!, value.bias!], alongAxis: 0) })
        }
        let y = linear(x, joined.weight, bias: joined.bias)
        let (hq, hk) = (headCount * headSize, kvHeadCount * headSize)
        return (y.slice(alongAxis: 2, range: 0..<hq), y.slice(alongAxis: 2, range: hq..<(hq + hk)),
                y.slice(alongAxis: 2, range: (hq + hk)..<(hq + 2 * hk)))
    }

    func projections(_ x: Tensor, cache: AttentionCache? = nil) -> (Tensor, Tensor, Tensor) {
        precondition(x.rank == 3, "MultiHeadAttention: input \(x.shape) must be [B, T, C]")
        let offset = cache?.length ?? 0
        var q = splitHeads(query(x), heads: headCount)     // [B, H, T, D]
        var k = splitHeads(key(x), heads: kvHeadCount)     // [B, K, T, D]
        var v = splitHeads(value(x), heads: kvHeadCount)   // [B, K, T, D]
        if let rotary { q = rotary(q, offset: offset); k = rotary(k, offset: offset) }
        if let cache {
            cache.append(keys: k, values: v)
            k = cache.keys!; v = cache.values!
        }
        return (q, repeatKV(k), repeatKV(v))
    }

    func scores(_ q: Tensor, _ k: Tensor) -> Tensor {
        let s = matmul(q, k, transposeB: true) * (1 / Float(headSize).squareRoot())  // [B, H, T, T]
        return isCausal ? s.causallyMasked() : s
    }

    /// Attention over x [B, T, C]; with a cache, x holds the next T positions after the cached ones,
    /// whose keys and values are appended to the cache.
    public func callAsFunction(_ x: Tensor, cache: AttentionCache?) -> Tensor {
        let (b, t) = (x.shape[0], x.shape[1])
        // Decoding without gradients: attend to the cache's storage in place (no copy of the cache).
        // Grouped heads (GQA) read their shared key/value head as G·T query rows of one product.
        if let cache, isCausal, !GradientRecording.isEnabled {
            let offset = cache.length, groups = headCount / kvHeadCount
            let (xq, xk, xv) = decodingProjections(x, cache: cache)
            var q = splitHeads(xq, heads: headCount)
            var k = splitHeads(xk, heads: kvHeadCount)
            let v = splitHeads(xv, heads: kvHeadCount)
            if let rotary { q = rotary(q, offset: offset); k = rotary(k, offset: offset) }
            cache.append(keys: k, values: v)
            let y = causalAttention(query: q.reshaped(to: [b, kvHeadCount, groups * t, headSize]), cachedKeys: cache.keyStorage!,
                                    cachedValues: cache.valueStorage!, length: cache.length, groups: groups,
                                    scale: 1 / Float(headSize).squareRoot())
            return output(y.reshaped(to: [b, headCount, t, headSize]).transposed(permutation: [0, 2, 1, 3])
                .reshaped(to: [b, t, headCount * headSize]))
        }
        if cache == nil, isCausal {
            // Training: the sequences' rows as one matrix, attended in the projections' layout (no head copies).
            precondition(x.rank == 3, "MultiHeadAttention: input \(x.shape) must be [B, T, C]")
            let shape = SharedPrefixShape(prefixes: b, prefixWidth: t, starts: Array(repeating: 0, count: b), copies: 0, width: 0)
            return attend(rows: x.reshaped(to: [b * t, x.shape[2]]), shape: shape, positions: (0..<(b * t)).map { $0 % t })
                .reshaped(to: [b, t, output.weight.shape[1]])
        }
        let (q, k, v) = projections(x, cache: cache)
        let y = isCausal ? causalAttention(query: q, key: k, value: v, scale: 1 / Float(headSize).squareRoot())
                         : matmul(scores(q, k).softmax(), v)              // [B, H, T, D]
        let merged = y.transposed(permutation: [0, 2, 1, 3]).reshaped(to: [b, t, headCount * headSize])
        return output(merged)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { self(x, cache: nil) }

    /// Causal attention over rows packed by `layout` (x [R, C] → [R, C]): each prefix row attends to
    /// its own earlier positions, each continuation row to its prefix and then its own earlier positions.
    /// The prefixes' keys and values are computed once and read by every copy, so their gradients
    /// collect from all continuations.
    /// With `keeping`, only those rows of the result (in that order, repeats allowed) go through the output
    /// projection: every row's keys and values are still computed, since the kept rows attend to them.
    public func callAsFunction(_ x: Tensor, layout: SharedPrefixLayout, keeping rows: [Int]? = nil) -> Tensor {
        precondition(isCausal && x.rank == 2 && x.shape[0] == layout.rowCount,
                     "MultiHeadAttention: input \(x.shape) does not fit the layout's \(layout.rowCount) rows (or the attention is not causal)")
        return attend(rows: x, shape: layout.shape, positions: layout.positions, keeping: rows)
    }

    /// Attention over packed rows x [R, C] (each row at `positions[r]` in its own sequence): queries, keys and
    /// values stay in the projections' [R, heads·D] layout, where the kernel reads each head and each
    /// continuation reads its prefix's keys (no split, transpose or copy).
    func attend(rows x: Tensor, shape: SharedPrefixShape, positions: [Int], keeping kept: [Int]? = nil) -> Tensor {
        let scale = 1 / Float(headSize).squareRoot()
        if rotary == nil, query.adapter == nil, key.adapter == nil, value.adapter == nil,
           (query.bias == nil) == (key.bias == nil) && (key.bias == nil) == (value.bias == nil) {
            // One product for the three projections (wider, and one pass over x and its gradient instead of three);
            // the attention reads Q, K and V where it wrote them.
            let weight = concatenate([query.weight, key.weight, value.weight], alongAxis: 1)
            let bias = query.bias.map { concatenate([$0, key.bias!, value.bias!], alongAxis: 0) }
            let y = sharedPrefixAttention(packed: linear(x, weight, bias: bias), queryHeads: headCount, kvHeads: kvHeadCount,
                                          shape: shape, headSize: headSize, scale: scale)
            return output(kept.map { y.gathering(atIndices: $0) } ?? y)
        }
        var (q, k) = (query(x), key(x))
        let v = value(x)
        if let rotary {
            q = rotary(rows: q, heads: headCount, positions: positions)
            k = rotary(rows: k, heads: kvHeadCount, positions: positions)
        }
        let y = sharedPrefixAttention(query: q, key: k, value: v, shape: shape, headSize: headSize, scale: scale)
        return output(kept.map { y.gathering(atIndices: $0) } ?? y)
    }
}

/// Sequences that share prefixes, packed as the rows of one [R, C] matrix so that each prefix goes
/// through the network once (DPO's chosen and rejected completions share their prompt):
/// first `prefixes` rows of `prefixWidth` positions, left-padded (prefix i's tokens start at `starts[i]`),
/// then `copies` groups of `prefixes` continuation rows of `width` positions, right-padded; continuation
/// row c·prefixes + i continues prefix i. Padding rows take the position of their sequence's last token.
public struct SharedPrefixLayout: Sendable, Equatable {
    public let prefixes: Int, prefixWidth: Int, copies: Int, width: Int
    /// Per prefix, its first real position (prefixWidth − its length).
    public let starts: [Int]
    /// Every packed row's position in its own sequence (0 at the prefix's first token; padding gets 0).
    public let positions: [Int]

    /// `lengths`: each continuation row's real positions (default: all `width`).
    public init(prefixes: Int, prefixWidth: Int, starts: [Int], copies: Int, width: Int, lengths: [Int]? = nil) {
        precondition(prefixes > 0 && prefixWidth > 0 && copies > 0 && width > 0 && starts.count == prefixes
                     && starts.allSatisfy { $0 >= 0 && $0 < prefixWidth }
                     && (lengths.map { $0.count == copies * prefixes && $0.allSatisfy { $0 >= 0 && $0 <= width } } ?? true),
                     "SharedPrefixLayout: \(prefixes) prefixes of width \(prefixWidth) (starts \(starts)), \(copies) copies of width \(width), lengths \(lengths ?? [])")
        self.prefixes = prefixes; self.prefixWidth = prefixWidth; self.starts = starts; self.copies = copies; self.width = width
        var positions: [Int] = []
        positions.reserveCapacity(prefixes * prefixWidth + copies * prefixes * width)
        for i in 0..<prefixes { for j in 0..<prefixWidth { positions.append(Swift.max(0, j - starts[i])) } }
        for r in 0..<(copies * prefixes) {
            let prefixLength = prefixWidth - starts[r % prefixes], last = Swift.max(0, (lengths?[r] ?? width) - 1)
            // A padding row may lie past the context; it repeats its sequence's last position instead
            // (nothing real attends to it).
            for j in 0..<width { positions.append(prefixLength + Swift.min(j, last)) }
        }
        self.positions = positions
    }

    public var continuations: Int { copies * prefixes }
    /// The packing as the attention kernel takes it.
    public var shape: SharedPrefixShape {
        SharedPrefixShape(prefixes: prefixes, prefixWidth: prefixWidth, starts: starts, copies: copies, width: width)
    }
    public var rowCount: Int { prefixes * prefixWidth + continuations * width }


    /// The packed row of prefix i's position j (in the padded layout) and of continuation r's position j.
    public func prefixRow(_ i: Int, _ j: Int) -> Int { i * prefixWidth + j }
    public func continuationRow(_ r: Int, _ j: Int) -> Int { prefixes * prefixWidth + r * width + j }
}

/// The keys and values [B, K, S, D] of the positions seen so far, for one attention layer.
/// A reference type: the model's layers append to their caches as a sequence grows.
public final class AttentionCache: @unchecked Sendable {
    /// [B, K, capacity, D]: the first `length` positions are filled. Capacity doubles when full, so
    /// appending a position copies only that position (amortized), not the whole cache.
    public private(set) var keyStorage: Tensor?
    public private(set) var valueStorage: Tensor?
    /// Positions held.
    public private(set) var length = 0
    /// The layer's query, key and value weights side by side, joined at the first decoding step (the
    /// weights do not change while a cache is in use: its keys and values came from them too).
    private var joined: (weight: Tensor, bias: Tensor?)?
    public init() {}

    func joinedProjections(_ make: () -> (weight: Tensor, bias: Tensor?)) -> (weight: Tensor, bias: Tensor?) {
        if let joined { return joined }
        let made = make()
        joined = made
        return made
    }

    /// The held keys [B, K, length, D] (a compact copy).
    public var keys: Tensor? { keyStorage.map { compact($0) } }
    /// The held values [B, K, length, D] (a compact copy).
    public var values: Tensor? { valueStorage.map { compact($0) } }

    func compact(_ storage: Tensor) -> Tensor {
        storage.shape[2] == length ? storage : storage.slice(alongAxis: 2, range: 0..<length)
    }

    /// Appends positions [B, K, T, D] after the held ones.
    func append(keys k: Tensor, values v: Tensor) {
        let (b, heads, t, d) = (k.shape[0], k.shape[1], k.shape[2], k.shape[3])
        let capacity = keyStorage?.shape[2] ?? 0
        if length + t > capacity {
            let grown = Swift.max(2 * capacity, length + t, 16)
            keyStorage = Self.copy(keyStorage, length: length, into: [b, heads, grown, d])
            valueStorage = Self.copy(valueStorage, length: length, into: [b, heads, grown, d])
        }
        Self.write(k, into: &keyStorage!, at: length)
        Self.write(v, into: &valueStorage!, at: length)
        length += t
    }

    /// A new storage of `shape` holding the first `length` positions of `old`.
    static func copy(_ old: Tensor?, length: Int, into shape: [Int]) -> Tensor {
        var storage = Tensor.zeros(shape)
        if let old { write(old.slice(alongAxis: 2, range: 0..<length), into: &storage, at: 0) }
        return storage
    }

    /// Writes x [B, K, T, D] into positions position..<position+T of storage [B, K, capacity, D], in place.
    static func write(_ x: Tensor, into storage: inout Tensor, at position: Int) {
        let (t, d, capacity) = (x.shape[2], x.shape[3], storage.shape[2])
        let heads = x.shape[0] * x.shape[1]
        x.withUnsafeBufferPointer { source in
            storage.withUnsafeMutableBufferPointer { target in
                for h in 0..<heads {
                    (target.baseAddress! + (h * capacity + position) * d).update(from: source.baseAddress! + h * t * d, count: t * d)
                }
            }
        }
    }
}

// Causal attention over sequences that share prefixes (DPO's chosen and rejected completions share
// their prompt), packed as the rows of one matrix: `prefixes` prefix sequences of `prefixWidth` rows,
// then `copies` groups of `prefixes` continuation sequences of `width` rows each (continuation
// c·prefixes + i continues prefix i). A prefix row attends causally to its own prefix; a continuation
// row attends to its prefix's positions, then causally to its own.
//
// Queries, keys and values are read where the projections wrote them ([R, H·D] and [R, K·D], head h in
// columns h·D..<(h+1)·D), and the output is written in the same layout, so no head is split out,
// transposed, repeated for each copy or merged back (those copies, forward and backward, were 5% of a
// bf16 DPO step). One task per (prefix, key/value head) owns every row that reads that prefix's keys and
// values: its own attention and all its continuations', for every query head of the group, so the
// gradients of the shared keys and values collect without two threads writing the same rows.
import CAlignKitKernels

/// The packing of `sharedPrefixAttention`'s rows (see the file's header; AlignKitNN's SharedPrefixLayout
/// builds one). With no copies it is plain causal attention over `prefixes` sequences of `prefixWidth` rows.
public struct SharedPrefixShape: Sendable, Equatable {
    public let prefixes: Int, prefixWidth: Int, copies: Int, width: Int
    /// Per prefix, its first real position (its keys before it are masked: left padding).
    public let starts: [Int]

    public init(prefixes: Int, prefixWidth: Int, starts: [Int], copies: Int, width: Int) {
        precondition(prefixes > 0 && prefixWidth > 0 && copies >= 0 && (width > 0 || copies == 0) && starts.count == prefixes
                     && starts.allSatisfy { $0 >= 0 && $0 < prefixWidth },
                     "SharedPrefixShape: \(prefixes) prefixes of width \(prefixWidth) (starts \(starts)), \(copies) copies of width \(width)")
        self.prefixes = prefixes; self.prefixWidth = prefixWidth; self.starts = starts; self.copies = copies; self.width = width
    }

    /// Rows of the packed matrix.
    public var rowCount: Int { prefixes * prefixWidth + copies * prefixes * width }
}

/// softmax(Q Kᵀ · scale + mask) V for the rows packed as `shape`: `query` [R, H·D], `key` and `value`
/// [R, K·D] (K divides H; query head h reads key/value head h / (H / K)) → [R, H·D].
public func sharedPrefixAttention(query q: Tensor, key k: Tensor, value v: Tensor, shape: SharedPrefixShape,
                                  headSize d: Int, scale: Float) -> Tensor {
    let r = shape.rowCount
    precondition(q.rank == 2 && k.rank == 2 && v.shape == k.shape && q.shape[0] == r && k.shape[0] == r && d > 0
                 && q.shape[1] % d == 0 && k.shape[1] % d == 0 && k.shape[1] > 0 && (q.shape[1] / d) % (k.shape[1] / d) == 0,
                 "sharedPrefixAttention: query \(q.shape), key \(k.shape), value \(v.shape) need [\(r), H·\(d)] and [\(r), K·\(d)] with K dividing H")
    let plan = SharedPrefixPlan(shape: shape, queryHeads: q.shape[1] / d, kvHeads: k.shape[1] / d, headSize: d, scale: scale,
                                ldq: q.shape[1], ldk: k.shape[1])
    let (y, probabilities) = plan.forward(q: q.pointer, k: k.pointer, v: v.pointer)
    return y.recorded(from: [q, k, v]) { g, tracked in
        let dq = Tensor(uninitializedShape: q.shape), dk = Tensor(uninitializedShape: k.shape), dv = Tensor(uninitializedShape: v.shape)
        plan.backward(q: q.pointer, k: k.pointer, v: v.pointer, p: probabilities, g: g, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer)
        return [tracked[0] ? dq : nil, tracked[1] ? dk : nil, tracked[2] ? dv : nil]
    }
}

/// The same attention with queries, keys and values side by side in one matrix, as one fused projection
/// writes them: `qkv` [R, (H + 2K)·D] holds Q in columns 0..<H·D, K in the next K·D and V in the last K·D.
/// Its gradient has the same layout (the projection's output is not split, nor its gradients concatenated).
public func sharedPrefixAttention(packed qkv: Tensor, queryHeads: Int, kvHeads: Int, shape: SharedPrefixShape,
                                  headSize d: Int, scale: Float) -> Tensor {
    let r = shape.rowCount, width = (queryHeads + 2 * kvHeads) * d
    precondition(qkv.rank == 2 && qkv.shape == [r, width] && d > 0 && kvHeads > 0 && queryHeads % kvHeads == 0,
                 "sharedPrefixAttention: packed \(qkv.shape) needs [\(r), (H + 2K)·\(d)] for \(queryHeads) query and \(kvHeads) key/value heads (K dividing H)")
    let plan = SharedPrefixPlan(shape: shape, queryHeads: queryHeads, kvHeads: kvHeads, headSize: d, scale: scale, ldq: width, ldk: width)
    let (k, v) = (queryHeads * d, (queryHeads + kvHeads) * d)   // column offsets of K and V
    let (y, probabilities) = plan.forward(q: qkv.pointer, k: qkv.pointer + k, v: qkv.pointer + v)
    return y.recorded(from: [qkv]) { g, _ in
        let dqkv = Tensor(uninitializedShape: qkv.shape)
        plan.backward(q: qkv.pointer, k: qkv.pointer + k, v: qkv.pointer + v, p: probabilities, g: g,
                      dq: dqkv.pointer, dk: dqkv.pointer + k, dv: dqkv.pointer + v)
        return [dqkv]
    }
}

/// Where each sequence's rows and probabilities lie, and the per-task products.
private struct SharedPrefixPlan: Sendable {
    let shape: SharedPrefixShape
    let queryHeads: Int, kvHeads: Int, d: Int, scale: Float
    /// Row strides: of Q and dQ (ldq); of K, V, dK and dV (ldk); of the output and its gradient (ldy, H·D).
    let ldq: Int, ldk: Int, ldy: Int

    init(shape: SharedPrefixShape, queryHeads: Int, kvHeads: Int, headSize: Int, scale: Float, ldq: Int, ldk: Int) {
        self.shape = shape; self.queryHeads = queryHeads; self.kvHeads = kvHeads; self.d = headSize; self.scale = scale
        self.ldq = ldq; self.ldk = ldk; ldy = queryHeads * headSize
    }

    /// Y [R, H·D], and the probabilities the backward pass reads.
    func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>) -> (Tensor, Tensor) {
        let probabilities = Tensor(uninitializedShape: [probabilityCount])
        let y = Tensor(uninitializedShape: [shape.rowCount, ldy])
        let io = UncheckedSendable((q, k, v, y.pointer, probabilities.pointer))
        let scope = GEMM.Scope.current
        Parallel.forEach(taskCount) { task in
            scope.within {
                let (q, k, v, y, p) = io.value
                forward(task: task, q: q, k: k, v: v, y: y, p: p)
            }
        }
        return (y, probabilities)
    }

    /// dQ, dK and dV, every element written, from the output's gradient `g` [R, H·D].
    func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, p probabilities: Tensor, g: Tensor,
                  dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>) {
        let io = UncheckedSendable((q, k, v, probabilities.pointer, g.pointer, dq, dk, dv))
        let scope = GEMM.Scope.current
        Parallel.forEach(taskCount) { task in
            scope.within {
                let (q, k, v, p, g, dq, dk, dv) = io.value
                backward(task: task, q: q, k: k, v: v, p: p, g: g, dq: dq, dk: dk, dv: dv)
            }
        }
    }

    var groups: Int { queryHeads / kvHeads }
    var taskCount: Int { shape.prefixes * kvHeads }
    /// Probabilities: per prefix and query head p × p, then per continuation and query head t × (p + t).
    var probabilityCount: Int {
        let (n, p, t) = (shape.prefixes, shape.prefixWidth, shape.width)
        return queryHeads * (n * p * p + shape.copies * n * t * (p + t))
    }

    /// The sequences a task owns, as (first row, rows, probabilities of query head 0, their row width);
    /// the prefix first. Query head h's probabilities follow at h · rows · width.
    func sequences(prefix i: Int) -> [(row: Int, rows: Int, probabilities: Int, width: Int)] {
        let (n, p, t) = (shape.prefixes, shape.prefixWidth, shape.width)
        var result = [(row: i * p, rows: p, probabilities: queryHeads * i * p * p, width: p)]
        for c in 0..<shape.copies {
            let sequence = c * n + i
            result.append((row: n * p + sequence * t, rows: t, probabilities: queryHeads * (n * p * p + sequence * t * (p + t)), width: p + t))
        }
        return result
    }

    /// C (m x n, row stride ldc) (+)= op(A) op(B) on this thread; with `causal`, only that part (see
    /// `GEMM.Causal`): a sequence's products over its own keys stop at each row's key (or, for dK and dV,
    /// start at each key's row), so the keys above the diagonal (zero probability) are neither scored nor
    /// multiplied. The skipped terms are exact zeros, so the sums are unchanged.
    func product(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                 _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool = false,
                 causal: GEMM.Causal? = nil) {
        if let causal {
            GEMM.multiplyCausal(causal, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda,
                                b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate)
        } else {
            GEMM.multiplyBatched(transposeA: transposeA, transposeB: transposeB, batchCount: 1, m: m, n: n, k: k, a: a, lda: lda,
                                 strideA: 0, b: b, ldb: ldb, strideB: 0, c: c, ldc: ldc, strideC: 0, accumulate: accumulate, threads: 1)
        }
    }

    /// Each sequence's probabilities have `full` columns for its prefix's keys (continuations: all of them;
    /// the prefix itself: none), then its causal part over its own keys (the prefix's own are the prefix's).
    func forward(task: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                 y: UnsafeMutablePointer<Float>, p: UnsafeMutablePointer<Float>) {
        let i = task / kvHeads, kh = task % kvHeads, width = shape.prefixWidth
        let kp = k + i * width * ldk + kh * d, vp = v + i * width * ldk + kh * d
        var first = shape.starts[i]
        let sequences = sequences(prefix: i)
        for h in (kh * groups)..<((kh + 1) * groups) {
            for (index, sequence) in sequences.enumerated() {
                let rows = sequence.rows, s = sequence.width, full = index > 0 ? width : 0
                let qs = q + sequence.row * ldq + h * d, ys = y + sequence.row * ldy + h * d
                let ks = k + sequence.row * ldk + kh * d, vs = v + sequence.row * ldk + kh * d
                let ps = p + sequence.probabilities + h * rows * s
                // Scores against the prefix's keys, then the causal part (the softmax writes zeros past each row's key).
                if full > 0 { product(false, true, m: rows, n: full, k: d, qs, ldq, kp, ldk, ps, s) }
                product(false, true, m: rows, n: rows, k: d, qs, ldq, ks, ldk, ps + full, s, causal: .columnsThroughRow)
                causalSoftmaxRows(ps, rows: rows, rowsPerHead: rows, positions: rows, width: s, scale: scale,
                                  firstKeys: &first, rowsPerBatch: rows)
                if full > 0 { product(false, false, m: rows, n: d, k: full, ps, s, vp, ldk, ys, ldy) }
                product(false, false, m: rows, n: d, k: rows, ps + full, s, vs, ldk, ys, ldy, accumulate: full > 0, causal: .depthThroughRow)
            }
        }
    }

    /// dP = dY Vᵀ, dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)); dV = Pᵀ dY, dQ = dS K, dK = dSᵀ Q. The prefix's
    /// dK and dV collect from its own rows and every continuation, each continuation's from the group's heads.
    func backward(task: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, p: UnsafePointer<Float>,
                  g: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>) {
        let i = task / kvHeads, kh = task % kvHeads, width = shape.prefixWidth
        let kp = k + i * width * ldk + kh * d, vp = v + i * width * ldk + kh * d
        let dkp = dk + i * width * ldk + kh * d, dvp = dv + i * width * ldk + kh * d
        let sequences = sequences(prefix: i)
        let largest = sequences.map { $0.rows * $0.width }.max()!
        let ds = CachingAllocator.shared.allocate(floatCount: largest)
        defer { CachingAllocator.shared.deallocate(ds, floatCount: largest) }
        var prefixStarted = false
        for h in (kh * groups)..<((kh + 1) * groups) {
            for (index, sequence) in sequences.enumerated() {
                let rows = sequence.rows, s = sequence.width, full = index > 0 ? width : 0
                let qs = q + sequence.row * ldq + h * d, gs = g + sequence.row * ldy + h * d, dqs = dq + sequence.row * ldq + h * d
                let ks = k + sequence.row * ldk + kh * d, vs = v + sequence.row * ldk + kh * d
                let dks = dk + sequence.row * ldk + kh * d, dvs = dv + sequence.row * ldk + kh * d
                let ps = p + sequence.probabilities + h * rows * s
                // The causal part's dK and dV: the prefix's own (first written by the first head's prefix pass),
                // or the continuation's (first written by the group's first head).
                let causalStarted = full > 0 ? h != kh * groups : prefixStarted
                // dV: the prefix's part, then the own keys' (each from its own row on).
                if full > 0 { product(true, false, m: full, n: d, k: rows, ps, s, gs, ldy, dvp, ldk, accumulate: prefixStarted) }
                product(true, false, m: rows, n: d, k: rows, ps + full, s, gs, ldy, dvs, ldk, accumulate: causalStarted,
                        causal: .depthFromRow)
                // dP, then dS in place over each row's keys; past them dS is zero (zero probability), written as far
                // as the products below read (`GEMM.causalReach`; dP is not computed there).
                if full > 0 { product(false, true, m: rows, n: full, k: d, gs, ldy, vp, ldk, ds, s) }
                product(false, true, m: rows, n: rows, k: d, gs, ldy, vs, ldk, ds + full, s, causal: .columnsThroughRow)
                for row in 0..<rows {
                    let valid = full + row + 1, reach = Swift.min(s, valid + GEMM.causalReach)
                    ak_softmax_row_backward(ps + row * s, ds + row * s, Int64(valid), scale)
                    (ds + row * s + valid).initialize(repeating: 0, count: reach - valid)
                }
                // dQ from the prefix's keys and the own; dK likewise.
                if full > 0 { product(false, false, m: rows, n: d, k: full, ds, s, kp, ldk, dqs, ldq) }
                product(false, false, m: rows, n: d, k: rows, ds + full, s, ks, ldk, dqs, ldq, accumulate: full > 0, causal: .depthThroughRow)
                if full > 0 { product(true, false, m: full, n: d, k: rows, ds, s, qs, ldq, dkp, ldk, accumulate: prefixStarted) }
                product(true, false, m: rows, n: d, k: rows, ds + full, s, qs, ldq, dks, ldk, accumulate: causalStarted,
                        causal: .depthFromRow)
                prefixStarted = true
            }
        }
    }
}

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
    let plan = SharedPrefixPlan(shape: shape, queryHeads: q.shape[1] / d, kvHeads: k.shape[1] / d, headSize: d, scale: scale)
    let probabilities = Tensor(uninitializedShape: [plan.probabilityCount])
    let y = Tensor(uninitializedShape: q.shape)
    let io = UncheckedSendable((q.pointer, k.pointer, v.pointer, y.pointer, probabilities.pointer))
    let scope = GEMM.Scope.current
    Parallel.forEach(plan.taskCount) { task in
        scope.within {
            let (q, k, v, y, p) = io.value
            plan.forward(task: task, q: q, k: k, v: v, y: y, p: p)
        }
    }
    return y.recorded(from: [q, k, v]) { [probabilities] g, tracked in
        let dq = Tensor(uninitializedShape: q.shape), dk = Tensor(uninitializedShape: k.shape), dv = Tensor(uninitializedShape: v.shape)
        let io = UncheckedSendable((q.pointer, k.pointer, v.pointer, probabilities.pointer, g.pointer, dq.pointer, dk.pointer, dv.pointer))
        let scope = GEMM.Scope.current
        Parallel.forEach(plan.taskCount) { task in
            scope.within {
                let (q, k, v, p, g, dq, dk, dv) = io.value
                plan.backward(task: task, q: q, k: k, v: v, p: p, g: g, dq: dq, dk: dk, dv: dv)
            }
        }
        return withExtendedLifetime(probabilities) { [tracked[0] ? dq : nil, tracked[1] ? dk : nil, tracked[2] ? dv : nil] }
    }
}

/// Where each sequence's rows and probabilities lie, and the per-task products.
private struct SharedPrefixPlan: Sendable {
    let shape: SharedPrefixShape
    let queryHeads: Int, kvHeads: Int, d: Int, scale: Float
    let ldq: Int, ldk: Int

    init(shape: SharedPrefixShape, queryHeads: Int, kvHeads: Int, headSize: Int, scale: Float) {
        self.shape = shape; self.queryHeads = queryHeads; self.kvHeads = kvHeads; self.d = headSize; self.scale = scale
        ldq = queryHeads * headSize; ldk = kvHeads * headSize
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

    /// C (m x n, row stride ldc) (+)= op(A) op(B) on this thread.
    func product(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                 _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool = false) {
        GEMM.multiplyBatched(transposeA: transposeA, transposeB: transposeB, batchCount: 1, m: m, n: n, k: k, a: a, lda: lda, strideA: 0,
                             b: b, ldb: ldb, strideB: 0, c: c, ldc: ldc, strideC: 0, accumulate: accumulate, threads: 1)
    }

    func forward(task: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                 y: UnsafeMutablePointer<Float>, p: UnsafeMutablePointer<Float>) {
        let i = task / kvHeads, kh = task % kvHeads, width = shape.prefixWidth
        let kp = k + i * width * ldk + kh * d, vp = v + i * width * ldk + kh * d
        var first = shape.starts[i]
        let sequences = sequences(prefix: i)
        for h in (kh * groups)..<((kh + 1) * groups) {
            for (index, sequence) in sequences.enumerated() {
                let rows = sequence.rows, s = sequence.width
                let qs = q + sequence.row * ldq + h * d, ys = y + sequence.row * ldq + h * d
                let ps = p + sequence.probabilities + h * rows * s
                // Scores against the prefix's keys, then (continuations) against the sequence's own.
                product(false, true, m: rows, n: width, k: d, qs, ldq, kp, ldk, ps, s)
                if index > 0 { product(false, true, m: rows, n: rows, k: d, qs, ldq, k + sequence.row * ldk + kh * d, ldk, ps + width, s) }
                causalSoftmaxRows(ps, rows: rows, rowsPerHead: rows, positions: rows, width: s, scale: scale,
                                  firstKeys: &first, rowsPerBatch: rows)
                product(false, false, m: rows, n: d, k: width, ps, s, vp, ldk, ys, ldq)
                if index > 0 { product(false, false, m: rows, n: d, k: rows, ps + width, s, v + sequence.row * ldk + kh * d, ldk, ys, ldq, accumulate: true) }
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
                let rows = sequence.rows, s = sequence.width, own = index > 0
                let qs = q + sequence.row * ldq + h * d, gs = g + sequence.row * ldq + h * d, dqs = dq + sequence.row * ldq + h * d
                let ks = k + sequence.row * ldk + kh * d, vs = v + sequence.row * ldk + kh * d
                let dks = dk + sequence.row * ldk + kh * d, dvs = dv + sequence.row * ldk + kh * d
                let ps = p + sequence.probabilities + h * rows * s
                let firstHead = h == kh * groups
                // dV: the prefix's part, then the sequence's own.
                product(true, false, m: width, n: d, k: rows, ps, s, gs, ldq, dvp, ldk, accumulate: prefixStarted)
                if own { product(true, false, m: rows, n: d, k: rows, ps + width, s, gs, ldq, dvs, ldk, accumulate: !firstHead) }
                // dP, then dS in place.
                product(false, true, m: rows, n: width, k: d, gs, ldq, vp, ldk, ds, s)
                if own { product(false, true, m: rows, n: rows, k: d, gs, ldq, vs, ldk, ds + width, s) }
                for row in 0..<rows { ak_softmax_row_backward(ps + row * s, ds + row * s, Int64(s), scale) }
                // dQ from the prefix's keys and the own; dK likewise.
                product(false, false, m: rows, n: d, k: width, ds, s, kp, ldk, dqs, ldq)
                if own { product(false, false, m: rows, n: d, k: rows, ds + width, s, ks, ldk, dqs, ldq, accumulate: true) }
                product(true, false, m: width, n: d, k: rows, ds, s, qs, ldq, dkp, ldk, accumulate: prefixStarted)
                if own { product(true, false, m: rows, n: d, k: rows, ds + width, s, qs, ldq, dks, ldk, accumulate: !firstHead) }
                prefixStarted = true
            }
        }
    }
}

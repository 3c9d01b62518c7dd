// Fused primitives for the language model's hot paths, each one pass forward and one backward
// instead of a chain of elementwise ops with a full-size intermediate at every link.
//
//   log-softmax-gather:  yᵢ = xᵢ[lᵢ] - log Σⱼ e^(xᵢⱼ)           dxᵢ = gᵢ (onehot(lᵢ) - softmax(xᵢ))
//   causal attention:    P = softmax(s Q Kᵀ + mask), Y = P V
//                        dV = Pᵀ dY, dP = dY Vᵀ, dS = P ⊙ (dP - rowsum(dP ⊙ P)), dQ = s dS K, dK = s dSᵀ Q
//   SwiGLU:              y = silu(a) ⊙ b                         da = g b σ(a)(1 + a(1 - σ(a))), db = g silu(a)
//   RMSNorm:             y = x r w, r = 1/√(mean x² + ε)         dx = r (g w - x r² mean(g w x)), dw = Σ g x r
//   LayerNorm:           x̂ = (x - μ) r, y = x̂ w + b              dx = r (gw - mean(gw) - x̂ mean(gw x̂)), dw = Σ g x̂, db = Σ g
import CAlignKitKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    /// For logits [N, V] and one label per row, each row's log-probability of its label: [N].
    /// A label of -1 gives 0 (and no gradient), for masked positions. The [N, V] log-softmax is
    /// never stored: the forward pass keeps one log-sum-exp per row.
    public func logSoftmaxGathering(labels: [Int]) -> Tensor {
        precondition(rank == 2 && shape[0] == labels.count, "logSoftmaxGathering: logits \(shape) need [N, V] with N = \(labels.count) labels")
        let (n, v) = (shape[0], shape[1])
        for l in labels { precondition(l >= -1 && l < v, "logSoftmaxGathering: label \(l) is out of range 0..<\(v)") }
        let result = Tensor(uninitializedShape: [n])
        var logSumExp = [Float](repeating: 0, count: n)
        let x = UncheckedSendable(pointer), out = UncheckedSendable(result.pointer)
        logSumExp.withUnsafeMutableBufferPointer { lse in
            let lseP = UncheckedSendable(lse.baseAddress!)
            labels.withUnsafeBufferPointer { labelBuffer in
                let lab = UncheckedSendable(labelBuffer.baseAddress!)
                Parallel.forChunks(n, grain: Swift.max(1, (1 << 15) / Swift.max(v, 1))) { rows in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: v)
                    defer { scratch.deallocate() }
                    for r in rows {
                        let row = x.value + r * v
                        let (m, sum) = shiftedExponentials(row, v, into: scratch)
                        let s = m + logf(sum)
                        lseP.value[r] = s
                        let l = lab.value[r]
                        out.value[r] = l < 0 ? 0 : row[l] - s
                    }
                }
            }
        }
        // The backward pass reads the logits once and writes the gradient in their place when nothing
        // else holds them (the usual case: an intermediate of the loss), saving an [N, V] buffer at the
        // peak of the step (64 MB for 2,048 positions of an 8,192-id vocabulary).
        let saved = TakeOnce(self)
        return result.recorded(from: [self]) { g, _ in
            var logits = saved.take()
            let dx = isKnownUniquelyReferenced(&logits.storage) ? logits.detached() : Tensor(uninitializedShape: [n, v])
            let gx = UncheckedSendable(dx.pointer), gp = UncheckedSendable(g.pointer), xp = UncheckedSendable(logits.pointer)
            logSumExp.withUnsafeBufferPointer { lse in
                let lseP = UncheckedSendable(lse.baseAddress!)
                labels.withUnsafeBufferPointer { labelBuffer in
                    let lab = UncheckedSendable(labelBuffer.baseAddress!)
                    Parallel.forChunks(n, grain: Swift.max(1, (1 << 15) / Swift.max(v, 1))) { rows in
                        for r in rows {
                            let row = xp.value + r * v, d = gx.value + r * v
                            let l = lab.value[r], gr = gp.value[r]
                            if l < 0 || gr == 0 { d.initialize(repeating: 0, count: v); continue }
                            // softmax = e^(x - lse); d = -g softmax, plus g at the label.
                            _ = ak_vexp_shifted_sum(row, lseP.value[r], d, Int64(v))
                            for j in 0..<v { d[j] *= -gr }
                            d[l] += gr
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// silu(a) ⊙ b for equal shapes (the SwiGLU feed-forward's gate).
    public static func swiglu(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "swiglu: shapes \(a.shape) and \(b.shape) differ")
        let n = a.scalarCount
        let sig = Tensor(uninitializedShape: a.shape), y = Tensor(uninitializedShape: a.shape)
        let ap = UncheckedSendable(a.pointer), bp = UncheckedSendable(b.pointer)
        let sp = UncheckedSendable(sig.pointer), yp = UncheckedSendable(y.pointer)
        Parallel.forChunks(n, grain: 1 << 14) { range in
            let count = range.count, start = range.lowerBound
            ak_vsigmoid(ap.value + start, sp.value + start, Int64(count))
            for i in range { yp.value[i] = ap.value[i] * sp.value[i] * bp.value[i] }
        }
        return y.recorded(from: [a, b]) { [a, b, sig] g, t in
            // A use of each capture, so the closure keeps the storages the pointers below point into.
            withExtendedLifetime((a, b, sig)) {}
            let da = t[0] ? Tensor(uninitializedShape: a.shape) : nil, db = t[1] ? Tensor(uninitializedShape: a.shape) : nil
            let gp = UncheckedSendable(g.pointer), dap = UncheckedSendable(da?.pointer), dbp = UncheckedSendable(db?.pointer)
            Parallel.forChunks(n, grain: 1 << 14) { range in
                for i in range {
                    let x = ap.value[i], s = sp.value[i], gi = gp.value[i]
                    dap.value?[i] = gi * bp.value[i] * s * (1 + x * (1 - s))
                    dbp.value?[i] = gi * x * s
                }
            }
            return [da, db]
        }
    }

    /// RMSNorm over the last axis with scale w [C]: x / √(mean x² + ε) ⊙ w.
    public func rmsNormalized(scale w: Tensor, epsilon: Float) -> Tensor {
        normalized(scale: w, offset: nil, epsilon: epsilon, centered: false)
    }

    /// LayerNorm over the last axis with scale w [C] and offset b [C].
    public func layerNormalized(scale w: Tensor, offset b: Tensor?, epsilon: Float) -> Tensor {
        normalized(scale: w, offset: b, epsilon: epsilon, centered: true)
    }

    private func normalized(scale w: Tensor, offset b: Tensor?, epsilon: Float, centered: Bool) -> Tensor {
        let c = shape.last ?? 0
        precondition(w.shape == [c], "\(centered ? "layerNorm" : "rmsNorm"): scale \(w.shape) must be [\(c)] for input \(shape)")
        if let b { precondition(b.shape == [c], "layerNorm: offset \(b.shape) must be [\(c)]") }
        let rows = c == 0 ? 0 : scalarCount / c
        let y = Tensor(uninitializedShape: shape)
        let normalizedX = Tensor(uninitializedShape: shape)   // x̂, kept for the backward pass
        var inverse = [Float](repeating: 0, count: rows)
        let xp = UncheckedSendable(pointer), yp = UncheckedSendable(y.pointer), hp = UncheckedSendable(normalizedX.pointer)
        let wp = UncheckedSendable(w.pointer), bp = UncheckedSendable(b?.pointer)
        inverse.withUnsafeMutableBufferPointer { inv in
            let ip = UncheckedSendable(inv.baseAddress!)
            Parallel.forChunks(rows, grain: Swift.max(1, (1 << 14) / Swift.max(c, 1))) { range in
                let offset = range.lowerBound * c
                ak_norm_rows(xp.value + offset, Int64(range.count), Int64(c), wp.value, bp.value, epsilon, centered ? 1 : 0,
                             hp.value + offset, yp.value + offset, ip.value + range.lowerBound)
            }
        }
        return y.recorded(from: b == nil ? [self, w] : [self, w, b!]) { [w, normalizedX] g, t in
            // A use of each capture, so the closure keeps the storages the pointers below point into.
            withExtendedLifetime((w, normalizedX)) {}
            let dx = t[0] ? Tensor(uninitializedShape: self.shape) : nil
            var dw = [Float](repeating: 0, count: c), db = [Float](repeating: 0, count: c)
            let gp = UncheckedSendable(g.pointer), dxp = UncheckedSendable(dx?.pointer)
            // Rows in parallel for dx; dw and db summed per chunk, then combined.
            let chunks = Swift.max(1, Swift.min(Parallel.threadCount, rows / 16))
            var partialW = [Float](repeating: 0, count: chunks * c), partialB = partialW
            inverse.withUnsafeBufferPointer { inv in
                partialW.withUnsafeMutableBufferPointer { pw in
                    partialB.withUnsafeMutableBufferPointer { pb in
                        let ip = UncheckedSendable(inv.baseAddress!), pwp = UncheckedSendable(pw.baseAddress!), pbp = UncheckedSendable(pb.baseAddress!)
                        Parallel.forEach(chunks) { chunk in
                            let lo = rows * chunk / chunks, hi = rows * (chunk + 1) / chunks
                            ak_norm_rows_backward(hp.value + lo * c, gp.value + lo * c, wp.value, ip.value + lo, Int64(hi - lo), Int64(c),
                                                  centered ? 1 : 0, dxp.value.map { $0 + lo * c }, pwp.value + chunk * c, pbp.value + chunk * c)
                        }
                    }
                }
            }
            for chunk in 0..<chunks { for j in 0..<c { dw[j] += partialW[chunk * c + j]; db[j] += partialB[chunk * c + j] } }
            var grads: [Tensor?] = [dx, t[1] ? Tensor(dw, shape: [c]) : nil]
            if b != nil { grads.append(t[2] ? Tensor(db, shape: [c]) : nil) }
            return grads
        }
    }
}

/// Causal scaled dot-product attention over q [B, H, T, D] and k, v [B, H, S, D] (S ≥ T; the T
/// queries are the last T positions). The T x S probabilities are computed once per head and kept
/// for the backward pass; masked entries are never exponentiated.
/// Scores → causal probabilities in place, rows of `width` (S) in blocks of `rowsPerHead` per head: row
/// i of a head is query position i % `positions` (grouped heads stack G blocks of `positions` rows),
/// which sees the first (S − positions) + i + 1 keys; the rest of the row becomes 0. With `firstKeys`
/// (one per batch element, `rowsPerBatch` rows each; left padding), a row also skips the keys before its
/// batch element's first one, unless it is itself a padding row (which then sees all keys up to its own).
func causalSoftmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, rowsPerHead t: Int, positions: Int, width s: Int, scale: Float,
                       firstKeys: UnsafePointer<Int>? = nil, rowsPerBatch: Int = 1) {
    let pp = UncheckedSendable(p), shift = s - positions, starts = UncheckedSendable(firstKeys)
    Parallel.forChunks(rows, grain: Swift.max(1, (1 << 14) / Swift.max(s, 1))) { chunk in
        for row in chunk {
            let valid = row % t % positions + shift + 1
            var lo = 0
            if let f = starts.value, f[row / rowsPerBatch] < valid { lo = f[row / rowsPerBatch] }
            let r = pp.value + row * s
            ak_softmax_row(r + lo, Int64(valid - lo), scale)
            if lo > 0 { r.initialize(repeating: 0, count: lo) }
            if valid < s { (r + valid).initialize(repeating: 0, count: s - valid) }
        }
    }
}

/// Causal attention for decoding with a KV cache, inference only (nothing recorded): `q` [B, K, G·T, D]
/// (the G query heads that share each key/value head, T positions each) attends to the first `length`
/// positions of `keys` and `values` [B, K, capacity, D] (a cache's storage, read in place), the last T
/// of them being the query's own positions.
public func causalAttention(query q: Tensor, cachedKeys k: Tensor, cachedValues v: Tensor, length s: Int, groups: Int = 1,
                            scale: Float) -> Tensor {
    precondition(q.rank == 4 && k.rank == 4 && v.shape == k.shape && q.shape[0] == k.shape[0] && q.shape[1] == k.shape[1]
                 && q.shape[3] == k.shape[3] && groups >= 1 && q.shape[2] % groups == 0 && s >= q.shape[2] / groups && s <= k.shape[2],
                 "causalAttention: query \(q.shape), cached keys \(k.shape), values \(v.shape), length \(s), groups \(groups) need [B, K, G·T, D], [B, K, capacity, D] and T ≤ length ≤ capacity")
    let (b, h, t, d, capacity) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3], k.shape[2])
    let positions = t / groups
    let heads = b * h
    let p = Tensor(uninitializedShape: [b, h, t, s])
    if t <= GEMM.skinnyRowLimit {
        // A few rows per head (one token per sequence): each head's scores, softmax and weighted sum of values
        // in one task, the scores still in L1, instead of two batched products and a softmax pass (three
        // parallel loops per layer and token, each costing more to start than its work).
        let y = Tensor(uninitializedShape: [b, h, t, d])
        let (scores, mix) = (GEMM.skinnyKernel(transposeB: true), GEMM.skinnyKernel(transposeB: false))
        let send = UncheckedSendable((q.pointer, k.pointer, v.pointer, p.pointer, y.pointer))
        func head(_ i: Int) {
            let (q, k, v, p, y) = send.value
            let (qi, pi, yi) = (q + i * t * d, p + i * t * s, y + i * t * d)
            scores(Int64(t), Int64(s), Int64(d), qi, Int64(d), 1, k + i * capacity * d, Int64(d), pi, Int64(s), 0)
            causalSoftmaxRows(pi, rows: t, rowsPerHead: t, positions: positions, width: s, scale: scale)
            mix(Int64(t), Int64(d), Int64(s), pi, Int64(s), 1, v + i * capacity * d, Int64(d), yi, Int64(d), 0)
        }
        // Tasks are worth a thread from about 128 KB of keys and values.
        if heads * s * d < 1 << 14 { for i in 0..<heads { head(i) } } else { Parallel.forEach(heads, head) }
        return withExtendedLifetime((p, q, k, v)) { y }
    }
    GEMM.multiplyBatched(transposeA: false, transposeB: true, batchCount: heads, m: t, n: s, k: d, a: q.pointer, lda: d, strideA: t * d,
                         b: k.pointer, ldb: d, strideB: capacity * d, c: p.pointer, ldc: s, strideC: t * s)
    causalSoftmaxRows(p.pointer, rows: heads * t, rowsPerHead: t, positions: positions, width: s, scale: scale)
    let y = Tensor(uninitializedShape: [b, h, t, d])
    GEMM.multiplyBatched(transposeA: false, transposeB: false, batchCount: heads, m: t, n: d, k: s, a: p.pointer, lda: s, strideA: t * s,
                         b: v.pointer, ldb: d, strideB: capacity * d, c: y.pointer, ldc: d, strideC: t * d)
    return withExtendedLifetime((p, k, v)) { y }
}

/// `firstKeys` (one per batch element) masks each element's keys before its first (left padding; see
/// `causalSoftmaxRows`).
public func causalAttention(query q: Tensor, key k: Tensor, value v: Tensor, scale: Float, firstKeys: [Int]? = nil) -> Tensor {
    precondition(q.rank == 4 && k.rank == 4 && v.shape == k.shape && q.shape[0] == k.shape[0] && q.shape[1] == k.shape[1]
                 && q.shape[3] == k.shape[3] && k.shape[2] >= q.shape[2],
                 "causalAttention: query \(q.shape), key \(k.shape), value \(v.shape) need [B, H, T, D] and [B, H, S, D] with S ≥ T")
    precondition(firstKeys.map { $0.count == q.shape[0] && $0.allSatisfy { $0 >= 0 && $0 < k.shape[2] } } ?? true,
                 "causalAttention: firstKeys \(firstKeys ?? []) need one key index per batch element of \(q.shape)")
    let (b, h, t, d, s) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3], k.shape[2])
    let heads = b * h
    /// One m x n product per head, every matrix contiguous: C = op(A) op(B).
    func perHead(_ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
                 _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        GEMM.multiplyBatched(transposeA: transposeA, transposeB: transposeB, batchCount: heads, m: m, n: n, k: k,
                             a: a, lda: transposeA ? m : k, strideA: m * k, b: b, ldb: transposeB ? k : n, strideB: k * n,
                             c: c, ldc: n, strideC: m * n)
    }
    let p = Tensor(uninitializedShape: [b, h, t, s])
    perHead(false, true, m: t, n: s, k: d, q.pointer, k.pointer, p.pointer)
    if let firstKeys {
        firstKeys.withUnsafeBufferPointer { f in
            causalSoftmaxRows(p.pointer, rows: heads * t, rowsPerHead: t, positions: t, width: s, scale: scale,
                              firstKeys: f.baseAddress, rowsPerBatch: h * t)
        }
    } else {
        causalSoftmaxRows(p.pointer, rows: heads * t, rowsPerHead: t, positions: t, width: s, scale: scale)
    }
    let pp = UncheckedSendable(p.pointer), shift = s - t   // for the backward pass
    let y = Tensor(uninitializedShape: [b, h, t, d])
    perHead(false, false, m: t, n: d, k: s, p.pointer, v.pointer, y.pointer)
    return y.recorded(from: [q, k, v]) { [p] g, tracked in
        withExtendedLifetime(p) {}   // keeps the probabilities that `pp` points into
        var dq: Tensor?, dk: Tensor?, dv: Tensor?
        if tracked[2] {
            let out = Tensor(uninitializedShape: v.shape)
            perHead(true, false, m: s, n: d, k: t, p.pointer, g.pointer, out.pointer)
            dv = out
        }
        guard tracked[0] || tracked[1] else { return [nil, nil, dv] }
        // dS in place of dP: dP = dY Vᵀ, then dS = s P ⊙ (dP - rowsum(dP ⊙ P)).
        let ds = Tensor(uninitializedShape: [b, h, t, s])
        perHead(false, true, m: t, n: s, k: d, g.pointer, v.pointer, ds.pointer)
        let dsp = UncheckedSendable(ds.pointer)
        Parallel.forChunks(heads * t, grain: Swift.max(1, (1 << 14) / Swift.max(s, 1))) { rows in
            for row in rows {
                let valid = row % t + shift + 1
                let pr = pp.value + row * s, dr = dsp.value + row * s
                ak_softmax_row_backward(pr, dr, Int64(valid), scale)
                if valid < s { (dr + valid).initialize(repeating: 0, count: s - valid) }
            }
        }
        if tracked[0] {
            let out = Tensor(uninitializedShape: q.shape)
            perHead(false, false, m: t, n: d, k: s, ds.pointer, k.pointer, out.pointer)
            dq = out
        }
        if tracked[1] {
            let out = Tensor(uninitializedShape: k.shape)
            perHead(true, false, m: s, n: d, k: t, ds.pointer, q.pointer, out.pointer)
            dk = out
        }
        return [dq, dk, dv]
    }
}

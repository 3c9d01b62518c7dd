// Matrix multiplication with batching and transposes; the backward pass is two more products.

/// op(a) · op(b) over the last two axes.
///
/// - `a`: [..., M, K] (or [..., K, M] when `transposeA`); `b`: [..., K, N] (or [..., N, K]).
/// - Batch axes must be equal, or `b` may be rank 2 (one matrix for every batch).
/// - Returns [..., M, N]. Gradients: d op(A) = G op(B)ᵀ, d op(B) = op(A)ᵀ G.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul: needs rank ≥ 2, got shapes \(a.shape) and \(b.shape)")
    // A shared right-hand matrix with an untransposed left-hand side: fold the batch into rows.
    if b.rank == 2 && a.rank > 2 && !transposeA {
        let k = a.shape[a.rank - 1]
        let folded = matmul(a.reshaped(to: [-1, k]), b, transposeB: transposeB)
        return folded.reshaped(to: Array(a.shape.dropLast()) + [folded.shape[1]])
    }
    if b.rank == 2 && a.rank > 2 { return matmul(a, b.expanded(to: Array(a.shape.dropLast(2)) + b.shape), transposeA: transposeA, transposeB: transposeB) }
    if a.rank == 2 && b.rank > 2 { return matmul(a.expanded(to: Array(b.shape.dropLast(2)) + a.shape), b, transposeA: transposeA, transposeB: transposeB) }
    let batchShape = Array(a.shape.dropLast(2))
    precondition(batchShape == Array(b.shape.dropLast(2)),
                 "matmul: batch axes of \(a.shape) and \(b.shape) differ")
    let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transposeA ? (ac, ar) : (ar, ac)
    let (kb, n) = transposeB ? (bc, br) : (br, bc)
    precondition(k == kb, "matmul: inner sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
    let batch = ShapeMath.count(batchShape)
    let result = Tensor(uninitializedShape: batchShape + [m, n])
    GEMM.multiplyBatched(transposeA: transposeA, transposeB: transposeB, batchCount: batch, m: m, n: n, k: k,
                         a: a.pointer, lda: ac, strideA: ar * ac, b: b.pointer, ldb: bc, strideB: br * bc,
                         c: result.pointer, ldc: n, strideC: m * n)
    return result.recorded(from: [a, b]) { g, t in
        let da: Tensor? = !t[0] ? nil : transposeA
            ? matmul(b, g, transposeA: transposeB, transposeB: true)
            : matmul(g, b, transposeB: !transposeB)
        let db: Tensor? = !t[1] ? nil : transposeB
            ? matmul(g, a, transposeA: true, transposeB: transposeA)
            : matmul(a, g, transposeA: !transposeA)
        return [da, db]
    }
}

/// x · w + bias for x [..., K], w [K, N], bias [N] (a dense layer): the bias joins each tile of the
/// product as it is stored, instead of a second pass over the [..., N] result.
/// Gradients: dx = G wᵀ, dw = xᵀ G, dbias = G summed over rows.
public func linear(_ x: Tensor, _ w: Tensor, bias: Tensor?) -> Tensor {
    guard let bias else { return matmul(x, w) }
    precondition(x.rank >= 1 && w.rank == 2 && x.shape[x.rank - 1] == w.shape[0],
                 "linear: input \(x.shape) and weight \(w.shape) need [..., K] and [K, N]")
    let (k, n) = (w.shape[0], w.shape[1])
    precondition(bias.shape == [n], "linear: bias \(bias.shape) must be [\(n)] for weight \(w.shape)")
    let rows = ShapeMath.count(Array(x.shape.dropLast()))
    let result = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [n])
    GEMM.multiply(transposeA: false, transposeB: false, m: rows, n: n, k: k, a: x.pointer, lda: k, b: w.pointer, ldb: n,
                  c: result.pointer, ldc: n, bias: bias.pointer)
    return result.recorded(from: [x, w, bias]) { g, t in
        let g2 = g.reshaped(to: [rows, n])
        let dx: Tensor? = t[0] ? matmul(g2, w, transposeB: true).reshaped(to: x.shape) : nil
        if t[1] && t[2] {
            // Both from one read of G: its column sums are taken while the weight gradient's product packs it.
            let dw = Tensor(uninitializedShape: [k, n]), db = Tensor(uninitializedShape: [n])
            GEMM.multiplyTransposedA(m: k, n: n, k: rows, a: x.pointer, lda: k, b: g2.pointer, ldb: n, c: dw.pointer, ldc: n,
                                     columnSums: db.pointer)
            return withExtendedLifetime((x, g2)) { [dx, dw, db] }
        }
        let dw: Tensor? = t[1] ? matmul(x.reshaped(to: [rows, k]), g2, transposeA: true) : nil
        let db: Tensor? = t[2] ? g2.summed(toShape: [n]) : nil
        return [dx, dw, db]
    }
}

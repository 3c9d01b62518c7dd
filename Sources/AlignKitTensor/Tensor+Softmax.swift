// Softmax and log-softmax along an axis, stable (max subtracted), fused forward and backward.
//   softmax:     y = e^(x - m) / Σ e^(x - m);   dx = y ⊙ (g - Σ g ⊙ y)
//   log-softmax: y = x - m - log Σ e^(x - m);   dx = g - softmax(x) ⊙ Σ g
import CAlignKitKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    /// Runs `body(row, n)` over every row of length n along `axis` (gathered into a contiguous
    /// scratch row when the axis is not the last), writing results back.
    private func rowwise(_ axis: Int, _ operation: String, inputs: [Tensor],
                         _ body: (_ rows: [UnsafeMutablePointer<Float>], _ out: UnsafeMutablePointer<Float>, _ n: Int) -> Void) -> Tensor {
        let a = ShapeMath.axis(axis, rank: rank, operation: operation)
        let (outer, n, inner) = split3(a)
        let result = Tensor(uninitializedShape: shape)
        let count = inputs.count
        if inner == 1 {
            let bases = UncheckedSendable(inputs.map(\.pointer)), out = UncheckedSendable(result.pointer)
            Parallel.forChunks(outer, grain: Swift.max(1, (1 << 14) / Swift.max(n, 1))) { range in
                for o in range { body(bases.value.map { $0 + o * n }, out.value + o * n, n) }
            }
            return result
        }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: (count + 1) * n)
        defer { scratch.deallocate() }
        for o in 0..<outer {
            for e in 0..<inner {
                for (t, input) in inputs.enumerated() {
                    for i in 0..<n { scratch[t * n + i] = input.pointer[(o * n + i) * inner + e] }
                }
                let rows = (0..<count).map { scratch + $0 * n }
                let out = scratch + count * n
                body(rows, out, n)
                for i in 0..<n { result.pointer[(o * n + i) * inner + e] = out[i] }
            }
        }
        return result
    }

    /// Softmax along `axis` (default: last). Each slice along the axis sums to 1.
    public func softmax(alongAxis axis: Int = -1) -> Tensor {
        let y = rowwise(axis, "softmax", inputs: [self]) { rows, out, n in
            let x = rows[0]
            let inv = 1 / shiftedExponentials(x, n, into: out).sum
            for i in 0..<n { out[i] *= inv }
        }
        return y.recorded(from: [self]) { g, _ in
            [g.rowwise(axis, "softmax backward", inputs: [g, y]) { rows, out, n in
                let g = rows[0], y = rows[1]
                var dot: Float = 0
                for i in 0..<n { dot += g[i] * y[i] }
                for i in 0..<n { out[i] = y[i] * (g[i] - dot) }
            }]
        }
    }

    /// Log-softmax along `axis` (default: last): x - log Σ eˣ, stable.
    public func logSoftmax(alongAxis axis: Int = -1) -> Tensor {
        let y = rowwise(axis, "logSoftmax", inputs: [self]) { rows, out, n in
            let x = rows[0]
            let (m, s) = shiftedExponentials(x, n, into: out)  // out is scratch here
            let shift = m + logf(s)
            for i in 0..<n { out[i] = x[i] - shift }
        }
        return y.recorded(from: [self]) { g, _ in
            [g.rowwise(axis, "logSoftmax backward", inputs: [g, y]) { rows, out, n in
                let g = rows[0], y = rows[1]
                var total: Float = 0
                for i in 0..<n { total += g[i] }
                ak_vexp(y, out, Int64(n))
                for i in 0..<n { out[i] = g[i] - out[i] * total }
            }]
        }
    }
}

/// e^(x − m) of a row of n values into `y`, and their sum, m being the row's largest value (0 when that is
/// not finite, as in a fully masked row): the stable first half of softmax, log-softmax and the fused
/// cross-entropy.
func shiftedExponentials(_ x: UnsafePointer<Float>, _ n: Int, into y: UnsafeMutablePointer<Float>) -> (shift: Float, sum: Float) {
    var m = ak_row_max(x, Int64(n))
    if !m.isFinite { m = 0 }
    return (m, ak_vexp_shifted_sum(x, m, y, Int64(n)))
}

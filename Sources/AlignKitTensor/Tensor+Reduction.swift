// Reductions along axes: sum, mean, max, logsumexp, variance. `…(alongAxes:)` keeps the reduced
// axes with size 1; `…(squeezingAxes:)` drops them; no axes means all axes.
import CAlignKitKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    func normalizedAxes(_ axes: [Int], _ operation: String) -> [Int] {
        let list = axes.isEmpty ? Array(0..<rank) : axes.map { ShapeMath.axis($0, rank: rank, operation: operation) }
        return Array(Set(list)).sorted()
    }

    /// Sum over one axis of the [outer, n, inner] view, keeping the axis as size 1 (no tape record).
    func sumKernel(axis: Int) -> Tensor {
        let (outer, n, inner) = split3(axis)
        var outShape = shape; outShape[axis] = 1
        let result = Tensor(uninitializedShape: outShape)
        let src = pointer, dst = result.pointer
        if inner == 1 {
            Parallel.forChunks(outer, grain: Swift.max(1, (1 << 15) / Swift.max(n, 1))) { range in
                for o in range {
                    let row = src + o * n
                    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
                    var i = 0
                    while i + 4 <= n { s0 += row[i]; s1 += row[i + 1]; s2 += row[i + 2]; s3 += row[i + 3]; i += 4 }
                    while i < n { s0 += row[i]; i += 1 }
                    dst[o] = (s0 + s1) + (s2 + s3)
                }
            }
        } else {
            // Column sums (a bias's gradient: [rows, features] summed over the rows): the threads split the columns.
            let sendSource = UncheckedSendable(src), sendDestination = UncheckedSendable(dst)
            for o in 0..<outer {
                Parallel.forChunks(inner, grain: Swift.max(16, (1 << 15) / Swift.max(n, 1))) { columns in
                    let (lo, count) = (columns.lowerBound, columns.count)
                    ak_column_sums(sendSource.value + o * n * inner + lo, Int64(inner), Int64(n), Int64(count),
                                   sendDestination.value + o * inner + lo)
                }
            }
        }
        return result
    }

    /// Sum over `axes` (all when empty), keeping them with size 1. Gradient: g broadcast back.
    public func sum(alongAxes axes: [Int] = []) -> Tensor {
        let list = normalizedAxes(axes, "sum")
        var result = self.detached()
        for a in list { result = result.sumKernel(axis: a) }
        let fullShape = shape
        return result.recorded(from: [self]) { g, _ in [g.broadcastCopy(to: fullShape)] }
    }

    /// Sum over `axes`, dropping them.
    public func sum(squeezingAxes axes: [Int]) -> Tensor {
        let list = normalizedAxes(axes, "sum")
        return sum(alongAxes: list).reshaped(to: shape.enumerated().filter { !list.contains($0.offset) }.map(\.element))
    }

    /// Sum of all elements, shape [].
    public func sum() -> Tensor { sum(alongAxes: []).reshaped(to: []) }

    /// Mean over `axes` (all when empty), keeping them.
    public func mean(alongAxes axes: [Int] = []) -> Tensor {
        let list = normalizedAxes(axes, "mean")
        let n = list.reduce(1) { $0 * shape[$1] }
        return sum(alongAxes: list).scaled(by: 1 / Float(Swift.max(n, 1)))
    }

    /// Mean over `axes`, dropping them.
    public func mean(squeezingAxes axes: [Int]) -> Tensor {
        let list = normalizedAxes(axes, "mean")
        return mean(alongAxes: list).reshaped(to: shape.enumerated().filter { !list.contains($0.offset) }.map(\.element))
    }

    /// Mean of all elements, shape [].
    public func mean() -> Tensor { mean(alongAxes: []).reshaped(to: []) }

    /// Maximum over one axis, kept. The gradient goes to the first maximal element.
    func maxOneAxis(_ axis: Int) -> Tensor {
        let (outer, n, inner) = split3(axis)
        precondition(n > 0, "max: axis \(axis) of \(shape) is empty")
        var outShape = shape; outShape[axis] = 1
        let result = Tensor(uninitializedShape: outShape)
        var argmax = [Int](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for e in 0..<inner {
                var best = -Float.infinity, bestIndex = 0
                for i in 0..<n {
                    let v = pointer[(o * n + i) * inner + e]
                    if i == 0 || v > best { best = v; bestIndex = i }
                }
                result.pointer[o * inner + e] = best
                argmax[o * inner + e] = bestIndex
            }
        }
        let fullShape = shape
        return result.recorded(from: [self]) { g, _ in
            let full = Tensor.zeros(fullShape)
            for o in 0..<outer { for e in 0..<inner { full.pointer[(o * n + argmax[o * inner + e]) * inner + e] = g.pointer[o * inner + e] } }
            return [full]
        }
    }

    /// The index of the first largest element of each row along the last axis (no gradient).
    public func argmaxAlongLastAxis() -> [Int] {
        precondition(rank >= 1 && shape[rank - 1] > 0, "argmaxAlongLastAxis: needs a non-empty last axis, got \(shape)")
        let n = shape[rank - 1]
        return (0..<(scalarCount / n)).map { row in
            let base = pointer + row * n
            var best = 0
            for i in 1..<n where base[i] > base[best] { best = i }
            return best
        }
    }

    /// Maximum over `axes` (all when empty), kept. Gradient to the first maximal element.
    public func max(alongAxes axes: [Int] = []) -> Tensor {
        var result = self
        for a in normalizedAxes(axes, "max") { result = result.maxOneAxis(a) }
        return result
    }

    /// Maximum over `axes`, dropped.
    public func max(squeezingAxes axes: [Int]) -> Tensor {
        let list = normalizedAxes(axes, "max")
        return max(alongAxes: list).reshaped(to: shape.enumerated().filter { !list.contains($0.offset) }.map(\.element))
    }

    /// Minimum over `axes`, kept: -max(-x).
    public func min(alongAxes axes: [Int] = []) -> Tensor { negated().max(alongAxes: axes).negated() }

    /// log Σ exp(x) over `axes`, kept, computed as m + log Σ exp(x - m) with m the (constant) maximum.
    /// Gradient: softmax(x) g.
    public func logSumExp(alongAxes axes: [Int] = []) -> Tensor {
        let list = normalizedAxes(axes, "logSumExp")
        let m = withoutGradient { max(alongAxes: list) }.mapped { $0.isFinite ? $0 : 0 }
        return subtracting(m).exp().sum(alongAxes: list).log().adding(m)
    }

    /// Population variance over `axes` (all when empty), kept: mean((x - mean)²).
    public func variance(alongAxes axes: [Int] = [], unbiased: Bool = false) -> Tensor {
        let list = normalizedAxes(axes, "variance")
        let n = list.reduce(1) { $0 * shape[$1] }
        let centered = subtracting(mean(alongAxes: list))
        let squares = centered.multiplying(centered).sum(alongAxes: list)
        return squares.scaled(by: 1 / Float(Swift.max(unbiased ? n - 1 : n, 1)))
    }
}

// Elementwise loops shared by the operations: map, zip, broadcast reads; parallel when large.
import CAlignKitKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    /// `f` applied to every element (no tape record).
    @inline(__always)
    func mapped(_ f: (Float) -> Float) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let x = pointer, y = result.pointer
        Parallel.forChunks(scalarCount) { range in
            for i in range { y[i] = f(x[i]) }
        }
        return result
    }

    /// A vectorized array function (from CAlignKitKernels) applied to every element, in parallel chunks.
    func mapped(vectorized f: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int64) -> Void) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let x = UncheckedSendable(pointer), y = UncheckedSendable(result.pointer)
        Parallel.forChunks(scalarCount) { range in
            f(x.value + range.lowerBound, y.value + range.lowerBound, Int64(range.count))
        }
        return result
    }

    /// `f` applied to pairs of elements of two tensors of the same shape (no tape record).
    @inline(__always)
    static func zipped(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape, "zip: shapes \(a.shape) and \(b.shape) differ")
        let result = Tensor(uninitializedShape: a.shape)
        let pa = a.pointer, pb = b.pointer, py = result.pointer
        Parallel.forChunks(a.scalarCount) { range in
            for i in range { py[i] = f(pa[i], pb[i]) }
        }
        return result
    }

    /// a + b for two tensors of the same shape, 16 lanes at a time (no tape record).
    static func summed(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
        let result = Tensor(uninitializedShape: a.shape)
        let pointers = UncheckedSendable((a.pointer, b.pointer, result.pointer))
        Parallel.forChunks(a.scalarCount) { range in
            let (pa, pb, py) = pointers.value
            ak_vadd(pa + range.lowerBound, pb + range.lowerBound, py + range.lowerBound, Int64(range.count))
        }
        return result
    }

    /// `f` applied to triples of elements of three tensors of the same shape (no tape record).
    @inline(__always)
    static func zipped(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape && b.shape == c.shape, "zip: shapes \(a.shape), \(b.shape), \(c.shape) differ")
        let result = Tensor(uninitializedShape: a.shape)
        let pa = a.pointer, pb = b.pointer, pc = c.pointer, py = result.pointer
        Parallel.forChunks(a.scalarCount) { range in
            for i in range { py[i] = f(pa[i], pb[i], pc[i]) }
        }
        return result
    }

    /// A copy of this tensor broadcast to `target` (no tape record).
    func broadcastCopy(to target: [Int]) -> Tensor {
        if shape == target { return detached() }
        return stridedCopy(shape: target, strides: ShapeMath.broadcastStrides(shape, to: target))
    }

    /// A contiguous tensor of `outShape` whose element at index i reads this storage at Σ iₐ · strides[a]
    /// (strides 0 broadcast; permuted strides transpose). No tape record.
    func stridedCopy(shape outShape: [Int], strides: [Int]) -> Tensor {
        let result = Tensor(uninitializedShape: outShape)
        let src = pointer, dst = result.pointer
        let rank = outShape.count
        guard rank > 0 else { dst[0] = src[0]; return result }
        let inner = outShape[rank - 1], innerStride = strides[rank - 1]
        let outerCount = result.scalarCount / Swift.max(inner, 1)
        var index = [Int](repeating: 0, count: rank)
        var offset = 0
        for row in 0..<outerCount {
            let out = dst + row * inner
            if innerStride == 0 {
                out.initialize(repeating: src[offset], count: inner)
            } else if innerStride == 1 {
                out.update(from: src + offset, count: inner)
            } else {
                for j in 0..<inner { out[j] = src[offset + j * innerStride] }
            }
            // Advance the multi-index over the outer axes.
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                offset += strides[axis]
                if index[axis] < outShape[axis] { break }
                offset -= strides[axis] * index[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// `f(a, b)` elementwise with NumPy broadcasting (no tape record). Fast paths for equal
    /// shapes, a one-element operand, and an operand that repeats along leading or trailing axes.
    @inline(__always)
    static func broadcasting(_ a: Tensor, _ b: Tensor, operation: String, _ f: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape { return zipped(a, b, f) }
        guard let shape = ShapeMath.broadcast(a.shape, b.shape) else {
            preconditionFailure("\(operation): shapes \(a.shape) and \(b.shape) are not broadcast-compatible")
        }
        if b.scalarCount == 1 && shape == a.shape {
            let s = b.pointer[0]
            return a.mapped { f($0, s) }
        }
        if a.scalarCount == 1 && shape == b.shape {
            let s = a.pointer[0]
            return b.mapped { f(s, $0) }
        }
        let result = Tensor(uninitializedShape: shape)
        let py = result.pointer
        if shape == a.shape, let (period, repeatEach) = repetition(of: b.shape, in: shape) {
            repeating(full: a.pointer, small: b.pointer, period: period, repeatEach: repeatEach, count: result.scalarCount, into: py) { f($0, $1) }
            return result
        }
        if shape == b.shape, let (period, repeatEach) = repetition(of: a.shape, in: shape) {
            repeating(full: b.pointer, small: a.pointer, period: period, repeatEach: repeatEach, count: result.scalarCount, into: py) { f($1, $0) }
            return result
        }
        let ea = a.broadcastCopy(to: shape), eb = b.broadcastCopy(to: shape)
        let pa = ea.pointer, pb = eb.pointer
        Parallel.forChunks(result.scalarCount) { range in
            for i in range { py[i] = f(pa[i], pb[i]) }
        }
        return result
    }

    /// y[i] = f(full[i], small[(i / repeatEach) % period]) as three nested loops (no division):
    /// blocks of `period · repeatEach` elements, each running through `small` once.
    @inline(__always)
    static func repeating(full: UnsafeMutablePointer<Float>, small: UnsafeMutablePointer<Float>, period: Int, repeatEach: Int,
                          count: Int, into y: UnsafeMutablePointer<Float>, _ f: (Float, Float) -> Float) {
        let block = period * repeatEach
        let blocks = count / block
        Parallel.forChunks(blocks, grain: Swift.max(1, (1 << 15) / Swift.max(block, 1))) { range in
            for o in range {
                let base = o * block
                if repeatEach == 1 {
                    for p in 0..<period { y[base + p] = f(full[base + p], small[p]) }
                } else {
                    for p in 0..<period {
                        let s = small[p], start = base + p * repeatEach
                        for e in start..<(start + repeatEach) { y[e] = f(full[e], s) }
                    }
                }
            }
        }
    }

    /// When `small` broadcast to `full` reads element `(i / repeatEach) % period` for flat index i
    /// (its non-one axes form one contiguous block), returns those two numbers.
    static func repetition(of small: [Int], in full: [Int]) -> (period: Int, repeatEach: Int)? {
        let padded = [Int](repeating: 1, count: full.count - small.count) + small
        guard let first = padded.firstIndex(where: { $0 != 1 }) else { return (1, 1) }
        let last = padded.lastIndex(where: { $0 != 1 })!
        for axis in first...last where padded[axis] != full[axis] { return nil }
        let period = padded[first...last].reduce(1, *)
        let repeatEach = full[(last + 1)...].reduce(1, *)
        return (period, repeatEach)
    }

    /// Sums this gradient over broadcast axes so that it has `target` shape (no tape record).
    func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        precondition(offset >= 0, "summed(toShape:): cannot reduce \(shape) to \(target)")
        var axes: [Int] = Array(0..<offset)
        for (i, size) in target.enumerated() where size == 1 && shape[i + offset] != 1 { axes.append(i + offset) }
        return sum(alongAxes: axes).reshaped(to: target)
    }
}

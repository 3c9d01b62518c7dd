// Movement operations: reshape, permute, slice, concatenate, stack, split, gather, broadcast.
// Each copies into a new contiguous tensor (reshape shares storage) and records its inverse movement.

extension Tensor {
    /// The same elements with a new shape (one axis may be -1: inferred). Shares storage.
    public func reshaped(to newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            precondition(known > 0 && scalarCount % known == 0, "reshape: cannot reshape \(shape) to \(newShape)")
            resolved[inferred] = scalarCount / known
        }
        precondition(ShapeMath.count(resolved) == scalarCount && resolved.allSatisfy { $0 >= 0 },
                     "reshape: cannot reshape \(shape) (\(scalarCount) elements) to \(newShape)")
        let oldShape = shape   // the pullback keeps the shape, not the buffer
        return Tensor(shape: resolved, storage: storage).recorded(from: [self]) { g, _ in [g.reshaped(to: oldShape)] }
    }

    /// Inserts an axis of size 1 at `axis`.
    public func expandingShape(at axis: Int) -> Tensor {
        let a = ShapeMath.axis(axis, rank: rank + 1, operation: "expandingShape")
        var s = shape; s.insert(1, at: a)
        return reshaped(to: s)
    }

    /// Removes axes of size 1.
    public func squeezingShape(at axes: Int...) -> Tensor {
        let normalized = Set(axes.map { ShapeMath.axis($0, rank: rank, operation: "squeezingShape") })
        for a in normalized { precondition(shape[a] == 1, "squeezingShape: axis \(a) of \(shape) has size \(shape[a]), not 1") }
        return reshaped(to: shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element))
    }

    /// This tensor broadcast to `target` (a copy). Gradient: summed over the broadcast axes.
    public func expanded(to target: [Int]) -> Tensor {
        precondition(ShapeMath.broadcast(shape, target) == target, "expanded: cannot broadcast \(shape) to \(target)")
        let oldShape = shape
        return broadcastCopy(to: target).recorded(from: [self]) { g, _ in [g.summed(toShape: oldShape)] }
    }

    /// Axes reordered: axis i of the result is axis `permutation[i]` of `self`.
    public func transposed(permutation: [Int]) -> Tensor {
        precondition(permutation.sorted() == Array(0..<rank), "transposed: \(permutation) is not a permutation of 0..<\(rank)")
        if permutation == Array(0..<rank) { return self }
        let x = self
        var inverse = [Int](repeating: 0, count: rank)
        for (i, p) in permutation.enumerated() { inverse[p] = i }
        return permuteCopy(permutation).recorded(from: [x]) { g, _ in [g.transposed(permutation: inverse)] }
    }

    /// The last two axes swapped.
    public func transposed() -> Tensor {
        precondition(rank >= 2, "transposed: needs rank ≥ 2, got shape \(shape)")
        var p = Array(0..<rank); p.swapAt(rank - 1, rank - 2)
        return transposed(permutation: p)
    }

    private func permuteCopy(_ permutation: [Int]) -> Tensor {
        let inStrides = ShapeMath.strides(shape)
        return stridedCopy(shape: permutation.map { shape[$0] }, strides: permutation.map { inStrides[$0] })
    }

    /// Views the shape as [outer, size of axis, inner].
    func split3(_ axis: Int) -> (outer: Int, n: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// Elements `range` along `axis`. Gradient: zero-padded back to this shape.
    public func slice(alongAxis axis: Int, range: Range<Int>) -> Tensor {
        let a = ShapeMath.axis(axis, rank: rank, operation: "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a],
                     "slice: range \(range) is out of bounds for axis \(a) of shape \(shape)")
        let (outer, n, inner) = split3(a)
        var outShape = shape; outShape[a] = range.count
        let result = Tensor(uninitializedShape: outShape)
        let width = range.count * inner
        for o in 0..<outer {
            (result.pointer + o * width).update(from: pointer + (o * n + range.lowerBound) * inner, count: width)
        }
        let fullShape = shape
        return result.recorded(from: [self]) { g, _ in
            var full = Tensor.zeros(fullShape)
            for o in 0..<outer { (full.pointer + (o * n + range.lowerBound) * inner).update(from: g.pointer + o * width, count: width) }
            full.node = nil
            return [full]
        }
    }

    /// Splits along `axis` into pieces of the given sizes.
    public func split(sizes: [Int], alongAxis axis: Int) -> [Tensor] {
        let a = ShapeMath.axis(axis, rank: rank, operation: "split")
        precondition(sizes.reduce(0, +) == shape[a], "split: sizes \(sizes) do not add up to \(shape[a]) along axis \(a) of \(shape)")
        var start = 0
        return sizes.map { size in defer { start += size }; return slice(alongAxis: a, range: start..<(start + size)) }
    }

    /// Rows at `indices` along `axis` (an index select; an embedding lookup along axis 0).
    /// Result: axis size becomes `indices.count`. Gradient: scatter-added back.
    public func gathering(atIndices indices: [Int], alongAxis axis: Int = 0) -> Tensor {
        let a = ShapeMath.axis(axis, rank: rank, operation: "gathering")
        let (outer, n, inner) = split3(a)
        for i in indices { precondition(i >= 0 && i < n, "gathering: index \(i) is out of range 0..<\(n) along axis \(a) of \(shape)") }
        var outShape = shape; outShape[a] = indices.count
        let result = Tensor(uninitializedShape: outShape)
        let m = indices.count
        for o in 0..<outer {
            for (j, i) in indices.enumerated() {
                (result.pointer + (o * m + j) * inner).update(from: pointer + (o * n + i) * inner, count: inner)
            }
        }
        let fullShape = shape
        return result.recorded(from: [self]) { g, _ in
            let full = Tensor.zeros(fullShape)
            for o in 0..<outer {
                for (j, i) in indices.enumerated() {
                    let dst = full.pointer + (o * n + i) * inner, src = g.pointer + (o * m + j) * inner
                    for e in 0..<inner { dst[e] += src[e] }
                }
            }
            return [full]
        }
    }

    /// For each position of the other axes, the element at `indices[position]` along `axis`
    /// (take-along-axis with one index per position). Result: this shape with `axis` of size 1.
    public func gathering(alongAxis axis: Int, indices: [Int]) -> Tensor {
        let a = ShapeMath.axis(axis, rank: rank, operation: "gathering(alongAxis:)")
        let (outer, n, inner) = split3(a)
        precondition(indices.count == outer * inner, "gathering(alongAxis:): \(indices.count) indices for \(outer * inner) positions of \(shape)")
        var outShape = shape; outShape[a] = 1
        let result = Tensor(uninitializedShape: outShape)
        for o in 0..<outer {
            for e in 0..<inner {
                let i = indices[o * inner + e]
                precondition(i >= 0 && i < n, "gathering(alongAxis:): index \(i) is out of range 0..<\(n)")
                result.pointer[o * inner + e] = pointer[(o * n + i) * inner + e]
            }
        }
        let fullShape = shape
        return result.recorded(from: [self]) { g, _ in
            let full = Tensor.zeros(fullShape)
            for o in 0..<outer { for e in 0..<inner { full.pointer[(o * n + indices[o * inner + e]) * inner + e] += g.pointer[o * inner + e] } }
            return [full]
        }
    }
}

/// The tensors joined along `axis` (all other axes must match). Gradient: sliced back.
public func concatenate(_ tensors: [Tensor], alongAxis axis: Int) -> Tensor {
    precondition(!tensors.isEmpty, "concatenate: no tensors")
    let first = tensors[0]
    let a = ShapeMath.axis(axis, rank: first.rank, operation: "concatenate")
    for t in tensors {
        precondition(t.rank == first.rank && t.shape.enumerated().allSatisfy { $0.offset == a || $0.element == first.shape[$0.offset] },
                     "concatenate: shapes \(first.shape) and \(t.shape) differ outside axis \(a)")
    }
    let sizes = tensors.map { $0.shape[a] }
    var outShape = first.shape; outShape[a] = sizes.reduce(0, +)
    let result = Tensor(uninitializedShape: outShape)
    let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
    let total = outShape[a]
    var start = 0
    for (t, size) in zip(tensors, sizes) {
        for o in 0..<outer {
            (result.pointer + (o * total + start) * inner).update(from: t.pointer + o * size * inner, count: size * inner)
        }
        start += size
    }
    return result.recorded(from: tensors) { g, tracked in
        var offset = 0
        return sizes.enumerated().map { i, size in
            defer { offset += size }
            return tracked[i] ? g.slice(alongAxis: a, range: offset..<(offset + size)) : nil
        }
    }
}

/// The tensors (all of one shape) stacked along a new axis.
public func stack(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
    precondition(!tensors.isEmpty, "stack: no tensors")
    let a = ShapeMath.axis(axis, rank: tensors[0].rank + 1, operation: "stack")
    for t in tensors { precondition(t.shape == tensors[0].shape, "stack: shapes \(tensors[0].shape) and \(t.shape) differ") }
    return concatenate(tensors.map { $0.expandingShape(at: a) }, alongAxis: a)
}

// Tensor: an n-dimensional array of Float32 with value semantics over shared, copy-on-write
// storage, recorded on a gradient tape when it depends on a tensor being differentiated.
import CAlignKitKernels

/// An n-dimensional array of `Float`, row-major, with value semantics.
///
/// Copies share storage until one of them is mutated (copy on write); `reshaped(to:)` shares
/// storage too. Every operation is a non-mutating method or a free function; when one of its
/// inputs is being differentiated (see `valueWithGradient(at:of:)`), it is recorded on the tape.
public struct Tensor {
    /// The size of each dimension, outermost first.
    public private(set) var shape: [Int]
    var storage: TensorStorage
    /// The tape node that produced this tensor, when it is being differentiated.
    var node: TapeNode?

    init(shape: [Int], storage: TensorStorage) {
        precondition(ShapeMath.count(shape) == storage.count,
                     "Tensor: shape \(shape) needs \(ShapeMath.count(shape)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// An uninitialized tensor of `shape`, for kernels that write every element.
    init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        self.init(shape: shape, storage: TensorStorage(count: ShapeMath.count(shape)))
    }

    /// The number of dimensions.
    public var rank: Int { shape.count }
    /// The number of elements.
    public var scalarCount: Int { storage.count }

    /// A tensor of `shape` filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitializedShape: shape)
        storage.base.initialize(repeating: value, count: storage.count)
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }
    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }

    /// A tensor of `shape` holding `scalars` in row-major order.
    public init(_ scalars: [Float], shape: [Int]) {
        precondition(scalars.count == ShapeMath.count(shape),
                     "Tensor: \(scalars.count) scalars do not fill shape \(shape)")
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: scalars.count) }
    }

    /// A tensor of `shape` whose elements `body` writes (all of them) in row-major order.
    public init(shape: [Int], writingWith body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.init(uninitializedShape: shape)
        try body(UnsafeMutableBufferPointer(start: storage.base, count: storage.count))
    }

    /// A rank-1 tensor holding `scalars`.
    public init(_ scalars: [Float]) { self.init(scalars, shape: [scalars.count]) }

    /// A rank-2 tensor from rows of equal length.
    public init(rows: [[Float]]) {
        let columns = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == columns }, "Tensor(rows:): rows have different lengths")
        self.init(rows.flatMap { $0 }, shape: [rows.count, columns])
    }

    /// A rank-0 tensor holding one value.
    public init(_ scalar: Float) { self.init([scalar], shape: []) }

    /// `[start, start + step, ...]` up to but not including `end`.
    public init(rangeFrom start: Float, to end: Float, stride step: Float = 1) {
        precondition(step != 0, "Tensor(rangeFrom:to:stride:): stride must not be zero")
        let count = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        self.init((0..<count).map { start + Float($0) * step })
    }

    /// Normally distributed values, `mean + standardDeviation * z`, z from `generator.nextNormal()`.
    public init(randomNormal shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                generator: inout RandomGenerator) {
        self.init(uninitializedShape: shape)
        for i in 0..<storage.count { storage.base[i] = mean + standardDeviation * generator.nextNormal() }
    }

    /// Normally distributed values from a fresh `RandomGenerator(seed:)`.
    public init(randomNormal shape: [Int], mean: Float = 0, standardDeviation: Float = 1, seed: UInt64) {
        var generator = RandomGenerator(seed: seed)
        self.init(randomNormal: shape, mean: mean, standardDeviation: standardDeviation, generator: &generator)
    }

    /// Uniformly distributed values in [lowerBound, upperBound).
    public init(randomUniform shape: [Int], lowerBound: Float = 0, upperBound: Float = 1,
                generator: inout RandomGenerator) {
        self.init(uninitializedShape: shape)
        let width = upperBound - lowerBound
        for i in 0..<storage.count { storage.base[i] = lowerBound + width * generator.nextUniform() }
    }

    /// Uniformly distributed values from a fresh `RandomGenerator(seed:)`.
    public init(randomUniform shape: [Int], lowerBound: Float = 0, upperBound: Float = 1, seed: UInt64) {
        var generator = RandomGenerator(seed: seed)
        self.init(randomUniform: shape, lowerBound: lowerBound, upperBound: upperBound, generator: &generator)
    }

    /// One-hot rows: shape `[indices.count, depth]`, 1 at each index. Not differentiable (no input).
    public init(oneHotAtIndices indices: [Int], depth: Int) {
        self.init(repeating: 0, shape: [indices.count, depth])
        for (row, index) in indices.enumerated() {
            precondition(index >= 0 && index < depth, "oneHot: index \(index) is out of range 0..<\(depth)")
            storage.base[row * depth + index] = 1
        }
    }

    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.base, count: storage.count)) }

    /// The single element of a one-element tensor.
    public var scalar: Float {
        precondition(storage.count == 1, "scalar: tensor of shape \(shape) has \(storage.count) elements, not 1")
        return storage.base[0]
    }

    /// The element at a full index.
    public subscript(index: Int...) -> Float {
        get { storage.base[flatIndex(index)] }
        set {
            let offset = flatIndex(index)
            makeUnique()
            storage.base[offset] = newValue
        }
    }

    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == rank, "subscript: \(index.count) indices for a tensor of rank \(rank)")
        var offset = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "subscript: index \(i) out of range for axis \(axis) of size \(shape[axis])")
            offset = offset * shape[axis] + i
        }
        return offset
    }

    /// Gives this tensor storage of its own before a write.
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// self += other (same shape, no tape record): in place when this storage has no other owner, else
    /// into a new tensor. Gradient accumulation uses it: a new sum each time was 6% of a bf16 DPO step
    /// (a fresh buffer written, and the old one read, for every tensor used twice).
    mutating func accumulate(_ other: Tensor) {
        precondition(shape == other.shape, "accumulate: shapes \(shape) and \(other.shape) differ")
        guard isKnownUniquelyReferenced(&storage) else { self = Tensor.summed(self, other); return }
        let y = UncheckedSendable(storage.base), x = UncheckedSendable(other.pointer)
        Parallel.forChunks(storage.count) { range in
            ak_vadd_inplace(y.value + range.lowerBound, x.value + range.lowerBound, Int64(range.count))
        }
    }

    /// Read-only access to the elements.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
    }

    /// Mutable access to the elements (the storage is made unique first).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: storage.count))
    }

    var pointer: UnsafeMutablePointer<Float> { storage.base }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = scalars.prefix(64).map { String(format: $0) }.joined(separator: ", ")
        let more = scalarCount > 64 ? ", … (\(scalarCount) elements)" : ""
        return "Tensor(shape: \(shape), [\(values)\(more)])"
    }
}

private func String(format value: Float) -> String {
    if value == value.rounded() && abs(value) < 1e7 { return "\(Int(value))" }
    return "\(value)"
}

/// @unchecked Sendable: storage is copy-on-write exactly as `Array`'s (a write first makes the
/// storage unique), so copies on different threads never share mutable memory; tape nodes are
/// mutated only by the backward walk of the `valueWithGradient` call that created them.
extension Tensor: @unchecked Sendable {}

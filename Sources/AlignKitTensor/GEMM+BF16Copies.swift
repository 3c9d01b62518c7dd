// bf16 copies of weight matrices for decoding. Sampling one token at a time reads every weight once per
// token and does two FLOPs per value read, so its speed is memory bandwidth; a bf16 copy halves the bytes.
// Under `--precision bf16` a product rounds both operands to bf16 anyway, so reading a copy made once
// (rounded to nearest even) gives the numbers that rounding B on every call would.
import CAlignKitKernels
import Synchronization

extension GEMM {
    /// A bf16 copy of one fp32 matrix (its values rounded to nearest even), 64 values of padding after
    /// the end (the kernels read whole 16-value vectors, masked lanes included, up to 63 values past a
    /// row's end). Freed with the last reference.
    final class BF16Copy: @unchecked Sendable {  // immutable after init; the buffer is only read
        let values: UnsafeMutablePointer<UInt16>
        let count: Int

        init(of source: UnsafePointer<Float>, count: Int) {
            self.count = count
            values = .allocate(capacity: count + 64)
            (values + count).initialize(repeating: 0, count: 64)
            ak_convert_bf16(source, values, Int64(count))
        }

        deinit { values.deallocate() }
    }

    private struct Registration { let copy: BF16Copy; var scopes: Int }
    private static let bf16Copies = Mutex<[UInt: Registration]>([:])

    /// Runs `body` with bf16 copies of `matrices` (rank-2 tensors; others are skipped) standing in for
    /// them in products of at most `skinnyRowLimit` rows, when the precision is bf16 and the AVX-512 path
    /// is selected; otherwise just runs `body`. Such a product then rounds its few rows of A to bf16 as
    /// well, like every other bf16 product. The matrices must not change while `body` runs (sampling
    /// wraps its decoding loop in this; training inside would read stale copies). Scopes nest.
    public static func withBF16Copies<R>(of matrices: [Tensor], _ body: () throws -> R) rethrows -> R {
        guard precision == .bf16, path == .avx512 else { return try body() }
        // Each key keeps its tensor alive until the scope ends, so no other buffer can take its address
        // (and its copy) meanwhile.
        let keys = matrices.filter { $0.rank == 2 && $0.scalarCount > 0 }.map { ($0, UInt(bitPattern: $0.pointer)) }
        bf16Copies.withLock { copies in
            for (matrix, key) in keys {
                if copies[key] != nil { copies[key]!.scopes += 1; continue }
                copies[key] = Registration(copy: BF16Copy(of: matrix.pointer, count: matrix.scalarCount), scopes: 1)
            }
        }
        defer {
            bf16Copies.withLock { copies in
                for (_, key) in keys {
                    copies[key]!.scopes -= 1
                    if copies[key]!.scopes == 0 { copies[key] = nil }
                }
            }
        }
        return try body()
    }

    /// The bf16 copy standing in for the matrix at `b` that holds at least `count` values, if any.
    static func bf16Copy(of b: UnsafePointer<Float>, count: Int) -> BF16Copy? {
        let key = UInt(bitPattern: b)
        return bf16Copies.withLock { copies in
            guard let copy = copies[key]?.copy, copy.count >= count else { return nil }
            return copy
        }
    }
}

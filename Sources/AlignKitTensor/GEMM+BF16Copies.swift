// bf16 copies of weight matrices for decoding. Sampling one token at a time reads every weight once per
// token and does two FLOPs per value read, so its speed is memory bandwidth; a bf16 copy halves the bytes.
// On CPUs with AMX the copy is kept packed in AMX tiles, so that a few rows (a batch of sequences) take
// no more instructions than one: TDPBF16PS does a 16 x 16 x 32 block at a time.
// Under `--precision bf16` a product rounds both operands to bf16 anyway, so reading a copy made once
// (rounded to nearest even) gives the numbers that rounding B on every call would.
import CAlignKitKernels
import Synchronization

extension GEMM {
    /// bf16 copies of one fp32 matrix (values rounded to nearest even), made on first use and freed with the
    /// last reference: `values`, the matrix as it lies (64 values of padding after the end: the AVX-512
    /// kernels read whole 16-value vectors, masked lanes included, up to 63 values past a row's end), and,
    /// on CPUs with AMX, `amxTiles`, the matrix packed as op(B) tiles for `ak_sgemm_amx_block`, one packing
    /// per way the products use it (as B, or as Bᵀ for a tied head). The source must not change while the
    /// copy is registered.
    final class BF16Copy: @unchecked Sendable {  // the fp32 source is only read; the copies go through `state`
        struct Packing: Hashable { let transposed: Bool, k: Int, n: Int, ld: Int }
        private struct State {
            var values: UnsafeMutablePointer<UInt16>?
            var tiles: [Packing: UnsafeMutablePointer<UInt16>] = [:]
        }
        let source: UnsafePointer<Float>
        let count: Int
        private let state = Mutex(State())

        init(of source: UnsafePointer<Float>, count: Int) {
            self.source = source
            self.count = count
        }

        var values: UnsafeMutablePointer<UInt16> {
            state.withLock { state in
                if let values = state.values { return values }
                let values = UnsafeMutablePointer<UInt16>.allocate(capacity: count + 64)
                (values + count).initialize(repeating: 0, count: 64)
                ak_convert_bf16(source, values, Int64(count))
                state.values = values
                return values
            }
        }

        /// op(B) (k x n: the source with leading dimension `ld`, transposed or not) packed whole into AMX
        /// tiles, zero-padded to whole 32 x 32 blocks: column tile s, k block q at (s * kblocks + q) * 512.
        func amxTiles(transposed: Bool, k: Int, n: Int, ld: Int) -> UnsafeMutablePointer<UInt16> {
            let packing = Packing(transposed: transposed, k: k, n: n, ld: ld)
            return state.withLock { state in
                if let tiles = state.tiles[packing] { return tiles }
                let columns = (n + 31) / 32 * 32, kblocks = (k + 31) / 32
                let tiles = UnsafeMutablePointer<UInt16>.allocate(capacity: columns * kblocks * 32)
                ak_pack_bf16_b(source, Int64(ld), transposed ? 1 : 0, Int64(k), Int64(n), 0, Int64(columns), tiles)
                state.tiles[packing] = tiles
                return tiles
            }
        }

        deinit {
            state.withLock { state in
                state.values?.deallocate()
                for tiles in state.tiles.values { tiles.deallocate() }
            }
        }
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

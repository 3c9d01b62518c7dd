// Single-precision GEMM: packed, blocked, multithreaded (Goto & van de Geijn, "Anatomy of
// High-Performance Matrix Multiplication", 2008), around SIMD micro-kernels in CAlignKitKernels.
//
// C[M x N] = op(A)[M x K] * op(B)[K x N] (+ C), row-major, op = identity or transpose.
// Loops, outermost first: pc over KC of K; column groups, one per thread (pack the group's KC-deep
// slice of B into NR-wide panels); blocks of NC columns and 8 MR-row panels; ir over MR rows (pack
// that A micro-panel, which stays in L1); jr over the block's NR panels of B (streaming from L2).
import CAlignKitKernels
import Synchronization

/// The matrix-multiplication kernels and how they are chosen.
public enum GEMM {
    /// Which micro-kernel runs the inner loop.
    public enum Path: String, CaseIterable, Sendable {
        /// AVX-512 14 x 32 kernel.
        case avx512
        /// AVX2 + FMA 6 x 16 kernel.
        case avx2
        /// Plain C 4 x 16 kernel, for any CPU.
        case portable
    }

    /// The environment variable that forces a path (`avx512`, `avx2`, `portable`).
    public static let environmentVariable = "ALIGNKIT_GEMM"

    /// The paths this CPU can run, fastest first.
    public static var supportedPaths: [Path] {
        let features = ak_cpu_features()
        var paths: [Path] = []
        if features & Int32(AK_CPU_AVX512F) != 0 { paths.append(.avx512) }
        if features & Int32(AK_CPU_AVX2_FMA) != 0 { paths.append(.avx2) }
        paths.append(.portable)
        return paths
    }

    private static let selected = Atomic<Int>(GEMM.defaultPathIndex())

    private static func defaultPathIndex() -> Int {
        let supported = supportedPaths
        if let text = getenv(environmentVariable), let path = Path(rawValue: String(cString: text)),
           supported.contains(path) {
            return Path.allCases.firstIndex(of: path)!
        }
        return Path.allCases.firstIndex(of: supported[0])!
    }

    /// The path in use. Setting an unsupported path is a programmer error.
    public static var path: Path {
        get { Path.allCases[selected.load(ordering: .relaxed)] }
        set {
            precondition(supportedPaths.contains(newValue), "GEMM.path: \(newValue) is not supported on this CPU")
            selected.store(Path.allCases.firstIndex(of: newValue)!, ordering: .relaxed)
        }
    }

    /// The precision of the products.
    public enum Precision: String, CaseIterable, Sendable {
        case fp32
        /// Both operands rounded to bf16 (nearest even) and the products accumulated in fp32 (what
        /// PyTorch's bf16 autocast does to a matmul, though here the result stays fp32): on AMX when the
        /// CPU has it and the AVX-512 path is selected, else the fp32 kernels on rounded operands (the same
        /// numbers up to summation order). Products of at most `skinnyRowLimit` rows (decoding) stay fp32,
        /// except against a matrix with a bf16 copy in scope (`withBF16Copies`).
        case bf16
    }

    private static let selectedPrecision = Atomic<Int>(0)
    @TaskLocal private static var scopedPrecision: Precision?

    /// The precision in use: the innermost `withPrecision`'s, else the process-wide setting (fp32 unless
    /// set; `--precision bf16` sets it for a command).
    public static var precision: Precision {
        get { scopedPrecision ?? Precision.allCases[selectedPrecision.load(ordering: .relaxed)] }
        set { selectedPrecision.store(Precision.allCases.firstIndex(of: newValue)!, ordering: .relaxed) }
    }

    /// Runs `body` with products in `precision` on this task only (other tasks keep theirs).
    public static func withPrecision<R>(_ precision: Precision, _ body: () throws -> R) rethrows -> R {
        try $scopedPrecision.withValue(precision) { try body() }
    }

    /// Whether this CPU has AMX with bf16 and the OS granted its tile state.
    public static let hasAMX: Bool = {
        let features = ak_cpu_features()
        return features & Int32(AK_CPU_AMX_BF16) != 0 && features & Int32(AK_CPU_AVX512_BF16) != 0 && ak_amx_request() == 0
    }()

    /// Whether bf16 products run on AMX now.
    public static var usesAMX: Bool { precision == .bf16 && path == .avx512 && hasAMX && !amxSetAside }

    @TaskLocal private static var amxSetAside = false

    /// The settings of the products that task-local scopes (`withPrecision`, `withoutAMX`) set on the calling
    /// task; the pool's threads do not see them, so a kernel that calls GEMM from its own parallel loop
    /// takes them along (`Scope.current`, then `within`).
    struct Scope: Sendable {
        let precision: Precision, amxSetAside: Bool
        static var current: Scope { Scope(precision: GEMM.precision, amxSetAside: GEMM.amxSetAside) }
        func within<R>(_ body: () throws -> R) rethrows -> R {
            try $scopedPrecision.withValue(precision) { try $amxSetAside.withValue(amxSetAside) { try body() } }
        }
    }

    /// Runs `body` with AMX set aside: bf16 products then take the path of a CPU without it (the fp32
    /// kernels on rounded operands; bf16 weight copies read by the AVX-512 skinny kernels). For tests and
    /// comparisons.
    public static func withoutAMX<R>(_ body: () throws -> R) rethrows -> R {
        try $amxSetAside.withValue(true) { try body() }
    }

    typealias InterleaveFunction = @convention(c) (UnsafePointer<Float>?, Int64, Int64, Int64, Int64, UnsafeMutablePointer<Float>?) -> Void

    struct Kernel {
        let mr: Int, nr: Int
        let run: ak_sgemm_kernel_fn
        /// The packing transpose that goes with this path, and the packing copy into many panels.
        let interleave: InterleaveFunction
        var copyPanels: InterleaveFunction = ak_pack_copy_panels
        /// `run` that also prefetches lines into L2 (`ak_prefetch_lines`), where the path has one.
        var runPrefetching: (@convention(c) (Int64, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
                                              Int64, Int64, Int64, Int32, UnsafePointer<ak_prefetch_lines>?) -> Void)? = nil
        /// `run` reading a row-major A where it lies instead of from a packed panel, where the path has one:
        /// `product` then packs only B (and a transposed A).
        var runRows: ak_sgemm_kernel_rows_fn? = nil
        /// `runRows` and `run` down a column of tiles (one B panel, many rows of A) in one call, with the bias
        /// added to each finished tile, where the path has them.
        var runRowsColumn: ak_sgemm_column_fn? = nil, runColumn: ak_sgemm_column_fn? = nil
        /// Blocking: KC (depth of a packed slice), MC (most rows in a tile), NC (most columns in a tile:
        /// the tile's B panels stay in L2).
        let kc: Int, mc: Int, nc: Int
    }

    static var kernel: Kernel {
        switch path {
        case .avx512: Kernel(mr: 14, nr: 32, run: ak_sgemm_kernel_avx512_14x32, interleave: ak_pack_interleave_avx512, copyPanels: ak_pack_copy_panels_avx512,
                              runPrefetching: ak_sgemm_kernel_avx512_14x32_prefetching, kc: 384, mc: 14 * 36, nc: 32 * 32)
        case .avx2: Kernel(mr: 6, nr: 16, run: ak_sgemm_kernel_avx2_6x16, interleave: ak_pack_interleave_avx2,
                           runRows: ak_sgemm_kernel_avx2_6x16_rows, runRowsColumn: ak_sgemm_avx2_6x16_rows_column,
                           runColumn: ak_sgemm_avx2_6x16_column, kc: 256, mc: 6 * 80, nc: 16 * 256)
        case .portable: Kernel(mr: 4, nr: 16, run: ak_sgemm_kernel_portable_4x16, interleave: ak_pack_interleave, kc: 256, mc: 4 * 64, nc: 16 * 128)
        }
    }

    /// C = op(A) op(B) (+ C when `accumulate`), row-major with leading dimensions lda, ldb, ldc.
    /// op(A) is m x k (A is k x m when `transposeA`), op(B) is k x n (B is n x k when `transposeB`).
    /// With `bias` (n values), bias[j] is added to every row of C as the product is stored.
    /// Runs on up to `Parallel.threadCount` threads.
    public static func multiply(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false, bias: UnsafePointer<Float>? = nil
    ) {
        multiplyBatched(transposeA: transposeA, transposeB: transposeB, batchCount: 1, m: m, n: n, k: k,
                        a: a, lda: lda, strideA: 0, b: b, ldb: ldb, strideB: 0, c: c, ldc: ldc, strideC: 0,
                        accumulate: accumulate, bias: bias)
    }

    /// `batchCount` independent products, the i-th reading A at `a + i * strideA` and so on.
    public static func multiplyBatched(
        transposeA: Bool, transposeB: Bool, batchCount: Int, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, strideA: Int, b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, accumulate: Bool = false, bias: UnsafePointer<Float>? = nil
    ) {
        multiplyBatched(transposeA: transposeA, transposeB: transposeB, batchCount: batchCount, m: m, n: n, k: k,
                        a: a, lda: lda, strideA: strideA, b: b, ldb: ldb, strideB: strideB, c: c, ldc: ldc, strideC: strideC,
                        accumulate: accumulate, bias: bias, threads: Parallel.threadCount)
    }

    /// `multiplyBatched` on at most `threads` threads (1: on the calling thread only, for kernels that
    /// run their own parallel loop around many small products).
    static func multiplyBatched(
        transposeA: Bool, transposeB: Bool, batchCount: Int, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, strideA: Int, b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, accumulate: Bool = false, bias: UnsafePointer<Float>? = nil,
        threads: Int
    ) {
        guard batchCount > 0, m > 0, n > 0 else { return }
        if m <= skinnyRowLimit {
            skinny(transposeA: transposeA, transposeB: transposeB, batchCount: batchCount, m: m, n: n, k: k, a: a, lda: lda,
                   strideA: strideA, b: b, ldb: ldb, strideB: strideB, c: c, ldc: ldc, strideC: strideC,
                   accumulate: accumulate, threads: threads)
            if let bias { for batch in 0..<batchCount { ak_add_row_vector(c + batch * strideC, Int64(ldc), Int64(m), Int64(n), bias) } }
            return
        }
        let kernel = self.kernel
        let flops = 2 * batchCount * m * n * k
        // Small work, or one thread: no parallel overhead.
        if threads == 1 || flops < parallelFlops {
            for batch in 0..<batchCount {
                product(kernel, transposeA, transposeB, m: m, n: n, k: k,
                        a: a + batch * strideA, lda: lda, b: b + batch * strideB, ldb: ldb,
                        c: c + batch * strideC, ldc: ldc, accumulate: accumulate, bias: bias, threads: 1)
            }
            return
        }
        // Many small products: whole products per task.
        if batchCount >= 2 * threads && flops / batchCount < 1 << 24 {
            let sendA = UncheckedSendable(a), sendB = UncheckedSendable(b), sendC = UncheckedSendable(c), sendBias = UncheckedSendable(bias)
            Parallel.forEach(batchCount) { batch in
                product(kernel, transposeA, transposeB, m: m, n: n, k: k,
                        a: sendA.value + batch * strideA, lda: lda, b: sendB.value + batch * strideB, ldb: ldb,
                        c: sendC.value + batch * strideC, ldc: ldc, accumulate: accumulate, bias: sendBias.value, threads: 1)
            }
            return
        }
        for batch in 0..<batchCount {
            product(kernel, transposeA, transposeB, m: m, n: n, k: k,
                    a: a + batch * strideA, lda: lda, b: b + batch * strideB, ldb: ldb,
                    c: c + batch * strideC, ldc: ldc, accumulate: accumulate, bias: bias, threads: threads)
        }
    }

    /// C = Aᵀ B for a row-major A (k x m) and B (k x n), and `columnSums` = B's column sums (over its k rows):
    /// a dense layer's weight and bias gradients (Xᵀ G and G's column sums) from one read of G, the sums taken
    /// while its rows are packed. Where the packed path does not run (at most 8 rows, AMX, k = 0) the sums are
    /// a separate pass.
    static func multiplyTransposedA(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                    c: UnsafeMutablePointer<Float>, ldc: Int, columnSums: UnsafeMutablePointer<Float>) {
        guard m > skinnyRowLimit, n > 0, k > 0, !usesAMX else {
            multiply(transposeA: true, transposeB: false, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
            ak_column_sums(b, Int64(ldb), Int64(k), Int64(n), columnSums)
            return
        }
        let threads = 2 * m * n * k < parallelFlops ? 1 : Parallel.threadCount
        product(kernel, true, false, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: false,
                threads: threads, columnSums: columnSums)
    }

    /// Fewest floating-point operations for which a product runs on more than one thread.
    static let parallelFlops = 1 << 21

    /// Most floats of packed B for which a deep product packs all of B at once (see `product`): 4 MB.
    static let wholeBLimit = 1 << 20

    /// Products of at most this many rows of op(A) skip packing (see `skinny`).
    public static let skinnyRowLimit = 8

    /// The fp32 skinny kernel for op(B) = B (nn) or Bᵀ (nt) on the selected path, for callers that run
    /// many small products inside their own parallel loop (decoding attention, one head per task).
    static func skinnyKernel(transposeB: Bool) -> ak_sgemm_skinny_fn {
        switch (transposeB, path) {
        case (true, .avx512): ak_sgemm_skinny_nt_avx512
        case (true, .avx2): ak_sgemm_skinny_nt_avx2
        case (true, .portable): ak_sgemm_skinny_nt_portable
        case (false, .avx512): ak_sgemm_skinny_nn_avx512
        case (false, .avx2): ak_sgemm_skinny_nn_avx2
        case (false, .portable): ak_sgemm_skinny_nn_portable
        }
    }

    /// Few rows of op(A) (sampling one token per sequence, attention while decoding): B streams once
    /// from memory through the skinny kernels instead of being packed on every call, which for M ≤ 8
    /// costs more than the product itself. From 128 KB of B the threads split it: along K (each a run of
    /// B's rows into its own copy of C) when B is row-major, else by columns, or by whole batches.
    static func skinny(
        transposeA: Bool, transposeB: Bool, batchCount: Int, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, strideA: Int, b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, accumulate: Bool, threads: Int
    ) {
        let avx512 = path == .avx512
        let fp32Run = skinnyKernel(transposeB: transposeB)
        // A weight with a bf16 copy in scope (decoding under bf16, see withBF16Copies): AMX reads the copy's
        // tiles, or the AVX-512 kernels read the copy itself with A's few rows rounded to bf16 into a scratch.
        let extent = transposeB ? (n - 1) * ldb + k : (k - 1) * ldb + n
        let copy = precision == .bf16 && avx512 && batchCount == 1 && k > 0 ? bf16Copy(of: b, count: extent) : nil
        if let copy, usesAMX {
            // The copy's AMX tiles stand in for packing B: productAMX packs A's rows (so rounds them) into one
            // 32-row tile pair and runs its blocks over the copy's tiles. At 8 rows the bf16 AVX-512 kernel
            // widens every value of B and spends 16 multiply-adds per 16 columns and two k steps; AMX does the
            // whole block in one instruction, and decoding is left bound by reading the copy.
            let small = ((k + 31) / 32) * ((n + 31) / 32) < 64
            productAMX(transposeA, transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                       accumulate: accumulate, bias: nil, threads: small ? 1 : threads,
                       packedB: copy.amxTiles(transposed: transposeB, k: k, n: n, ld: ldb))
            return
        }
        var a = a, lda = lda, transposeA = transposeA
        var rounded: UnsafeMutablePointer<Float>? = nil
        if copy != nil {
            let scratch = CachingAllocator.shared.allocate(floatCount: m * k)
            if transposeA {
                for i in 0..<m { for p in 0..<k { scratch[i * k + p] = a[p * lda + i] } }
            } else {
                for i in 0..<m { (scratch + i * k).update(from: a + i * lda, count: k) }
            }
            ak_round_bf16(scratch, Int64(m * k))
            (a, lda, transposeA, rounded) = (UnsafePointer(scratch), k, false, scratch)
        }
        defer { if let rounded { CachingAllocator.shared.deallocate(rounded, floatCount: m * k) } }
        let beta: Int32 = accumulate ? 1 : 0
        let plain = copy?.values
        let rsa = Int64(transposeA ? 1 : lda), csa = Int64(transposeA ? lda : 1)
        let send = UncheckedSendable((a, b, c, plain))
        /// C rows 0..<m, columns j0..<j1 (+)= A(:, p0..<p1) B(p0..<p1, j0..<j1), into `out` (row stride ldo).
        func part(_ batch: Int, _ j0: Int, _ j1: Int, _ p0: Int, _ p1: Int,
                  _ out: UnsafeMutablePointer<Float>, _ ldo: Int, _ beta: Int32) {
            let (a, b, _, plain) = send.value
            let offset = batch * strideB + (transposeB ? j0 * ldb + p0 : p0 * ldb + j0)
            let aa = a + batch * strideA + p0 * Int(csa)
            let (rows, columns, depth) = (Int64(m), Int64(j1 - j0), Int64(p1 - p0))
            if let plain {
                if transposeB {
                    ak_sgemm_skinny_nt_bf16_avx512(rows, columns, depth, aa, rsa, plain + offset, Int64(ldb), out, Int64(ldo), beta)
                } else {
                    ak_sgemm_skinny_nn_bf16_avx512(rows, columns, depth, aa, rsa, csa, plain + offset, Int64(ldb), out, Int64(ldo), beta)
                }
            } else {
                fp32Run(rows, columns, depth, aa, rsa, csa, b + offset, Int64(ldb), out, Int64(ldo), beta)
            }
        }
        func one(_ batch: Int, _ j0: Int, _ j1: Int) {
            part(batch, j0, j1, 0, k, send.value.2 + batch * strideC + j0, ldc, beta)
        }
        // These products are bound by reading B, so whether to split depends on B's size, not on the flops:
        // at one row, the attention's 384 x 384 projections (0.6 MB each, a third of a layer's weights) ran on one
        // thread under the old rule (2mnk < 2^19), which halved their rate. Split from 128 KB of B on.
        if threads == 1 || batchCount * k * n < 1 << 15 {
            for batch in 0..<batchCount { one(batch, 0, n) }
        } else if batchCount >= 2 * threads {
            Parallel.forEach(batchCount) { batch in one(batch, 0, n) }
        } else if !transposeB && k >= 64 * threads {
            // B row-major K x N: each thread takes a contiguous range of B's rows (a split of K) and sums into
            // its own copy of C; the copies are added at the end (m x n, small). Every thread then streams one
            // unbroken run of memory; column chunks read each row of B in short pieces, which streamed at half
            // the rate (8 x 384 x 1536 on 2 threads: 38 GFLOP/s in column chunks, 62-74 split along K).
            let parts = threads
            let scratch = CachingAllocator.shared.allocate(floatCount: (parts - 1) * m * n)
            defer { CachingAllocator.shared.deallocate(scratch, floatCount: (parts - 1) * m * n) }
            let sendScratch = UncheckedSendable(scratch)
            for batch in 0..<batchCount {
                Parallel.forEach(parts, maxThreads: threads) { t in
                    let p0 = k * t / parts / 8 * 8, p1 = t == parts - 1 ? k : k * (t + 1) / parts / 8 * 8
                    if t == 0 {
                        part(batch, 0, n, p0, p1, send.value.2 + batch * strideC, ldc, beta)
                    } else {
                        part(batch, 0, n, p0, p1, sendScratch.value + (t - 1) * m * n, n, 0)
                    }
                }
                let cb = c + batch * strideC
                for t in 1..<parts {
                    for i in 0..<m { ak_vadd_inplace(cb + i * ldc, scratch + (t - 1) * m * n + i * n, Int64(n)) }
                }
            }
        } else {
            // Column chunks, multiples of 32 (the nn kernel's width), about two per thread.
            let chunks = max(1, min(2 * threads, n / 32))
            let width = ((n + chunks - 1) / chunks + 31) / 32 * 32
            let count = (n + width - 1) / width
            for batch in 0..<batchCount {
                Parallel.forEach(count) { t in one(batch, t * width, min(n, (t + 1) * width)) }
            }
        }
    }

    /// The part of a product that causal attention reads, by row i of C (see `SharedPrefixPlan`). The
    /// terms left out must be exact zeros (probabilities above the diagonal, and their gradients), so the
    /// sums are the full product's; entries of C outside the part may be left unwritten.
    enum Causal {
        /// Row i needs columns j ≤ i (scores against a sequence's own keys).
        case columnsThroughRow
        /// Row i sums over p ≤ i (probabilities times the own values: op(A)(i, p) = 0 for p > i).
        case depthThroughRow
        /// Row i sums over p ≥ i (Pᵀ dY and dSᵀ Q: op(A)(i, p) = 0 for p < i).
        case depthFromRow
    }

    /// How far past a row's own part a causal product may read op(A) (see `multiplyCausal`): a whole
    /// panel (MR ≤ 16 rows) or fallback block (64 rows) is multiplied at once, so its first rows read up to
    /// that many of the zeros beyond their own columns or depths. Whoever writes those zeros (the
    /// attention's dS) must write them that far.
    static let causalReach = 64

    /// `causal`'s part of one product, on this thread: each MR-row panel stops at (or starts from) its last
    /// (first) row, and B is packed once. Where the packed path does not run (AMX, at most 8 rows) the rows
    /// go in blocks of 64 instead, each product stopping at its block's last row (or starting at its first).
    static func multiplyCausal(_ causal: Causal, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                               c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        guard m > 0, n > 0 else { return }
        if !usesAMX && m > skinnyRowLimit {
            return product(kernel, transposeA, transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                           c: c, ldc: ldc, accumulate: accumulate, threads: 1, causal: causal)
        }
        for i0 in stride(from: 0, to: m, by: causalReach) {
            let i1 = min(m, i0 + causalReach)
            // The block's columns, and its depths p0..<p1.
            let (columns, p0, p1) = switch causal {
            case .columnsThroughRow: (min(n, i1), 0, k)
            case .depthThroughRow: (n, 0, min(k, i1))
            case .depthFromRow: (n, min(k, i0), k)
            }
            multiplyBatched(transposeA: transposeA, transposeB: transposeB, batchCount: 1, m: i1 - i0, n: columns, k: p1 - p0,
                            a: transposeA ? a + p0 * lda + i0 : a + i0 * lda + p0, lda: lda, strideA: 0,
                            b: transposeB ? b + p0 : b + p0 * ldb, ldb: ldb, strideB: 0, c: c + i0 * ldc, ldc: ldc, strideC: 0,
                            accumulate: accumulate, threads: 1)
        }
    }

    /// One product. For each KC-deep slice, each thread packs its own group of B's columns and runs
    /// blocks of rows x columns (at most NC) of that group, then helps with the others' (see below).
    /// A block packs each A micro-panel (MR x KC) just before use, into a buffer that stays in L1
    /// while the block's B panels (KC x NC, sized for L2) stream past it; on AVX2, where A is read in
    /// place, the block's B panels take turns in L1 instead (see `columnsOuter`).
    static func product(
        _ kernel: Kernel, _ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, bias: UnsafePointer<Float>? = nil, threads: Int,
        causal: Causal? = nil, columnSums: UnsafeMutablePointer<Float>? = nil
    ) {
        precondition(columnSums == nil || (!transposeB && k > 0 && !usesAMX), "GEMM.product: column sums need a row-major B and k > 0, not AMX")
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).initialize(repeating: 0, count: n) } }
            if let bias { ak_add_row_vector(c, Int64(ldc), Int64(m), Int64(n), bias) }
            return
        }
        if usesAMX {
            return productAMX(transposeA, transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                              accumulate: accumulate, bias: bias, threads: threads)
        }
        let mr = kernel.mr, nr = kernel.nr
        let aPanels = (m + mr - 1) / mr, bPanels = (n + nr - 1) / nr
        // On AVX2 a product at most 384 deep runs in one slice: C is read and written once, not twice (KC 256 split
        // K = 384 into 256 + 128). In-process per-call A/B on an AMD Zen 3 over pretrain-small: its K = 384
        // products 2-4% faster. A wide B (the 8192-column head: 12 MB packed) is then run in column blocks that
        // fit in L2 (see `blockPanels`); with the usual blocks its panels came from L3 for every chunk of rows,
        // and in one slice it was 3-9% slower than in two.
        let oneSlice = kernel.runRows != nil && k <= 384
        let kcMax = oneSlice ? k : min(kernel.kc, k)
        let wideShallow = oneSlice && bPanels * nr * k > Self.wholeBLimit
        // Deep products whose packed B is small (4096 x 1536 x 384: 2.4 MB) pack all of B first, then each tile
        // runs every KC slice while its part of C stays in L2: two barriers per product instead of one per slice,
        // and C read and written from L2 rather than L3 at every slice. Otherwise B is packed a slice at a time.
        let slices = (k + kcMax - 1) / kcMax
        let wholeB = slices > 1 && bPanels * nr * k <= Self.wholeBLimit
        let bFloats = bPanels * nr * (wholeB ? k : kcMax)
        let packB = CachingAllocator.shared.allocate(floatCount: bFloats)
        defer { CachingAllocator.shared.deallocate(packB, floatCount: bFloats) }
        let shared = UncheckedSendable((a, b, c, packB, bias))
        // With `columnSums`, each packing of a slice's panels writes its columns' sums into that slice's row of
        // `partial`; the rows are added in slice order at the end (the same sums on any number of threads).
        let partial = columnSums.map { _ in CachingAllocator.shared.allocate(floatCount: slices * n) }
        defer {
            if let partial, let columnSums {
                columnSums.update(from: partial, count: n)
                for slice in 1..<slices { ak_vadd_inplace(columnSums, partial + slice * n, Int64(n)) }
                CachingAllocator.shared.deallocate(partial, floatCount: slices * n)
            }
        }
        let sendPartial = UncheckedSendable(partial)
        let roundToBF16 = precision == .bf16
        // A row-major A read in place (the AVX2 path), unless its values must be rounded to bf16 on the way.
        // In-process per-call A/B on an AMD Zen 3 over pretrain-small's products: NN and NT 0.95-0.99 of the
        // time with packing (total 0.987).
        let rowsKernel = roundToBF16 || transposeA ? nil : kernel.runRows
        // Where A is read in place or packed a whole block at once, the path that has a rows kernel (AVX2) runs
        // each block column by column: a B panel (16 x KC) stays in L1 and 12 of the block's A panels come from
        // L2, so L2 carries 6 x KC floats per 6 x 16 tile instead of 16 x KC (the loop order of BLIS). On an AMD
        // Zen 3 (512 KB of L2 a core), in-process per-call A/B over pretrain-small's products: 0.984-0.991 of
        // the time; bench gemm, 2 threads: K = 256 products +3-4%, the others within ±1%.
        let columnsOuter = kernel.runRows != nil && (rowsKernel != nil || transposeA)
        /// Packs slice pc (kc deep) of B's panels p0..<p1 at `into` (that slice's packed start).
        func packPanels(_ pc: Int, _ kc: Int, _ p0: Int, _ p1: Int, into packB: UnsafeMutablePointer<Float>) {
            guard p1 > p0 else { return }
            packPanelsB(kernel, transposeB, shared.value.1, ldb, row: pc, column: p0 * nr,
                        kc: kc, nc: min(n, p1 * nr) - p0 * nr, nr: nr, into: packB + p0 * nr * kc,
                        sums: sendPartial.value.map { $0 + pc / kcMax * n + p0 * nr })
            if roundToBF16 { ak_round_bf16(packB + p0 * nr * kc, Int64((p1 - p0) * nr * kc)) }
        }
        /// Floats of packed A that `block` needs for `rows` rows (see there).
        func aFloats(rows: Int) -> Int { transposeA ? (rows + mr - 1) / mr * mr * kcMax : mr * kcMax }
        /// Slice pc of C rows i0..<i1, columns j0..<j1: (+)= A(rows, pc..<pc+kc) B(pc..<pc+kc, columns), packing A
        /// into `block` (`aFloats(rows: i1 - i0)` floats; one buffer per task: taking one from the allocator for
        /// every block made its lock 2.4% of a dpo-tiny step, the two threads contending for it).
        func block(_ i0: Int, _ i1: Int, _ j0: Int, _ j1: Int, _ pc: Int, _ kc: Int, _ packB: UnsafeMutablePointer<Float>,
                   _ block: UnsafeMutablePointer<Float>) {
            let (a, _, c, _, bias) = shared.value
            let beta: Int32 = (pc > 0 || accumulate) ? 1 : 0
            let lastSlice = pc + kc == k
            // A transposed (a weight gradient's Xᵀ): the block's panels are packed at once, so that each
            // k step's run of rows is read whole (one panel at a time read 56 bytes per k step, from L2).
            // With `depthFromRow` (attention's dK and dV) panel ir sums from row ir on, so the block's rows before
            // its first panel's are zeros for every panel and are not packed (on average 40% of a causal product's A).
            let aStart = transposeA && causal == .depthFromRow ? max(pc, min(pc + kc, i0)) : pc, aDepth = pc + kc - aStart
            if transposeA && aDepth > 0 {
                kernel.copyPanels(a + aStart * lda + i0, Int64(lda), Int64(i1 - i0), Int64(aDepth), Int64(mr), block)
                if roundToBF16 { ak_round_bf16(block, Int64((i1 - i0 + mr - 1) / mr * mr * aDepth)) }
            }
            /// Panel ir's part of the slice's depth (k0..<k1) and of the columns (up to `columnsEnd`): all of
            /// both unless `causal`.
            func part(_ ir: Int) -> (rows: Int, k0: Int, k1: Int, columnsEnd: Int) {
                let rows = min(mr, m - ir)
                var k0 = pc, k1 = pc + kc, columnsEnd = j1
                switch causal {
                case .columnsThroughRow?: columnsEnd = min(j1, ir + rows)
                case .depthThroughRow?: k1 = min(k1, max(pc, ir + rows))
                case .depthFromRow?: k0 = max(pc, min(k1, ir))
                case nil: break
                }
                return (rows, k0, k1, columnsEnd)
            }
            if columnsOuter {
                // Each B panel stays in L1 while up to 12 of the block's A panels (72 rows, in L2) go past it.
                let sweep = 12 * mr
                for r0 in stride(from: i0, to: i1, by: sweep) {
                    var jr = j0
                    if causal == nil, let rowsColumn = kernel.runRowsColumn, let column = kernel.runColumn {
                        // The whole sweep against each B panel in one call.
                        let rows = Int64(min(i1, r0 + sweep) - r0)
                        while jr < j1 {
                            let bPanel = packB + jr * kc, columns = Int64(min(nr, n - jr))
                            let tileBias = lastSlice ? bias.map { $0 + jr } : nil
                            if rowsKernel != nil {
                                rowsColumn(Int64(kc), a + r0 * lda + pc, Int64(lda), bPanel, c + r0 * ldc + jr, Int64(ldc),
                                           rows, columns, beta, tileBias)
                            } else {
                                column(Int64(kc), block + (r0 - i0) * aDepth, Int64(aDepth * mr), bPanel, c + r0 * ldc + jr,
                                       Int64(ldc), rows, columns, beta, tileBias)
                            }
                            jr += nr
                        }
                        continue
                    }
                    while jr < j1 {
                        let columns = Int64(min(nr, n - jr))
                        var ir = r0
                        while ir < min(i1, r0 + sweep) {
                            let (rows, k0, k1, columnsEnd) = part(ir)
                            // A zero depth still clears C; past `columnsEnd` there is nothing to do.
                            if jr < columnsEnd && (k1 > k0 || beta == 0) {
                                let bPanel = packB + jr * kc + (k0 - pc) * nr
                                if let rowsKernel {
                                    rowsKernel(Int64(k1 - k0), a + ir * lda + k0, Int64(lda), bPanel, c + ir * ldc + jr,
                                               Int64(ldc), Int64(rows), columns, beta)
                                } else {
                                    kernel.run(Int64(k1 - k0), block + (ir - i0) * aDepth + (k0 - aStart) * mr, bPanel,
                                               c + ir * ldc + jr, Int64(ldc), Int64(rows), columns, beta)
                                }
                                if lastSlice, let bias {
                                    ak_add_row_vector(c + ir * ldc + jr, Int64(ldc), Int64(rows), columns, bias + jr)
                                }
                            }
                            ir += mr
                        }
                        jr += nr
                    }
                }
                return
            }
            var ir = i0
            while ir < i1 {
                let (rows, k0, k1, columnsEnd) = part(ir)
                let depth = k1 - k0
                if depth == 0 && beta == 1 { ir += mr; continue }  // nothing to add (a zero depth still clears C)
                let panel = transposeA ? block + (ir - i0) * aDepth + (k0 - aStart) * mr : block
                if !transposeA {
                    kernel.interleave(a + ir * lda + k0, Int64(lda), Int64(rows), Int64(depth), Int64(mr), block)
                    if roundToBF16 { ak_round_bf16(block, Int64(mr * depth)) }
                }
                // While this panel runs, the block's next panel of A comes into L2, a share of its lines in each
                // call (interleaving it waited on memory: 7.7% of 4096 x 1536 x 384 on 2 threads).
                let nextRows = transposeA || causal != nil ? 0 : min(mr, i1 - ir - mr)
                var ahead = ak_prefetch_lines(src: a + (ir + mr) * lda + pc, ld: Int64(lda), rows: Int64(max(0, nextRows)),
                                              count: Int64(kc), part: 0, parts: Int64((j1 - j0 + nr - 1) / nr))
                var jr = j0
                while jr < columnsEnd {
                    let bPanel = packB + jr * kc + (k0 - pc) * nr
                    if let prefetching = kernel.runPrefetching, nextRows > 0 {
                        ahead.part = Int64((jr - j0) / nr)
                        prefetching(Int64(depth), panel, bPanel, c + ir * ldc + jr, Int64(ldc),
                                    Int64(rows), Int64(min(nr, n - jr)), beta, &ahead)
                    } else {
                        kernel.run(Int64(depth), panel, bPanel, c + ir * ldc + jr, Int64(ldc),
                                   Int64(rows), Int64(min(nr, n - jr)), beta)
                    }
                    // The bias joins the finished micro-tile while it is still in L1.
                    if lastSlice, let bias { ak_add_row_vector(c + ir * ldc + jr, Int64(ldc), Int64(rows), Int64(min(nr, n - jr)), bias + jr) }
                    jr += nr
                }
                ir += mr
            }
        }
        if wholeB {
            // Tiles: rows in blocks of at most MC, columns in blocks of at most NC; with several threads, at
            // least six tiles per thread, more row blocks first (each tile reads its rows of A once).
            var rowBlocks = (m + kernel.mc - 1) / kernel.mc
            var columnBlocks = (n + kernel.nc - 1) / kernel.nc
            if threads > 1 {
                let tiles = 6 * threads
                rowBlocks = max((rowBlocks + threads - 1) / threads * threads, (tiles + columnBlocks - 1) / columnBlocks)
                rowBlocks = min(aPanels, rowBlocks)
                if rowBlocks * columnBlocks < tiles { columnBlocks = min(bPanels, (tiles + rowBlocks - 1) / rowBlocks) }
            }
            let rowsPerBlock = (aPanels + rowBlocks - 1) / rowBlocks * mr
            let columnsPerBlock = (bPanels + columnBlocks - 1) / columnBlocks * nr
            rowBlocks = (m + rowsPerBlock - 1) / rowsPerBlock
            columnBlocks = (n + columnsPerBlock - 1) / columnsPerBlock
            let bTasks = min(bPanels, 2 * threads)
            // Slice s starts at bPanels·nr·(s·kcMax) floats (every slice before it is kcMax deep).
            Parallel.forEach(slices * bTasks, maxThreads: threads) { task in
                let pc = task / bTasks * kcMax, t = task % bTasks
                packPanels(pc, min(kcMax, k - pc), bPanels * t / bTasks, bPanels * (t + 1) / bTasks,
                           into: shared.value.3 + bPanels * nr * pc)
            }
            Parallel.forEach(rowBlocks * columnBlocks, maxThreads: threads) { task in
                let i0 = (task / columnBlocks) * rowsPerBlock, j0 = (task % columnBlocks) * columnsPerBlock
                let floats = aFloats(rows: rowsPerBlock)
                let packA = CachingAllocator.shared.allocate(floatCount: floats)
                defer { CachingAllocator.shared.deallocate(packA, floatCount: floats) }
                var pc = 0
                while pc < k {
                    let kc = min(kcMax, k - pc)
                    block(i0, min(m, i0 + rowsPerBlock), j0, min(n, j0 + columnsPerBlock), pc, kc, shared.value.3 + bPanels * nr * pc, packA)
                    pc += kc
                }
            }
            return
        }
        // One KC slice at a time. B's panels are split into one group of columns per thread; each thread packs
        // its group into its own L2 (at most NC columns of it are in use at once) and runs its group's row chunks
        // (8 panels of A) without waiting for the others; a thread done with its group takes chunks of the
        // others'. One barrier per slice. Packing all of B then splitting rows and columns (two barriers per
        // slice, half of each thread's B packed by the other core) ran 2048 x 384 x 1536 at 149 GFLOP/s on 2
        // threads against 87 on one; this schedule, in-process per-call A/B, took 7-13% less time on the
        // training step's K = 384 products with N ≥ 1152 and as long on the others.
        let groups = min(threads, bPanels)
        let shares = max(1, threads / groups)  // packing pieces per group: more than one when B is narrow
        let chunkPanels = max(1, min(8, aPanels / 6))
        let chunks = (aPanels + chunkPanels - 1) / chunkPanels
        // Column blocks of at most NC columns; a one-slice product with a wide B (the head) takes blocks of 256 KB
        // of packed B instead (10 panels at K = 384), which stay in L2 while every chunk of rows meets them: A
        // is then read from L3 once per block rather than B once per chunk. In-process per-call A/B on an AMD
        // Zen 3 against KC 256 with the usual blocks, 2048 x 8192 x 384 (`bench gemm`, 2 threads): NT 0.90-0.92,
        // NN 0.88-0.93; blocks of 21 panels (504 KB) NT 0.91, NN 0.98.
        let blockPanels = wideShallow ? max(1, (256 << 10) / (nr * k * MemoryLayout<Float>.size)) : max(1, kernel.nc / nr)
        var pc = 0
        while pc < k {
            let kc = min(kcMax, k - pc)
            let progress = (0..<groups).map { _ in GroupProgress() }
            Parallel.forEach(threads, maxThreads: threads) { t in
                let floats = aFloats(rows: chunkPanels * mr)
                let packA = CachingAllocator.shared.allocate(floatCount: floats)
                defer { CachingAllocator.shared.deallocate(packA, floatCount: floats) }
                for h in 0..<groups {
                    let g = (t + h) % groups, progress = progress[g]
                    let q0 = bPanels * g / groups, q1 = bPanels * (g + 1) / groups
                    // Pack any share of the group not yet claimed, then wait for the shares others claimed
                    // (each is being packed by a running thread, so the wait ends).
                    while true {
                        let share = progress.sharesClaimed.wrappingAdd(1, ordering: .relaxed).oldValue
                        if share >= shares { break }
                        packPanels(pc, kc, q0 + (q1 - q0) * share / shares, q0 + (q1 - q0) * (share + 1) / shares,
                                   into: shared.value.3)
                        progress.sharesPacked.wrappingAdd(1, ordering: .releasing)
                    }
                    while progress.sharesPacked.load(ordering: .acquiring) < shares {}
                    // Column blocks of at most NC, each run down every row chunk while its panels stay in L2.
                    let columnBlocks = (q1 - q0 + blockPanels - 1) / blockPanels
                    while true {
                        let task = progress.chunksClaimed.wrappingAdd(1, ordering: .relaxed).oldValue
                        if task >= chunks * columnBlocks { break }
                        let i0 = task % chunks * chunkPanels * mr, p0 = q0 + task / chunks * blockPanels
                        block(i0, min(m, i0 + chunkPanels * mr), p0 * nr, min(n, min(q1, p0 + blockPanels) * nr),
                              pc, kc, shared.value.3, packA)
                    }
                }
            }
            pc += kc
        }
    }

    /// One bf16 product on AMX (k > 0; see sgemm_amx.c): op(A) and op(B) (unless `packedB` holds it already,
    /// a bf16 copy's tiles) are packed whole into bf16 tiles (in parallel), then blocks of up to 128 rows x 256 columns of C go to whichever thread is free;
    /// each block runs through 32 x 32 tiles over the whole depth.
    static func productAMX(
        _ transposeA: Bool, _ transposeB: Bool, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, bias: UnsafePointer<Float>?, threads: Int,
        packedB: UnsafeMutablePointer<UInt16>? = nil
    ) {
        let kblocks = (k + 31) / 32, rowPairs = (m + 31) / 32, columnPairs = (n + 31) / 32
        let pairSize = 2 * kblocks * 512   // bf16 values of two tiles over the whole depth
        let aFloats = rowPairs * pairSize / 2, bFloats = columnPairs * pairSize / 2
        let packA = CachingAllocator.shared.allocate(floatCount: aFloats)
        let packB = packedB == nil ? CachingAllocator.shared.allocate(floatCount: bFloats) : nil
        defer {
            CachingAllocator.shared.deallocate(packA, floatCount: aFloats)
            if let packB { CachingAllocator.shared.deallocate(packB, floatCount: bFloats) }
        }
        let tilesA = UnsafeMutableRawPointer(packA).assumingMemoryBound(to: UInt16.self)
        let tilesB = packedB ?? UnsafeMutableRawPointer(packB!).assumingMemoryBound(to: UInt16.self)
        let shared = UncheckedSendable((a, b, c, tilesA, tilesB, bias))
        let aTasks = min(rowPairs, 2 * threads), bTasks = packedB == nil ? min(columnPairs, 2 * threads) : 0
        Parallel.forEach(aTasks + bTasks, maxThreads: threads) { task in
            let (a, b, _, tilesA, tilesB, _) = shared.value
            if task < aTasks {
                let p0 = rowPairs * task / aTasks, p1 = rowPairs * (task + 1) / aTasks
                ak_pack_bf16_a(a, Int64(lda), transposeA ? 1 : 0, Int64(m), Int64(k), Int64(32 * p0), Int64(32 * (p1 - p0)), tilesA)
            } else {
                let t = task - aTasks
                let p0 = columnPairs * t / bTasks, p1 = columnPairs * (t + 1) / bTasks
                ak_pack_bf16_b(b, Int64(ldb), transposeB ? 1 : 0, Int64(k), Int64(n), Int64(32 * p0), Int64(32 * (p1 - p0)), tilesB)
            }
        }
        // Blocks of rowBlock x columnBlock tile pairs; smaller when the threads would be short of work.
        var rowBlock = min(4, rowPairs), columnBlock = min(8, columnPairs)
        func blocks() -> Int { ((rowPairs + rowBlock - 1) / rowBlock) * ((columnPairs + columnBlock - 1) / columnBlock) }
        while threads > 1 && blocks() < 4 * threads && (rowBlock > 1 || columnBlock > 1) {
            if columnBlock >= rowBlock { columnBlock = (columnBlock + 1) / 2 } else { rowBlock = (rowBlock + 1) / 2 }
        }
        let columnBlocks = (columnPairs + columnBlock - 1) / columnBlock
        let beta: Int32 = accumulate ? 1 : 0
        Parallel.forEach(blocks(), maxThreads: threads) { task in
            let (_, _, c, tilesA, tilesB, bias) = shared.value
            let i0 = (task / columnBlocks) * rowBlock, j0 = (task % columnBlocks) * columnBlock
            ak_sgemm_amx_block(Int64(kblocks), tilesA + i0 * pairSize, Int64(min(rowBlock, rowPairs - i0)),
                               tilesB + j0 * pairSize, Int64(min(columnBlock, columnPairs - j0)),
                               c + 32 * i0 * ldc + 32 * j0, Int64(ldc), Int64(m - 32 * i0), Int64(n - 32 * j0), beta)
            if let bias {  // the block of C is still in L2
                ak_add_row_vector(c + 32 * i0 * ldc + 32 * j0, Int64(ldc), Int64(min(32 * rowBlock, m - 32 * i0)),
                                  Int64(min(32 * columnBlock, n - 32 * j0)), bias + 32 * j0)
            }
        }
    }

    /// Packs rows row..<row+kc, columns column..<column+nc of op(B) into NR-wide panels:
    /// panel s holds kc steps of NR values (columns past nc are zero).
    static func packPanelsB(_ kernel: Kernel, _ transposed: Bool, _ b: UnsafePointer<Float>, _ ldb: Int, row: Int, column: Int,
                            kc: Int, nc: Int, nr: Int, into dst: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>? = nil) {
        guard transposed else {
            // op(B)(p, j) = b[p * ldb + j]: all panels in one pass over B's rows (contiguous reads).
            if let sums {
                ak_pack_copy_panels_summing(b + row * ldb + column, Int64(ldb), Int64(nc), Int64(kc), Int64(nr), dst, sums)
            } else {
                kernel.copyPanels(b + row * ldb + column, Int64(ldb), Int64(nc), Int64(kc), Int64(nr), dst)
            }
            return
        }
        var j0 = 0
        while j0 < nc {  // op(B)(p, j) = b[j * ldb + p]: a transpose per panel
            let cols = min(nr, nc - j0)
            kernel.interleave(b + (column + j0) * ldb + row, Int64(ldb), Int64(cols), Int64(kc), Int64(nr), dst + j0 * kc)
            j0 += nr
        }
    }
}

/// How far one column group of a product's slice has got (see `GEMM.product`).
private final class GroupProgress: Sendable {
    let sharesClaimed = Atomic<Int>(0)
    let sharesPacked = Atomic<Int>(0)
    let chunksClaimed = Atomic<Int>(0)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif


// GEMM against a naive Float64 triple loop, on odd sizes, all transposes, every kernel path.
import AlignKitTensor
import AlignKitTestSupport
import Testing

/// The paths this CPU can run; each test forces one with `GEMM.path`.
let gemmPaths = GEMM.supportedPaths

/// Shapes (M, K, N): odd sizes that leave partial micro-tiles and blocks (KC = 256).
let gemmShapes: [(Int, Int, Int)] = [
    (1, 1, 1), (7, 1, 33), (1, 257, 7), (33, 7, 257), (257, 33, 1), (7, 257, 33), (33, 33, 33), (100, 300, 70), (13, 513, 35),
]

/// op(A) op(B) in Float64, and Σ|a||b| per element (the scale of its rounding error).
func naiveProduct(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int, transposeA: Bool, transposeB: Bool) -> ([Double], [Double]) {
    var c = [Double](repeating: 0, count: m * n), scale = c
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0, t = 0.0
            for p in 0..<k {
                let x = Double(transposeA ? a[p * m + i] : a[i * k + p])
                let y = Double(transposeB ? b[j * k + p] : b[p * n + j])
                s += x * y; t += abs(x * y)
            }
            c[i * n + j] = s; scale[i * n + j] = t
        }
    }
    return (c, scale)
}

/// op(A) op(B) through `GEMM.multiply`, accumulated onto ones (so that `accumulate` is exercised);
/// subtract 1 to compare with a product.
func productOntoOnes(_ a: Tensor, _ b: Tensor, m: Int, k: Int, n: Int, transposeA: Bool, transposeB: Bool) -> [Float] {
    var c = [Float](repeating: 1, count: m * n)
    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
        GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: pa.baseAddress!, lda: transposeA ? m : k,
                      b: pb.baseAddress!, ldb: transposeB ? k : n, c: pc.baseAddress!, ldc: n, accumulate: true)
    } } }
    return c
}

/// Runs `body` with `path` forced (and `threads`, when given), holding the kernel-settings lock and
/// restoring both afterwards.
func withGEMMSettings(path: GEMM.Path, threads: Int? = nil, _ body: () -> Void) {
    withKernelSettingsLock {
        let saved = (GEMM.path, Parallel.threadCount)
        defer { GEMM.path = saved.0; Parallel.threadCount = saved.1 }
        GEMM.path = path
        if let threads { Parallel.threadCount = threads }
        body()
    }
}

/// The largest |c − 1 − reference| relative to Σ|a·b| (c accumulated onto ones; see `productOntoOnes`).
/// Each value rounded to bf16 precision (nearest even), as the bf16 products round their operands.
func roundedToBF16(_ x: [Float]) -> [Float] {
    x.map { v in Float(bitPattern: (v.bitPattern &+ 0x7FFF &+ ((v.bitPattern >> 16) & 1)) & 0xFFFF_0000) }
}

func worstErrorOntoOnes(_ c: [Float], _ reference: [Double], _ scale: [Double]) -> Double {
    c.indices.map { abs(Double(c[$0]) - 1 - reference[$0]) / max(scale[$0], 1e-30) }.max() ?? 0
}

@Suite("GEMM", .serialized)
struct GEMMTests {
    @Test(arguments: gemmPaths)
    func agreesWithNaiveLoop(path: GEMM.Path) {
        withGEMMSettings(path: path) { checkAgainstNaiveLoop(path) }
    }

    func checkAgainstNaiveLoop(_ path: GEMM.Path) {
        for threads in [1, 2] {
            Parallel.threadCount = threads
            for (index, (m, k, n)) in gemmShapes.enumerated() {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a = Tensor(randomUniform: ta ? [k, m] : [m, k], lowerBound: -1, upperBound: 1, seed: UInt64(index))
                    let b = Tensor(randomUniform: tb ? [n, k] : [k, n], lowerBound: -1, upperBound: 1, seed: UInt64(100 + index))
                    let c = matmul(a, b, transposeA: ta, transposeB: tb)
                    #expect(c.shape == [m, n])
                    let (reference, scale) = naiveProduct(a.scalars, b.scalars, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                    // 1e-5 relative to Σ|a·b|: Float32 accumulation over K ≤ 513 terms stays below
                    // √K · 2⁻²⁴ ≈ 1.4e-6 of that scale in practice.
                    let worst = zip(c.scalars, zip(reference, scale)).map { abs(Double($0) - $1.0) / max($1.1, 1e-30) }.max() ?? 0
                    #expect(worst <= 1e-5, "\(path) threads \(threads) \(m)x\(k)x\(n) tA \(ta) tB \(tb): relative error \(worst)")
                }
            }
        }
    }

    /// A shallow product with a wide B (as a language model's head: K ≤ 384, packed B over 4 MB) runs in one KC
    /// slice on AVX2, in column blocks of 256 KB of packed B (13 panels at K = 300, the last block and panel
    /// partial): every transpose, one and two threads, against Float64 (1e-5 of Σ|a·b|, as above).
    @Test(arguments: gemmPaths)
    func shallowProductWithWideB(path: GEMM.Path) {
        let (m, k, n) = (40, 300, 3700)
        for threads in [1, 2] {
            withGEMMSettings(path: path, threads: threads) {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a = Tensor(randomUniform: ta ? [k, m] : [m, k], lowerBound: -1, upperBound: 1, seed: 5)
                    let b = Tensor(randomUniform: tb ? [n, k] : [k, n], lowerBound: -1, upperBound: 1, seed: 6)
                    let c = productOntoOnes(a, b, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                    let (reference, scale) = naiveProduct(a.scalars, b.scalars, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                    let worst = worstErrorOntoOnes(c, reference, scale)
                    #expect(worst <= 1e-5, "\(path) threads \(threads) tA \(ta) tB \(tb): relative error \(worst)")
                }
            }
        }
    }

    /// Products of at most 8 rows take the unpacked skinny kernels: every row count, transpose and
    /// path, accumulating, with columns split between two threads (2·m·n·k over the threshold).
    /// One row also runs wider than the AVX2 kernel's 4096-column pieces, with k not a multiple of 4.
    @Test(arguments: gemmPaths)
    func skinnyProductsEveryRowCount(path: GEMM.Path) {
        withGEMMSettings(path: path, threads: 2) {
            for (m, k, n) in (1...8).map({ ($0, 301, 1031) }) + [(1, 7, 4099), (1, 66, 8200), (1, 300, 5000)] {
                for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
                    let a = Tensor(randomUniform: transposeA ? [k, m] : [m, k], lowerBound: -1, upperBound: 1, seed: UInt64(m))
                    let b = Tensor(randomUniform: transposeB ? [n, k] : [k, n], lowerBound: -1, upperBound: 1, seed: 99)
                    let (reference, scale) = naiveProduct(a.scalars, b.scalars, m: m, k: k, n: n, transposeA: transposeA, transposeB: transposeB)
                    let c = productOntoOnes(a, b, m: m, k: k, n: n, transposeA: transposeA, transposeB: transposeB)
                    let worst = worstErrorOntoOnes(c, reference, scale)
                    #expect(worst <= 1e-5, "m \(m), transposes \(transposeA) \(transposeB), \(path): \(worst)")
                }
            }
        }
    }

    /// `linear` adds the bias as each tile of the product is stored: the result equals the product plus
    /// the bias exactly (the same sums, then the same one addition), on every path and precision, for
    /// skinny (≤ 8 rows) and packed products, one and several KC slices, one and two threads.
    @Test(arguments: gemmPaths)
    func biasJoinsTheProductExactly(path: GEMM.Path) {
        for precision in GEMM.Precision.allCases {
            for threads in [1, 2] {
                withGEMMSettings(path: path, threads: threads) {
                    GEMM.withPrecision(precision) {
                        for (m, k, n) in [(5, 37, 70), (61, 800, 45), (200, 130, 300), (3, 1, 33), (20, 0, 9)] {
                            let x = Tensor(randomUniform: [m, k], lowerBound: -1, upperBound: 1, seed: UInt64(m))
                            let w = Tensor(randomUniform: [k, n], lowerBound: -1, upperBound: 1, seed: UInt64(n))
                            let bias = Tensor(randomUniform: [n], lowerBound: -1, upperBound: 1, seed: 3)
                            let fused = linear(x, w, bias: bias).scalars, separate = (matmul(x, w) + bias).scalars
                            #expect(fused == separate, "\(m)x\(k)x\(n), \(path), \(precision), \(threads) threads")
                        }
                    }
                }
            }
        }
    }

    /// A dense layer's weight and bias gradients come from one pass over the output's gradient G: its column
    /// sums are taken while the weight gradient's product (Xᵀ G) packs it, per KC slice, the slices then added
    /// in order. Both against Float64 (within 1e-5 of Σ|terms|: float sums of at most 1,100 terms), bit for bit
    /// the same on 1 to 3 threads, on every path: one slice, several slices with G packed whole (N = 40) and
    /// slice by slice (N = 1100), and the unpacked cases (at most 8 input features; no rows).
    @Test(arguments: gemmPaths)
    func biasGradientIsSummedWhilePacking(path: GEMM.Path) {
        for (rows, k, n) in [(70, 30, 50), (1100, 20, 40), (1100, 12, 1100), (90, 5, 33), (0, 9, 7)] {
            let x = Tensor(randomUniform: [rows, k], lowerBound: -1, upperBound: 1, seed: UInt64(rows + 1))
            let w = Tensor(randomUniform: [k, n], lowerBound: -1, upperBound: 1, seed: UInt64(n))
            let bias = Tensor(randomUniform: [n], lowerBound: -1, upperBound: 1, seed: 3)
            let g = Tensor(randomUniform: [rows, n], lowerBound: -1, upperBound: 1, seed: 11)
            let (xs, gs) = (x.scalars, g.scalars)
            var first: [[Float]]? = nil
            for threads in 1...3 {
                withGEMMSettings(path: path, threads: threads) {
                    let gradients = valueWithGradient(at: [w, bias]) { (linear(x, $0[0], bias: $0[1]) * g).sum() }.gradient
                    let (dw, db) = (gradients[0].scalars, gradients[1].scalars)
                    if let first {
                        #expect(dw == first[0] && db == first[1], "\(path) \(rows)x\(k)x\(n): \(threads) threads differ from 1")
                        return
                    }
                    first = [dw, db]
                    var worst = 0.0
                    for j in 0..<n {
                        var sum = 0.0, scale = 0.0
                        for r in 0..<rows { sum += Double(gs[r * n + j]); scale += abs(Double(gs[r * n + j])) }
                        worst = max(worst, abs(Double(db[j]) - sum) / max(scale, 1))
                        for i in 0..<k {
                            var product = 0.0, productScale = 0.0
                            for r in 0..<rows {
                                product += Double(xs[r * k + i]) * Double(gs[r * n + j])
                                productScale += abs(Double(xs[r * k + i]) * Double(gs[r * n + j]))
                            }
                            worst = max(worst, abs(Double(dw[i * n + j]) - product) / max(productScale, 1))
                        }
                    }
                    #expect(worst <= 1e-5, "\(path) \(rows)x\(k)x\(n): relative error \(worst)")
                }
            }
        }
    }

    /// A product over several KC slices packs all of B first when the packed B holds at most 2^20 floats, and
    /// one slice at a time otherwise; both orders, every transpose, every path, one and two threads.
    /// K = 800 is 3-4 slices (KC 384 or 256); N = 1200 packs whole (800 x 1216 floats), N = 1400 slice by slice.
    @Test func deepProductsEitherOrder() {
        for (m, k, n) in [(9, 800, 1200), (9, 800, 1400)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = Tensor(randomUniform: ta ? [k, m] : [m, k], lowerBound: -1, upperBound: 1, seed: UInt64(n))
                let b = Tensor(randomUniform: tb ? [n, k] : [k, n], lowerBound: -1, upperBound: 1, seed: 7)
                let (reference, scale) = naiveProduct(a.scalars, b.scalars, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                for path in gemmPaths {
                    for threads in [1, 2] {
                        withGEMMSettings(path: path, threads: threads) {
                            let c = productOntoOnes(a, b, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                            let worst = worstErrorOntoOnes(c, reference, scale)
                            #expect(worst <= 1e-5, "\(path) threads \(threads) \(m)x\(k)x\(n) tA \(ta) tB \(tb): relative error \(worst)")
                        }
                    }
                }
            }
        }
    }

    /// Each thread packs its own group of B's columns and then takes row chunks of the others' groups, so a
    /// result must not depend on the thread count: bit for bit equal on 1 to 4 threads, for B narrower than
    /// the threads' panels (N = 20, K = 250: one slice, one group packed in shares), groups that do not divide evenly (3 threads),
    /// and B wide enough for several NC column blocks per group over several KC slices (N = 2100, K = 800:
    /// past the whole-B limit, so sliced). The narrow product is also checked against the Float64 one.
    @Test(arguments: gemmPaths)
    func resultsDoNotDependOnTheThreadCount(path: GEMM.Path) {
        for (m, k, n) in [(600, 250, 20), (150, 300, 2100), (190, 800, 2100)] {
            for (ta, tb) in [(false, false), (true, true)] {
                let a = Tensor(randomUniform: ta ? [k, m] : [m, k], lowerBound: -1, upperBound: 1, seed: UInt64(m))
                let b = Tensor(randomUniform: tb ? [n, k] : [k, n], lowerBound: -1, upperBound: 1, seed: UInt64(n))
                var first: [Float]? = nil
                for threads in 1...4 {
                    withGEMMSettings(path: path, threads: threads) {
                        let c = productOntoOnes(a, b, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                        if let first {
                            let differing = zip(c, first).filter { $0 != $1 }.count  // a count, not two arrays, in the message
                            #expect(differing == 0, "\(path) \(m)x\(k)x\(n) tA \(ta) tB \(tb): \(threads) threads differ from 1")
                        } else if m * k * n <= 5_000_000 {  // the Float64 loop is slow; the other tests cover the values
                            first = c
                            let (reference, scale) = naiveProduct(a.scalars, b.scalars, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                            let worst = worstErrorOntoOnes(c, reference, scale)
                            #expect(worst <= 1e-5, "\(path) \(m)x\(k)x\(n) tA \(ta) tB \(tb): relative error \(worst)")
                        } else {
                            first = c
                        }
                    }
                }
            }
        }
    }

    @Test(arguments: gemmPaths)
    func largeMultithreadedAndAccumulating(path: GEMM.Path) {
        withGEMMSettings(path: path, threads: 2) { checkLargeMultithreaded() }
    }

    func checkLargeMultithreaded() {
        let (m, k, n) = (301, 515, 97)  // spans several KC blocks and row blocks, split among threads
        let a = Tensor(randomUniform: [m, k], lowerBound: -1, upperBound: 1, seed: 5)
        let b = Tensor(randomUniform: [n, k], lowerBound: -1, upperBound: 1, seed: 6)
        let (reference, scale) = naiveProduct(a.scalars, b.scalars, m: m, k: k, n: n, transposeA: false, transposeB: true)
        let c = productOntoOnes(a, b, m: m, k: k, n: n, transposeA: false, transposeB: true)
        #expect(worstErrorOntoOnes(c, reference, scale) <= 1e-5)
    }

    /// bf16 products (AMX on the AVX-512 path when the CPU has it, else the fp32 kernels on rounded
    /// operands) equal the exact product of the bf16-rounded operands up to fp32 summation, and differ
    /// from the fp32 product by bf16's rounding (so the rounding did happen).
    @Test(arguments: gemmPaths)
    func bf16ProductsAreProductsOfRoundedOperands(path: GEMM.Path) {
        withGEMMSettings(path: path) { GEMM.withPrecision(.bf16) { checkBF16(path) } }
    }

    func checkBF16(_ path: GEMM.Path) {
        #expect(GEMM.usesAMX == (path == .avx512 && GEMM.hasAMX))
        let shapes = gemmShapes.filter { $0.0 > GEMM.skinnyRowLimit } + [(301, 515, 97), (64, 64, 1000)]
        for threads in [1, 2] {
            Parallel.threadCount = threads
            for (index, (m, k, n)) in shapes.enumerated() {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a = Tensor(randomUniform: ta ? [k, m] : [m, k], lowerBound: -1, upperBound: 1, seed: UInt64(index))
                    let b = Tensor(randomUniform: tb ? [n, k] : [k, n], lowerBound: -1, upperBound: 1, seed: UInt64(100 + index))
                    let c = productOntoOnes(a, b, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                    let (reference, scale) = naiveProduct(roundedToBF16(a.scalars), roundedToBF16(b.scalars), m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                    let worst = worstErrorOntoOnes(c, reference, scale)
                    #expect(worst <= 1e-5, "\(path) bf16 threads \(threads) \(m)x\(k)x\(n) tA \(ta) tB \(tb): relative error \(worst)")
                    // bf16 keeps 8 significant bits: against the fp32 operands the error is ~2⁻⁹ of the
                    // scale, far above fp32's; K = 1 (one product per element) still shows it.
                    let (exact, _) = naiveProduct(a.scalars, b.scalars, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                    let largest = worstErrorOntoOnes(c, exact, scale)
                    #expect(largest > 1e-4, "\(path) bf16 \(m)x\(k)x\(n): no sign of rounding (\(largest))")
                }
            }
        }
    }

    /// Decoding under bf16 reads bf16 copies of the weights (GEMM.withBF16Copies): a skinny product
    /// against a matrix with a copy in scope equals the exact product of the bf16-rounded operands up to
    /// fp32 summation, for every row count, transpose and both thread counts (split along K and column
    /// chunks), with the copy packed for AMX (where the CPU has it) and read by the AVX-512 kernels; outside
    /// the scope the same product is fp32 again.
    @Test(arguments: [true, false]) func skinnyProductsReadBF16Copies(amx: Bool) {
        guard GEMM.supportedPaths.contains(.avx512) else { return }
        let (k, n) = (301, 1031)
        for threads in [1, 2] {
            withGEMMSettings(path: .avx512, threads: threads) {
                func run(_ body: () -> Void) { if amx { body() } else { GEMM.withoutAMX(body) } }
                run { GEMM.withPrecision(.bf16) {
                    #expect(GEMM.usesAMX == (amx && GEMM.hasAMX))
                    for m in [1, 2, 3, 5, 8] {
                        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                            let a = Tensor(randomUniform: ta ? [k, m] : [m, k], lowerBound: -1, upperBound: 1, seed: UInt64(m))
                            let b = Tensor(randomUniform: tb ? [n, k] : [k, n], lowerBound: -1, upperBound: 1, seed: 7)
                            let label = "m \(m), transposes \(ta) \(tb), \(threads) threads, AMX \(amx && GEMM.hasAMX)"
                            let c = GEMM.withBF16Copies(of: [b]) { productOntoOnes(a, b, m: m, k: k, n: n, transposeA: ta, transposeB: tb) }
                            let (reference, scale) = naiveProduct(roundedToBF16(a.scalars), roundedToBF16(b.scalars), m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                            #expect(worstErrorOntoOnes(c, reference, scale) <= 1e-5, "\(label)")
                            let (exact, _) = naiveProduct(a.scalars, b.scalars, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                            #expect(worstErrorOntoOnes(c, exact, scale) > 1e-4, "\(label): no sign of rounding")
                            let outside = productOntoOnes(a, b, m: m, k: k, n: n, transposeA: ta, transposeB: tb)
                            #expect(worstErrorOntoOnes(outside, exact, scale) <= 1e-5, "\(label): fp32 outside the scope")
                        }
                    }
                } }
            }
        }
    }

    @Test func stridedBatches() {
        // 6 batches of 5x9 · 9x4, as batched matmul, against per-batch naive products.
        let a = Tensor(randomUniform: [6, 5, 9], lowerBound: -1, upperBound: 1, seed: 8)
        let b = Tensor(randomUniform: [6, 9, 4], lowerBound: -1, upperBound: 1, seed: 9)
        let c = matmul(a, b).scalars
        let sa = a.scalars, sb = b.scalars
        for batch in 0..<6 {
            let (reference, scale) = naiveProduct(Array(sa[(batch * 45)..<(batch * 45 + 45)]), Array(sb[(batch * 36)..<(batch * 36 + 36)]),
                                                  m: 5, k: 9, n: 4, transposeA: false, transposeB: false)
            for i in 0..<20 { #expect(abs(Double(c[batch * 20 + i]) - reference[i]) <= 1e-5 * scale[i]) }
        }
    }

    @Test func pathsAreDetectedAndPortableIsAlwaysThere() {
        #expect(GEMM.supportedPaths.last == .portable)
        #expect(GEMM.supportedPaths.contains(GEMM.path))
    }
}

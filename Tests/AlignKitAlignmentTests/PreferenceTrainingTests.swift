// The preference trainer: the cached reference spares every reference pass of a second run, training
// separates chosen from rejected, and a resumed run ends where an uninterrupted one does.
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

@Suite("Preference training", .serialized)
struct PreferenceTrainingTests {
    static func options(cache: URL) -> PreferenceTrainingOptions {
        let folder = fixtures.appendingPathComponent("trl-dpo")
        var o = PreferenceTrainingOptions()
        o.data = folder.appendingPathComponent("prefs.jsonl").path
        o.evaluationData = o.data
        o.model = folder.appendingPathComponent("policy").path
        o.referenceModel = folder.appendingPathComponent("reference").path
        o.referenceCache = cache.path
        o.maxLength = 48   // as the TRL fixture
        o.batchSize = 4
        o.epochs = 6
        o.learningRate = 3e-3
        o.minimumLearningRate = 3e-3
        o.objective.beta = 0.5
        o.evaluateEvery = 6
        o.saveEvery = 4
        return o
    }

    @Test func cachedReferenceMeansNoReferencePassesInASecondRun() throws {
        let cache = try temporaryFolder("refcache"), a = try temporaryFolder("dpo-a"), b = try temporaryFolder("dpo-b"), c = try temporaryFolder("dpo-c")
        defer { for u in [cache, a, b, c] { try? FileManager.default.removeItem(at: u) } }
        var o = Self.options(cache: cache)
        o.epochs = 1
        let first = try PreferenceTrainer(options: o, output: a)
        #expect(first.referenceForwardPasses == 2)   // 8 pairs in batches of 4; the evaluation file is the same data
        try first.run()
        #expect(first.referenceForwardPasses == 2)   // training itself reads the precomputed values
        var messages: [String] = []
        let second = try PreferenceTrainer(options: o, output: b) { if case .message(let m) = $0 { messages.append(m) } }
        try second.run()
        #expect(second.referenceForwardPasses == 0)
        #expect(messages.filter { $0.contains("cached (") }.count == 2)
        // The same numbers either way.
        #expect(try String(contentsOf: a.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map(stripRate)
                == String(contentsOf: b.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map(stripRate))
        // A different reference is a different key.
        o.referenceModel = nil
        let third = try PreferenceTrainer(options: o, output: c)
        #expect(third.referenceForwardPasses == 2)
    }

    /// Metrics lines without the wall-clock fields.
    func stripRate(_ line: Substring) -> String {
        guard var object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return String(line) }
        object["pairs_per_second"] = nil
        return String(data: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), encoding: .utf8)!
    }

    @Test func trainingSeparatesChosenFromRejected() throws {
        let cache = try temporaryFolder("refcache"), out = try temporaryFolder("dpo")
        defer { for u in [cache, out] { try? FileManager.default.removeItem(at: u) } }
        var evaluations: [[String: Double]] = []
        let trainer = try PreferenceTrainer(options: Self.options(cache: cache), output: out) {
            if case .evaluation(_, let m) = $0 { evaluations.append(m) }
        }
        try trainer.run()
        let first = try #require(evaluations.first), last = try #require(evaluations.last)
        #expect(abs(first["eval_rewards/margins"]! - 0.914966) < 1e-4, "\(first)")   // TRL's value for β = 0.5 before training
        #expect(last["eval_rewards/accuracies"]! == 1, "\(last)")
        #expect(last["eval_rewards/margins"]! > first["eval_rewards/margins"]! + 2, "\(first) → \(last)")
        #expect(last["eval_loss"]! < first["eval_loss"]! / 2)
        // The run folder is a model folder.
        let model = try GPT(contentsOf: out)
        #expect(model.configuration.architecture == .llama)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.json").path))
    }

    @Test func resumedRunEndsWhereAnUninterruptedOneDoes() throws { try withKernelSettingsLock { try resumeCheck() } }

    func resumeCheck() throws {
        let cache = try temporaryFolder("refcache"), whole = try temporaryFolder("dpo-whole"), split = try temporaryFolder("dpo-split")
        defer { for u in [cache, whole, split] { try? FileManager.default.removeItem(at: u) } }
        var o = Self.options(cache: cache)
        o.evaluationData = nil
        o.syncReferenceEvery = 3   // TR-DPO: the synced reference is part of the state a resume needs
        o.referenceModel = nil     // (syncing needs a reference shaped like the policy)
        let uninterrupted = try PreferenceTrainer(options: o, output: whole)
        try uninterrupted.run()
        var steps = 0
        let stopped = try PreferenceTrainer(options: o, output: split)
        try stopped.run { steps += 1; return steps > 5 }
        #expect(stopped.step == 5)
        let resumed = try PreferenceTrainer(options: o, output: split, resume: true)
        #expect(resumed.step == 5)
        try resumed.run()
        var a = uninterrupted.policy, b = resumed.policy
        var pa: [[Float]] = [], pb: [[Float]] = []
        a.forEachParameter { pa.append($0.scalars) }
        b.forEachParameter { pb.append($0.scalars) }
        #expect(pa == pb)
    }
}

@Suite("LoRA training", .serialized)
struct LoRATrainingTests {
    /// DPO with LoRA: the base weights stay as they were, the pairs separate, the run folder holds the
    /// merged model and a PEFT adapter that reproduces it on the base, and a resumed run (adapters read
    /// back from the checkpoint) ends where an uninterrupted one does.
    @Test func dpoWithLoRA() throws {
        try withKernelSettingsLock {
            let cache = try temporaryFolder("refcache"), whole = try temporaryFolder("lora-whole"), split = try temporaryFolder("lora-split")
            defer { for u in [cache, whole, split] { try? FileManager.default.removeItem(at: u) } }
            var o = PreferenceTrainingTests.options(cache: cache)
            o.lora = LoRASettings(rank: 4, alpha: 8, dropout: 0, targets: ["q_proj", "v_proj", "up_proj", "down_proj"])
            o.learningRate = 1e-2; o.minimumLearningRate = 1e-2
            var evaluations: [[String: Double]] = []
            let trainer = try PreferenceTrainer(options: o, output: whole) { if case .evaluation(_, let m) = $0 { evaluations.append(m) } }
            let base = try GPT(contentsOf: URL(fileURLWithPath: o.model))
            try trainer.run()
            let first = try #require(evaluations.first), last = try #require(evaluations.last)
            #expect(last["eval_rewards/margins"]! > first["eval_rewards/margins"]! + 1, "\(first) → \(last)")
            #expect(zip(trainer.policy.huggingFaceTensors(), base.huggingFaceTensors()).allSatisfy { $0.1.scalars == $1.1.scalars })
            let tokens = [5, 40, 7, 300, 12, 9]
            let trained = trainer.policy.logits(tokens)
            #expect(relativeDifference(try GPT(contentsOf: whole).logits(tokens), trained) < 1e-5)
            var reloaded = base
            try reloaded.loadAdapters(from: whole.appendingPathComponent("adapter"))
            #expect(relativeDifference(reloaded.logits(tokens), trained) < 1e-6)
            // Stop after 5 steps and resume.
            o.evaluationData = nil
            var steps = 0
            try PreferenceTrainer(options: o, output: split).run { steps += 1; return steps > 5 }
            let resumed = try PreferenceTrainer(options: o, output: split, resume: true)
            #expect(resumed.step == 5)
            try resumed.run()
            #expect(resumed.policy.logits(tokens).scalars == trained.scalars)
        }
    }
}


@Suite("SFT")
struct SFTTests {
    @Test func promptMaskedLossFallsAndOnlyCompletionTokensCount() throws {
        let pairs = fixtures.appendingPathComponent("trl-dpo/prefs.jsonl")
        // SFT data: each pair's prompt and chosen completion.
        let records = try PreferenceExample.read(pairs).records.map { r -> String in
            guard case .plain(let p) = r.prompt, case .plain(let c) = r.chosen else { return "" }
            let object = try! JSONSerialization.data(withJSONObject: ["prompt": p, "completion": c], options: [.sortedKeys])
            return String(data: object, encoding: .utf8)!
        }
        let data = try writeLines(records, name: "sft.jsonl")
        let out = try temporaryFolder("sft")
        defer { try? FileManager.default.removeItem(at: out) }
        var o = SFTOptions()
        o.data = data.path; o.evaluationData = data.path
        o.model = fixtures.appendingPathComponent("trl-dpo/policy").path
        o.batchSize = 4; o.epochs = 8; o.learningRate = 3e-3; o.minimumLearningRate = 3e-3; o.evaluateEvery = 16
        var evaluations: [Double] = []
        let trainer = try SFTTrainer(options: o, output: out) { if case .evaluation(_, let m) = $0 { evaluations.append(m["eval_loss"]!) } }
        // The loss counts completion tokens only: the first batch's token count equals its completions' lengths.
        let before = try #require(trainer.evaluate()["eval_loss"])
        let first = trainer.batch(0)
        #expect(trainer.trainStep(learningRate: 0)["num_tokens"] == Double(first.reduce(0) { $0 + $1.completions[0].count }))
        try trainer.run()
        let after = try #require(evaluations.last)
        #expect(after < before - 1, "held-out loss \(before) → \(after)")
    }
}

// What a run does with bad numbers and bad places: a non-finite loss or gradient skips the step and,
// several in a row, stops the run naming the step, the loss parts and the last good checkpoint, with
// nothing non-finite in any checkpoint; an output folder that cannot be written, or a disk without
// room for a checkpoint, is an error before any work; the same seed gives the same metrics and weights.
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

let policyFolder = alignmentFixtures.appendingPathComponent("trl-dpo/policy")
let preferencePairs = alignmentFixtures.appendingPathComponent("trl-dpo/prefs.jsonl")

/// The fixture's pairs as SFT data (prompt, chosen completion).
func sftData(in folder: URL) throws -> URL {
    let url = folder.appendingPathComponent("sft.jsonl")
    var lines: [String] = []
    for pair in try PreferenceExample.read(preferencePairs).records {
        guard case .plain(let p) = pair.prompt, case .plain(let c) = pair.chosen else { continue }
        lines.append(String(data: try JSONSerialization.data(withJSONObject: ["prompt": p, "completion": c], options: [.sortedKeys]), encoding: .utf8)!)
    }
    try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    return url
}

/// Every parameter of a checkpoint's model is finite.
func allFinite(_ folder: URL) throws -> Bool {
    var model = try GPT(contentsOf: folder)
    var finite = true
    model.forEachParameter { p in if !p.scalars.allSatisfy(\.isFinite) { finite = false } }
    return finite
}

@Suite("Training safety", .serialized)
struct TrainingSafetyTests {
    /// A learning rate of 1e30 sends the weights to ±1e30 in one AdamW step; the next forward pass
    /// overflows to inf and NaN. Those steps are skipped; the third in a row stops the run.
    @Test func nonFiniteStepsAreSkippedThenStopTheRunNamingTheLastGoodCheckpoint() throws {
        let scratch = try temporaryFolder("diverge")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var o = SFTOptions()
        o.data = try sftData(in: scratch).path; o.model = policyFolder.path
        o.batchSize = 4; o.epochs = 10; o.learningRate = 1e30; o.minimumLearningRate = 1e30
        o.saveEvery = 1; o.logEvery = 1; o.nonFiniteStepLimit = 3
        let out = scratch.appendingPathComponent("run")
        var messages: [String] = []
        let trainer = try SFTTrainer(options: o, output: out) { if case .message(let m) = $0 { messages.append(m) } }
        let error = #expect(throws: TrainingDiverged.self) { try trainer.run() }
        let diverged = try #require(error)
        #expect(diverged.step == 4 && diverged.inARow == 3, "\(diverged)")   // step 1 applied, 2-4 skipped
        #expect(diverged.parts["loss"].map { !$0.isFinite } == true, "\(diverged.parts)")
        let text = diverged.description
        #expect(text.contains("up to step 4") && text.contains("loss nan") && text.contains("checkpoints/step-00000003"), "\(text)")
        #expect(messages.filter { $0.contains("non-finite loss or gradient") }.count == 3, "\(messages)")
        // Nothing non-finite was saved; the skipped steps are in the metrics, their loss null.
        let run = RunFolder(out)
        #expect(run.checkpoints().count == 2)
        for checkpoint in run.checkpoints() { #expect(try allFinite(checkpoint), "\(checkpoint.path)") }
        #expect(try allFinite(out))
        let records = try String(contentsOf: run.metricsFile, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        let skipped = records.filter { ($0["skipped"] as? Double) == 1 }
        #expect(skipped.count == 3 && skipped.allSatisfy { $0["loss"] is NSNull }, "\(records)")
    }

    @Test func pretrainingSkipsNonFiniteStepsToo() throws {
        let scratch = try temporaryFolder("diverge-pretrain")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let corpus = scratch.appendingPathComponent("corpus.txt")
        try DemoCorpus.reviews(count: 800, seed: 4).joined(separator: "\n").write(to: corpus, atomically: true, encoding: .utf8)
        var o = PretrainingOptions()
        o.corpus = [corpus.path]; o.vocabularySize = 300; o.modelSize = 32; o.layerCount = 1; o.headCount = 2; o.kvHeadCount = 1
        o.sequenceLength = 32; o.batchSize = 4; o.steps = 20; o.learningRate = 1e30; o.minimumLearningRate = 1e30; o.warmupSteps = 0
        o.saveEvery = 2; o.evaluateEvery = 100; o.nonFiniteStepLimit = 2
        let out = scratch.appendingPathComponent("run")
        let trainer = try Pretrainer(options: o, output: out, resume: false) { _ in }
        let error = #expect(throws: TrainingDiverged.self) { try trainer.run() }
        #expect(error?.step == 3, "\(String(describing: error))")
        #expect(error?.lastCheckpoint?.hasSuffix("step-00000002") == true, "\(String(describing: error))")
        for checkpoint in RunFolder(out).checkpoints() { #expect(try allFinite(checkpoint)) }
    }

    @Test func anOutputFolderThatCannotBeWrittenStopsBeforeAnyWork() throws {
        let scratch = try temporaryFolder("unwritable")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        var o = SFTOptions()
        o.data = try sftData(in: scratch).path; o.model = policyFolder.path
        let inside = file.appendingPathComponent("run")
        let error = #expect(throws: DataFileError.self) { try SFTTrainer(options: o, output: inside) }
        #expect(error?.file == inside.path && error?.message.contains("cannot create the output folder") == true, "\(String(describing: error))")
        #if os(Linux)
        // A folder that exists but takes no new files, even for root.
        let proc = #expect(throws: DataFileError.self) { try checkWritableFolder(URL(fileURLWithPath: "/proc/self"), needs: 0, for: "a run") }
        #expect(proc?.message.contains("is not writable") == true, "\(String(describing: proc))")
        #endif
    }

    @Test func aDiskWithoutRoomForACheckpointIsAnErrorAtStart() throws {
        let scratch = try temporaryFolder("room")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let free = try #require(freeBytes(at: scratch))
        // A model whose checkpoint needs twice the free space.
        let parameters = Int(free / 8)
        let error = #expect(throws: DataFileError.self) { try RunFolder(scratch).checkRoom(parameters: parameters) }
        #expect(error?.message.contains("free; a checkpoint of \(parameters) parameters") == true, "\(String(describing: error))")
        try RunFolder(scratch).checkRoom(parameters: 1000)
        #expect(RunFolder.checkpointBytes(parameters: 1000) == 16_000 + 1 << 20)
    }

    /// Same seed, data and threads: the same metrics file and weights, byte for byte, for every trainer
    /// (pretraining and DPO are checked across processes by the crash tests).
    @Test func sameSeedGivesTheSameMetricsAndWeights() throws {
        let scratch = try temporaryFolder("determinism")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let sft = try sftData(in: scratch)
        var unpaired: [String] = []
        for pair in try PreferenceExample.read(preferencePairs).records {
            guard case .plain(let p) = pair.prompt, case .plain(let c) = pair.chosen, case .plain(let r) = pair.rejected else { continue }
            for (completion, label) in [(c, true), (r, false)] {
                unpaired.append(String(data: try JSONSerialization.data(withJSONObject: ["prompt": p, "completion": completion, "label": label] as [String: Any],
                                                                       options: [.sortedKeys]), encoding: .utf8)!)
            }
        }
        let kto = scratch.appendingPathComponent("kto.jsonl")
        try unpaired.joined(separator: "\n").write(to: kto, atomically: true, encoding: .utf8)
        let runs: [(String, (URL) throws -> AlignmentTrainer)] = [
            ("sft", { out in
                var o = SFTOptions(); o.data = sft.path; o.evaluationData = sft.path; o.model = policyFolder.path
                o.batchSize = 4; o.maxSteps = 6; o.evaluateEvery = 3
                o.lora = LoRASettings(rank: 4, alpha: 8, dropout: 0.1, targets: ["q_proj", "v_proj"])   // dropout masks drawn too
                return try SFTTrainer(options: o, output: out)
            }),
            ("reward", { out in
                var o = RewardTrainingOptions(); o.data = preferencePairs.path; o.evaluationData = preferencePairs.path; o.model = policyFolder.path
                o.batchSize = 4; o.maxSteps = 6; o.evaluateEvery = 3
                return try RewardTrainer(options: o, output: out)
            }),
            ("kto", { out in
                var o = KTOOptions(); o.data = kto.path; o.model = policyFolder.path; o.batchSize = 4; o.maxSteps = 6
                return try KTOTrainer(options: o, output: out)
            }),
            ("ppo", { out in
                var o = PPOOptions(); o.data = preferencePairs.path; o.evaluationData = preferencePairs.path; o.model = policyFolder.path
                o.batchSize = 4; o.samplesPerPrompt = 2; o.maximumNewTokens = 6; o.maxSteps = 4; o.evaluateEvery = 2; o.epochs = 10
                return try PPOTrainer(options: o, output: out, reward: LengthReward())
            }),
        ]
        for (name, make) in runs {
            let a = scratch.appendingPathComponent(name + "-a"), b = scratch.appendingPathComponent(name + "-b")
            // Other suites change the thread count and GEMM path while they run; bit-for-bit runs hold the lock.
            try withKernelSettingsLock {
                try make(a).run { false }
                try make(b).run { false }
            }
            for file in ["metrics.jsonl", "model.safetensors"] {
                let x = try Data(contentsOf: a.appendingPathComponent(file)), y = try Data(contentsOf: b.appendingPathComponent(file))
                #expect(x == y, "\(name): \(file) differs between two runs with the same seed")
            }
        }
    }
}

/// A programmatic reward: longer completions score higher (up to 20 characters).
struct LengthReward: RewardFunction {
    func reward(prompt: String, completion: String) -> Float { Float(min(completion.count, 20)) / 20 }
}

// The DPO paper's experiment end to end, as `alignkit demo` runs it:
//
//   corpus ─ pretrain ─ SFT ─ sample k completions per prompt from the SFT model ─ label pairs with
//   the ground-truth reward ─ reward model ─ PPO against the reward model at a few KL coefficients
//   ─ DPO at a few β ─ evaluate every checkpoint of every run (ground-truth reward, KL to the SFT
//   model) ─ report
//
// Every stage writes under one folder and is recorded in `demo.json` when it finishes (with its
// wall-clock time, estimated FLOPs and a summary), so running the demo again with the same folder
// skips finished stages and resumes an interrupted one from its newest checkpoint.
import AlignKitNN
import AlignKitText
import Foundation

public struct DemoOptions: Codable, Sendable, Equatable {
    public enum Corpus: String, Codable, Sendable, CaseIterable { case embedded, shakespeare }
    public var corpus: Corpus = .embedded
    public var seed: UInt64 = 1
    // Pretraining.
    public var vocabularySize = 384
    public var modelSize = 96
    public var layerCount = 3
    public var headCount = 4
    public var kvHeadCount = 2
    public var contextLength = 64
    public var pretrainSteps = 500
    public var pretrainBatchSize = 16
    public var pretrainLearningRate: Float = 3e-3
    // SFT.
    public var sftExamples = 3000
    public var sftSteps = 120
    // Pairs and evaluation.
    public var pairPrompts = 3000
    public var samplesPerPrompt = 4
    public var maximumNewTokens = 12
    public var heldOutPrompts = 100
    public var evaluationSamples = 4
    // Reward model, PPO, DPO.
    public var rewardEpochs = 2
    public var ppoKLCoefficients: [Float] = [0.02, 0.1]
    public var ppoSteps = 60
    public var ppoBatchSize = 8
    public var ppoSamples = 4
    public var ppoLearningRate: Float = 1e-4
    public var dpoBetas: [Float] = [0.1, 0.5]
    public var dpoEpochs = 3
    public var dpoLearningRate: Float = 3e-4
    /// Checkpoints per PPO and DPO run (points on the frontier).
    public var checkpointsPerRun = 4

    public init() {}

    /// The Shakespeare preset: the real corpus, the VADER lexicon, a larger model (≤ 30 minutes on 2 cores).
    public static var shakespeare: DemoOptions {
        var o = DemoOptions()
        o.corpus = .shakespeare
        o.vocabularySize = 1024; o.modelSize = 128; o.layerCount = 4; o.contextLength = 128
        o.pretrainSteps = 1500; o.sftExamples = 6000; o.sftSteps = 200
        o.pairPrompts = 4000; o.maximumNewTokens = 16; o.heldOutPrompts = 150
        o.ppoSteps = 100; o.ppoBatchSize = 16
        return o
    }
}

public enum DemoEvent: Sendable {
    case stageStarted(name: String, description: String)
    /// A progress line for the running stage (updated in place by the CLI).
    case progress(stage: String, line: String)
    case stageFinished(name: String, summary: String, seconds: Double)
    case stageSkipped(name: String, summary: String)
    case message(String)
}

/// What `demo.json` records about a finished stage.
public struct DemoStageRecord: Codable, Sendable {
    public var seconds: Double
    /// Estimated floating-point operations (6N per trained token, 2N per forward-only token).
    public var flops: Double
    public var summary: String
    public var values: [String: Double]
}

public struct DemoState: Codable, Sendable {
    public var options: DemoOptions
    public var finished: [String: DemoStageRecord] = [:]
}

public final class AlignmentDemo {
    public let options: DemoOptions
    public let folder: URL
    public private(set) var state: DemoState
    let emit: (DemoEvent) -> Void
    let shouldStop: () -> Bool
    var reward: any RewardFunction

    public var stateFile: URL { folder.appendingPathComponent("demo.json") }
    func path(_ name: String) -> URL { folder.appendingPathComponent(name) }

    public init(options: DemoOptions, folder: URL, emit: @escaping (DemoEvent) -> Void = { _ in }, shouldStop: @escaping () -> Bool = { false }) throws {
        self.folder = folder
        self.emit = emit
        self.shouldStop = shouldStop
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("demo.json")
        if FileManager.default.fileExists(atPath: file.path) {
            let saved = try JSONDecoder().decode(DemoState.self, from: readFile(file))
            if saved.options != options { emit(.message("\(file.path) was started with other options; continuing with those")) }
            state = saved
        } else {
            state = DemoState(options: options)
        }
        self.options = state.options
        if self.options.corpus == .shakespeare && (try? DataCache.locate(.vader)) == nil {
            emit(.message("fetching the VADER lexicon (alignkit data fetch vader)"))
            _ = try DataFetcher.fetch(DataSetSource.named(.vader)) { [emit] in emit(.message($0)) }
        }
        reward = self.options.corpus == .embedded ? DemoCorpus.reward : try SentimentLexicon.load()
    }

    /// The stage names in order.
    public var stageNames: [String] {
        ["corpus", "pretrain", "sft", "pairs", "reward"] + options.ppoKLCoefficients.map { "ppo-kl\(format($0))" }
            + options.dpoBetas.map { "dpo-beta\(format($0))" } + ["evaluate"]
    }

    func format(_ x: Float) -> String { String(format: "%g", x) }

    /// Runs every stage not yet finished; returns false when stopped early.
    @discardableResult
    public func run() throws -> Bool {
        let stages: [(String, String, () throws -> DemoStageRecord?)] = [
            ("corpus", "write the corpus, the prompts and the SFT data", corpusStage),
            ("pretrain", "pretrain a GPT on the corpus", pretrainStage),
            ("sft", "supervised fine-tuning on prompt/completion pairs", sftStage),
            ("pairs", "sample \(options.samplesPerPrompt) completions per prompt from the SFT model and label pairs with the reward", pairsStage),
            ("reward", "train a Bradley–Terry reward model on the pairs", rewardStage),
        ] + options.ppoKLCoefficients.map { kl in ("ppo-kl\(format(kl))", "PPO against the reward model, KL coefficient \(format(kl))", { try self.ppoStage(kl) }) }
          + options.dpoBetas.map { beta in ("dpo-beta\(format(beta))", "DPO on the pairs, β \(format(beta))", { try self.dpoStage(beta) }) }
          + [("evaluate", "sample every checkpoint on held-out prompts: ground-truth reward and KL to the SFT model", evaluateStage)]
        for (name, description, body) in stages {
            if let done = state.finished[name] { emit(.stageSkipped(name: name, summary: done.summary)); continue }
            emit(.stageStarted(name: name, description: description))
            let started = Date()
            guard var record = try body() else { return false }
            record.seconds = Date().timeIntervalSince(started)
            state.finished[name] = record
            try save()
            emit(.stageFinished(name: name, summary: record.summary, seconds: record.seconds))
            if shouldStop() { return false }
        }
        return true
    }

    func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(state), to: stateFile)
    }

    /// Whether a trainer's folder holds a checkpoint to resume from; a folder without one is cleared.
    func resumable(_ url: URL) -> Bool {
        if RunFolder(url).newestCheckpoint() != nil { return true }
        try? FileManager.default.removeItem(at: url)
        return false
    }

    /// Turns a trainer's events into progress lines.
    func progress(_ stage: String) -> (TrainingEvent) -> Void {
        { [emit] event in
            guard case let .step(step, total, m, left) = event else { return }
            var line = String(format: "step %d/%d", step, total)
            for (key, label) in [("loss", "loss"), ("reward", "reward"), ("kl", "KL"), ("rewards/accuracies", "acc"), ("accuracy", "acc")] {
                if let v = m[key] { line += String(format: "  %@ %.3f", label, v) }
            }
            if let (key, rate) = m.first(where: { $0.key.hasSuffix("_per_second") }) {
                line += String(format: "  %.0f %@/s", rate, String(key.dropLast("_per_second".count)))
            }
            line += String(format: "  %.0fs left", left)
            emit(.progress(stage: stage, line: line))
        }
    }

    // MARK: Stages

    func corpusStage() throws -> DemoStageRecord? {
        let seed = options.seed
        var sft: [[String: String]] = []
        var trainPrompts: [String], heldOut: [String]
        switch options.corpus {
        case .embedded:
            let reviews = DemoCorpus.reviews(count: 40_000, seed: seed)
            try writeAtomically(Data(reviews.joined(separator: "\n").utf8), to: path("corpus.txt"))
            let verbs = Set(DemoCorpus.verbs)
            for review in DemoCorpus.reviews(count: options.sftExamples, seed: seed &+ 1) {
                let words = review.split(separator: " ")
                let end = (words.firstIndex { verbs.contains(String($0)) } ?? 1) + 1
                sft.append(["prompt": words[..<end].joined(separator: " "), "completion": " " + words[end...].joined(separator: " ")])
            }
            // The grammar has about a thousand distinct openings: prompts repeat, each time with new samples.
            trainPrompts = DemoCorpus.prompts(count: options.pairPrompts, seed: seed &+ 2)
            heldOut = DemoCorpus.prompts(count: options.heldOutPrompts, seed: seed &+ 4)
        case .shakespeare:
            let source: URL
            if let cached = try? DataCache.locate(.shakespeare) {
                source = cached
            } else {
                emit(.message("fetching the Shakespeare corpus (alignkit data fetch shakespeare)"))
                _ = try DataFetcher.fetch(DataSetSource.named(.shakespeare)) { [emit] in emit(.message($0)) }
                source = try DataCache.locate(.shakespeare)
            }
            let text = try Pretrainer.readCorpus([source.path]).joined(separator: "\n")
            try writeAtomically(Data(text.utf8), to: path("corpus.txt"))
            for line in corpusPrompts(text, count: options.sftExamples, words: 12, seed: seed &+ 1, split: .train) {
                let words = line.split(separator: " ")
                sft.append(["prompt": words.prefix(4).joined(separator: " "), "completion": " " + words.dropFirst(4).joined(separator: " ")])
            }
            trainPrompts = corpusPrompts(text, count: options.pairPrompts, words: 4, seed: seed &+ 2, split: .train)
            heldOut = corpusPrompts(text, count: options.heldOutPrompts, words: 4, seed: seed &+ 4, split: .heldout)
        }
        try writeJSONLines(sft, to: path("sft.jsonl"))
        try writeJSONLines(trainPrompts.map { ["prompt": $0] }, to: path("prompts-train.jsonl"))
        try writeJSONLines(heldOut.map { ["prompt": $0] }, to: path("prompts-heldout.jsonl"))
        return DemoStageRecord(seconds: 0, flops: 0, summary: "\(sft.count) SFT examples, \(trainPrompts.count) training and \(heldOut.count) held-out prompts",
                               values: ["sft_examples": Double(sft.count), "train_prompts": Double(trainPrompts.count), "heldout_prompts": Double(heldOut.count)])
    }

    func pretrainStage() throws -> DemoStageRecord? {
        var o = PretrainingOptions()
        o.corpus = [path("corpus.txt").path]
        o.vocabularySize = options.vocabularySize
        o.modelSize = options.modelSize; o.layerCount = options.layerCount; o.headCount = options.headCount; o.kvHeadCount = options.kvHeadCount
        o.sequenceLength = options.contextLength; o.batchSize = options.pretrainBatchSize; o.steps = options.pretrainSteps
        o.learningRate = options.pretrainLearningRate; o.minimumLearningRate = options.pretrainLearningRate / 10
        o.warmupSteps = min(100, options.pretrainSteps / 10); o.evaluateEvery = max(1, options.pretrainSteps / 5)
        o.saveEvery = max(1, options.pretrainSteps / 4); o.logEvery = 10; o.seed = options.seed
        let out = path("pretrain")
        var lastValidation = Double.nan
        let trainer = try Pretrainer(options: o, output: out, resume: resumable(out)) { [emit] event in
            switch event {
            case let .step(step, total, loss, _, _, rate, left):
                emit(.progress(stage: "pretrain", line: String(format: "step %d/%d  loss %.3f  %.0f tok/s  %.0fs left", step, total, loss, rate, left)))
            case let .evaluation(_, loss, _): lastValidation = loss
            default: break
            }
        }
        try trainer.run(shouldStop: shouldStop)
        if trainer.step < o.steps { return nil }
        let n = Double(trainer.model.configuration.parameterCount)
        let tokens = Double(o.steps * o.batchSize * o.sequenceLength)
        return DemoStageRecord(seconds: 0, flops: 6 * n * tokens,
                               summary: String(format: "%.2fM parameters, %d steps, validation loss %.3f", n / 1e6, o.steps, lastValidation),
                               values: ["validation_loss": lastValidation, "parameters": n])
    }

    func sftStage() throws -> DemoStageRecord? {
        var o = SFTOptions()
        o.data = path("sft.jsonl").path; o.model = path("pretrain").path
        o.batchSize = 16; o.epochs = 1000; o.maxSteps = options.sftSteps; o.learningRate = 1e-3; o.minimumLearningRate = 1e-4
        o.logEvery = 5; o.saveEvery = max(1, options.sftSteps / 2); o.evaluateEvery = options.sftSteps; o.seed = options.seed
        let out = path("sft")
        var lastLoss = Double.nan, tokens = 0.0
        let trainer = try SFTTrainer(options: o, output: out, resume: resumable(out)) { [progress] event in
            if case let .step(_, _, m, _) = event { lastLoss = m["loss"] ?? lastLoss }
            progress("sft")(event)
        }
        try trainer.run(shouldStop: shouldStop)
        if trainer.step < trainer.totalSteps { return nil }
        let meanLength = Double(trainer.train.reduce(0) { $0 + $1.prompt.count + $1.completions[0].count }) / Double(trainer.train.count)
        tokens = Double(trainer.totalSteps * o.batchSize) * meanLength
        let n = Double(trainer.model.configuration.parameterCount)
        return DemoStageRecord(seconds: 0, flops: 6 * n * tokens, summary: String(format: "%d steps, final loss %.3f", trainer.totalSteps, lastLoss),
                               values: ["loss": lastLoss])
    }

    func generationSettings(samples: Int, seed: UInt64) -> GenerationSettings {
        var s = GenerationSettings()
        s.samplesPerPrompt = samples; s.maximumNewTokens = options.maximumNewTokens; s.seed = seed
        return s
    }

    func prompts(_ name: String) throws -> [String] {
        try PromptExample.read(path(name)).records.map { $0.prompt.promptText(template: ChatTemplate()) }
    }

    func pairsStage() throws -> DemoStageRecord? {
        let (model, tokenizer) = (try GPT(contentsOf: path("sft")), try BytePairTokenizer(contentsOf: path("sft")))
        let prompts = try self.prompts("prompts-train.jsonl")
        var samples: [[SampledCompletion]] = []
        let started = Date()
        for (i, chunk) in stride(from: 0, to: prompts.count, by: 50).enumerated() {
            if shouldStop() { return nil }
            let part = Array(prompts[chunk..<min(chunk + 50, prompts.count)])
            samples += sampleCompletions(model, tokenizer: tokenizer, prompts: part, reward: reward,
                                         settings: generationSettings(samples: options.samplesPerPrompt, seed: options.seed &+ UInt64(i) &* 7919))
            let done = min(chunk + 50, prompts.count)
            let left = Date().timeIntervalSince(started) / Double(done) * Double(prompts.count - done)
            emit(.progress(stage: "pairs", line: String(format: "%d/%d prompts  %.0fs left", done, prompts.count, left)))
        }
        let pairs = labelPairs(samples)
        guard pairs.count >= 2 else {
            throw DataFileError(file: path("pairs-train.jsonl").path, "the SFT model's \(samples.count * options.samplesPerPrompt) samples gave \(pairs.count) pairs "
                                + "(a prompt gives one when its samples' rewards differ): train longer or sample more")
        }
        let heldOutCount = max(1, pairs.count / 10)
        try writeJSONLines(Array(pairs.dropFirst(heldOutCount)), to: path("pairs-train.jsonl"))
        try writeJSONLines(Array(pairs.prefix(heldOutCount)), to: path("pairs-heldout.jsonl"))
        let flat = samples.flatMap { $0 }
        let meanReward = Double(flat.reduce(0) { $0 + $1.reward }) / Double(max(flat.count, 1))
        let tokens = Double(flat.reduce(0) { $0 + $1.promptIDs.count + $1.completionIDs.count })
        let n = Double(model.configuration.parameterCount)
        return DemoStageRecord(seconds: 0, flops: 2 * n * tokens,
                               summary: String(format: "%d samples (mean reward %.3f) → %d pairs (%d held out)", flat.count, meanReward, pairs.count, heldOutCount),
                               values: ["pairs": Double(pairs.count), "sft_mean_reward": meanReward])
    }

    func rewardStage() throws -> DemoStageRecord? {
        var o = RewardTrainingOptions()
        o.data = path("pairs-train.jsonl").path; o.evaluationData = path("pairs-heldout.jsonl").path; o.model = path("sft").path
        o.batchSize = 16; o.epochs = options.rewardEpochs; o.learningRate = 3e-4; o.minimumLearningRate = 3e-5
        o.logEvery = 5; o.evaluateEvery = 1_000_000; o.saveEvery = 1_000_000; o.seed = options.seed
        let out = path("reward")
        var accuracy = Double.nan
        let trainer = try RewardTrainer(options: o, output: out, resume: resumable(out)) { [progress] event in
            if case let .evaluation(_, m) = event { accuracy = m["eval_accuracy"] ?? accuracy }
            progress("reward")(event)
        }
        try trainer.run(shouldStop: shouldStop)
        if trainer.step < trainer.totalSteps { return nil }
        let meanLength = Double(trainer.train.reduce(0) { $0 + 2 * $1.prompt.count + $1.completions[0].count + $1.completions[1].count }) / Double(trainer.train.count)
        let n = Double(trainer.model.trunk.configuration.parameterCount)
        return DemoStageRecord(seconds: 0, flops: 6 * n * meanLength * Double(trainer.totalSteps * o.batchSize),
                               summary: String(format: "%d steps, held-out pairwise accuracy %.3f", trainer.totalSteps, accuracy),
                               values: ["heldout_accuracy": accuracy])
    }

    func ppoStage(_ kl: Float) throws -> DemoStageRecord? {
        let name = "ppo-kl\(format(kl))"
        var o = PPOOptions()
        o.data = path("prompts-train.jsonl").path; o.model = path("sft").path; o.rewardModel = path("reward").path
        o.batchSize = options.ppoBatchSize; o.samplesPerPrompt = options.ppoSamples; o.maximumNewTokens = options.maximumNewTokens
        o.epochs = 1000; o.maxSteps = options.ppoSteps; o.klCoefficient = kl
        o.learningRate = options.ppoLearningRate; o.minimumLearningRate = options.ppoLearningRate
        o.logEvery = 1; o.saveEvery = max(1, options.ppoSteps / options.checkpointsPerRun); o.keepCheckpoints = options.checkpointsPerRun + 1
        o.seed = options.seed
        let out = path(name)
        var last: [String: Double] = [:], episodeTokens = 0.0
        let trainer = try PPOTrainer(options: o, output: out, resume: resumable(out)) { [progress] event in
            if case let .step(_, _, m, _) = event { last = m; episodeTokens += (m["completion_length"] ?? 0) * (m["episodes"] ?? 0) }
            progress(name)(event)
        }
        try trainer.run(shouldStop: shouldStop)
        if trainer.step < trainer.totalSteps { return nil }
        // Per episode token: sampling (2N), scoring by policy, reference, value and reward model (4 × 2N),
        // and ppoEpochs × (policy + value) training (2 × 6N). Prompts are short; completions dominate.
        let n = Double(trainer.policy.configuration.parameterCount)
        let flops = episodeTokens * n * (2 + 8 + Double(o.ppoEpochs) * 12)
        return DemoStageRecord(seconds: 0, flops: flops,
                               summary: String(format: "%d rollouts, final reward-model score %.3f, KL %.2f", trainer.totalSteps, last["reward"] ?? .nan, last["kl"] ?? .nan),
                               values: ["reward_model_score": last["reward"] ?? .nan, "kl": last["kl"] ?? .nan])
    }

    func dpoStage(_ beta: Float) throws -> DemoStageRecord? {
        let name = "dpo-beta\(format(beta))"
        var o = PreferenceTrainingOptions()
        o.data = path("pairs-train.jsonl").path; o.evaluationData = path("pairs-heldout.jsonl").path; o.model = path("sft").path
        o.objective.beta = beta; o.batchSize = 32; o.epochs = options.dpoEpochs
        o.learningRate = options.dpoLearningRate; o.minimumLearningRate = options.dpoLearningRate / 10
        o.referenceCache = path("reference-logps").path
        o.seed = options.seed; o.logEvery = 2
        let pairs = try PreferenceExample.read(path("pairs-train.jsonl")).records.count
        let steps = trainingSteps(count: pairs, batchSize: o.batchSize, epochs: o.epochs, maxSteps: nil)
        o.saveEvery = max(1, steps / options.checkpointsPerRun); o.keepCheckpoints = options.checkpointsPerRun + 1
        o.evaluateEvery = steps
        let out = path(name)
        var heldOut: [String: Double] = [:]
        let trainer = try PreferenceTrainer(options: o, output: out, resume: resumable(out)) { [progress] event in
            if case let .evaluation(_, m) = event { heldOut = m }
            progress(name)(event)
        }
        try trainer.run(shouldStop: shouldStop)
        if trainer.step < trainer.totalSteps { return nil }
        let meanLength = Double(trainer.train.reduce(0) { $0 + 2 * $1.prompt.count + $1.completions[0].count + $1.completions[1].count }) / Double(trainer.train.count)
        let n = Double(trainer.policy.configuration.parameterCount)
        // Training pairs: 6N per token; the reference's log-probabilities once: 2N per token.
        let flops = n * meanLength * (6 * Double(trainer.totalSteps * o.batchSize) + 2 * Double(trainer.train.count))
        return DemoStageRecord(seconds: 0, flops: flops,
                               summary: String(format: "%d steps, held-out rewards/accuracies %.3f", trainer.totalSteps, heldOut["eval_rewards/accuracies"] ?? .nan),
                               values: ["heldout_accuracy": heldOut["eval_rewards/accuracies"] ?? .nan])
    }

    func evaluateStage() throws -> DemoStageRecord? {
        let reference = try GPT(contentsOf: path("sft")), tokenizer = try BytePairTokenizer(contentsOf: path("sft"))
        let prompts = try self.prompts("prompts-heldout.jsonl")
        let settings = generationSettings(samples: options.evaluationSamples, seed: options.seed &+ 0xE7A1)
        let base = evaluatePolicy(reference, reference: nil, tokenizer: tokenizer, prompts: prompts, reward: reward, settings: settings)
        var runs: [FrontierRun] = []
        let names = options.ppoKLCoefficients.map { "ppo-kl\(format($0))" } + options.dpoBetas.map { "dpo-beta\(format($0))" }
        let total = names.reduce(0) { $0 + RunFolder(path($1)).checkpoints().count }
        var done = 0
        for name in names {
            var points: [FrontierPoint] = []
            for checkpoint in RunFolder(path(name)).checkpoints() {
                if shouldStop() { return nil }
                let p = try FrontierPoint.evaluate(checkpoint: checkpoint, reference: reference, tokenizer: tokenizer, prompts: prompts,
                                                   reward: reward, settings: settings)
                points.append(p)
                done += 1
                emit(.progress(stage: "evaluate", line: "\(done)/\(total) checkpoints  \(name) step \(p.step): reward \(String(format: "%.3f", p.reward))"))
            }
            runs.append(FrontierRun(name: name, points: points))
        }
        let frontier = RewardKLFrontier(referenceReward: base.meanReward, runs: runs, prompts: prompts.count, samplesPerPrompt: settings.samplesPerPrompt)
        try writeAtomically(try frontier.json(), to: path("frontier.json"))
        try writeAtomically(Data(frontier.svg().utf8), to: path("frontier.svg"))
        // Samples for the report: the same prompts and seeds from the SFT model and each run's final model.
        var table: [[String: String]] = []
        let shown = Array(prompts.prefix(6))
        var single = settings
        single.samplesPerPrompt = 1
        let models = [("sft", reference)] + (try names.map { ($0, try GPT(contentsOf: path($0))) })
        for (name, model) in models {
            for s in sampleCompletions(model, tokenizer: tokenizer, prompts: shown, reward: reward, settings: single).flatMap({ $0 }) {
                table.append(["model": name, "prompt": s.prompt, "completion": s.text, "reward": String(format: "%.3f", s.reward)])
            }
        }
        try writeJSONLines(table, to: path("samples.jsonl"))
        var values: [String: Double] = ["sft_reward": base.meanReward]
        var summary = String(format: "SFT reward %.3f", base.meanReward)
        for run in runs {
            guard let last = run.points.last else { continue }
            values["\(run.name)_reward"] = last.reward; values["\(run.name)_kl"] = last.kl
            summary += String(format: "; %@ %.3f at KL %.2f", run.name, last.reward, last.kl)
        }
        return DemoStageRecord(seconds: 0, flops: 0, summary: summary, values: values)
    }
}

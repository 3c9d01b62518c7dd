// `alignkit dpo` (and the reference-free SimPO, CPO, ORPO through --loss): parsing and printing; the
// work is in AlignKitAlignment.
import AlignKit
import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Prints an alignment trainer's events: a progress line per logged step, held-out metrics, checkpoints.
func printTrainingEvent(_ event: TrainingEvent, rateName: String = "pairs_per_second", rateUnit: String = "pairs/s") {
    switch event {
    case .message(let text): print(text)
    case let .step(step, total, m, left):
        var line = String(format: "step %5d/%d  loss %.4f", step, total, m["loss"] ?? .nan)
        if let a = m["rewards/accuracies"] { line += String(format: "  acc %.2f", a) }
        if let margin = m["rewards/margins"] { line += String(format: "  margin %+.3f", margin) }
        for (key, name) in [("reward", "reward"), ("kl", "KL")] { if let v = m[key] { line += String(format: "  %@ %.3f", name, v) } }
        if let g = m["grad_norm"] { line += String(format: "  |g| %.2f", g) }
        if let r = m[rateName] { line += String(format: "  %.1f %@", r, rateUnit) }
        print(line + "  \(formatDuration(left)) left")
    case let .evaluation(step, m):
        let keys = m.keys.sorted()
        print("step \(step) held out: " + keys.map { String(format: "%@ %.4f", String($0.dropFirst(5)), m[$0]!) }.joined(separator: "  "))
    case let .checkpoint(step, path): print("step \(step): checkpoint \(path)")
    }
    flushStandardOutput()
}

/// The checks every trainer command makes: counts of at least 1, and a known bad-line policy.
func validateTrainerFlags(counts: [(String, Int)], onBadLine: String) throws {
    for (name, value) in counts where value < 1 { throw ValidationError("\(name) must be at least 1") }
    if BadLinePolicy(rawValue: onBadLine) == nil { throw ValidationError("--on-bad-line must be error or skip, not '\(onBadLine)'") }
}

/// Installs the Ctrl-C / SIGTERM handlers the trainers poll between steps.
func installInterruptHandlers() {
    signal(SIGINT) { _ in interruptRequested = 1 }
    signal(SIGTERM) { _ in interruptRequested = 1 }
}

struct DPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "Align a model with preference pairs: DPO and its family (--loss), or reference-free SimPO, CPO, ORPO.",
        discussion: """
        Data: JSONL lines {"prompt","chosen","rejected"} (strings or lists of {"role","content"} messages), or
        {"chosen","rejected"} whose shared beginning is the prompt. Plain completions get the end-of-text token.
        Loss types: \(PreferenceLossType.allCases.map(\.rawValue).joined(separator: ", ")). Several may be
        combined: --loss sigmoid,sft --loss-weights 1,0.5.
        The reference's log-probabilities are computed once and cached (keyed by the reference's weights and the
        data), so later runs on the same data skip every reference pass. Metrics use TRL's names
        (rewards/chosen, rewards/accuracies, logps/chosen, …) in <out>/metrics.jsonl.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Preference JSONL for training.") var data: String
    @Option(help: "Held-out preference JSONL (evaluated every --eval-every steps).") var evalData: String?
    @Option(help: "The policy's model folder (config.json, model.safetensors, tokenizer.json).") var model: String
    @Option(help: "The reference's model folder (default: the starting policy).") var refModel: String?
    @Option(help: "Output folder.") var out: String = "runs/dpo"
    @Flag(help: "Continue the run in --out from its newest checkpoint.") var resume = false
    @Option(help: "Loss types, comma-separated.") var loss: String = "sigmoid"
    @Option(help: "Weights of the loss types, comma-separated (default: all 1).") var lossWeights: String?
    @Option(help: "β: KL strength (DPO) or reward scale (SimPO, CPO, ORPO).") var beta: Float = 0.1
    @Option(help: "Label smoothing ε (robust, exo_pair, aot, simpo, cpo).") var labelSmoothing: Float = 0
    @Option(help: "SimPO's target margin γ.") var simpoGamma: Float = 0.5
    @Option(help: "CPO's negative log-likelihood weight α.") var cpoAlpha: Float = 1
    @Option(help: "Peak learning rate (cosine to a tenth).") var lr: Float = 5e-5
    @Option(help: "Warm-up steps.") var warmup: Int = 0
    @Option(help: "AdamW weight decay.") var weightDecay: Float = 0
    @Option(help: "Pairs per step.") var batchSize: Int = 8
    @Option(help: "Passes over the data.") var epochs: Int = 1
    @Option(help: "Stop after this many steps.") var maxSteps: Int?
    @Option(help: "Longest prompt + completion in tokens (default: the model's context).") var maxLength: Int?
    @Flag(help: "Compute the reference's log-probabilities every step instead of once (no cache).") var liveReference = false
    @Option(help: "Folder of cached reference log-probabilities (default: <cache>/reference-logps).") var referenceCache: String?
    @Option(help: "TR-DPO: mix the policy into the reference every N steps.") var syncRefEvery: Int?
    @Option(help: "TR-DPO's mixing weight α.") var syncRefAlpha: Float = 0.6
    @Option(help: "What to do with a bad data line: error or skip.") var onBadLine: String = "error"
    @Option(help: "Evaluate every N steps.") var evalEvery: Int = 50
    @Option(help: "Checkpoint every N steps.") var saveEvery: Int = 100
    @Option(help: "Print progress every N steps.") var logEvery: Int = 1
    @Option(help: "Random seed (data order).") var seed: UInt64 = 42

    func objective() throws -> PreferenceObjective {
        let names = loss.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var terms: [PreferenceObjective.Term] = []
        for name in names {
            guard let type = PreferenceLossType(rawValue: name) else {
                throw ValidationError("--loss: '\(name)' is not one of \(PreferenceLossType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            terms.append(.init(type))
        }
        if let lossWeights {
            let weights = lossWeights.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard weights.count == terms.count, weights.allSatisfy({ $0 != nil }) else {
                throw ValidationError("--loss-weights needs \(terms.count) numbers, one per loss type")
            }
            for i in terms.indices { terms[i].weight = weights[i]! }
        }
        var o = PreferenceObjective(terms, beta: beta, labelSmoothing: labelSmoothing)
        o.simpoGamma = simpoGamma
        o.cpoAlpha = cpoAlpha
        do { try o.validate() } catch { throw ValidationError(error.message) }
        return o
    }

    func validate() throws {
        _ = try objective()
        try validateTrainerFlags(counts: [("--batch-size", batchSize), ("--epochs", epochs), ("--eval-every", evalEvery),
                                          ("--save-every", saveEvery), ("--log-every", logEvery)], onBadLine: onBadLine)
    }

    func run() throws {
        global.apply()
        var o = PreferenceTrainingOptions()
        o.data = data; o.evaluationData = evalData; o.model = model; o.referenceModel = refModel
        o.objective = try objective()
        o.learningRate = lr; o.minimumLearningRate = lr / 10; o.warmupSteps = warmup; o.weightDecay = weightDecay
        o.batchSize = batchSize; o.epochs = epochs; o.maxSteps = maxSteps; o.maxLength = maxLength
        o.precomputeReference = !liveReference; o.referenceCache = referenceCache
        o.syncReferenceEvery = syncRefEvery; o.syncReferenceAlpha = syncRefAlpha
        o.onBadLine = BadLinePolicy(rawValue: onBadLine)!
        o.evaluateEvery = evalEvery; o.saveEvery = saveEvery; o.logEvery = logEvery; o.seed = seed
        installInterruptHandlers()
        let trainer = try PreferenceTrainer(options: o, output: URL(fileURLWithPath: out), resume: resume) { printTrainingEvent($0) }
        print("threads: \(Parallel.threadCount); \(trainer.train.count) training pairs; \(trainer.totalSteps) steps; output: \(out)")
        try trainer.run { interruptRequested != 0 }
        if interruptRequested != 0 {
            print("interrupted; continue with the same command and --resume")
        } else {
            print("done. The aligned model is in \(out); sample with: alignkit sample --model \(out) --prompt '…'")
        }
    }
}

/// Where prompts come from, the reward, and how completions are sampled (shared by `pairs` and `eval`).
struct GenerationOptions: ParsableArguments {
    @Option(help: "Prompt JSONL ({\"prompt\"} lines).") var prompts: String?
    @Option(help: "Cut prompts from this text file or folder instead (default when --prompts is absent: the cached Shakespeare).")
    var corpus: String?
    @Option(help: "Prompts to cut from the corpus.") var promptCount: Int = 200
    @Option(help: "Words per prompt cut from the corpus.") var promptWords: Int = 4
    @Option(help: "Seed for cutting prompts (use different seeds for training and held-out prompts).") var promptSeed: UInt64 = 1
    @Option(help: "Completions per prompt.") var samples: Int = 4
    @Option(help: "Tokens per completion at most.") var maxTokens: Int = 24
    @Option(help: "Sampling temperature.") var temperature: Float = 1
    @Option(help: "Sample from the k most likely tokens.") var topK: Int?
    @Option(help: "Sampling seed.") var seed: UInt64 = 7
    @Option(help: "The VADER lexicon file (default: the cached vader data set).") var lexicon: String?

    var settings: GenerationSettings {
        var s = GenerationSettings()
        s.samplesPerPrompt = samples; s.maximumNewTokens = maxTokens; s.temperature = temperature; s.topK = topK; s.seed = seed
        return s
    }

    /// The prompts; conversations are rendered with the chat template of `model` (a model folder).
    func loadPrompts(model: String) throws -> [String] {
        if let prompts {
            let template = try ChatTemplate.load(from: URL(fileURLWithPath: model)) ?? ChatTemplate()
            return try PromptExample.read(URL(fileURLWithPath: prompts), onBadLine: .error).records.map { $0.prompt.promptText(template: template) }
        }
        let paths = try corpus.map { [$0] } ?? [DataCache.locate(.shakespeare).path]
        let text = try Pretrainer.readCorpus(paths).joined(separator: "\n")
        let cut = corpusPrompts(text, count: promptCount, words: promptWords, seed: promptSeed)
        guard !cut.isEmpty else { throw ValidationError("no line of the corpus has \(promptWords + 2) words or more") }
        return cut
    }

    func reward() throws -> SentimentLexicon { try SentimentLexicon.load(lexicon) }
}

struct PairsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pairs",
        abstract: "Label preference pairs: sample completions from a model and keep the best and worst by the sentiment reward.",
        discussion: """
        Writes JSONL lines {"prompt","chosen","rejected","chosen_reward","rejected_reward"}, ready for `alignkit dpo`.
        The reward is the VADER-lexicon sentiment of the completion, in [-1, 1] (see SentimentReward.swift).
        """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var generation: GenerationOptions
    @Option(help: "The model folder to sample from.") var model: String
    @Option(help: "Output JSONL.") var out: String = "pairs.jsonl"

    func run() throws {
        global.apply()
        let (gpt, tokenizer) = try loadModelFolder(model, needTokenizer: true)
        let prompts = try generation.loadPrompts(model: model)
        let reward = try generation.reward()
        let started = Date()
        let samples = sampleCompletions(gpt, tokenizer: tokenizer!, prompts: prompts, reward: reward, settings: generation.settings)
        let pairs = labelPairs(samples)
        try writeJSONLines(pairs, to: URL(fileURLWithPath: out))
        let mean = pairs.isEmpty ? 0 : pairs.reduce(0) { $0 + $1.chosen_reward - $1.rejected_reward } / Float(pairs.count)
        print(String(format: "%d prompts × %d samples in %.1f s → %d pairs (%d prompts tied) in %@; mean reward gap %.3f",
                     prompts.count, generation.samples, Date().timeIntervalSince(started), pairs.count, prompts.count - pairs.count, out, mean))
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model on held-out prompts: mean sentiment reward, KL to a reference, win rate against it.",
        discussion: "KL(π ‖ π_ref) is the mean over the policy's samples of log π(y|x) - log π_ref(y|x), in nats per completion.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var generation: GenerationOptions
    @Option(help: "The model folder to evaluate.") var model: String
    @Option(help: "The reference model folder (for KL and win rate).") var refModel: String?
    @Option(help: "Write the evaluation as JSON here.") var out: String?

    func run() throws {
        global.apply()
        let (gpt, tokenizer) = try loadModelFolder(model, needTokenizer: true)
        let reference = try refModel.map { try loadModelFolder($0, needTokenizer: false).0 }
        let prompts = try generation.loadPrompts(model: model)
        let result = evaluatePolicy(gpt, reference: reference, tokenizer: tokenizer!, prompts: prompts, reward: try generation.reward(),
                                    settings: generation.settings)
        var line = String(format: "%@: mean reward %.4f ± %.4f over %d samples", model, result.meanReward, result.rewardStandardError, result.samples)
        if let kl = result.kl { line += String(format: "; KL %.3f ± %.3f nats", kl, result.klStandardError ?? 0) }
        if let w = result.winRate { line += String(format: "; win rate vs reference %.3f", w) }
        print(line)
        for e in result.examples.prefix(4) { print("  [\(e["reward"]!)] \(e["prompt"]!) ▸\(e["completion"]!.replacingOccurrences(of: "\n", with: " ⏎ "))") }
        if let out {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically(try encoder.encode(result), to: URL(fileURLWithPath: out))
        }
    }
}

struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning on prompt/completion data (the loss is on completion tokens only).",
        discussion: "Data: JSONL lines {\"prompt\",\"completion\"} or {\"messages\": [...]} (the last assistant turn is learned).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "SFT JSONL for training.") var data: String
    @Option(help: "Held-out SFT JSONL.") var evalData: String?
    @Option(help: "The starting model folder.") var model: String
    @Option(help: "Output folder.") var out: String = "runs/sft"
    @Flag(help: "Continue the run in --out from its newest checkpoint.") var resume = false
    @Option(help: "Peak learning rate (cosine to a tenth).") var lr: Float = 1e-4
    @Option(help: "Warm-up steps.") var warmup: Int = 0
    @Option(help: "Examples per step.") var batchSize: Int = 16
    @Option(help: "Passes over the data.") var epochs: Int = 1
    @Option(help: "Stop after this many steps.") var maxSteps: Int?
    @Option(help: "Longest prompt + completion in tokens (default: the model's context).") var maxLength: Int?
    @Option(help: "What to do with a bad data line: error or skip.") var onBadLine: String = "error"
    @Option(help: "Evaluate every N steps.") var evalEvery: Int = 100
    @Option(help: "Checkpoint every N steps.") var saveEvery: Int = 200
    @Option(help: "Print progress every N steps.") var logEvery: Int = 10
    @Option(help: "Random seed (data order).") var seed: UInt64 = 42

    func validate() throws {
        try validateTrainerFlags(counts: [("--batch-size", batchSize), ("--epochs", epochs), ("--eval-every", evalEvery),
                                          ("--save-every", saveEvery), ("--log-every", logEvery)], onBadLine: onBadLine)
    }

    func run() throws {
        global.apply()
        var o = SFTOptions()
        o.data = data; o.evaluationData = evalData; o.model = model
        o.learningRate = lr; o.minimumLearningRate = lr / 10; o.warmupSteps = warmup
        o.batchSize = batchSize; o.epochs = epochs; o.maxSteps = maxSteps; o.maxLength = maxLength
        o.onBadLine = BadLinePolicy(rawValue: onBadLine)!
        o.evaluateEvery = evalEvery; o.saveEvery = saveEvery; o.logEvery = logEvery; o.seed = seed
        installInterruptHandlers()
        let trainer = try SFTTrainer(options: o, output: URL(fileURLWithPath: out), resume: resume) {
            printTrainingEvent($0, rateName: "tokens_per_second", rateUnit: "tok/s")
        }
        print("threads: \(Parallel.threadCount); \(trainer.train.count) examples; \(trainer.totalSteps) steps; output: \(out)")
        try trainer.run { interruptRequested != 0 }
        print(interruptRequested != 0 ? "interrupted; continue with the same command and --resume" : "done. The fine-tuned model is in \(out)")
    }
}

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
        if let a = m["rewards/accuracies"] ?? m["accuracy"] { line += String(format: "  acc %.2f", a) }
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

/// The flags every trainer command has. Numbers left out keep the trainer's defaults (each command's
/// discussion lists them).
struct TrainerFlags: ParsableArguments {
    @Option(help: "Training data (JSONL).") var data: String
    @Option(help: "Held-out data (JSONL), evaluated every --eval-every steps and at the end.") var evalData: String?
    @Option(help: "The starting model folder (config.json, model.safetensors, tokenizer.json).") var model: String
    @Option(help: "Output folder: checkpoints, metrics.jsonl, the final model (default: runs/<command>).") var out: String?
    @Flag(help: "Continue the run in --out from its newest checkpoint.") var resume = false
    @Option(help: "Peak learning rate (warm-up, then cosine to a tenth).") var lr: Float?
    @Option(help: "Warm-up steps.") var warmup: Int?
    @Option(help: "AdamW weight decay.") var weightDecay: Float?
    @Option(help: "Examples per step.") var batchSize: Int?
    @Option(help: "Passes over the data.") var epochs: Int?
    @Option(help: "Stop after this many steps.") var maxSteps: Int?
    @Option(help: "Longest prompt + completion in tokens (default: the model's context).") var maxLength: Int?
    @Option(help: "What to do with a bad data line: error or skip.") var onBadLine: String = "error"
    @Option(help: "Evaluate every N steps.") var evalEvery: Int?
    @Option(help: "Checkpoint every N steps.") var saveEvery: Int?
    @Option(help: "Print progress every N steps.") var logEvery: Int?
    @Option(help: "Random seed (data order).") var seed: UInt64?
    @Option(help: "Checkpoints to keep (the newest; more for `alignkit frontier`).") var keepCheckpoints: Int = 2
    @Option(help: "Steps in a row with a non-finite loss or gradient (each skipped) that stop the run.") var maxNonfiniteSteps: Int = NonFiniteSteps.defaultLimit
    @Option(help: "Train LoRA adapters of this rank (the base frozen) instead of every weight.") var loraRank: Int?
    @Option(help: "LoRA's α (the update is scaled by α/rank).") var loraAlpha: Float = 16
    @Option(help: "Dropout on the adapters' input.") var loraDropout: Float = 0.05
    @Option(help: "Projections to adapt, comma-separated (Llama: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; GPT-2: c_proj,c_fc).")
    var loraTargets: String = "q_proj,v_proj"

    /// The LoRA settings, when --lora-rank is given.
    var lora: LoRASettings? {
        loraRank.map { LoRASettings(rank: $0, alpha: loraAlpha, dropout: loraDropout,
                                    targets: loraTargets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
    }

    func validate() throws {
        for (name, value) in [("--batch-size", batchSize), ("--epochs", epochs), ("--eval-every", evalEvery), ("--save-every", saveEvery),
                              ("--log-every", logEvery), ("--keep-checkpoints", keepCheckpoints), ("--max-nonfinite-steps", maxNonfiniteSteps), ("--max-steps", maxSteps), ("--max-length", maxLength), ("--warmup", warmup.map { $0 + 1 })]
        where value.map({ $0 < 1 }) ?? false { throw ValidationError("\(name) must be at least \(name == "--warmup" ? 0 : 1)") }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
        if let loraRank, loraRank < 1 { throw ValidationError("--lora-rank must be at least 1") }
        if !(loraAlpha > 0) || !(0..<1).contains(loraDropout) { throw ValidationError("--lora-alpha must be positive and --lora-dropout in [0, 1)") }
        if BadLinePolicy(rawValue: onBadLine) == nil { throw ValidationError("--on-bad-line must be error or skip, not '\(onBadLine)'") }
    }

    func apply<Options: TrainerOptions>(to o: inout Options) {
        o.data = data; o.evaluationData = evalData; o.model = model
        if let lr { o.learningRate = lr; o.minimumLearningRate = lr / 10 }
        if let warmup { o.warmupSteps = warmup }
        if let weightDecay { o.weightDecay = weightDecay }
        if let batchSize { o.batchSize = batchSize }
        if let epochs { o.epochs = epochs }
        o.maxSteps = maxSteps ?? o.maxSteps; o.maxLength = maxLength ?? o.maxLength
        o.onBadLine = BadLinePolicy(rawValue: onBadLine)!
        if let evalEvery { o.evaluateEvery = evalEvery }
        if let saveEvery { o.saveEvery = saveEvery }
        if let logEvery { o.logEvery = logEvery }
        if let seed { o.seed = seed }
        o.keepCheckpoints = keepCheckpoints
        o.nonFiniteStepLimit = maxNonfiniteSteps
    }

    /// Builds the trainer, runs it with Ctrl-C / SIGTERM stopping at the next step (checkpoint saved),
    /// and says where the result is (`done` has two %@ for the output folder).
    func train(command: String, what: String, done: String, _ make: (_ out: URL, _ resume: Bool) throws -> AlignmentTrainer) throws {
        installInterruptHandlers()
        let out = self.out ?? "runs/\(command)"
        let trainer = try make(URL(fileURLWithPath: out), resume)
        print("threads: \(Parallel.threadCount); \(trainer.trainingExampleCount) \(what); \(trainer.totalSteps) steps; output: \(out)")
        try trainer.run { interruptRequested != 0 }
        print(interruptRequested != 0 ? "interrupted at a checkpoint; continue with: \(resumeCommand())" : "done. " + String(format: done, out, out))
    }
}

/// This process's command line with --resume added (when it lacks it), quoted for a POSIX shell.
func resumeCommand() -> String {
    var arguments = Array(CommandLine.arguments.dropFirst())
    if !arguments.contains("--resume") { arguments.append("--resume") }
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    return (["alignkit"] + arguments).map { a in
        !a.isEmpty && a.allSatisfy(safe.contains) ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

/// Installs the Ctrl-C / SIGTERM handlers the trainers poll between steps.
func installInterruptHandlers() {
    signal(SIGINT) { _ in interruptRequested = 1 }
    signal(SIGTERM) { _ in interruptRequested = 1 }
    // A parent may have started us with these blocked (the mask is inherited); take them.
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
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
        Defaults: --lr 5e-5 --batch-size 8 --epochs 1 --eval-every 50 --save-every 100 --log-every 1.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var common: TrainerFlags
    @Option(help: "The reference's model folder (default: the starting policy).") var refModel: String?
    @Option(help: "Loss types, comma-separated.") var loss: String = "sigmoid"
    @Option(help: "Weights of the loss types, comma-separated (default: all 1).") var lossWeights: String?
    @Option(help: "β: KL strength (DPO) or reward scale (SimPO, CPO, ORPO).") var beta: Float = 0.1
    @Option(help: "Label smoothing ε (robust, exo_pair, aot, simpo, cpo).") var labelSmoothing: Float = 0
    @Option(help: "SimPO's target margin γ.") var simpoGamma: Float = 0.5
    @Option(help: "CPO's negative log-likelihood weight α.") var cpoAlpha: Float = 1
    @Flag(help: "Compute the reference's log-probabilities every step instead of once (no cache).") var liveReference = false
    @Option(help: "Folder of cached reference log-probabilities (default: <cache>/reference-logps).") var referenceCache: String?
    @Option(help: "TR-DPO: mix the policy into the reference every N steps.") var syncRefEvery: Int?
    @Option(help: "TR-DPO's mixing weight α.") var syncRefAlpha: Float = 0.6

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

    func validate() throws { _ = try objective() }

    func run() throws {
        global.apply()
        var o = PreferenceTrainingOptions()
        common.apply(to: &o)
        o.referenceModel = refModel; o.lora = common.lora
        o.objective = try objective()
        o.precomputeReference = !liveReference; o.referenceCache = referenceCache
        o.syncReferenceEvery = syncRefEvery; o.syncReferenceAlpha = syncRefAlpha
        try common.train(command: "dpo", what: "training pairs", done: "The aligned model is in %@; sample with: alignkit sample --model %@ --prompt '…'") {
            try PreferenceTrainer(options: o, output: $0, resume: $1) { printTrainingEvent($0) }
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
    @Option(help: "Which corpus lines prompts come from: all, train or heldout (disjoint: every tenth line is held out).")
    var promptSplit: String = "all"
    @Option(help: "Completions per prompt.") var samples: Int = 4
    @Option(help: "Tokens per completion at most.") var maxTokens: Int = 24
    @Option(help: "Sampling temperature.") var temperature: Float = 1
    @Option(help: "Sample from the k most likely tokens.") var topK: Int?
    @Option(help: "Sampling seed.") var seed: UInt64 = 7
    @Option(help: "The VADER lexicon file (default: the cached vader data set).") var lexicon: String?
    @Option(help: "Judge with this reward model (from `alignkit reward`) instead of the sentiment lexicon.") var rewardModel: String?

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
        guard let split = PromptSplit(rawValue: promptSplit) else {
            throw ValidationError("--prompt-split must be one of \(PromptSplit.allCases.map(\.rawValue).joined(separator: ", ")), not '\(promptSplit)'")
        }
        let cut = corpusPrompts(text, count: promptCount, words: promptWords, seed: promptSeed, split: split)
        guard !cut.isEmpty else { throw ValidationError("no line of the corpus has \(promptWords + 2) words or more") }
        return cut
    }

    func reward() throws -> any RewardFunction {
        if let rewardModel { return try RewardModelFunction(contentsOf: URL(fileURLWithPath: rewardModel)) }
        return try SentimentLexicon.load(lexicon)
    }
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
        discussion: """
        Data: JSONL lines {"prompt","completion"} or {"messages": [...]} (the last assistant turn is learned).
        Defaults: --lr 1e-4 --batch-size 16 --epochs 1 --eval-every 100 --save-every 200 --log-every 10.
        """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var common: TrainerFlags

    func run() throws {
        global.apply()
        var o = SFTOptions()
        common.apply(to: &o)
        o.lora = common.lora
        try common.train(command: "sft", what: "examples", done: "The fine-tuned model is in %@; sample with: alignkit sample --model %@ --prompt '…'") {
            try SFTTrainer(options: o, output: $0, resume: $1) {
                printTrainingEvent($0, rateName: "tokens_per_second", rateUnit: "tok/s")
            }
        }
    }
}

struct RewardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward",
        abstract: "Train a reward model: the model's trunk with a scalar head, Bradley–Terry loss on preference pairs.",
        discussion: """
        Data: preference JSONL as for `alignkit dpo`, with an optional numeric "margin" per line (subtracted inside
        the sigmoid: -log σ(r_chosen - r_rejected - margin)). The score of a sequence is the head at its last token.
        Reports the loss and the pairwise accuracy (the share of pairs whose chosen score beats the rejected one).
        The output folder is a model folder plus score.safetensors; `alignkit ppo --reward-model` and
        `alignkit eval --reward-model` read it. Defaults: --lr 1e-5 --batch-size 16 --epochs 1 --eval-every 100
        --save-every 200 --log-every 10.
        """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var common: TrainerFlags
    @Flag(help: "Ignore the data's margin field.") var noMargins = false
    @Option(help: "Reward centering: add c·mean((r_chosen + r_rejected)²) to the loss.") var centerRewards: Float?

    func run() throws {
        global.apply()
        if common.loraRank != nil { throw ValidationError("alignkit reward trains every weight; --lora-rank is for sft, dpo, kto and ppo") }
        var o = RewardTrainingOptions()
        common.apply(to: &o)
        o.useMargins = !noMargins
        o.centerRewardsCoefficient = centerRewards
        try common.train(command: "reward", what: "training pairs", done: "The reward model is in %@ (score it with: alignkit eval --reward-model %@ …)") {
            try RewardTrainer(options: o, output: $0, resume: $1) { printTrainingEvent($0) }
        }
    }
}

struct PPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo",
        abstract: "Align a model with PPO-RLHF: sample, score with a reward, penalize KL to the reference, clipped updates.",
        discussion: """
        --data holds prompts ({"prompt"} lines; preference files serve). Each step samples --batch-size prompts ×
        --samples completions, scores them with --reward-model (from `alignkit reward`) or, by default, the VADER
        sentiment lexicon, and adds -β·KL per token (--kl-estimator k1 or k3; --target-kl adapts β). Baselines:
        gae (a value model, GAE(γ, λ), clipped value loss), rloo or grpo (need --samples 2 or more). Metrics:
        reward, kl, entropy, value_loss, clip_fraction, rlhf_reward in <out>/metrics.jsonl.
        Defaults: --lr 1e-5 --batch-size 16 --epochs 1 --eval-every 20 --save-every 50 --log-every 1.
        """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var common: TrainerFlags
    @Option(help: "The reference's model folder (default: the starting policy).") var refModel: String?
    @Option(help: "A reward model folder (default: the sentiment lexicon).") var rewardModel: String?
    @Option(help: "The VADER lexicon file (default: the cached vader data set).") var lexicon: String?
    @Option(help: "The value model's starting folder (default: the reward model, else the policy's trunk).") var valueModel: String?
    @Option(help: "Completions per prompt.") var samples: Int = 1
    @Option(help: "Tokens per completion at most.") var maxTokens: Int = 24
    @Option(help: "β: the KL penalty's coefficient.") var klCoef: Float = 0.05
    @Option(help: "KL estimator: k1 or k3.") var klEstimator: String = "k1"
    @Option(help: "Adapt β toward this KL (nats per completion).") var targetKL: Float?
    @Option(help: "The adaptive controller's horizon (episodes).") var klHorizon: Float = 10000
    @Option(help: "Advantages: gae, rloo or grpo.") var advantage: String = "gae"
    @Option(help: "GAE's discount γ.") var gamma: Float = 1
    @Option(help: "GAE's λ.") var lambda: Float = 0.95
    @Option(help: "PPO's ratio clip ε.") var clip: Float = 0.2
    @Option(help: "The value loss's clip.") var valueClip: Float = 0.2
    @Option(help: "The value loss's weight.") var valueCoef: Float = 0.1
    @Option(help: "Optimization passes over each rollout.") var ppoEpochs: Int = 4
    @Option(help: "Minibatches per pass.") var miniBatches: Int = 1
    @Flag(help: "Do not whiten advantages.") var noWhiten = false

    func validate() throws {
        if KLEstimator(rawValue: klEstimator) == nil { throw ValidationError("--kl-estimator must be k1 or k3, not '\(klEstimator)'") }
        guard let a = AdvantageEstimator(rawValue: advantage) else { throw ValidationError("--advantage must be gae, rloo or grpo, not '\(advantage)'") }
        if a != .gae && samples < 2 { throw ValidationError("--advantage \(advantage) compares a prompt's samples: give --samples 2 or more") }
        for (name, value) in [("--samples", samples), ("--max-tokens", maxTokens), ("--ppo-epochs", ppoEpochs), ("--mini-batches", miniBatches)]
        where value < 1 { throw ValidationError("\(name) must be at least 1") }
    }

    func run() throws {
        global.apply()
        var o = PPOOptions()
        common.apply(to: &o)
        o.lora = common.lora
        o.referenceModel = refModel; o.rewardModel = rewardModel; o.lexicon = lexicon; o.valueModel = valueModel
        o.samplesPerPrompt = samples; o.maximumNewTokens = maxTokens
        o.klCoefficient = klCoef; o.klEstimator = KLEstimator(rawValue: klEstimator)!; o.targetKL = targetKL; o.klHorizon = klHorizon
        o.advantage = AdvantageEstimator(rawValue: advantage)!; o.gamma = gamma; o.lambda = lambda
        o.clipRange = clip; o.valueClipRange = valueClip; o.valueCoefficient = valueCoef
        o.ppoEpochs = ppoEpochs; o.miniBatches = miniBatches; o.whitenAdvantages = !noWhiten
        try common.train(command: "ppo", what: "prompts", done: "The aligned model is in %@; evaluate with: alignkit eval --model %@ --ref-model …") {
            try PPOTrainer(options: o, output: $0, resume: $1) { printTrainingEvent($0, rateName: "episodes_per_second", rateUnit: "episodes/s") }
        }
    }
}

struct KTOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kto",
        abstract: "Align a model with KTO on unpaired data: single completions labelled desirable or not.",
        discussion: """
        Data: JSONL lines {"prompt","completion","label"} with label true or false. The loss compares each
        completion's log-ratio to the batch's KL estimate (mismatched prompt/completion pairs), weighted by
        --desirable-weight and --undesirable-weight. Metrics: loss, kl, rewards/chosen, rewards/rejected.
        Defaults: --lr 5e-5 --batch-size 8 --epochs 1 --eval-every 50 --save-every 100 --log-every 1.
        """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var common: TrainerFlags
    @Option(help: "The reference's model folder (default: the starting policy).") var refModel: String?
    @Option(help: "β: KL strength.") var beta: Float = 0.1
    @Option(help: "λ_D: weight of desirable examples.") var desirableWeight: Float = 1
    @Option(help: "λ_U: weight of undesirable examples.") var undesirableWeight: Float = 1

    func validate() throws {
        if !(beta > 0) { throw ValidationError("--beta must be positive") }
    }

    func run() throws {
        global.apply()
        var o = KTOOptions()
        common.apply(to: &o)
        o.referenceModel = refModel; o.lora = common.lora; o.beta = beta; o.desirableWeight = desirableWeight; o.undesirableWeight = undesirableWeight
        try common.train(command: "kto", what: "examples", done: "The aligned model is in %@; sample with: alignkit sample --model %@ --prompt '…'") {
            try KTOTrainer(options: o, output: $0, resume: $1) { printTrainingEvent($0, rateName: "examples_per_second", rateUnit: "examples/s") }
        }
    }
}

struct FrontierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frontier",
        abstract: "Draw the reward–KL frontier over the checkpoints of several runs (SVG and JSON).",
        discussion: """
        Every checkpoint of every --run is sampled on the same prompts with the same seeds: its mean reward and its
        KL(π ‖ π_ref) from those samples make one point. Runs keep their two newest checkpoints unless trained with
        --keep-checkpoints N. Writes <out>.json (every point with standard errors) and <out>.svg.
        """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var generation: GenerationOptions
    @Option(name: .customLong("run"), help: "A run folder (repeat for several runs).") var runs: [String]
    @Option(help: "The reference model folder (the runs' starting model).") var refModel: String
    @Option(help: "Output path without extension.") var out: String = "frontier"

    func validate() throws {
        if runs.isEmpty { throw ValidationError("give at least one --run") }
    }

    func run() throws {
        global.apply()
        let (reference, tokenizer) = try loadModelFolder(refModel, needTokenizer: true)
        let prompts = try generation.loadPrompts(model: refModel)
        let reward = try generation.reward()
        let settings = generation.settings
        let base = evaluatePolicy(reference, reference: nil, tokenizer: tokenizer!, prompts: prompts, reward: reward, settings: settings)
        print(String(format: "reference: mean reward %.4f ± %.4f over %d samples", base.meanReward, base.rewardStandardError, base.samples))
        var result: [FrontierRun] = []
        for path in runs {
            let checkpoints = RunFolder(URL(fileURLWithPath: path)).checkpoints()
            guard !checkpoints.isEmpty else { throw ValidationError("\(path) has no checkpoints (is it a run folder?)") }
            var points: [FrontierPoint] = []
            for checkpoint in checkpoints {
                let p = try FrontierPoint.evaluate(checkpoint: checkpoint, reference: reference, tokenizer: tokenizer!, prompts: prompts,
                                                   reward: reward, settings: settings)
                points.append(p)
                print(String(format: "%@ step %d: reward %.4f ± %.4f, KL %.3f ± %.3f", path, p.step, p.reward, p.rewardStandardError, p.kl, p.klStandardError))
                flushStandardOutput()
            }
            result.append(FrontierRun(name: URL(fileURLWithPath: path).lastPathComponent, points: points))
        }
        let frontier = RewardKLFrontier(referenceReward: base.meanReward, runs: result, prompts: prompts.count, samplesPerPrompt: settings.samplesPerPrompt)
        try writeAtomically(try frontier.json(), to: URL(fileURLWithPath: out + ".json"))
        try writeAtomically(Data(frontier.svg().utf8), to: URL(fileURLWithPath: out + ".svg"))
        print("wrote \(out).json and \(out).svg")
    }
}

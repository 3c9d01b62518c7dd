// What every alignment trainer shares: the options they all have, opening a run folder (new or
// resumed), the per-epoch shuffled batches, and the training loop (schedule, progress, held-out
// metrics, checkpoints, a clean stop).
import AlignKitNN
import AlignKitText
import Foundation

/// The optimization, schedule, data and bookkeeping settings every alignment trainer shares; each
/// trainer's options hold one (`training`) with the trainer's own defaults, and read and write its
/// fields directly (`options.learningRate`) through `TrainerOptions`' dynamic member lookup.
public struct TrainingSettings: Codable, Sendable, Equatable {
    public var learningRate: Float
    /// The cosine schedule's floor (a tenth of the peak unless set).
    public var minimumLearningRate: Float
    public var warmupSteps = 0
    public var weightDecay: Float = 0
    /// Global gradient-norm clipping.
    public var clipNorm: Float = 1
    /// Examples per step (pairs, completions, or prompts for PPO).
    public var batchSize: Int
    public var epochs = 1
    /// Stops after this many steps when set (otherwise `epochs` passes over the data).
    public var maxSteps: Int?
    /// Longest prompt + completion in tokens; nil uses the model's context length.
    public var maxLength: Int?
    public var onBadLine: BadLinePolicy = .error
    public var seed: UInt64 = 42
    public var logEvery: Int
    public var evaluateEvery: Int
    public var saveEvery: Int
    /// Checkpoints kept in the run folder (the newest).
    public var keepCheckpoints = 2
    /// Steps in a row with a non-finite loss or gradient (each skipped) that stop the run; nil: 5.
    public var nonFiniteStepLimit: Int?

    public init(learningRate: Float, batchSize: Int, logEvery: Int, evaluateEvery: Int, saveEvery: Int) {
        self.learningRate = learningRate
        minimumLearningRate = learningRate / 10
        self.batchSize = batchSize
        self.logEvery = logEvery
        self.evaluateEvery = evaluateEvery
        self.saveEvery = saveEvery
    }
}

/// The options every alignment trainer has: its data, its starting model and `TrainingSettings`.
@dynamicMemberLookup
public protocol TrainerOptions: Codable, Sendable {
    /// Training data (JSONL).
    var data: String { get set }
    /// Held-out data, evaluated every `evaluateEvery` steps and at the end.
    var evaluationData: String? { get set }
    /// The starting model folder.
    var model: String { get set }
    var training: TrainingSettings { get set }
}

extension TrainerOptions {
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<TrainingSettings, Value>) -> Value {
        get { training[keyPath: keyPath] }
        set { training[keyPath: keyPath] = newValue }
    }
}

/// What the CLI drives: a trainer that knows its length and runs to the end or a stop request.
public protocol AlignmentTrainer: AnyObject {
    var totalSteps: Int { get }
    /// Training examples (pairs, completions or prompts).
    var trainingExampleCount: Int { get }
    func run(shouldStop: () -> Bool) throws
}

/// A trainer's run folder opened: the options (a resumed run's own), its newest checkpoint, and the
/// starting model folder's tokenizer and chat template.
struct TrainerStart<Options: TrainerOptions>: Sendable {
    let run: RunFolder
    let options: Options
    /// The newest checkpoint when resuming.
    let newest: URL?
    let modelFolder: URL
    let tokenizer: BytePairTokenizer
    let template: ChatTemplate

    init(output: URL, resume: Bool, options: Options) throws {
        run = RunFolder(output)
        (newest, self.options) = try run.open(resume: resume, options: options)
        guard self.options.batchSize > 0, self.options.epochs > 0 else { throw DataFileError(file: "options", "batch size and epochs must be positive") }
        modelFolder = URL(fileURLWithPath: self.options.model)
        tokenizer = try BytePairTokenizer(contentsOf: modelFolder)
        template = try ChatTemplate.load(from: modelFolder) ?? ChatTemplate()
    }

    /// The encoder for a model of `contextLength` positions (capped by the options' maximum length).
    func encoder(contextLength: Int) -> AlignmentEncoder {
        AlignmentEncoder(tokenizer: tokenizer, template: template, maxLength: min(options.maxLength ?? contextLength, contextLength))
    }

    /// The policy to train: the newest checkpoint's, or the model folder's; with LoRA, the model
    /// folder's base with fresh adapters (or the newest checkpoint's adapters).
    func loadPolicy(lora: LoRASettings?) throws -> GPT {
        guard let lora else { return try GPT(contentsOf: newest ?? modelFolder) }
        var model = try GPT(contentsOf: modelFolder)
        do {
            if let newest { try model.loadAdapters(from: newest.appendingPathComponent("adapter")) } else { try model.addAdapters(lora, seed: options.seed) }
        } catch let error as ConfigurationError { throw DataFileError(file: "options", field: "lora", error.message) }
        return model
    }

    /// Writes a policy into a checkpoint or the run folder: the model (adapters merged) and, with
    /// LoRA, the adapters in PEFT's format under `adapter/`.
    func writePolicy(_ model: GPT, lora: LoRASettings?, to directory: URL) throws {
        guard let lora else { return try model.save(to: directory) }
        try model.mergingAdapters().save(to: directory)
        try model.saveAdapters(to: directory.appendingPathComponent("adapter"), settings: lora, baseModel: options.model)
    }

    /// AdamW with the options' rate and decay.
    func makeOptimizer() -> Adam {
        AdamW(learningRate: options.learningRate, beta1: 0.9, beta2: 0.999, weightDecay: options.weightDecay)
    }

    /// A resumed run's step and optimizer moments; a new run writes its options and tokenizer and starts
    /// at 0. Either way, first checks that the disk has room for a checkpoint of `parameters` scalars.
    func begin(parameterNames: [String], parameters: Int, optimizer: inout Adam, emit: (TrainingEvent) -> Void) throws -> Int {
        try run.checkRoom(parameters: parameters)
        if let newest {
            let (step, state) = try RunFolder.resumeState(newest, parameterNames: parameterNames)
            optimizer.state = state
            emit(.message("resumed from \(newest.lastPathComponent) (step \(step))"))
            return step
        }
        try run.start(options: options)
        try run.copyTokenizer(from: modelFolder)
        return 0
    }
}

/// The indices of `step`'s batch: a permutation of `count` items per epoch, drawn from the seed and
/// the epoch, so a resumed run sees the batches an uninterrupted one would.
func shuffledBatch(count: Int, batchSize: Int, seed: UInt64, step: Int) -> [Int] {
    let perEpoch = (count + batchSize - 1) / batchSize
    let epoch = step / perEpoch, position = step % perEpoch
    var generator = RandomGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
    var order = Array(0..<count)
    for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
    return Array(order[(position * batchSize)..<min((position + 1) * batchSize, count)])
}

/// The loop every alignment trainer shares: warm-up + cosine schedule, a progress event every
/// `logEvery` steps with a rate and the time left, held-out metrics every `evaluateEvery` steps (and
/// before the first), a checkpoint every `saveEvery` steps and at the end, and a checkpoint then a
/// clean return when `shouldStop` says so. A step whose metrics say `skipped` (a non-finite loss or
/// gradient, see `clipAndApply`) is reported and logged; `nonFiniteStepLimit` of them in a row stop
/// the run with `TrainingDiverged`. `metrics.jsonl` gets no wall-clock fields (the rate and the time
/// go to `timing.jsonl`), so the same seed, data and thread count give the same file.
func runTrainingLoop(run: RunFolder, total: Int, step: () -> Int, settings: TrainingSettings, hasEvaluation: Bool,
                     rate: (name: String, amount: ([String: Double]) -> Double),
                     trainStep: (Float) -> [String: Double], evaluate: () -> [String: Double], save: () throws -> Void,
                     emit: (TrainingEvent) -> Void, shouldStop: () -> Bool) throws {
    let schedule = LearningRateSchedule.cosine(peak: settings.learningRate, minimum: settings.minimumLearningRate,
                                               warmupSteps: settings.warmupSteps, totalSteps: max(total, 1))
    func evaluation(_ s: Int) throws {
        let m = evaluate()
        emit(.evaluation(step: s, metrics: m))
        try run.appendMetrics(m.merging(["step": Double(s)]) { a, _ in a })
    }
    if step() == 0 && hasEvaluation { try evaluation(0) }
    let runStart = Date(), firstStep = step()
    // A run resumed from its final checkpoint (killed while it wrote the model at the top of the run
    // folder, say) writes that checkpoint and the top-level model again; the bytes are the same.
    if firstStep >= total && total > 0 { try save(); return }
    var windowAmount = 0.0, windowStart = Date()
    var nonFinite = NonFiniteSteps(limit: settings.nonFiniteStepLimit)
    while step() < total {
        if shouldStop() {
            emit(.message("stopping at step \(step())"))
            try save()
            return
        }
        var metrics = trainStep(schedule.learningRate(at: step()))
        let s = step()
        let skipped = metrics["skipped"] == 1
        if skipped {
            emit(.message(NonFiniteSteps.message(step: s, parts: metrics, inARow: nonFinite.inARow + 1)))
            try run.appendMetrics(metrics.merging(["step": Double(s)]) { a, _ in a })
        }
        try nonFinite.record(skipped: skipped, step: s, parts: metrics, run: run)
        windowAmount += rate.amount(metrics)
        if s % settings.logEvery == 0 || s == total {
            let now = Date()
            let perSecond = windowAmount / max(now.timeIntervalSince(windowStart), 1e-9)
            let left = now.timeIntervalSince(runStart) / Double(s - firstStep) * Double(total - s)
            if !skipped { try run.appendMetrics(metrics.merging(["step": Double(s)]) { a, _ in a }) }
            try run.appendTiming(["step": s, "seconds": now.timeIntervalSince(runStart), rate.name: perSecond])
            metrics[rate.name] = perSecond
            emit(.step(step: s, of: total, metrics: metrics, secondsLeft: left))
            windowAmount = 0; windowStart = now
        }
        if hasEvaluation && (s % settings.evaluateEvery == 0 || s == total) { try evaluation(s) }
        if s % settings.saveEvery == 0 || s == total { try save() }
    }
}

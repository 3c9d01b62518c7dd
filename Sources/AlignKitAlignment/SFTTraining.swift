// Supervised fine-tuning: the negative log-likelihood of completion tokens only (the prompt is
// context, never a target), averaged over the batch's completion tokens, on SFT JSONL
// ({"prompt","completion"} or {"messages"}), with the same run folder, checkpoints and resume as
// the other trainers.
import AlignKitNN
import AlignKitText
import Foundation

public struct SFTOptions: Codable, Sendable {
    public var data = ""
    public var evaluationData: String?
    /// The starting model folder.
    public var model = ""
    public var learningRate: Float = 1e-4
    public var minimumLearningRate: Float = 1e-5
    public var warmupSteps = 0
    public var weightDecay: Float = 0
    public var clipNorm: Float = 1
    public var batchSize = 16
    public var epochs = 1
    public var maxSteps: Int?
    public var maxLength: Int?
    public var onBadLine: BadLinePolicy = .error
    public var seed: UInt64 = 42
    public var logEvery = 10
    public var evaluateEvery = 100
    public var saveEvery = 200
    public init() {}
}

public final class SFTTrainer {
    public let options: SFTOptions
    public let output: URL
    public private(set) var model: GPT
    public let tokenizer: BytePairTokenizer
    public private(set) var optimizer: Adam
    public private(set) var step = 0
    public let train: [EncodedExample]
    public let evaluation: [EncodedExample]
    let emit: (TrainingEvent) -> Void
    let padID: Int
    var run: RunFolder { RunFolder(output) }

    public var totalSteps: Int {
        trainingSteps(count: train.count, batchSize: options.batchSize, epochs: options.epochs, maxSteps: options.maxSteps)
    }

    public init(options: SFTOptions, output: URL, resume: Bool = false, emit: @escaping (TrainingEvent) -> Void = { _ in }) throws {
        self.output = output
        self.emit = emit
        let run = RunFolder(output)
        let (newest, options) = try run.open(resume: resume, options: options)
        guard options.batchSize > 0, options.epochs > 0 else { throw DataFileError(file: "options", "batch size and epochs must be positive") }
        self.options = options
        let folder = URL(fileURLWithPath: options.model)
        tokenizer = try BytePairTokenizer(contentsOf: folder)
        let template = try ChatTemplate.load(from: folder) ?? ChatTemplate()
        model = try GPT(contentsOf: newest ?? folder)
        padID = tokenizer.endOfTextID ?? 0
        let context = model.configuration.contextLength
        let encoder = AlignmentEncoder(tokenizer: tokenizer, template: template, maxLength: min(options.maxLength ?? context, context))
        func load(_ path: String) throws -> [EncodedExample] {
            try encoder.load(path, read: { try CompletionExample.readSFT($0, onBadLine: options.onBadLine) }, encode: encoder.encode,
                             note: { emit(.message($0)) })
        }
        train = try load(options.data)
        evaluation = try options.evaluationData.map(load) ?? []
        optimizer = AdamW(learningRate: options.learningRate, beta1: 0.9, beta2: 0.999, weightDecay: options.weightDecay)
        if let newest {
            (step, optimizer.state) = try RunFolder.resumeState(newest, parameterNames: model.parameterNames)
            emit(.message("resumed from \(newest.lastPathComponent) (step \(step))"))
        } else {
            try run.start(options: options)
            try run.copyTokenizer(from: folder)
        }
    }

    /// The examples of `step` (a seeded permutation per epoch, as the preference trainer draws it).
    public func batch(_ step: Int) -> [EncodedExample] {
        shuffledBatch(count: train.count, batchSize: options.batchSize, seed: options.seed, step: step).map { train[$0] }
    }

    /// Mean negative log-likelihood per completion token, and the token count.
    func loss(_ model: GPT, _ examples: [EncodedExample]) -> (Tensor, Int) {
        let scores = model.scoreCompletions(CompletionBatch(examples.map { ($0.prompt, $0.completions[0]) }, padID: padID), withLogitStatistics: false)
        let tokens = scores.lengths.reduce(0, +)
        return (-scores.logProbabilities.sum() / Float(max(tokens, 1)), tokens)
    }

    @discardableResult
    public func trainStep(learningRate: Float) -> [String: Double] {
        let examples = batch(step)
        var tokens = 0
        let (value, gradient) = valueWithGradient(at: model) { m in
            let (l, n) = loss(m, examples)
            tokens = n
            return l
        }
        var clipped = gradient
        let norm = clipByGlobalNorm(&clipped, maximumNorm: options.clipNorm)
        optimizer.learningRate = learningRate
        optimizer.update(&model, along: clipped)
        step += 1
        return ["loss": Double(value.scalar), "grad_norm": Double(norm), "learning_rate": Double(learningRate), "num_tokens": Double(tokens)]
    }

    /// Token-weighted held-out loss (`eval_loss`); empty without held-out data.
    public func evaluate() -> [String: Double] {
        guard !evaluation.isEmpty else { return [:] }
        var total = 0.0, tokens = 0
        withoutGradient {
            for start in stride(from: 0, to: evaluation.count, by: options.batchSize) {
                let (l, n) = loss(model, Array(evaluation[start..<min(start + options.batchSize, evaluation.count)]))
                total += Double(l.scalar) * Double(n); tokens += n
            }
        }
        return ["eval_loss": total / Double(max(tokens, 1))]
    }

    public func run(shouldStop: () -> Bool = { false }) throws {
        try runTrainingLoop(run: run, total: totalSteps, step: { step }, options: (options.learningRate, options.minimumLearningRate, options.warmupSteps),
                            every: (options.logEvery, options.evaluateEvery, options.saveEvery), hasEvaluation: !evaluation.isEmpty,
                            rate: ("tokens_per_second", { m in m["num_tokens"] ?? 0 }),
                            trainStep: trainStep, evaluate: evaluate, save: saveCheckpoint, emit: emit, shouldStop: shouldStop)
    }

    public func saveCheckpoint() throws {
        let folder = try run.saveCheckpoint(step: step, state: [:], optimizer: optimizer.state, parameterNames: model.parameterNames,
                                            writeModel: { [model] in try model.save(to: $0) })
        emit(.checkpoint(step: step, path: folder.path))
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
/// clean return when `shouldStop` says so.
func runTrainingLoop(run: RunFolder, total: Int, step: () -> Int, options: (peak: Float, minimum: Float, warmup: Int),
                     every: (log: Int, evaluate: Int, save: Int), hasEvaluation: Bool,
                     rate: (name: String, amount: ([String: Double]) -> Double),
                     trainStep: (Float) -> [String: Double], evaluate: () -> [String: Double], save: () throws -> Void,
                     emit: (TrainingEvent) -> Void, shouldStop: () -> Bool) throws {
    let schedule = LearningRateSchedule.cosine(peak: options.peak, minimum: options.minimum, warmupSteps: options.warmup, totalSteps: max(total, 1))
    func evaluation(_ s: Int) throws {
        let m = evaluate()
        emit(.evaluation(step: s, metrics: m))
        try run.appendMetrics(m.merging(["step": Double(s)]) { a, _ in a })
    }
    if step() == 0 && hasEvaluation { try evaluation(0) }
    let runStart = Date(), firstStep = step()
    var windowAmount = 0.0, windowStart = Date()
    while step() < total {
        if shouldStop() {
            emit(.message("stopping at step \(step())"))
            try save()
            return
        }
        var metrics = trainStep(schedule.learningRate(at: step()))
        let s = step()
        windowAmount += rate.amount(metrics)
        if s % every.log == 0 || s == total {
            let now = Date()
            metrics[rate.name] = windowAmount / max(now.timeIntervalSince(windowStart), 1e-9)
            let left = now.timeIntervalSince(runStart) / Double(s - firstStep) * Double(total - s)
            emit(.step(step: s, of: total, metrics: metrics, secondsLeft: left))
            try run.appendMetrics(metrics.merging(["step": Double(s)]) { a, _ in a })
            windowAmount = 0; windowStart = now
        }
        if hasEvaluation && (s % every.evaluate == 0 || s == total) { try evaluation(s) }
        if s % every.save == 0 || s == total { try save() }
    }
}

// Supervised fine-tuning: the negative log-likelihood of completion tokens only (the prompt is
// context, never a target), averaged over the batch's completion tokens, on SFT JSONL
// ({"prompt","completion"} or {"messages"}), with the same run folder, checkpoints and resume as
// the other trainers.
import AlignKitNN
import AlignKitText
import Foundation

public struct SFTOptions: TrainerOptions {
    public var data = ""
    public var evaluationData: String?
    /// The starting model folder.
    public var model = ""
    /// Optimization, schedule, data and bookkeeping settings (read and written through `options.<name>`).
    public var training = TrainingSettings(learningRate: 1e-4, batchSize: 16, logEvery: 10, evaluateEvery: 100, saveEvery: 200)
    /// Train LoRA adapters (the base frozen) instead of every weight.
    public var lora: LoRASettings?
    public init() {}
}

public final class SFTTrainer: AlignmentTrainer {
    public var trainingExampleCount: Int { train.count }
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
    let start: TrainerStart<SFTOptions>
    var run: RunFolder { RunFolder(output, keep: options.keepCheckpoints) }

    public var totalSteps: Int {
        trainingSteps(count: train.count, batchSize: options.batchSize, epochs: options.epochs, maxSteps: options.maxSteps)
    }

    public init(options: SFTOptions, output: URL, resume: Bool = false, emit: @escaping (TrainingEvent) -> Void = { _ in }) throws {
        self.output = output
        self.emit = emit
        let start = try TrainerStart(output: output, resume: resume, options: options)
        let options = start.options
        self.options = options
        tokenizer = start.tokenizer
        model = try start.loadPolicy(lora: options.lora)
        padID = tokenizer.endOfTextID ?? 0
        let encoder = start.encoder(contextLength: model.configuration.contextLength)
        func load(_ path: String) throws -> [EncodedExample] {
            try encoder.load(path, read: { try CompletionExample.readSFT($0, onBadLine: options.onBadLine) }, encode: encoder.encode,
                             note: { emit(.message($0)) })
        }
        train = try load(options.data)
        evaluation = try options.evaluationData.map(load) ?? []
        optimizer = start.makeOptimizer()
        step = try start.begin(parameterNames: model.parameterNames, parameters: model.configuration.parameterCount, optimizer: &optimizer, emit: emit)
        self.start = start
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
        model.reseedAdapterDropout(seed: options.seed, step: step)
        let (value, gradient) = valueWithGradient(at: model) { m in
            let (l, n) = loss(m, examples)
            tokens = n
            return l
        }
        optimizer.learningRate = learningRate
        let (norm, applied) = clipAndApply(&optimizer, to: &model, gradient: gradient, loss: value.scalar, maximumNorm: options.clipNorm)
        step += 1
        var metrics = ["loss": Double(value.scalar), "grad_norm": Double(norm), "learning_rate": Double(learningRate), "num_tokens": Double(tokens)]
        if !applied { metrics["skipped"] = 1 }
        return metrics
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
        try runTrainingLoop(run: run, total: totalSteps, step: { step }, settings: options.training,
                            hasEvaluation: !evaluation.isEmpty,
                            rate: ("tokens_per_second", { m in m["num_tokens"] ?? 0 }),
                            trainStep: trainStep, evaluate: evaluate, save: saveCheckpoint, emit: emit, shouldStop: shouldStop)
    }

    public func saveCheckpoint() throws {
        let folder = try run.saveCheckpoint(step: step, state: [:], optimizer: optimizer.state, parameterNames: model.parameterNames,
                                            writeModel: { [model, start, options] in try start.writePolicy(model, lora: options.lora, to: $0) })
        emit(.checkpoint(step: step, path: folder.path))
    }
}

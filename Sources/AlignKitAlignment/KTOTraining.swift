// KTO (Ethayarajh et al. 2024) on unpaired data: each line a prompt, one completion and a Boolean
// label (desirable or not). Per batch of B examples, as TRL's KTOTrainer does it:
//
//   r_i  = log π(y_i|x_i) - log π_ref(y_i|x_i)                       (with gradient)
//   z₀   = max(0, mean_i [log π(y_{i-1}|x_i) - log π_ref(y_{i-1}|x_i)])  (completions shifted by one
//          within the batch: mismatched pairs; no gradient)
//   loss = mean over the batch of λ_D (1 - σ(β(r - z₀))) for desirable, λ_U (1 - σ(β(z₀ - r))) otherwise
//
// The reference runs live (no gradient) on matched and mismatched rows together.
import AlignKitNN
import AlignKitText
import Foundation

public struct KTOOptions: TrainerOptions {
    /// Unpaired JSONL: {"prompt", "completion", "label"}.
    public var data = ""
    public var evaluationData: String?
    public var model = ""
    /// Optimization, schedule, data and bookkeeping settings (read and written through `options.<name>`).
    public var training = TrainingSettings(learningRate: 5e-5, batchSize: 8, logEvery: 1, evaluateEvery: 50, saveEvery: 100)
    /// The reference's model folder; nil uses the starting policy.
    public var referenceModel: String?
    public var beta: Float = 0.1
    public var desirableWeight: Float = 1
    public var undesirableWeight: Float = 1
    /// Train LoRA adapters (the base frozen) instead of every weight.
    public var lora: LoRASettings?
    public init() {}
}

public final class KTOTrainer: AlignmentTrainer {
    public let options: KTOOptions
    public let output: URL
    public private(set) var policy: GPT
    public let reference: GPT
    public let tokenizer: BytePairTokenizer
    public private(set) var optimizer: Adam
    public private(set) var step = 0
    public let train: [EncodedExample]
    public let evaluation: [EncodedExample]
    public var trainingExampleCount: Int { train.count }
    let emit: (TrainingEvent) -> Void
    let padID: Int
    let start: TrainerStart<KTOOptions>
    let maxLength: Int
    var run: RunFolder { RunFolder(output, keep: options.keepCheckpoints) }

    public var totalSteps: Int {
        trainingSteps(count: train.count, batchSize: options.batchSize, epochs: options.epochs, maxSteps: options.maxSteps)
    }

    public init(options: KTOOptions, output: URL, resume: Bool = false, emit: @escaping (TrainingEvent) -> Void = { _ in }) throws {
        self.output = output
        self.emit = emit
        let start = try TrainerStart(output: output, resume: resume, options: options)
        let options = start.options
        guard options.beta > 0 else { throw DataFileError(file: "options", field: "beta", "must be positive") }
        self.options = options
        tokenizer = start.tokenizer
        policy = try start.loadPolicy(lora: options.lora)
        reference = try GPT(contentsOf: options.referenceModel.map { URL(fileURLWithPath: $0) } ?? start.modelFolder)
        guard reference.configuration.vocabularySize == policy.configuration.vocabularySize else {
            throw DataFileError(file: options.referenceModel ?? options.model, "the reference's vocabulary differs from the policy's")
        }
        padID = tokenizer.endOfTextID ?? 0
        let encoder = start.encoder(contextLength: policy.configuration.contextLength)
        maxLength = encoder.maxLength
        func load(_ path: String) throws -> [EncodedExample] {
            try encoder.load(path, read: { try CompletionExample.readUnpaired($0, onBadLine: options.onBadLine) }, encode: encoder.encode,
                             note: { emit(.message($0)) })
        }
        train = try load(options.data)
        evaluation = try options.evaluationData.map(load) ?? []
        let desirable = train.filter { $0.label == true }.count
        emit(.message("\(desirable) desirable and \(train.count - desirable) undesirable training examples"))
        optimizer = start.makeOptimizer()
        step = try start.begin(parameterNames: policy.parameterNames, parameters: policy.configuration.parameterCount, optimizer: &optimizer, emit: emit)
        self.start = start
    }

    /// Matched rows (x_i, y_i), then mismatched rows (x_i, y_{i-1}) cut to the maximum length.
    func rows(_ batch: [EncodedExample]) -> (matched: CompletionBatch, mismatched: CompletionBatch, both: CompletionBatch) {
        let matched = batch.map { ($0.prompt, $0.completions[0]) }
        let mismatched = batch.indices.map { i -> ([Int], [Int]) in
            let p = batch[i].prompt, c = batch[(i + batch.count - 1) % batch.count].completions[0]
            return (p, Array(c.prefix(max(1, maxLength - p.count))))
        }
        return (CompletionBatch(matched, padID: padID), CompletionBatch(mismatched, padID: padID), CompletionBatch(matched + mismatched, padID: padID))
    }

    struct Sums {
        var loss = 0.0, batches = 0, kl = 0.0
        var chosen = 0.0, chosenCount = 0, rejected = 0.0, rejectedCount = 0
        var values: [String: Double] {
            let c = chosenCount > 0 ? chosen / Double(chosenCount) : 0, r = rejectedCount > 0 ? rejected / Double(rejectedCount) : 0
            return ["loss": loss / Double(max(batches, 1)), "kl": kl / Double(max(batches, 1)),
                    "rewards/chosen": c, "rewards/rejected": r, "rewards/margins": c - r]
        }
    }

    func evaluateBatch(_ model: GPT, _ batch: [EncodedExample], sums: inout Sums) -> Tensor {
        let b = batch.count
        let (matched, mismatched, both) = rows(batch)
        let logps = model.scoreCompletions(matched, withLogitStatistics: false).logProbabilities
        let (mismatchedLogps, referenceAll) = withoutGradient {
            (model.scoreCompletions(mismatched, withLogitStatistics: false).logProbabilities.scalars,
             reference.scoreCompletions(both, withLogitStatistics: false).logProbabilities.scalars)
        }
        let kl = max(0, zip(mismatchedLogps, referenceAll[b...]).reduce(0) { $0 + $1.0 - $1.1 } / Float(b))
        let labels = batch.map { $0.label ?? true }
        let loss = ktoLoss(logProbabilities: logps, referenceLogProbabilities: Tensor(Array(referenceAll[..<b])), desirable: labels,
                           klEstimate: kl, beta: options.beta, desirableWeight: options.desirableWeight, undesirableWeight: options.undesirableWeight)
        sums.loss += Double(loss.scalar); sums.batches += 1; sums.kl += Double(kl)
        for (i, lp) in logps.scalars.enumerated() {
            let reward = Double(options.beta * (lp - referenceAll[i]))
            if labels[i] { sums.chosen += reward; sums.chosenCount += 1 } else { sums.rejected += reward; sums.rejectedCount += 1 }
        }
        return loss
    }

    @discardableResult
    public func trainStep(learningRate: Float) -> [String: Double] {
        let batch = shuffledBatch(count: train.count, batchSize: options.batchSize, seed: options.seed, step: step).map { train[$0] }
        var sums = Sums()
        policy.reseedAdapterDropout(seed: options.seed, step: step)
        let (loss, gradient) = valueWithGradient(at: policy) { m in evaluateBatch(m, batch, sums: &sums) }
        optimizer.learningRate = learningRate
        let (norm, applied) = clipAndApply(&optimizer, to: &policy, gradient: gradient, loss: loss.scalar, maximumNorm: options.clipNorm)
        step += 1
        var values = sums.values
        if !applied { values["skipped"] = 1 }
        values["grad_norm"] = Double(norm); values["learning_rate"] = Double(learningRate); values["examples"] = Double(batch.count)
        return values
    }

    public func evaluate() -> [String: Double] {
        guard !evaluation.isEmpty else { return [:] }
        var sums = Sums()
        withoutGradient {
            for start in stride(from: 0, to: evaluation.count, by: options.batchSize) {
                _ = evaluateBatch(policy, Array(evaluation[start..<min(start + options.batchSize, evaluation.count)]), sums: &sums)
            }
        }
        return Dictionary(uniqueKeysWithValues: sums.values.map { ("eval_" + $0.key, $0.value) })
    }

    public func run(shouldStop: () -> Bool = { false }) throws {
        try runTrainingLoop(run: run, total: totalSteps, step: { step }, settings: options.training,
                            hasEvaluation: !evaluation.isEmpty,
                            rate: ("examples_per_second", { m in m["examples"] ?? 0 }),
                            trainStep: trainStep, evaluate: evaluate, save: saveCheckpoint, emit: emit, shouldStop: shouldStop)
    }

    public func saveCheckpoint() throws {
        let folder = try run.saveCheckpoint(step: step, state: [:], optimizer: optimizer.state, parameterNames: policy.parameterNames,
                                            writeModel: { [policy, start, options] in try start.writePolicy(policy, lora: options.lora, to: $0) })
        emit(.checkpoint(step: step, path: folder.path))
    }
}

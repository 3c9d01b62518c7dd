// The reward model of RLHF (seed 000 §5.1.1): a GPT trunk with a scalar head trained on preference
// pairs with the Bradley–Terry loss
//
//   L = -log σ(r(x, y_w) - r(x, y_l) - m)  [+ c · ((r(x, y_w) + r(x, y_l))²), reward centering]
//
// where m is the pair's optional `margin` field (Llama 2's margin loss) and c the centering
// coefficient (Eisenstein et al. 2023, as TRL's `center_rewards_coefficient`). Chosen and rejected
// sequences go through the trunk in one pass; each is scored at its last token. Accuracy is counted
// per pair (the share of pairs whose chosen score beats its rejected one), never from batch means.
import AlignKitNN
import AlignKitText
import Foundation

public struct RewardTrainingOptions: TrainerOptions {
    /// Preference JSONL (an optional numeric `margin` field per line).
    public var data = ""
    public var evaluationData: String?
    /// The trunk's model folder, or a reward model folder (with score.safetensors) to continue from.
    public var model = ""
    /// Optimization, schedule, data and bookkeeping settings (read and written through `options.<name>`).
    public var training = TrainingSettings(learningRate: 1e-5, batchSize: 16, logEvery: 10, evaluateEvery: 100, saveEvery: 200)
    /// Subtract each pair's `margin` inside the sigmoid (pairs without one use 0).
    public var useMargins = true
    /// Reward centering's coefficient; nil or 0 turns it off.
    public var centerRewardsCoefficient: Float?
    public init() {}
}

/// The reward-model loss and per-pair metrics of a batch.
public struct RewardBatchResult {
    public var loss: Tensor
    public var chosen: [Float]
    public var rejected: [Float]
}

/// Bradley–Terry loss (with margins) plus optional centering, from the scores of chosen and rejected completions.
public func rewardModelLoss(chosen: Tensor, rejected: Tensor, margins: [Float]?, centering: Float?) -> Tensor {
    var loss = bradleyTerryLoss(chosenRewards: chosen, rejectedRewards: rejected, margin: margins.map { Tensor($0) })
    if let c = centering, c != 0 {
        let sum = chosen + rejected
        loss = loss + c * (sum * sum).mean()
    }
    return loss
}

public final class RewardTrainer: AlignmentTrainer {
    public var trainingExampleCount: Int { train.count }
    public let options: RewardTrainingOptions
    public let output: URL
    public private(set) var model: ScalarHeadModel
    public let tokenizer: BytePairTokenizer
    public private(set) var optimizer: Adam
    public private(set) var step = 0
    public let train: [EncodedExample]
    public let evaluation: [EncodedExample]
    let emit: (TrainingEvent) -> Void
    let padID: Int
    var run: RunFolder { RunFolder(output, keep: options.keepCheckpoints) }

    public var totalSteps: Int {
        trainingSteps(count: train.count, batchSize: options.batchSize, epochs: options.epochs, maxSteps: options.maxSteps)
    }

    public init(options: RewardTrainingOptions, output: URL, resume: Bool = false, emit: @escaping (TrainingEvent) -> Void = { _ in }) throws {
        self.output = output
        self.emit = emit
        let start = try TrainerStart(output: output, resume: resume, options: options)
        let options = start.options
        self.options = options
        tokenizer = start.tokenizer
        let source = start.newest ?? start.modelFolder
        model = ScalarHeadModel.exists(at: source) ? try ScalarHeadModel(contentsOf: source)
            : ScalarHeadModel(trunk: try GPT(contentsOf: source), seed: options.seed)
        padID = tokenizer.endOfTextID ?? 0
        let encoder = start.encoder(contextLength: model.trunk.configuration.contextLength)
        func load(_ path: String) throws -> [EncodedExample] {
            try encoder.load(path, read: { try PreferenceExample.read($0, onBadLine: options.onBadLine) }, encode: encoder.encode,
                             note: { emit(.message($0)) })
        }
        train = try load(options.data)
        evaluation = try options.evaluationData.map(load) ?? []
        optimizer = start.makeOptimizer()
        step = try start.begin(parameterNames: model.parameterNames, parameters: model.trunk.configuration.parameterCount, optimizer: &optimizer, emit: emit)
    }

    /// Loss and scores of a batch of pairs under `model`.
    func evaluateBatch(_ model: ScalarHeadModel, _ batch: [EncodedExample]) -> RewardBatchResult {
        let b = batch.count
        let scores = model.scores(batch.map { $0.prompt + $0.completions[0] } + batch.map { $0.prompt + $0.completions[1] }, padID: padID)
        let chosen = scores.slice(alongAxis: 0, range: 0..<b), rejected = scores.slice(alongAxis: 0, range: b..<(2 * b))
        let margins = options.useMargins && batch.contains { $0.margin != nil } ? batch.map { $0.margin ?? 0 } : nil
        let loss = rewardModelLoss(chosen: chosen, rejected: rejected, margins: margins, centering: options.centerRewardsCoefficient)
        let all = scores.scalars
        return RewardBatchResult(loss: loss, chosen: Array(all[..<b]), rejected: Array(all[b...]))
    }

    static func metrics(_ results: [RewardBatchResult]) -> [String: Double] {
        var pairs = 0, accurate = 0, chosen = 0.0, rejected = 0.0, loss = 0.0
        for r in results {
            loss += Double(r.loss.scalar) * Double(r.chosen.count)
            for (c, j) in zip(r.chosen, r.rejected) {
                pairs += 1; chosen += Double(c); rejected += Double(j)
                if c > j { accurate += 1 }
            }
        }
        let n = Double(max(pairs, 1))
        return ["loss": loss / n, "accuracy": Double(accurate) / n, "rewards/chosen": chosen / n, "rewards/rejected": rejected / n,
                "rewards/margins": (chosen - rejected) / n]
    }

    @discardableResult
    public func trainStep(learningRate: Float) -> [String: Double] {
        let batch = shuffledBatch(count: train.count, batchSize: options.batchSize, seed: options.seed, step: step).map { train[$0] }
        var result: RewardBatchResult?
        let (loss, gradient) = valueWithGradient(at: model) { m in
            let r = evaluateBatch(m, batch)
            result = r
            return r.loss
        }
        optimizer.learningRate = learningRate
        let (norm, applied) = clipAndApply(&optimizer, to: &model, gradient: gradient, loss: loss.scalar, maximumNorm: options.clipNorm)
        step += 1
        var values = Self.metrics([result!])
        if !applied { values["skipped"] = 1 }
        values["grad_norm"] = Double(norm)
        values["learning_rate"] = Double(learningRate)
        values["pairs"] = Double(batch.count)
        return values
    }

    /// Held-out loss and pairwise accuracy (`eval_` names); empty without held-out data.
    public func evaluate() -> [String: Double] {
        guard !evaluation.isEmpty else { return [:] }
        let results = withoutGradient {
            stride(from: 0, to: evaluation.count, by: options.batchSize).map { start in
                evaluateBatch(model, Array(evaluation[start..<min(start + options.batchSize, evaluation.count)]))
            }
        }
        return Dictionary(uniqueKeysWithValues: Self.metrics(results).map { ("eval_" + $0.key, $0.value) })
    }

    public func run(shouldStop: () -> Bool = { false }) throws {
        try runTrainingLoop(run: run, total: totalSteps, step: { step }, settings: options.training,
                            hasEvaluation: !evaluation.isEmpty,
                            rate: ("pairs_per_second", { m in m["pairs"] ?? 0 }),
                            trainStep: trainStep, evaluate: evaluate, save: saveCheckpoint, emit: emit, shouldStop: shouldStop)
    }

    public func saveCheckpoint() throws {
        let folder = try run.saveCheckpoint(step: step, state: [:], optimizer: optimizer.state, parameterNames: model.parameterNames,
                                            writeModel: { [model] in try model.save(to: $0) })
        emit(.checkpoint(step: step, path: folder.path))
    }
}

/// A reward model as a `RewardFunction`: the score of prompt + completion encoded as the reward
/// model was trained (end-of-text text appended; the sequence's last context-length tokens).
public final class RewardModelFunction: RewardFunction, @unchecked Sendable {
    public let model: ScalarHeadModel
    let encoder: AlignmentEncoder
    let padID: Int
    public var batchSize = 16

    public init(contentsOf folder: URL) throws {
        model = try ScalarHeadModel(contentsOf: folder)
        let tokenizer = try BytePairTokenizer(contentsOf: folder)
        encoder = AlignmentEncoder(tokenizer: tokenizer, maxLength: model.trunk.configuration.contextLength)
        padID = tokenizer.endOfTextID ?? 0
    }

    public func reward(prompt: String, completion: String) -> Float { rewards([(prompt, completion)])[0] }

    public func rewards(_ pairs: [(prompt: String, completion: String)]) -> [Float] {
        let context = model.trunk.configuration.contextLength
        let sequences = pairs.map { pair -> [Int] in
            let ids = encoder.tokenizer.encode(encoder.fullText(.plain(pair.prompt), .plain(pair.completion)))
            return Array((ids.isEmpty ? [padID] : ids).suffix(context))
        }
        var result: [Float] = []
        for start in stride(from: 0, to: sequences.count, by: batchSize) {
            let batch = Array(sequences[start..<min(start + batchSize, sequences.count)])
            result += withoutGradient { model.scores(batch, padID: padID).scalars }
        }
        return result
    }
}

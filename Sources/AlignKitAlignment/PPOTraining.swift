// PPO-RLHF as seed 000 §5.1.2 describes it (Ziegler et al. 2019, Ouyang et al. 2022), with RLOO and
// GRPO as alternative baselines. One step:
//
//   rollout   B prompts × k samples from the policy (the KV-cache sampler, temperature 1)
//             ─ a scalar score per completion (a reward model or a programmatic reward)
//             ─ per completion token: log π_old, log π_ref, the value V(s_t) (no gradient)
//   rewards   r_t = -β kl_t, plus the score at the completion's last token, where
//             kl_t = log π_old - log π_ref (k1) or (ρ - 1) - log ρ with ρ = π_ref/π_old (k3)
//   baseline  gae:  A_t by GAE(γ, λ) over the values, returns A_t + V_t, advantages whitened
//             rloo: A = R_i - mean of the other k-1 samples' R_j, R = score - β Σ kl_t (no value model)
//             grpo: A = (score_i - mean) / (std + 1e-4) over the prompt's k samples; β·k3 KL in the loss
//   update    `ppoEpochs` passes over the rollout in `miniBatches` minibatches: the clipped policy loss
//             (+ c_v × the clipped value loss for gae), one AdamW over policy and value model
//   β         fixed, or adapted toward a target KL: β ← β (1 + clip(KL/target - 1, ±0.2) · n/horizon)
import AlignKitNN
import AlignKitText
import Foundation

public enum AdvantageEstimator: String, Codable, Sendable, CaseIterable { case gae, rloo, grpo }
public enum KLEstimator: String, Codable, Sendable, CaseIterable { case k1, k3 }

public struct PPOOptions: TrainerOptions {
    /// Prompt JSONL ({"prompt"} lines; preference and SFT files serve, their other fields ignored).
    public var data = ""
    /// Held-out prompt JSONL: mean reward and KL of `samplesPerPrompt` samples per prompt.
    public var evaluationData: String?
    /// The starting policy's model folder.
    public var model = ""
    /// Optimization, schedule, data and bookkeeping settings (read and written through `options.<name>`).
    public var training = TrainingSettings(learningRate: 1e-5, batchSize: 16, logEvery: 1, evaluateEvery: 20, saveEvery: 50)
    /// The frozen reference; nil uses the starting policy.
    public var referenceModel: String?
    /// A reward model folder (from `RewardTrainer`); nil scores with the sentiment lexicon.
    public var rewardModel: String?
    /// The VADER lexicon file for the sentiment reward (nil: the cached data set).
    public var lexicon: String?
    /// The value model's starting folder (a scalar-head model); nil uses the reward model when there is
    /// one, else the policy's trunk with a fresh head.
    public var valueModel: String?
    /// Samples per prompt (RLOO and GRPO need at least 2).
    public var samplesPerPrompt = 1
    /// Train LoRA adapters (the base frozen) instead of every weight.
    public var lora: LoRASettings?
    public var maximumNewTokens = 24
    public var klCoefficient: Float = 0.05
    public var klEstimator: KLEstimator = .k1
    /// Adapt β so the rollouts' KL approaches this (nats per completion); nil keeps β fixed.
    public var targetKL: Float?
    public var klHorizon: Float = 10000
    public var advantage: AdvantageEstimator = .gae
    public var gamma: Float = 1
    public var lambda: Float = 0.95
    public var clipRange: Float = 0.2
    public var valueClipRange: Float = 0.2
    public var valueCoefficient: Float = 0.1
    public var ppoEpochs = 4
    public var miniBatches = 1
    public var whitenAdvantages = true
    public init() {}
}

/// The policy and (for GAE) the value model, optimized together.
public struct PolicyAndValue: NamedParameters {
    public var policy: GPT
    public var value: ScalarHeadModel?

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try policy.forEachNamedParameter(prefix: joinName(prefix, "policy"), body)
        if value != nil { try value!.forEachNamedParameter(prefix: joinName(prefix, "value"), body) }
    }
}

/// One rollout: the sampled sequences and, per completion token, what the update needs.
public struct Rollout {
    public var sequences: [(prompt: [Int], completion: [Int])]
    public var texts: [String]
    public var scores: [Float]
    /// Per row, per completion token.
    public var oldLogProbabilities: [[Float]]
    public var referenceLogProbabilities: [[Float]]
    public var oldValues: [[Float]]
    public var advantages: [[Float]]
    public var returns: [[Float]]
    public var entropies: [Float]
}

/// The per-token KL estimate between the sampling policy and the reference.
func klEstimate(_ logp: Float, _ refLogp: Float, _ estimator: KLEstimator) -> Float {
    switch estimator {
    case .k1: return logp - refLogp
    case .k3: let logRatio = refLogp - logp; return exp(logRatio) - 1 - logRatio
    }
}

/// Mean 0, standard deviation 1 (population), over all tokens.
func whiten(_ rows: [[Float]]) -> [[Float]] {
    let all = rows.flatMap { $0 }
    guard all.count > 1 else { return rows }
    let mean = all.reduce(0, +) / Float(all.count)
    let variance = all.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(all.count)
    let scale = 1 / (variance + 1e-8).squareRoot()
    return rows.map { $0.map { ($0 - mean) * scale } }
}

public final class PPOTrainer: AlignmentTrainer {
    public let options: PPOOptions
    public let output: URL
    public private(set) var models: PolicyAndValue
    public let reference: GPT
    public let reward: any RewardFunction
    public let tokenizer: BytePairTokenizer
    public private(set) var optimizer: Adam
    public private(set) var step = 0
    /// β now (changes when a target KL is set).
    public private(set) var klCoefficient: Float
    /// Encoded prompts (ids) and their text.
    public let prompts: [(text: String, ids: [Int])]
    public let evaluationPrompts: [(text: String, ids: [Int])]
    public var trainingExampleCount: Int { prompts.count }
    let emit: (TrainingEvent) -> Void
    let padID: Int
    let start: TrainerStart<PPOOptions>
    var run: RunFolder { RunFolder(output, keep: options.keepCheckpoints) }

    public var policy: GPT { models.policy }

    public var totalSteps: Int {
        trainingSteps(count: prompts.count, batchSize: options.batchSize, epochs: options.epochs, maxSteps: options.maxSteps)
    }

    public init(options: PPOOptions, output: URL, resume: Bool = false, reward: (any RewardFunction)? = nil,
                emit: @escaping (TrainingEvent) -> Void = { _ in }) throws {
        self.output = output
        self.emit = emit
        let start = try TrainerStart(output: output, resume: resume, options: options)
        let options = start.options
        if options.advantage != .gae && options.samplesPerPrompt < 2 {
            throw DataFileError(file: "options", field: "samplesPerPrompt", "\(options.advantage.rawValue) compares a prompt's samples, so it needs at least 2")
        }
        for (name, value) in [("ppoEpochs", options.ppoEpochs), ("miniBatches", options.miniBatches), ("maximumNewTokens", options.maximumNewTokens),
                              ("samplesPerPrompt", options.samplesPerPrompt)] where value < 1 {
            throw DataFileError(file: "options", field: name, "must be at least 1")
        }
        self.options = options
        tokenizer = start.tokenizer
        padID = tokenizer.endOfTextID ?? 0
        let policy = try start.loadPolicy(lora: options.lora)
        reference = try options.referenceModel.map { try GPT(contentsOf: URL(fileURLWithPath: $0)) } ?? GPT(contentsOf: start.modelFolder)
        guard reference.configuration.vocabularySize == policy.configuration.vocabularySize else {
            throw DataFileError(file: options.referenceModel ?? options.model, "the reference's vocabulary differs from the policy's")
        }
        if let reward {
            self.reward = reward
        } else if let path = options.rewardModel {
            self.reward = try RewardModelFunction(contentsOf: URL(fileURLWithPath: path))
        } else {
            self.reward = try SentimentLexicon.load(options.lexicon)
        }
        var value: ScalarHeadModel?
        if options.advantage == .gae {
            if let newest = start.newest {
                value = try ScalarHeadModel(contentsOf: newest.appendingPathComponent("value"))
            } else if let path = options.valueModel ?? options.rewardModel {
                value = try ScalarHeadModel(contentsOf: URL(fileURLWithPath: path))
            } else {
                value = ScalarHeadModel(trunk: policy.mergingAdapters(), seed: options.seed)
            }
            guard value!.trunk.configuration.contextLength >= policy.configuration.contextLength else {
                throw DataFileError(file: options.valueModel ?? options.rewardModel ?? options.model, "the value model's context is shorter than the policy's")
            }
        }
        models = PolicyAndValue(policy: policy, value: value)
        klCoefficient = options.klCoefficient
        // Prompts: rendered with the chat template, leaving room for the completion.
        let room = min(options.maxLength ?? policy.configuration.contextLength, policy.configuration.contextLength) - options.maximumNewTokens
        guard room > 0 else { throw DataFileError(file: "options", field: "maximumNewTokens", "leaves no room for a prompt in the context") }
        let template = start.template, tokenizer = start.tokenizer, eos = padID
        func load(_ path: String) throws -> [(text: String, ids: [Int])] {
            let file = try PromptExample.read(URL(fileURLWithPath: path), onBadLine: options.onBadLine)
            if let summary = file.skipped.summary() { emit(.message(summary)) }
            var kept: [(String, [Int])] = [], dropped: [DataFileError] = []
            for record in file.records {
                let text = record.prompt.promptText(template: template)
                let encoded = tokenizer.encode(text, allowSpecial: false)
                let ids = encoded.isEmpty ? [eos] : encoded
                if ids.count > room {
                    dropped.append(DataFileError(file: path, line: record.line, field: "prompt",
                                                 "\(ids.count) tokens leave no room for \(options.maximumNewTokens) new ones in \(room + options.maximumNewTokens)"))
                } else {
                    kept.append((text, ids))
                }
            }
            emit(.message("\(path): \(kept.count) prompts" + (dropped.isEmpty ? "" : ", \(dropped.count) too long dropped")))
            for d in dropped.prefix(3) { emit(.message("  dropped \(d)")) }
            guard !kept.isEmpty else { throw DataFileError(file: path, "holds no usable prompt") }
            return kept
        }
        prompts = try load(options.data)
        evaluationPrompts = try options.evaluationData.map(load) ?? []
        optimizer = start.makeOptimizer()
        step = try start.begin(parameterNames: models.parameterNames,
                                 parameters: models.policy.configuration.parameterCount + (models.value?.trunk.configuration.parameterCount ?? 0), optimizer: &optimizer, emit: emit)
        self.start = start
        if let newest = start.newest, let beta = try RunFolder.readState(newest)["kl_coefficient"] as? Double { klCoefficient = Float(beta) }
    }

    // MARK: Rollouts

    /// Samples, scores and evaluates the rollout of `step`.
    public func rollout(step: Int) -> Rollout {
        let indices = shuffledBatch(count: prompts.count, batchSize: options.batchSize, seed: options.seed, step: step)
        var sampling = SamplingOptions()
        sampling.maximumNewTokens = options.maximumNewTokens
        sampling.stopTokens = tokenizer.endOfTextID.map { [$0] } ?? []
        var sequences: [(prompt: [Int], completion: [Int])] = [], texts: [String] = [], promptTexts: [String] = []
        for (n, i) in indices.enumerated() {
            sampling.seed = options.seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(step) &* 1_000_003 &+ UInt64(n) &* 7919
            let outputs = Sampler.generate(models.policy, prompt: prompts[i].ids, count: options.samplesPerPrompt, options: sampling)
            for out in outputs {
                sequences.append((prompts[i].ids, out))
                texts.append(tokenizer.decode(out.filter { $0 != tokenizer.endOfTextID }))
                promptTexts.append(prompts[i].text)
            }
        }
        let scores = reward.rewards(Array(zip(promptTexts, texts)))
        let batch = CompletionBatch(sequences, padID: padID)
        let lengths = batch.lengths
        func split(_ flat: [Float]) -> [[Float]] {
            var rows: [[Float]] = [], start = 0
            for n in lengths { rows.append(Array(flat[start..<(start + n)])); start += n }
            return rows
        }
        let (old, entropies) = withoutGradient { models.policy.completionTokenScores(batch, entropies: true) }
        let oldLogps = split(old.scalars)
        let refLogps = split(withoutGradient { reference.completionTokenScores(batch).logProbabilities.scalars })
        var oldValues = lengths.map { [Float](repeating: 0, count: $0) }
        if let value = models.value {
            let positions = batch.scoredPositions
            oldValues = split(withoutGradient { value.values(batch.inputs, batch: batch.rows).reshaped(to: [-1]).gathering(atIndices: positions).scalars })
        }
        // Per-token KL penalty and the advantages.
        let kl = zip(oldLogps, refLogps).map { row in zip(row.0, row.1).map { klEstimate($0, $1, options.klEstimator) } }
        var advantages: [[Float]] = [], returns: [[Float]] = []
        let k = options.samplesPerPrompt
        switch options.advantage {
        case .gae:
            for r in sequences.indices {
                var rewards = kl[r].map { -klCoefficient * $0 }
                if !rewards.isEmpty { rewards[rewards.count - 1] += scores[r] }
                let (a, ret) = generalizedAdvantages(rewards: rewards, values: oldValues[r], gamma: options.gamma, lambda: options.lambda)
                advantages.append(a); returns.append(ret)
            }
            if options.whitenAdvantages { advantages = whiten(advantages) }
        case .rloo:
            let total = sequences.indices.map { scores[$0] - klCoefficient * kl[$0].reduce(0, +) }
            var perRow = [Float](repeating: 0, count: sequences.count)
            for g in stride(from: 0, to: sequences.count, by: k) {
                let sum = total[g..<(g + k)].reduce(0, +)
                for r in g..<(g + k) { perRow[r] = total[r] - (sum - total[r]) / Float(k - 1) }
            }
            advantages = sequences.indices.map { [Float](repeating: perRow[$0], count: lengths[$0]) }
            if options.whitenAdvantages { advantages = whiten(advantages) }
            returns = advantages
        case .grpo:
            var perRow = [Float](repeating: 0, count: sequences.count)
            for g in stride(from: 0, to: sequences.count, by: k) {
                let group = scores[g..<(g + k)]
                let mean = group.reduce(0, +) / Float(k)
                let std = (group.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(k - 1)).squareRoot()
                for r in g..<(g + k) { perRow[r] = (scores[r] - mean) / (std + 1e-4) }
            }
            advantages = sequences.indices.map { [Float](repeating: perRow[$0], count: lengths[$0]) }
            returns = advantages
        }
        return Rollout(sequences: sequences, texts: texts, scores: scores, oldLogProbabilities: oldLogps, referenceLogProbabilities: refLogps,
                       oldValues: oldValues, advantages: advantages, returns: returns, entropies: entropies ?? [])
    }

    // MARK: Updates

    /// The loss of minibatch `rows` of `rollout` under `m`, with its clip fractions.
    func minibatchLoss(_ m: PolicyAndValue, _ rollout: Rollout, rows: [Int], clipFraction: inout Float, valueLoss: inout Float) -> Tensor {
        let batch = CompletionBatch(rows.map { rollout.sequences[$0] }, padID: padID)
        func flat(_ x: [[Float]]) -> Tensor { Tensor(rows.flatMap { x[$0] }) }
        let logps = m.policy.completionTokenScores(batch).logProbabilities
        let (policyLoss, fraction) = ppoPolicyLoss(logProbabilities: logps, oldLogProbabilities: flat(rollout.oldLogProbabilities),
                                                   advantages: flat(rollout.advantages), clip: options.clipRange)
        clipFraction = fraction
        var loss = policyLoss
        if let value = m.value {
            let v = value.values(batch.inputs, batch: batch.rows).reshaped(to: [-1]).gathering(atIndices: batch.scoredPositions)
            let vl = ppoValueLoss(values: v, oldValues: flat(rollout.oldValues), returns: flat(rollout.returns), clip: options.valueClipRange)
            valueLoss = vl.scalar
            loss = loss + options.valueCoefficient * vl
        }
        if options.advantage == .grpo {
            // β · k3(π ‖ π_ref) per token, differentiable through log π.
            let logRatio = flat(rollout.referenceLogProbabilities) - logps
            loss = loss + klCoefficient * (logRatio.exp() - 1 - logRatio).mean()
        }
        return loss
    }

    @discardableResult
    public func trainStep(learningRate: Float) -> [String: Double] {
        let rollout = self.rollout(step: step)
        let rows = rollout.sequences.count
        optimizer.learningRate = learningRate
        var clipFractions: [Float] = [], valueLosses: [Float] = [], losses: [Float] = [], norms: [Float] = []
        var generator = RandomGenerator(seed: options.seed &+ UInt64(step) &* 0x9E37_79B9)
        var skippedUpdates = 0, update = 0
        for _ in 0..<options.ppoEpochs {
            var order = Array(0..<rows)
            for i in stride(from: rows - 1, to: 0, by: -1) { order.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
            let size = (rows + options.miniBatches - 1) / options.miniBatches
            for start in stride(from: 0, to: rows, by: size) {
                let chosen = Array(order[start..<min(start + size, rows)])
                var fraction: Float = 0, valueLoss: Float = 0
                models.policy.reseedAdapterDropout(seed: options.seed, step: step &* 1024 &+ update)
                update += 1
                let (loss, gradient) = valueWithGradient(at: models) { m in
                    minibatchLoss(m, rollout, rows: chosen, clipFraction: &fraction, valueLoss: &valueLoss)
                }
                let (norm, applied) = clipAndApply(&optimizer, to: &models, gradient: gradient, loss: loss.scalar, maximumNorm: options.clipNorm)
                if !applied { skippedUpdates += 1; continue }
                norms.append(norm)
                clipFractions.append(fraction); valueLosses.append(valueLoss); losses.append(loss.scalar)
            }
        }
        step += 1
        // Metrics: the rollout's (before the update) and the update's averages.
        let klSums = zip(rollout.oldLogProbabilities, rollout.referenceLogProbabilities).map { zip($0.0, $0.1).reduce(0) { $0 + $1.0 - $1.1 } }
        let meanKL = Double(klSums.reduce(0, +)) / Double(max(rows, 1))
        func mean(_ x: [Float]) -> Double { x.isEmpty ? 0 : Double(x.reduce(0, +)) / Double(x.count) }
        var metrics: [String: Double] = [
            "reward": mean(rollout.scores), "kl": meanKL, "entropy": mean(rollout.entropies),
            "loss": mean(losses), "clip_fraction": mean(clipFractions), "grad_norm": mean(norms),
            "kl_coefficient": Double(klCoefficient), "learning_rate": Double(learningRate), "episodes": Double(rows),
            "completion_length": Double(rollout.sequences.reduce(0) { $0 + $1.completion.count }) / Double(max(rows, 1)),
        ]
        metrics["rlhf_reward"] = metrics["reward"]! - Double(klCoefficient) * meanKL
        // A rollout whose every update was non-finite is a skipped step; some skipped updates are counted.
        if skippedUpdates > 0 { metrics["skipped_updates"] = Double(skippedUpdates) }
        if skippedUpdates == update { metrics["skipped"] = 1; metrics["loss"] = .nan; metrics["grad_norm"] = .nan }
        if models.value != nil { metrics["value_loss"] = mean(valueLosses) }
        if let target = options.targetKL {
            let error = min(max(Float(meanKL) / target - 1, -0.2), 0.2)
            klCoefficient *= 1 + error * Float(rows) / options.klHorizon
        }
        return metrics
    }

    /// Held-out mean reward and KL of `samplesPerPrompt` samples per prompt, drawn with fixed seeds
    /// (`eval_` names); empty without held-out prompts.
    public func evaluate() -> [String: Double] {
        guard !evaluationPrompts.isEmpty else { return [:] }
        var sampling = SamplingOptions()
        sampling.maximumNewTokens = options.maximumNewTokens
        sampling.stopTokens = tokenizer.endOfTextID.map { [$0] } ?? []
        var sequences: [(prompt: [Int], completion: [Int])] = [], pairs: [(prompt: String, completion: String)] = []
        for (n, p) in evaluationPrompts.enumerated() {
            sampling.seed = options.seed &+ 0xE7A1 &+ UInt64(n) &* 7919
            for out in Sampler.generate(models.policy, prompt: p.ids, count: options.samplesPerPrompt, options: sampling) {
                sequences.append((p.ids, out))
                pairs.append((p.text, tokenizer.decode(out.filter { $0 != tokenizer.endOfTextID })))
            }
        }
        let rewards = reward.rewards(pairs)
        var kl = 0.0
        for start in stride(from: 0, to: sequences.count, by: 32) {
            let batch = CompletionBatch(Array(sequences[start..<min(start + 32, sequences.count)]), padID: padID)
            let (p, r) = withoutGradient {
                (models.policy.scoreCompletions(batch, withLogitStatistics: false).logProbabilities.scalars,
                 reference.scoreCompletions(batch, withLogitStatistics: false).logProbabilities.scalars)
            }
            kl += zip(p, r).reduce(0.0) { $0 + Double($1.0 - $1.1) }
        }
        return ["eval_reward": Double(rewards.reduce(0, +)) / Double(rewards.count), "eval_kl": kl / Double(sequences.count)]
    }

    public func run(shouldStop: () -> Bool = { false }) throws {
        try runTrainingLoop(run: run, total: totalSteps, step: { step }, settings: options.training,
                            hasEvaluation: !evaluationPrompts.isEmpty,
                            rate: ("episodes_per_second", { m in m["episodes"] ?? 0 }),
                            trainStep: trainStep, evaluate: evaluate, save: saveCheckpoint, emit: emit, shouldStop: shouldStop)
    }

    public func saveCheckpoint() throws {
        let models = self.models, start = self.start, lora = options.lora
        let folder = try run.saveCheckpoint(step: step, state: ["kl_coefficient": Double(klCoefficient)], optimizer: optimizer.state,
                                            parameterNames: models.parameterNames,
                                            writeModel: { try start.writePolicy(models.policy, lora: lora, to: $0) },
                                            writeExtra: { dir in try models.value?.save(to: dir.appendingPathComponent("value")) })
        emit(.checkpoint(step: step, path: folder.path))
    }
}

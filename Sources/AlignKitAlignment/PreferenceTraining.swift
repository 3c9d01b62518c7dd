// Preference optimization (DPO and its family, SimPO, CPO, ORPO) of a GPT on preference pairs:
//
//   preference JSONL ─ encode (TRL's way; see AlignmentEncoder) ─ per step a batch of B pairs:
//   one policy forward over 2B rows (chosen…, rejected…) ─ Σ log π over completion tokens
//   ─ reference log-probabilities: precomputed once per data set and cached on disk (keyed by the
//     reference's weights and the encoded data), or computed each step (TR-DPO syncing needs that)
//   ─ the objective's loss ─ backward ─ global-norm clipping ─ AdamW ─ metrics named as TRL names them.
import AlignKitNN
import AlignKitText
import Foundation

public struct PreferenceTrainingOptions: TrainerOptions {
    /// Preference JSONL for training.
    public var data = ""
    /// Held-out preference JSONL, evaluated every `evaluateEvery` steps and at the end.
    public var evaluationData: String?
    /// The policy's model folder (config.json, model.safetensors, tokenizer.json).
    public var model = ""
    /// Optimization, schedule, data and bookkeeping settings (read and written through `options.<name>`).
    public var training = TrainingSettings(learningRate: 5e-5, batchSize: 8, logEvery: 1, evaluateEvery: 50, saveEvery: 100)
    /// The reference's model folder; nil uses the starting policy.
    public var referenceModel: String?
    public var objective = PreferenceObjective()
    /// Train LoRA adapters (the base frozen) instead of every weight.
    public var lora: LoRASettings?
    /// Precompute the reference's log-probabilities once (and cache them on disk).
    public var precomputeReference = true
    /// The folder of cached reference log-probabilities; nil uses `<cache>/reference-logps`.
    public var referenceCache: String?
    /// TR-DPO: every N steps the reference becomes α·policy + (1-α)·reference (needs live reference passes).
    public var syncReferenceEvery: Int?
    public var syncReferenceAlpha: Float = 0.6

    public init() {}
}

/// Progress and results of an alignment trainer.
public enum TrainingEvent: Sendable {
    case message(String)
    /// A training step's metrics (TRL's names) and the time left.
    case step(step: Int, of: Int, metrics: [String: Double], secondsLeft: Double)
    /// Held-out metrics (names prefixed with `eval_`).
    case evaluation(step: Int, metrics: [String: Double])
    case checkpoint(step: Int, path: String)
}

/// Sums of per-pair quantities over a batch or a data set, turned into TRL's metric names.
struct PreferenceMetrics {
    var pairs = 0
    var loss = 0.0, lossBatches = 0
    var chosenRewards = 0.0, rejectedRewards = 0.0, accurate = 0, margins = 0.0
    var chosenLogps = 0.0, rejectedLogps = 0.0
    var chosenLogitSum = 0.0, chosenTokens = 0, rejectedLogitSum = 0.0, rejectedTokens = 0

    /// Adds a batch of B pairs whose `scores` rows are the B chosen completions, then the B rejected.
    mutating func add(loss l: Float, result: PreferenceLossResult, policy: PairLogProbabilities, scores: CompletionScores) {
        loss += Double(l); lossBatches += 1
        let c = policy.chosen.scalars, r = policy.rejected.scalars
        for i in c.indices {
            pairs += 1
            chosenRewards += Double(result.chosenRewards[i]); rejectedRewards += Double(result.rejectedRewards[i])
            if result.chosenRewards[i] > result.rejectedRewards[i] { accurate += 1 }
            margins += Double(result.chosenRewards[i] - result.rejectedRewards[i])
            chosenLogps += Double(c[i]); rejectedLogps += Double(r[i])
        }
        let b = c.count
        chosenLogitSum += scores.meanLogitSums[..<b].reduce(0, +); chosenTokens += scores.lengths[..<b].reduce(0, +)
        rejectedLogitSum += scores.meanLogitSums[b...].reduce(0, +); rejectedTokens += scores.lengths[b...].reduce(0, +)
    }

    var values: [String: Double] {
        let n = Double(max(pairs, 1))
        return ["loss": loss / Double(max(lossBatches, 1)),
                "rewards/chosen": chosenRewards / n, "rewards/rejected": rejectedRewards / n,
                "rewards/accuracies": Double(accurate) / n, "rewards/margins": margins / n,
                "logps/chosen": chosenLogps / n, "logps/rejected": rejectedLogps / n,
                "logits/chosen": chosenTokens > 0 ? chosenLogitSum / Double(chosenTokens) : 0,
                "logits/rejected": rejectedTokens > 0 ? rejectedLogitSum / Double(rejectedTokens) : 0]
    }
}

/// Reference log-probabilities of a data set's chosen and rejected completions.
public struct ReferenceLogProbabilities: Sendable {
    public var chosen: [Float]
    public var rejected: [Float]
}

public final class PreferenceTrainer: AlignmentTrainer {
    public var trainingExampleCount: Int { train.count }
    public let options: PreferenceTrainingOptions
    public let output: URL
    public private(set) var policy: GPT
    public private(set) var reference: GPT?
    public let tokenizer: BytePairTokenizer
    public private(set) var optimizer: Adam
    public private(set) var step = 0
    public let train: [EncodedExample]
    public let evaluation: [EncodedExample]
    /// Reference forward passes this trainer ran (batches), for the cache's test and the curious.
    public private(set) var referenceForwardPasses = 0
    var trainReference: ReferenceLogProbabilities?
    var evaluationReference: ReferenceLogProbabilities?
    let emit: (TrainingEvent) -> Void
    let padID: Int
    let start: TrainerStart<PreferenceTrainingOptions>
    var run: RunFolder { RunFolder(output, keep: options.keepCheckpoints) }

    /// Steps of the whole run.
    public var totalSteps: Int {
        trainingSteps(count: train.count, batchSize: options.batchSize, epochs: options.epochs, maxSteps: options.maxSteps)
    }

    public init(options: PreferenceTrainingOptions, output: URL, resume: Bool = false, emit: @escaping (TrainingEvent) -> Void = { _ in }) throws {
        self.output = output
        self.emit = emit
        let start = try TrainerStart(output: output, resume: resume, options: options)
        let options = start.options, newest = start.newest, modelFolder = start.modelFolder
        do { try options.objective.validate() } catch { throw DataFileError(file: "options", error.message) }
        self.options = options
        tokenizer = start.tokenizer
        policy = try start.loadPolicy(lora: options.lora)
        let context = policy.configuration.contextLength
        guard tokenizer.vocabularySize <= policy.configuration.vocabularySize else {
            throw DataFileError(file: modelFolder.appendingPathComponent("tokenizer.json").path,
                                "has \(tokenizer.vocabularySize) ids; the model's vocabulary has \(policy.configuration.vocabularySize)")
        }
        padID = tokenizer.endOfTextID ?? 0
        if options.objective.needsReference {
            if let path = options.referenceModel {
                let r = try GPT(contentsOf: URL(fileURLWithPath: path))
                guard r.configuration.vocabularySize == policy.configuration.vocabularySize else {
                    throw DataFileError(file: path, "the reference's vocabulary (\(r.configuration.vocabularySize)) differs from the policy's (\(policy.configuration.vocabularySize))")
                }
                reference = r
            } else {
                reference = newest == nil && options.lora == nil ? policy : try GPT(contentsOf: modelFolder)
            }
        }
        if options.syncReferenceEvery != nil && options.lora != nil {
            throw DataFileError(file: "options", field: "lora", "TR-DPO reference syncing mixes every policy weight into the reference; it does not combine with LoRA")
        }
        if options.syncReferenceEvery != nil, let r = reference, r.configuration != policy.configuration {
            throw DataFileError(file: options.referenceModel ?? options.model,
                                "TR-DPO reference syncing mixes the policy into the reference, so both need the same configuration")
        }
        // Data.
        let encoder = start.encoder(contextLength: context)
        func load(_ path: String) throws -> [EncodedExample] {
            try encoder.load(path, read: { try PreferenceExample.read($0, onBadLine: options.onBadLine) }, encode: encoder.encode,
                             note: { emit(.message($0)) })
        }
        train = try load(options.data)
        evaluation = try options.evaluationData.map(load) ?? []
        optimizer = start.makeOptimizer()
        step = try start.begin(parameterNames: policy.parameterNames, parameters: policy.configuration.parameterCount, optimizer: &optimizer, emit: emit)
        self.start = start
        if let newest, options.syncReferenceEvery != nil, FileManager.default.fileExists(atPath: newest.appendingPathComponent("reference").path) {
            reference = try GPT(contentsOf: newest.appendingPathComponent("reference"))
        }
        if reference != nil && options.precomputeReference && options.syncReferenceEvery == nil {
            trainReference = try cachedReference(train, name: "train")
            if !evaluation.isEmpty { evaluationReference = try cachedReference(evaluation, name: "evaluation") }
        }
    }

    // MARK: Reference log-probabilities

    /// The cache key: SHA-256 of the reference's configuration and weights and of the encoded pairs.
    func referenceKey(_ examples: [EncodedExample]) -> String {
        var bytes: [UInt8] = []
        var model = reference!
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys   // key order is otherwise not stable
        bytes += Array((try? encoder.encode(model.configuration)) ?? Data())
        model.forEachParameter { p in p.withUnsafeBufferPointer { bytes += UnsafeRawBufferPointer($0) } }
        for e in examples {
            for ids in [e.prompt] + e.completions {
                bytes += withUnsafeBytes(of: Int32(ids.count).littleEndian, Array.init)
                for id in ids { bytes += withUnsafeBytes(of: Int32(id).littleEndian, Array.init) }
            }
        }
        return SHA256.hexDigest(bytes)
    }

    /// The reference's log-probabilities of `examples`: read from the cache when it holds them,
    /// else computed (and written there).
    func cachedReference(_ examples: [EncodedExample], name: String) throws -> ReferenceLogProbabilities {
        let folder = options.referenceCache.map { URL(fileURLWithPath: $0) } ?? DataCache.directory.appendingPathComponent("reference-logps")
        let key = referenceKey(examples)
        let file = folder.appendingPathComponent("\(key).safetensors")
        if FileManager.default.fileExists(atPath: file.path), let cached = try? SafeTensorsFile(contentsOf: file),
           let c = try? cached.tensor("chosen"), let r = try? cached.tensor("rejected"), c.shape == [examples.count], r.shape == [examples.count] {
            emit(.message("reference log-probabilities of the \(name) pairs: cached (\(file.path))"))
            return ReferenceLogProbabilities(chosen: c.scalars, rejected: r.scalars)
        }
        let started = Date()
        let computed = computeReference(examples)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try writeSafeTensors([("chosen", Tensor(computed.chosen)), ("rejected", Tensor(computed.rejected))], to: file,
                             metadata: ["pairs": "\(examples.count)", "format": "alignkit reference log-probabilities"])
        emit(.message(String(format: "reference log-probabilities of the %d %@ pairs: computed in %.1f s, cached at %@",
                             examples.count, name, Date().timeIntervalSince(started), file.path)))
        return computed
    }

    func computeReference(_ examples: [EncodedExample]) -> ReferenceLogProbabilities {
        var chosen: [Float] = [], rejected: [Float] = []
        for start in stride(from: 0, to: examples.count, by: options.batchSize) {
            let batch = Array(examples[start..<min(start + options.batchSize, examples.count)])
            let s = referenceScores(batch)
            chosen += s.chosen; rejected += s.rejected
        }
        return ReferenceLogProbabilities(chosen: chosen, rejected: rejected)
    }

    func referenceScores(_ batch: [EncodedExample]) -> ReferenceLogProbabilities {
        referenceForwardPasses += 1
        let all = withoutGradient { reference!.scoreCompletions(CompletionBatch(pairs: batch, padID: padID), withLogitStatistics: false) }.logProbabilities.scalars
        return ReferenceLogProbabilities(chosen: Array(all[..<batch.count]), rejected: Array(all[batch.count...]))
    }

    // MARK: Steps

    /// The pairs of `step` (see `shuffledBatch`).
    func batchIndices(_ step: Int) -> [Int] {
        shuffledBatch(count: train.count, batchSize: options.batchSize, seed: options.seed, step: step)
    }

    /// Loss and metrics of a batch under `model` (the tape records when `model` is being differentiated).
    func evaluateBatch(_ model: GPT, _ batch: [EncodedExample], reference cached: ReferenceLogProbabilities?, metrics: inout PreferenceMetrics) -> Tensor {
        let b = batch.count
        let scores = model.scoreCompletions(CompletionBatch(pairs: batch, padID: padID))
        let chosen = scores.logProbabilities.slice(alongAxis: 0, range: 0..<b)
        let rejected = scores.logProbabilities.slice(alongAxis: 0, range: b..<(2 * b))
        let ref = reference == nil ? ReferenceLogProbabilities(chosen: .init(repeating: 0, count: b), rejected: .init(repeating: 0, count: b))
            : cached ?? referenceScores(batch)
        let pairs = PairLogProbabilities(chosen: chosen, rejected: rejected, referenceChosen: Tensor(ref.chosen), referenceRejected: Tensor(ref.rejected),
                                         chosenLengths: Array(scores.lengths[..<b]), rejectedLengths: Array(scores.lengths[b...]))
        let result = options.objective.loss(pairs)
        metrics.add(loss: result.loss.scalar, result: result, policy: pairs, scores: scores)
        return result.loss
    }

    func slice(_ r: ReferenceLogProbabilities?, _ indices: [Int]) -> ReferenceLogProbabilities? {
        guard let r else { return nil }
        return ReferenceLogProbabilities(chosen: indices.map { r.chosen[$0] }, rejected: indices.map { r.rejected[$0] })
    }

    /// One optimization step; returns its metrics.
    @discardableResult
    public func trainStep(learningRate: Float) -> [String: Double] {
        let indices = batchIndices(step)
        let batch = indices.map { train[$0] }
        let cached = slice(trainReference, indices)
        var metrics = PreferenceMetrics()
        policy.reseedAdapterDropout(seed: options.seed, step: step)
        let (loss, gradient) = valueWithGradient(at: policy) { m in evaluateBatch(m, batch, reference: cached, metrics: &metrics) }
        optimizer.learningRate = learningRate
        let (norm, applied) = clipAndApply(&optimizer, to: &policy, gradient: gradient, loss: loss.scalar, maximumNorm: options.clipNorm)
        step += 1
        if let every = options.syncReferenceEvery, step % every == 0, reference != nil { syncReference() }
        var values = metrics.values
        if !applied { values["skipped"] = 1 }
        values["grad_norm"] = Double(norm)
        values["learning_rate"] = Double(learningRate)
        values["pairs"] = Double(indices.count)
        return values
    }

    /// TR-DPO: reference ← α·policy + (1-α)·reference.
    func syncReference() {
        let alpha = options.syncReferenceAlpha
        var updated = reference!
        var policyParameters: [Tensor] = []
        var p = policy
        p.forEachParameter { policyParameters.append($0) }
        var i = 0
        updated.forEachParameter { r in
            r = withoutGradient { alpha * policyParameters[i] + (1 - alpha) * r }
            i += 1
        }
        reference = updated
    }

    /// Held-out metrics over the whole evaluation set (`eval_` names); empty without one.
    public func evaluate() -> [String: Double] {
        guard !evaluation.isEmpty else { return [:] }
        var metrics = PreferenceMetrics()
        withoutGradient {
            for start in stride(from: 0, to: evaluation.count, by: options.batchSize) {
                let indices = Array(start..<min(start + options.batchSize, evaluation.count))
                _ = evaluateBatch(policy, indices.map { evaluation[$0] }, reference: slice(evaluationReference, indices), metrics: &metrics)
            }
        }
        return Dictionary(uniqueKeysWithValues: metrics.values.map { ("eval_" + $0.key, $0.value) })
    }

    /// Trains to the end (or until `shouldStop`, which saves a checkpoint first).
    public func run(shouldStop: () -> Bool = { false }) throws {
        let trainCount = train.count, batchSize = options.batchSize
        try runTrainingLoop(run: run, total: totalSteps, step: { step }, settings: options.training,
                            hasEvaluation: !evaluation.isEmpty,
                            rate: ("pairs_per_second", { m in m["pairs"] ?? 0 }),
                            trainStep: { [self] lr in
                                var m = trainStep(learningRate: lr)
                                m["epoch"] = Double(step) * Double(batchSize) / Double(trainCount)
                                return m
                            },
                            evaluate: evaluate, save: saveCheckpoint, emit: emit, shouldStop: shouldStop)
    }

    public func saveCheckpoint() throws {
        // A synced reference is part of the run's state.
        let synced = options.syncReferenceEvery != nil ? reference : nil
        let folder = try run.saveCheckpoint(step: step, state: [:], optimizer: optimizer.state, parameterNames: policy.parameterNames,
                                            writeModel: { [policy, start, options] in try start.writePolicy(policy, lora: options.lora, to: $0) },
                                            writeExtra: { dir in try synced?.save(to: dir.appendingPathComponent("reference")) })
        emit(.checkpoint(step: step, path: folder.path))
    }
}

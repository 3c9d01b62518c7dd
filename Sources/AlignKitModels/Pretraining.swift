// Pretraining a GPT on a text corpus: tokenizer (trained or loaded) → token streams with a held-out
// split → random windows → AdamW with warm-up and cosine decay, clipping → validation loss and bits
// per byte every N steps → checkpoints (model, optimizer, state) every N steps, at the end and on
// interrupt → resume from the newest checkpoint.
import AlignKitNN
import AlignKitTensor
import AlignKitText
import Foundation

public struct PretrainingOptions: Codable, Sendable {
    /// Files or folders of `.txt` files; each file is a document.
    public var corpus: [String] = []
    /// A tokenizer to load (see `BytePairTokenizer(contentsOf:)`); nil trains a byte-level BPE.
    public var tokenizer: String?
    /// Regular tokens of a trained tokenizer (256 bytes + merges).
    public var vocabularySize = 1024
    public var architecture: GPTConfiguration.Architecture = .llama
    public var modelSize = 128
    public var layerCount = 4
    public var headCount = 4
    public var kvHeadCount = 2
    /// Tokens per training row.
    public var sequenceLength = 128
    public var batchSize = 16
    public var steps = 2000
    public var learningRate: Float = 3e-3
    public var minimumLearningRate: Float = 3e-4
    public var warmupSteps = 100
    public var weightDecay: Float = 0.1
    public var clipNorm: Float = 1
    public var evaluateEvery = 100
    public var evaluationBatches = 8
    public var saveEvery = 250
    public var logEvery = 10
    /// The share of each document (its end) held out for validation.
    public var validationFraction = 0.05
    public var seed: UInt64 = 1337
    /// Steps in a row with a non-finite loss or gradient (each skipped) that stop the run; nil: 5.
    public var nonFiniteStepLimit: Int?

    public init() {}

    public var configuration: (Int) -> GPTConfiguration {
        { vocabulary in
            GPTConfiguration(architecture: architecture, vocabularySize: vocabulary, contextLength: sequenceLength, modelSize: modelSize,
                             layerCount: layerCount, headCount: headCount,
                             kvHeadCount: architecture == .gpt2 ? headCount : kvHeadCount, tiedEmbeddings: true)
        }
    }
}

/// One line of progress or metrics.
public enum PretrainingEvent: Sendable {
    case message(String)
    case step(step: Int, of: Int, loss: Float, learningRate: Float, gradientNorm: Float, tokensPerSecond: Double, secondsLeft: Double)
    case evaluation(step: Int, loss: Double, bitsPerByte: Double)
    case checkpoint(step: Int, path: String)
}

public struct TokenStreams: Sendable {
    public var train: [Int32]
    public var validation: [Int32]
    /// UTF-8 bytes of the validation text, for bits per byte.
    public var validationBytes: Int
}

public final class Pretrainer {
    public let options: PretrainingOptions
    public let output: URL
    public private(set) var tokenizer: BytePairTokenizer
    public private(set) var model: GPT
    public private(set) var optimizer: Adam
    public private(set) var step = 0
    public let streams: TokenStreams
    let emit: (PretrainingEvent) -> Void

    var run: RunFolder { RunFolder(output) }

    /// Prepares a run in `output`: with `resume`, from its newest checkpoint (options, tokenizer and
    /// all state from there); otherwise from scratch (an existing run there is an error).
    public init(options: PretrainingOptions, output: URL, resume: Bool, emit: @escaping (PretrainingEvent) -> Void) throws {
        self.output = output
        self.emit = emit
        let fm = FileManager.default
        let run = RunFolder(output)
        try run.prepare(resume: resume)
        let newest = resume ? run.newestCheckpoint() : nil
        if resume && newest == nil { emit(.message("no checkpoint in \(output.path); starting from scratch")) }
        var options = options
        if let newest {
            // The run's own options win, except the step count, which a resumed run may extend.
            let saved = try JSONDecoder().decode(PretrainingOptions.self, from: readFile(newest.appendingPathComponent("options.json")))
            let steps = options.steps
            options = saved
            options.steps = max(steps, saved.steps)
            try run.restoreLogs(to: newest)
        }
        self.options = options
        // Documents.
        let documents = try Self.readCorpus(options.corpus)
        emit(.message("corpus: \(documents.count) documents, \(documents.reduce(0) { $0 + $1.utf8.count }) bytes"))
        var trainTexts: [String] = [], validationTexts: [String] = []
        for text in documents {
            let (a, b) = Self.split(text, heldOut: options.validationFraction)
            trainTexts.append(a); validationTexts.append(b)
        }
        // Tokenizer.
        let tokenizerFile = output.appendingPathComponent("tokenizer.json")
        if newest != nil || (resume && fm.fileExists(atPath: tokenizerFile.path)) {
            tokenizer = try BytePairTokenizer(tokenizerJSON: tokenizerFile)
        } else if let path = options.tokenizer {
            tokenizer = try BytePairTokenizer(contentsOf: URL(fileURLWithPath: path))
            try tokenizer.save(tokenizerJSON: tokenizerFile)
        } else {
            let started = Date()
            tokenizer = BPETrainer.train(texts: trainTexts, vocabularySize: options.vocabularySize)
            try tokenizer.save(tokenizerJSON: tokenizerFile)
            emit(.message(String(format: "trained a byte-level BPE of %d ids in %.1f s", tokenizer.vocabularySize, Date().timeIntervalSince(started))))
        }
        // Token streams, documents separated by end-of-text.
        let eot = Int32(tokenizer.endOfTextID ?? 0)
        let tok = tokenizer
        func stream(_ texts: [String]) -> [Int32] {
            var ids: [Int32] = []
            for text in texts where !text.isEmpty { ids += tok.encode(text, allowSpecial: false).map { Int32($0) }; ids.append(eot) }
            return ids
        }
        let encodeStart = Date()
        streams = TokenStreams(train: stream(trainTexts), validation: stream(validationTexts),
                               validationBytes: validationTexts.reduce(0) { $0 + $1.utf8.count })
        emit(.message(String(format: "tokens: %d train, %d validation (%.1f s)", streams.train.count, streams.validation.count,
                             Date().timeIntervalSince(encodeStart))))
        guard streams.train.count > options.sequenceLength + 1, streams.validation.count > options.sequenceLength + 1 else {
            throw DataFileError(file: options.corpus.joined(separator: ", "), "too little text for rows of \(options.sequenceLength) tokens")
        }
        let configuration = options.configuration(tokenizer.vocabularySize)
        do { try configuration.validate() } catch { throw DataFileError(file: "options", error.message) }
        optimizer = AdamW(learningRate: options.learningRate, beta1: 0.9, beta2: 0.95, weightDecay: options.weightDecay)
        if let newest {
            model = try GPT(contentsOf: newest)
            (step, optimizer.state) = try RunFolder.resumeState(newest, parameterNames: model.parameterNames)
            emit(.message("resumed from \(newest.lastPathComponent) (step \(step))"))
        } else {
            model = GPT(configuration: configuration, seed: options.seed)
            try run.start(options: options)
        }
        try run.checkRoom(parameters: model.parameterScalarCount)
        emit(.message("model: \(configuration.architecture.rawValue), \(configuration.parameterCount) parameters " +
                      "(C \(configuration.modelSize), \(configuration.layerCount) layers, \(configuration.headCount) heads, " +
                      "\(configuration.kvHeadCount) KV heads, context \(configuration.contextLength), vocabulary \(configuration.vocabularySize))"))
    }

    /// Text files of a path: the file, or a folder's `.txt` files (sorted).
    public static func readCorpus(_ paths: [String]) throws -> [String] {
        var texts: [String] = []
        for path in paths {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw DataFileError(file: path, "does not exist") }
            let files = isFolder.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".txt") }.sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                let data = try readFile(URL(fileURLWithPath: file))
                guard let text = String(data: data, encoding: .utf8) else { throw DataFileError(file: file, "is not UTF-8 text") }
                texts.append(text)
            }
        }
        guard !texts.isEmpty else { throw DataFileError(file: paths.joined(separator: ", "), "holds no .txt files") }
        return texts
    }

    /// The text before and after a line break near the (1 - heldOut) point.
    static func split(_ text: String, heldOut: Double) -> (String, String) {
        let utf8 = text.utf8
        var cut = utf8.index(utf8.startIndex, offsetBy: Int(Double(utf8.count) * (1 - heldOut)))
        while cut < utf8.endIndex && utf8[cut] != UInt8(ascii: "\n") { cut = utf8.index(after: cut) }
        return (String(text[..<cut]), String(text[cut...]))
    }

    /// Rows of `sequenceLength + 1` tokens starting at `starts`.
    func rows(_ stream: [Int32], _ starts: [Int]) -> [Int] {
        var tokens: [Int] = []
        tokens.reserveCapacity(starts.count * (options.sequenceLength + 1))
        for s in starts { for i in s...(s + options.sequenceLength) { tokens.append(Int(stream[i])) } }
        return tokens
    }

    /// The training batch of `step`: random windows drawn from a generator seeded by the run's seed
    /// and the step, so a resumed run sees the batches an uninterrupted one would.
    func trainingBatch(_ step: Int) -> [Int] {
        var generator = RandomGenerator(seed: options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(step))
        let limit = UInt64(streams.train.count - options.sequenceLength - 1)
        return rows(streams.train, (0..<options.batchSize).map { _ in Int(generator.next() % limit) })
    }

    /// Mean next-token loss over fixed, evenly spaced validation windows, and bits per byte.
    public func evaluate() -> (loss: Double, bitsPerByte: Double) {
        let count = options.evaluationBatches * options.batchSize
        let limit = streams.validation.count - options.sequenceLength - 1
        let starts = (0..<count).map { $0 * limit / max(count, 1) }
        var total = 0.0
        withLearningPhase(.inference) {
            for b in 0..<options.evaluationBatches {
                let batch = Array(starts[(b * options.batchSize)..<((b + 1) * options.batchSize)])
                total += Double(model.loss(rows(streams.validation, batch), batch: batch.count).scalar)
            }
        }
        let loss = total / Double(options.evaluationBatches)
        let tokensPerByte = Double(streams.validation.count) / Double(max(streams.validationBytes, 1))
        return (loss, loss * tokensPerByte / log(2))
    }

    /// Trains until `options.steps`, or until `shouldStop` says so (then saves a checkpoint).
    public func run(shouldStop: () -> Bool = { false }) throws {
        let schedule = LearningRateSchedule.cosine(peak: options.learningRate, minimum: options.minimumLearningRate,
                                                   warmupSteps: options.warmupSteps, totalSteps: options.steps)
        let tokensPerStep = Double(options.batchSize * options.sequenceLength)
        var windowStart = Date(), windowSteps = 0
        let runStart = Date(), firstStep = step
        var nonFinite = NonFiniteSteps(limit: options.nonFiniteStepLimit)
        if step >= options.steps {
            // Resumed from the final checkpoint (killed while writing the top-level model, say): write it again.
            try saveCheckpoint()
            return
        }
        if step == 0 {
            let (loss, bpb) = evaluate()
            emit(.evaluation(step: 0, loss: loss, bitsPerByte: bpb))
            try appendMetrics(["step": 0, "val_loss": loss, "val_bpb": bpb])
        }
        while step < options.steps {
            if shouldStop() {
                emit(.message("stopping at step \(step)"))
                try saveCheckpoint()
                return
            }
            let batch = trainingBatch(step)
            let (loss, gradient) = valueWithGradient(at: model) { m in m.loss(batch, batch: options.batchSize) }
            optimizer.learningRate = schedule.learningRate(at: step)
            let (norm, applied) = clipAndApply(&optimizer, to: &model, gradient: gradient, loss: loss.scalar, maximumNorm: options.clipNorm)
            step += 1
            windowSteps += 1
            let record: [String: Any] = ["step": step, "loss": Double(loss.scalar), "lr": Double(optimizer.learningRate), "grad_norm": Double(norm)]
            if !applied {
                let parts = ["loss": Double(loss.scalar), "grad_norm": Double(norm)]
                emit(.message(NonFiniteSteps.message(step: step, parts: parts, inARow: nonFinite.inARow + 1)))
                try appendMetrics(record.merging(["skipped": 1]) { a, _ in a })
                try nonFinite.record(skipped: true, step: step, parts: parts, run: run)
            } else {
                try nonFinite.record(skipped: false, step: step, parts: [:], run: run)
            }
            if step % options.logEvery == 0 || step == options.steps {
                let now = Date()
                let rate = tokensPerStep * Double(windowSteps) / now.timeIntervalSince(windowStart)
                let perStep = now.timeIntervalSince(runStart) / Double(step - firstStep)
                emit(.step(step: step, of: options.steps, loss: loss.scalar, learningRate: optimizer.learningRate, gradientNorm: norm,
                           tokensPerSecond: rate, secondsLeft: perStep * Double(options.steps - step)))
                if applied { try appendMetrics(record) }
                try run.appendTiming(["step": step, "tokens_per_second": rate, "seconds": now.timeIntervalSince(runStart)])
                windowStart = now; windowSteps = 0
            }
            if step % options.evaluateEvery == 0 || step == options.steps {
                let (vl, bpb) = evaluate()
                emit(.evaluation(step: step, loss: vl, bitsPerByte: bpb))
                try appendMetrics(["step": step, "val_loss": vl, "val_bpb": bpb])
            }
            if step % options.saveEvery == 0 || step == options.steps { try saveCheckpoint() }
        }
    }

    func appendMetrics(_ record: [String: Any]) throws { try run.appendMetrics(record) }

    /// Writes checkpoints/step-N (see `RunFolder`).
    public func saveCheckpoint() throws {
        let folder = try run.saveCheckpoint(step: step, state: [:], optimizer: optimizer.state, parameterNames: model.parameterNames) { try model.save(to: $0) }
        emit(.checkpoint(step: step, path: folder.path))
    }
}

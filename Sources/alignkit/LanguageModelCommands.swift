// `alignkit pretrain`, `alignkit sample`, `alignkit score`: parsing and printing; the work is in AlignKitModels.
import AlignKit
import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; the training loop checks it between steps.
nonisolated(unsafe) var interruptRequested: sig_atomic_t = 0

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pretrain a GPT on a text corpus (default: the Shakespeare data set).",
        discussion: """
        The output folder gets tokenizer.json, config.json + model.safetensors (refreshed at each checkpoint),
        metrics.jsonl, options.json and checkpoints/step-N. Ctrl-C saves a checkpoint and stops; --resume
        continues from the newest checkpoint.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(name: .customLong("corpus"), help: "A text file or a folder of .txt files (repeatable; default: the cached Shakespeare data set).")
    var corpus: [String] = []
    @Option(help: "Output folder.") var out: String = "runs/shakespeare"
    @Flag(help: "Continue the run in --out from its newest checkpoint.") var resume = false
    @Option(help: "A tokenizer to use (.tiktoken, tokenizer.json, or a folder); default: train a byte-level BPE.") var tokenizer: String?
    @Option(help: "Ids of a trained tokenizer (256 bytes + merges).") var vocabSize: Int = 1024
    @Option(help: "gpt2 or llama.") var architecture: String = "llama"
    @Option(help: "Model width C.") var modelSize: Int = 128
    @Option(help: "Transformer blocks.") var layers: Int = 4
    @Option(help: "Attention heads.") var heads: Int = 4
    @Option(help: "Key/value heads (llama).") var kvHeads: Int = 2
    @Option(help: "Tokens per row (the context length).") var context: Int = 128
    @Option(help: "Rows per batch.") var batchSize: Int = 16
    @Option(help: "Training steps (the cosine schedule ends here).") var steps: Int = 2000
    @Option(help: "Peak learning rate.") var lr: Float = 3e-3
    @Option(help: "Warm-up steps.") var warmup: Int = 100
    @Option(help: "Evaluate every N steps.") var evalEvery: Int = 100
    @Option(help: "Checkpoint every N steps.") var saveEvery: Int = 250
    @Option(help: "Print progress every N steps.") var logEvery: Int = 10
    @Option(help: "Random seed.") var seed: UInt64 = 1337
    @Option(help: "Steps in a row with a non-finite loss or gradient (each skipped) that stop the run.") var maxNonfiniteSteps: Int = NonFiniteSteps.defaultLimit

    func validate() throws {
        for (name, value) in [("--vocab-size", vocabSize - 255), ("--max-nonfinite-steps", maxNonfiniteSteps), ("--model-size", modelSize), ("--layers", layers), ("--heads", heads),
                              ("--kv-heads", kvHeads), ("--context", context), ("--batch-size", batchSize), ("--steps", steps),
                              ("--eval-every", evalEvery), ("--save-every", saveEvery), ("--log-every", logEvery)] where value < 1 {
            throw ValidationError("\(name) is too small")
        }
        if GPTConfiguration.Architecture(rawValue: architecture) == nil { throw ValidationError("--architecture must be gpt2 or llama, not '\(architecture)'") }
    }

    func run() throws {
        global.apply()
        var options = PretrainingOptions()
        options.corpus = corpus.isEmpty ? [try DataCache.locate(.shakespeare).path] : corpus
        options.tokenizer = tokenizer
        options.vocabularySize = vocabSize
        options.architecture = GPTConfiguration.Architecture(rawValue: architecture)!
        options.modelSize = modelSize; options.layerCount = layers; options.headCount = heads; options.kvHeadCount = kvHeads
        options.sequenceLength = context; options.batchSize = batchSize; options.steps = steps
        options.learningRate = lr; options.minimumLearningRate = lr / 10; options.warmupSteps = warmup
        options.evaluateEvery = evalEvery; options.saveEvery = saveEvery; options.logEvery = logEvery; options.seed = seed
        options.nonFiniteStepLimit = maxNonfiniteSteps
        installInterruptHandlers()
        let trainer = try Pretrainer(options: options, output: URL(fileURLWithPath: out), resume: resume) { event in
            switch event {
            case .message(let text): print(text)
            case let .step(step, total, loss, lr, norm, rate, left):
                print(String(format: "step %6d/%d  loss %.4f  lr %.2e  |g| %.2f  %7.0f tok/s  %@ left", step, total, loss, lr, norm, rate,
                             formatDuration(left)))
            case let .evaluation(step, loss, bpb):
                print(String(format: "step %6d  validation loss %.4f  bits/byte %.4f", step, loss, bpb))
            case let .checkpoint(step, path):
                print("step \(step): checkpoint \(path)")
            }
            flushStandardOutput()
        }
        print("threads: \(Parallel.threadCount); output: \(out)")
        try trainer.run { interruptRequested != 0 }
        if interruptRequested == 0 {
            print("done. Sample with: alignkit sample --model \(out) --prompt 'ROMEO.'")
        } else {
            print("interrupted at a checkpoint; continue with: \(resumeCommand())")
        }
    }
}

func flushStandardOutput() { fflush(nil) }

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s / 60 % 60) : String(format: "%dm%02ds", s / 60, s % 60)
}

/// A model folder's model and tokenizer.
func loadModelFolder(_ path: String, needTokenizer: Bool) throws -> (GPT, BytePairTokenizer?) {
    let url = URL(fileURLWithPath: path)
    let model = try GPT(contentsOf: url)
    let tokenizerFile = url.appendingPathComponent("tokenizer.json")
    if !needTokenizer && !FileManager.default.fileExists(atPath: tokenizerFile.path) { return (model, nil) }
    let tokenizer = try BytePairTokenizer(contentsOf: url)
    guard tokenizer.vocabularySize <= model.configuration.vocabularySize else {
        throw DataFileError(file: tokenizerFile.path, "has \(tokenizer.vocabularySize) ids; the model's vocabulary has \(model.configuration.vocabularySize)")
    }
    return (model, tokenizer)
}

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sample", abstract: "Generate text from a model folder, with a KV cache.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Model folder (config.json, model.safetensors, tokenizer.json).") var model: String = "runs/shakespeare"
    @Option(help: "Text to continue.") var prompt: String = "\n"
    @Option(help: "New tokens at most.") var maxTokens: Int = 200
    @Option(help: "Temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(help: "Keep the k likeliest tokens.") var topK: Int?
    @Option(help: "Keep the likeliest tokens up to probability p.") var topP: Float?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("stop"), help: "Stop after this text (repeatable).") var stops: [String] = []
    @Flag(help: "Print tokens per second at the end.") var speed = false
    @Flag(help: "Recompute every position each step instead of using the KV cache (slow; for comparison).") var noCache = false

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
        if temperature < 0 { throw ValidationError("--temperature must not be negative") }
    }

    func run() throws {
        global.apply()
        let (gpt, loaded) = try loadModelFolder(model, needTokenizer: true)
        let tokenizer = loaded!
        var options = SamplingOptions()
        options.temperature = temperature; options.topK = topK; options.topP = topP; options.seed = seed
        options.maximumNewTokens = maxTokens; options.stopStrings = stops; options.recompute = noCache
        if let eot = tokenizer.endOfTextID { options.stopTokens = [eot] }
        var promptIDs = tokenizer.encode(prompt)
        if promptIDs.isEmpty, let eot = tokenizer.endOfTextID { promptIDs = [eot] }
        print(prompt, terminator: "")
        var produced: [Int] = []
        var printed = 0
        let clock = ContinuousClock()
        let start = clock.now
        _ = Sampler.generate(gpt, prompt: promptIDs, options: options, decode: tokenizer.decode) { id in
            produced.append(id)
            // Print whole characters only: a token may end inside a multi-byte one.
            let text = tokenizer.decode(produced)
            let complete = text.hasSuffix("\u{FFFD}") ? String(text.dropLast()) : text
            if complete.count > printed {
                print(String(complete.dropFirst(printed)), terminator: "")
                printed = complete.count
                flushStandardOutput()
            }
        }
        print("")
        flushStandardOutput()
        if speed {
            let seconds = Double((clock.now - start).components.attoseconds) / 1e18 + Double((clock.now - start).components.seconds)
            FileHandle.standardError.write(String(format: "%d tokens in %.2f s: %.1f tokens/s (%@)\n", produced.count, seconds,
                                                  Double(produced.count) / seconds, noCache ? "recomputed" : "KV cache").data(using: .utf8)!)
        }
    }
}

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Print token ids and each token's log-probability under a model, as JSON.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Model folder.") var model: String
    @Option(help: "Text to score (needs the folder's tokenizer.json).") var text: String?
    @Option(help: "Token ids, comma-separated.") var tokens: String?

    func validate() throws {
        if (text == nil) == (tokens == nil) { throw ValidationError("give exactly one of --text and --tokens") }
    }

    func run() throws {
        global.apply()
        let (gpt, tokenizer) = try loadModelFolder(model, needTokenizer: text != nil)
        var ids: [Int]
        if let text { ids = tokenizer!.encode(text) } else {
            ids = []
            for field in tokens!.split(separator: ",") {
                guard let id = Int(field.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--tokens: '\(field)' is not an integer") }
                guard id >= 0 && id < gpt.configuration.vocabularySize else {
                    throw ValidationError("--tokens: \(id) is outside the model's vocabulary of \(gpt.configuration.vocabularySize)")
                }
                ids.append(id)
            }
        }
        guard !ids.isEmpty else { throw ValidationError("nothing to score") }
        guard ids.count <= gpt.configuration.contextLength else {
            throw ValidationError("\(ids.count) tokens exceed the model's context length \(gpt.configuration.contextLength)")
        }
        let logProbabilities = gpt.tokenLogProbabilities(ids)
        var result: [String: Any] = ["tokens": ids, "logprobs": logProbabilities.map { $0.map { $0 as Any } ?? NSNull() }]
        let total = logProbabilities.compactMap { $0 }.reduce(0, +)
        result["total_logprob"] = total
        if let tokenizer { result["pieces"] = ids.map { tokenizer.decode([$0]) } }
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

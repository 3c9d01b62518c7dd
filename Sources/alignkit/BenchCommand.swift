// `alignkit bench`: throughput benchmarks of the kernels.
import AlignKit
import ArgumentParser
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmark kernels.", subcommands: [GEMMBench.self, SampleBench.self, TokenizerBench.self, WorkloadBench.self])
}

struct GEMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "GFLOP/s of matrix multiplication at the foundation issue's shapes.")

    static let defaultShapes = "1024x1024x1024,4096x256x768,4096x256x1024,4096x1024x256,4096x256x4096,4096x384x1536,4096x1536x384,4096x768x3072,768x4096x3072"

    @Option(help: "Comma-separated MxKxN shapes; a TN:, NT: or TT: prefix transposes A (stored K x M) and/or B (stored N x K), as a training step's gradient products do.")
    var shapes: String = GEMMBench.defaultShapes
    @Option(help: "Comma-separated thread counts.") var threads: String = "1,2"
    @Option(help: "Kernel path: avx512, avx2 or portable (default: fastest supported).") var path: String?
    @Option(help: "fp32, or bf16 (AMX where the CPU has it; PyTorch multiplies bf16 tensors).") var precision: GEMM.Precision = .fp32
    @Option(help: "Seconds per measurement round.") var seconds: Double = 0.3
    @Option(help: "Alternating rounds per case (AlignKit, PyTorch, AlignKit, ...); the median is reported.") var rounds: Int = 5
    @Option(help: "Also run PyTorch's torch.matmul with this Python (default: .venv-bench/bin/python if present; 'none' to skip).")
    var python: String?

    func run() throws {
        if let path {
            guard let p = GEMM.Path(rawValue: path), GEMM.supportedPaths.contains(p) else {
                throw ValidationError("--path \(path): choose one of \(GEMM.supportedPaths.map(\.rawValue).joined(separator: ", "))")
            }
            GEMM.path = p
        }
        GEMM.precision = precision
        let parsedShapes = try shapes.split(separator: ",").map { try GEMMBenchmark.Shape(parsing: $0) }
        let threadCounts = try threads.split(separator: ",").map { text -> Int in
            guard let t = Int(text), t > 0 else { throw ValidationError("--threads: bad count '\(text)'") }
            return t
        }
        let reference = TorchReference(python: python)
        print("GEMM path: \(GEMM.path.rawValue), \(precision.rawValue)\(precision == .bf16 ? (GEMM.usesAMX ? " on AMX" : " (rounded operands, no AMX)") : ""); PyTorch: \(reference.map { "\($0.version) (\($0.python))" } ?? "not found (run scripts/setup-torch.sh)")")
        print("Median of \(rounds) alternating rounds of \(seconds) s each; GFLOP/s = 2MNK / median time.")
        print("shape (MxKxN)    threads  AlignKit GFLOP/s  PyTorch GFLOP/s  ratio")
        var ratios: [Double] = []
        for shape in parsedShapes {
            for t in threadCounts {
                var ours: [Double] = [], theirs: [Double] = []
                for _ in 0..<rounds {
                    Parallel.threadCount = t
                    ours.append(GEMMBenchmark.measure(shape, seconds: seconds))
                    if let value = reference?.gemm(shape, threads: t, seconds: seconds, precision: precision) { theirs.append(value) }
                }
                let name = shape.name.padding(toLength: 16, withPad: " ", startingAt: 0)
                var line = name + String(format: " %7d  %16.1f", t, median(ours))
                if !theirs.isEmpty {
                    let ratio = median(ours) / median(theirs)
                    line += String(format: "  %15.1f  %5.2f", median(theirs), ratio)
                    if t == threadCounts.max() { ratios.append(ratio) }
                }
                print(line)
            }
        }
        if !ratios.isEmpty {
            let geometricMean = Foundation.exp(ratios.map { Foundation.log($0) }.reduce(0, +) / Double(ratios.count))
            print(String(format: "ratio at %d threads: min %.2f, geometric mean %.2f", threadCounts.max()!, ratios.min()!, geometricMean))
        }
    }

    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}

/// Times C = op(A) op(B) on random matrices and returns GFLOP/s (median of repeated runs).
enum GEMMBenchmark {
    /// A product op(A) op(B), written MxKxN, optionally after NN:, TN:, NT: or TT: (`name` writes it back).
    struct Shape {
        let m: Int, k: Int, n: Int, transposeA: Bool, transposeB: Bool
        var transposes: String { (transposeA ? "T" : "N") + (transposeB ? "T" : "N") }
        var name: String { (transposeA || transposeB ? transposes + ":" : "") + "\(m)x\(k)x\(n)" }

        init(parsing text: Substring) throws {
            var body = text, transposes = "NN"
            if let colon = text.firstIndex(of: ":") {
                transposes = String(text[..<colon])
                body = text[text.index(after: colon)...]
            }
            let parts = body.split(separator: "x").compactMap { Int($0) }
            guard ["NN", "TN", "NT", "TT"].contains(transposes), parts.count == 3, parts.allSatisfy({ $0 > 0 }) else {
                throw ValidationError("--shapes: bad shape '\(text)', want MxKxN, optionally after NN:, TN:, NT: or TT:")
            }
            (m, k, n) = (parts[0], parts[1], parts[2])
            (transposeA, transposeB) = (transposes.first == "T", transposes.last == "T")
        }
    }

    static func measure(_ shape: Shape, seconds: Double) -> Double {
        let (m, k, n) = (shape.m, shape.k, shape.n)
        let a = Tensor(randomUniform: shape.transposeA ? [k, m] : [m, k], lowerBound: -1, upperBound: 1, seed: 1)
        let b = Tensor(randomUniform: shape.transposeB ? [n, k] : [k, n], lowerBound: -1, upperBound: 1, seed: 2)
        func matmul(_ a: Tensor, _ b: Tensor) -> Tensor { AlignKit.matmul(a, b, transposeA: shape.transposeA, transposeB: shape.transposeB) }
        var c = Tensor.zeros([m, n])
        var times: [Double] = []
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(seconds)
        _ = matmul(a, b) // warm-up
        repeat {
            let start = clock.now
            c = matmul(a, b)
            let elapsed = clock.now - start
            times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        } while clock.now < deadline || times.count < 3
        _ = c
        times.sort()
        return 2 * Double(m) * Double(k) * Double(n) / times[times.count / 2] / 1e9
    }
}

/// A PyTorch process serving `benchmarks/torch_gemm.py` requests over a pipe.
final class TorchReference {
    let python: String
    let version: String
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var buffer = Data()

    /// nil when no Python with torch is found (or `python` is "none").
    init?(python requested: String?) {
        if requested == "none" { return nil }
        let candidate = requested ?? ".venv-bench/bin/python"
        guard FileManager.default.isExecutableFile(atPath: candidate),
              FileManager.default.fileExists(atPath: "benchmarks/torch_gemm.py") else { return nil }
        python = candidate
        process.executableURL = URL(fileURLWithPath: candidate)
        process.arguments = ["benchmarks/torch_gemm.py"]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        guard let hello = Self.readObject(output.fileHandleForReading, &buffer), let v = hello["torch"] as? String else { return nil }
        version = v
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    func gemm(_ shape: GEMMBenchmark.Shape, threads: Int, seconds: Double, precision: GEMM.Precision) -> Double? {
        input.fileHandleForWriting.write(Data("\(shape.m) \(shape.k) \(shape.n) \(threads) \(seconds) \(precision.rawValue) \(shape.transposes)\n".utf8))
        return Self.readObject(output.fileHandleForReading, &buffer)?["gflops"] as? Double
    }

    private static func readObject(_ handle: FileHandle, _ buffer: inout Data) -> [String: Any]? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[(newline + 1)...])
                return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }
}

struct SampleBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Greedy generation with the KV cache against recomputing every position, on the same model.")

    @Option(help: "A model folder; default: a random model of the pretraining default's shape with context 512.") var model: String?
    @Option(help: "New tokens.") var tokens: Int = 256
    @Option(help: "Prompt tokens.") var promptTokens: Int = 16
    @Option(help: "Threads.") var threads: Int?

    func run() throws {
        if let threads { Parallel.threadCount = threads }
        let gpt: GPT
        if let model { gpt = try GPT(contentsOf: URL(fileURLWithPath: model)) } else {
            let options = PretrainingOptions()
            var configuration = options.configuration(1025)
            configuration.contextLength = 512
            gpt = GPT(configuration: configuration, seed: 1)
        }
        let c = gpt.configuration
        guard promptTokens + tokens <= c.contextLength else {
            throw ValidationError("prompt + new tokens (\(promptTokens + tokens)) exceed the model's context length \(c.contextLength)")
        }
        print("model: \(c.architecture.rawValue), \(c.parameterCount) parameters, context \(c.contextLength); \(Parallel.threadCount) threads")
        let prompt = (0..<promptTokens).map { ($0 * 7919) % c.vocabularySize }
        var options = SamplingOptions()
        options.temperature = 0
        options.maximumNewTokens = tokens
        var results: [(String, Double, [Int])] = []
        for recompute in [false, true] {
            options.recompute = recompute
            let start = DispatchTime.now().uptimeNanoseconds
            let produced = Sampler.generate(gpt, prompt: prompt, options: options)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            results.append((recompute ? "recomputed" : "KV cache", seconds, produced))
            print(String(format: "%-10@ %4d tokens in %6.2f s: %8.1f tokens/s", (recompute ? "recomputed" : "KV cache") as NSString,
                         produced.count, seconds, Double(produced.count) / seconds))
        }
        print(String(format: "KV cache speed-up: %.1fx; same tokens: %@", results[1].1 / results[0].1,
                     results[0].2 == results[1].2 ? "yes" : "NO"))
    }
}

struct TokenizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encoding speed (MB/s) of GPT-2's BPE and of a trained BPE on the Shakespeare corpus.")

    @Option(help: "Corpus: a file or folder of .txt files (default: the cached Shakespeare data set).") var corpus: String?
    @Option(help: "GPT-2's rank file (default: the cached gpt2-bpe data set).") var ranks: String?

    func run() throws {
        let texts = try Pretrainer.readCorpus([corpus ?? DataCache.locate(.shakespeare).path])
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        let gpt2 = try BytePairTokenizer(tiktokenFile: DataCache.locate(.gpt2BPE, explicit: ranks))
        let trained = BPETrainer.train(texts: Array(texts.prefix(4)), vocabularySize: 1024)
        for (name, tokenizer) in [("GPT-2 (50,257 ids)", gpt2), ("trained (1,025 ids)", trained)] {
            let start = DispatchTime.now().uptimeNanoseconds
            var count = 0
            for text in texts { count += tokenizer.encode(text).count }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "%-20@ %.1f MB in %.2f s: %.2f MB/s, %d tokens (%.2f bytes/token), one thread", name as NSString,
                         Double(bytes) / 1e6, seconds, Double(bytes) / 1e6 / seconds, count, Double(bytes) / Double(count)))
        }
    }
}

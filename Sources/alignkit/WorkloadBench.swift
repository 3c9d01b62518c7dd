// `alignkit bench workload`: the performance issue's workloads, one per process, timed step by step,
// printed as one JSON line that benchmarks/compare.sh sets beside PyTorch's (benchmarks/torch_workloads.py
// runs the same workloads; its docstring defines them).
import AlignKit
import ArgumentParser
import Foundation

struct WorkloadBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload",
        abstract: "Time one of the performance issue's workloads (DPO step, pretraining step, KV-cache sampling).",
        discussion: """
        Workloads: dpo-tiny, dpo-tiny-precomputed, dpo-small, dpo-small-precomputed, pretrain-small, sample-b1, sample-b8.
        tiny: GPT-2 style, 4 layers, 4 heads, width 256, vocabulary 4096, context 256; small: 6 layers, 6 heads,
        width 384, vocabulary 8192. A DPO step: 8 pairs of prompt 64 + completion 64 tokens, policy forward and
        backward on chosen and rejected, the reference's forward without gradients (or its log-probabilities
        given: -precomputed), sigmoid loss β 0.1 on summed completion log-probabilities, AdamW. Pretraining:
        8 × 256 tokens. Sampling: 256 greedy tokens after a 64-token prompt with the KV cache, batch 1 or 8,
        on the small model with context 512. Prints {"workload", "seconds": [...], "peak_rss_mb", "gemm_path"}.
        """)

    static let names = ["dpo-tiny", "dpo-tiny-precomputed", "dpo-small", "dpo-small-precomputed", "pretrain-small", "sample-b1", "sample-b8"]

    @Argument(help: "The workload.") var workload: String
    @Option(help: "Timed steps.") var steps: Int = 10
    @Option(help: "Untimed warm-up steps.") var warmup: Int = 2
    @Option(help: "Threads.") var threads: Int = 2
    @Option(help: "fp32, or bf16: matrix products on bf16 operands (AMX where the CPU has it), fp32 weights, optimizer and the rest.")
    var precision: GEMM.Precision = .fp32

    func validate() throws {
        guard Self.names.contains(workload) else { throw ValidationError("unknown workload '\(workload)'; one of \(Self.names.joined(separator: ", "))") }
        guard steps > 0, warmup >= 0, threads > 0 else { throw ValidationError("--steps and --threads must be positive") }
    }

    static func configuration(_ size: String, context: Int = 256) -> GPTConfiguration {
        size == "tiny"
            ? GPTConfiguration(architecture: .gpt2, vocabularySize: 4096, contextLength: context, modelSize: 256, layerCount: 4, headCount: 4,
                               kvHeadCount: 4, tiedEmbeddings: true)
            : GPTConfiguration(architecture: .gpt2, vocabularySize: 8192, contextLength: context, modelSize: 384, layerCount: 6, headCount: 6,
                               kvHeadCount: 6, tiedEmbeddings: true)
    }

    func run() throws {
        Parallel.threadCount = threads
        GEMM.precision = precision
        var generator = RandomGenerator(seed: 0)
        let step: () -> Void
        if workload.hasPrefix("dpo") {
            let config = Self.configuration(workload.contains("tiny") ? "tiny" : "small")
            var policy = GPT(configuration: config, seed: 1)
            let reference = policy
            var optimizer = AdamW(learningRate: 1e-5, beta1: 0.9, beta2: 0.999, weightDecay: 0)
            func ids(_ n: Int) -> [Int] { (0..<n).map { _ in Int(generator.next() % UInt64(config.vocabularySize)) } }
            let pairs = (0..<8).map { i in EncodedExample(line: i, prompt: ids(64), completions: [ids(64), ids(64)]) }
            let batch = CompletionBatch(pairs: pairs, padID: 0)
            let objective = PreferenceObjective()   // sigmoid, β 0.1
            func referenceLogps() -> Tensor { withoutGradient { reference.scoreCompletions(batch, withLogitStatistics: false).logProbabilities } }
            let precomputed = workload.hasSuffix("precomputed") ? referenceLogps() : nil
            step = {
                let r = precomputed ?? referenceLogps()
                let (_, gradient) = valueWithGradient(at: policy) { m in
                    let logps = m.scoreCompletions(batch, withLogitStatistics: false).logProbabilities
                    let pair = PairLogProbabilities(
                        chosen: logps.slice(alongAxis: 0, range: 0..<8), rejected: logps.slice(alongAxis: 0, range: 8..<16),
                        referenceChosen: r.slice(alongAxis: 0, range: 0..<8), referenceRejected: r.slice(alongAxis: 0, range: 8..<16),
                        chosenLengths: Array(repeating: 64, count: 8), rejectedLengths: Array(repeating: 64, count: 8))
                    return objective.loss(pair).loss
                }
                optimizer.update(&policy, along: gradient)
            }
        } else if workload == "pretrain-small" {
            let config = Self.configuration("small")
            var model = GPT(configuration: config, seed: 1)
            var optimizer = AdamW(learningRate: 3e-4, beta1: 0.9, beta2: 0.95, weightDecay: 0.1)
            let tokens = (0..<(8 * 257)).map { _ in Int(generator.next() % UInt64(config.vocabularySize)) }
            step = {
                let (_, gradient) = valueWithGradient(at: model) { m in m.loss(tokens, batch: 8) }
                optimizer.update(&model, along: gradient)
            }
        } else {
            let config = Self.configuration("small", context: 512)
            let model = GPT(configuration: config, seed: 1)
            let count = workload == "sample-b8" ? 8 : 1
            let prompt = (0..<64).map { _ in Int(generator.next() % UInt64(config.vocabularySize)) }
            var options = SamplingOptions()
            options.temperature = 0
            options.maximumNewTokens = 256
            step = { _ = Sampler.generate(model, prompt: prompt, count: count, options: options) }
        }
        for _ in 0..<warmup { step() }
        var seconds: [Double] = []
        for _ in 0..<steps {
            let start = DispatchTime.now().uptimeNanoseconds
            step()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let record: [String: Any] = ["workload": workload, "seconds": seconds, "peak_rss_mb": Double(usage.ru_maxrss) / 1024,
                                     "precision": precision.rawValue, "threads": threads, "gemm_path": GEMM.path.rawValue]
        print(String(data: try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]), encoding: .utf8)!)
    }
}

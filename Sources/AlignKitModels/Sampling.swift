// Sampling from a GPT: temperature, top-k, top-p (nucleus; Holtzman et al. 2020), a seed, a
// length limit and stop strings, with a KV cache so each new token costs one position's work.
import AlignKitNN
import AlignKitTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct SamplingOptions: Sendable {
    /// 0 picks the most likely token (greedy).
    public var temperature: Float = 1
    /// Keep only the k most likely tokens (nil: all).
    public var topK: Int?
    /// Keep the smallest set of most likely tokens whose probability reaches p (nil: all).
    public var topP: Float?
    public var maximumNewTokens = 128
    public var seed: UInt64 = 0
    /// Generation stops after a token that ends one of these (the stop string is kept in the output).
    public var stopStrings: [String] = []
    /// Generation stops after one of these ids (an end-of-text token, say).
    public var stopTokens: Set<Int> = []
    /// Recompute every position each step instead of using the KV cache (for checking the cache).
    public var recompute = false

    public init() {}
}

public enum Sampler {
    /// Picks the next token from one row of logits.
    public static func pick(_ logits: UnsafeBufferPointer<Float>, options: SamplingOptions, generator: inout RandomGenerator) -> Int {
        let v = logits.count
        if options.temperature <= 0 {
            var best = 0
            for i in 1..<v where logits[i] > logits[best] { best = i }
            return best
        }
        // Sorting is needed only to cut to the top k or the nucleus; plain sampling takes ids in order.
        let truncates = options.topK.map { $0 < v } == true || options.topP.map { $0 < 1 } == true
        var order = Array(0..<v)
        if truncates { order.sort { logits[$0] > logits[$1] } }
        let k = min(options.topK ?? v, v)
        var top = -Float.infinity
        for i in 0..<v { top = max(top, logits[i]) }
        var probabilities = [Double](repeating: 0, count: k)
        var total = 0.0
        for i in 0..<k {
            probabilities[i] = exp(Double(logits[order[i]] - top) / Double(options.temperature))
            total += probabilities[i]
        }
        var kept = k
        if let p = options.topP, p < 1 {
            var cumulative = 0.0
            for i in 0..<k {
                cumulative += probabilities[i] / total
                if cumulative >= Double(p) { kept = i + 1; break }
            }
        }
        let keptTotal = probabilities[..<kept].reduce(0, +)
        var u = Double(generator.nextUniform()) * keptTotal
        for i in 0..<kept {
            u -= probabilities[i]
            if u < 0 { return order[i] }
        }
        return order[kept - 1]
    }

    /// New tokens after `prompt` (which must be non-empty). `decode` turns ids into text for stop strings;
    /// `onToken` sees each new token as it is chosen. Within the context length, the cached and the
    /// recomputed paths see the same tokens; beyond it, both keep the most recent tokens in view.
    public static func generate(_ model: GPT, prompt: [Int], options: SamplingOptions, decode: (([Int]) -> String)? = nil,
                                onToken: (Int) -> Void = { _ in }) -> [Int] {
        precondition(!prompt.isEmpty, "generate: the prompt has no tokens")
        let context = model.configuration.contextLength
        precondition(prompt.count <= context, "generate: the prompt's \(prompt.count) tokens exceed the context length \(context)")
        // Decoding reads every weight once per token: under bf16, from bf16 copies (half the bytes).
        return GEMM.withBF16Copies(of: model.parameters) {
            generateTokens(model, prompt: prompt, options: options, decode: decode, onToken: onToken)
        }
    }

    private static func generateTokens(_ model: GPT, prompt: [Int], options: SamplingOptions, decode: (([Int]) -> String)?,
                                       onToken: (Int) -> Void) -> [Int] {
        let context = model.configuration.contextLength
        var generator = RandomGenerator(seed: options.seed)
        var cache = options.recompute ? nil : model.makeCache()
        var sequence = prompt
        var produced: [Int] = []
        var pending = prompt
        let longestStop = options.stopStrings.map(\.utf8.count).max() ?? 0
        while produced.count < options.maximumNewTokens {
            // Past the context length: recomputing slides a window of `context` tokens by one each step;
            // the cache restarts from the last half-context of tokens (one prefill per context/2 tokens).
            if let c = cache, c.length + pending.count > context {
                cache = model.makeCache()
                pending = Array(sequence.suffix(max(1, context / 2)))
            }
            let logits = withoutGradient { cache == nil ? model.nextTokenLogits(Array(sequence.suffix(context))) : model.nextTokenLogits(pending, cache: cache) }
            let v = model.configuration.vocabularySize
            let next = logits.withUnsafeBufferPointer { all in
                pick(UnsafeBufferPointer(rebasing: all[(all.count - v)...]), options: options, generator: &generator)
            }
            sequence.append(next)
            produced.append(next)
            pending = [next]
            onToken(next)
            if options.stopTokens.contains(next) { break }
            if longestStop > 0, let decode {
                // The last few tokens' text is enough: a stop string ends in the newest token.
                let tail = decode(Array(produced.suffix(longestStop)))
                if options.stopStrings.contains(where: { tail.contains($0) }) { break }
            }
        }
        return produced
    }
}

extension Sampler {
    /// `count` completions of one prompt, sampled together as a batch of `count` rows with one KV
    /// cache (row i draws from a generator seeded with `options.seed + i`). Each completion ends at
    /// its first stop token (kept) or stop string, or after `maximumNewTokens`, capped so the prompt and
    /// completion fit the context.
    public static func generate(_ model: GPT, prompt: [Int], count: Int, options: SamplingOptions,
                                decode: (([Int]) -> String)? = nil) -> [[Int]] {
        precondition(!prompt.isEmpty && count > 0, "generate: an empty prompt or no completions asked for")
        let context = model.configuration.contextLength
        precondition(prompt.count < context, "generate: the prompt's \(prompt.count) tokens leave no room in the context of \(context)")
        return GEMM.withBF16Copies(of: model.parameters) {
            generateBatch(model, prompt: prompt, count: count, options: options, decode: decode)
        }
    }

    private static func generateBatch(_ model: GPT, prompt: [Int], count: Int, options: SamplingOptions,
                                      decode: (([Int]) -> String)?) -> [[Int]] {
        let context = model.configuration.contextLength, v = model.configuration.vocabularySize
        let limit = min(options.maximumNewTokens, context - prompt.count)
        var generators = (0..<count).map { RandomGenerator(seed: options.seed &+ UInt64($0)) }
        let cache = model.makeCache()
        var outputs = [[Int]](repeating: [], count: count)
        var done = [Bool](repeating: false, count: count)
        let longestStop = options.stopStrings.map(\.utf8.count).max() ?? 0
        var pending = Array((0..<count).map { _ in prompt }.joined())
        // Finished rows keep decoding (their tokens are discarded) so the batch stays rectangular.
        for _ in 0..<limit where done.contains(false) {
            let logits = withoutGradient { model.nextTokenLogits(pending, batch: count, cache: cache) }   // [count, V]
            var next = [Int](repeating: 0, count: count)
            logits.withUnsafeBufferPointer { all in
                for r in 0..<count {
                    let start = r * v
                    next[r] = pick(UnsafeBufferPointer(rebasing: all[start..<(start + v)]), options: options, generator: &generators[r])
                }
            }
            for r in 0..<count where !done[r] {
                outputs[r].append(next[r])
                if options.stopTokens.contains(next[r]) { done[r] = true; continue }
                if longestStop > 0, let decode {
                    let tail = decode(Array(outputs[r].suffix(longestStop)))
                    if options.stopStrings.contains(where: { tail.contains($0) }) { done[r] = true }
                }
            }
            pending = next
        }
        return outputs
    }
}

extension GPT {
    /// Each token's log-probability given the ones before it (the first has none: nil).
    public func tokenLogProbabilities(_ tokens: [Int]) -> [Double?] {
        guard tokens.count > 1 else { return tokens.map { _ in nil } }
        let logits = self.logits(Array(tokens.dropLast()))
        let picked = logits.reshaped(to: [tokens.count - 1, configuration.vocabularySize])
            .logSoftmaxGathering(labels: Array(tokens.dropFirst())).scalars
        return [nil] + picked.map { Double($0) }
    }
}

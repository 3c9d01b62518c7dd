// Evaluation the papers use, built in: sample completions of held-out prompts from a model, score them
// with a ground-truth reward, estimate the sequence-level KL(π ‖ π_ref) from the same samples
// (E_y~π[log π(y|x) - log π_ref(y|x)], the mean of the per-sample log-ratio), and a win rate against
// the reference's own samples. The same sampler labels preference pairs: k completions per prompt,
// the best and the worst by reward become chosen and rejected.
import AlignKitText
import Foundation

public struct GenerationSettings: Codable, Sendable, Equatable {
    public var samplesPerPrompt = 4
    public var maximumNewTokens = 32
    public var temperature: Float = 1
    public var topK: Int?
    public var seed: UInt64 = 7
    public init() {}
}

/// One sampled completion.
public struct SampledCompletion: Sendable {
    public var prompt: String
    /// The ids the completion was sampled after (end-of-text alone for an empty prompt).
    public var promptIDs: [Int]
    /// The generated ids, with the end-of-text token when the model produced one.
    public var completionIDs: [Int]
    /// The completion's text (without end-of-text).
    public var text: String
    public var reward: Float
    public init(prompt: String, promptIDs: [Int], completionIDs: [Int], text: String, reward: Float) {
        self.prompt = prompt; self.promptIDs = promptIDs; self.completionIDs = completionIDs; self.text = text; self.reward = reward
    }
}

/// `samplesPerPrompt` completions of each prompt (one batch per prompt), each with its reward.
public func sampleCompletions(_ model: GPT, tokenizer: BytePairTokenizer, prompts: [String], reward: any RewardFunction,
                              settings: GenerationSettings) -> [[SampledCompletion]] {
    var options = SamplingOptions()
    options.temperature = settings.temperature
    options.topK = settings.topK
    options.maximumNewTokens = settings.maximumNewTokens
    if let eos = tokenizer.endOfTextID { options.stopTokens = [eos] }
    return prompts.enumerated().map { index, prompt in
        let encoded = tokenizer.encode(prompt, allowSpecial: false)
        let ids = encoded.isEmpty ? [tokenizer.endOfTextID ?? 0] : encoded
        options.seed = settings.seed &+ UInt64(index) &* 1_000_003
        let outputs = Sampler.generate(model, prompt: ids, count: settings.samplesPerPrompt, options: options)
        let texts = outputs.map { tokenizer.decode($0.filter { $0 != tokenizer.endOfTextID }) }
        let rewards = reward.rewards(texts.map { (prompt, $0) })
        return outputs.indices.map { i in
            SampledCompletion(prompt: prompt, promptIDs: ids, completionIDs: outputs[i], text: texts[i], reward: rewards[i])
        }
    }
}

/// What `evaluatePolicy` measured.
public struct PolicyEvaluation: Codable, Sendable {
    public var prompts: Int
    public var samples: Int
    public var meanReward: Double
    public var rewardStandardError: Double
    /// Sequence-level KL(π ‖ π_ref) in nats, from the policy's samples; nil without a reference.
    public var kl: Double?
    public var klStandardError: Double?
    /// Share of prompts×samples where the policy's sample beats the reference's (ties count half).
    public var winRate: Double?
    /// A few (prompt, completion, reward) examples for reports.
    public var examples: [[String: String]]
}

/// Sequence log-probabilities of sampled completions under `model`, in batches.
func completionLogProbabilities(_ model: GPT, _ samples: [SampledCompletion], batchSize: Int = 16) -> [Double] {
    var result: [Double] = []
    for start in stride(from: 0, to: samples.count, by: batchSize) {
        let slice = samples[start..<min(start + batchSize, samples.count)]
        let batch = CompletionBatch(slice.map { (prompt: $0.promptIDs, completion: $0.completionIDs) })
        let scores = withoutGradient { model.scoreCompletions(batch, withLogitStatistics: false) }
        result += scores.logProbabilities.scalars.map(Double.init)
    }
    return result
}

func meanAndStandardError(_ xs: [Double]) -> (Double, Double) {
    guard !xs.isEmpty else { return (.nan, .nan) }
    let mean = xs.reduce(0, +) / Double(xs.count)
    guard xs.count > 1 else { return (mean, 0) }
    let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count - 1)
    return (mean, (variance / Double(xs.count)).squareRoot())
}

/// Mean reward of the policy's samples, their KL to the reference, and (unless `winRate` is false) the
/// win rate over the reference's samples of the same prompts.
public func evaluatePolicy(_ policy: GPT, reference: GPT?, tokenizer: BytePairTokenizer, prompts: [String], reward: any RewardFunction,
                           settings: GenerationSettings, winRate judgeWins: Bool = true) -> PolicyEvaluation {
    let samples = sampleCompletions(policy, tokenizer: tokenizer, prompts: prompts, reward: reward, settings: settings)
    let flat = samples.flatMap { $0 }
    let (meanReward, rewardError) = meanAndStandardError(flat.map { Double($0.reward) })
    var kl: Double?, klError: Double?, winRate: Double?
    if let reference {
        let ratios = zip(completionLogProbabilities(policy, flat), completionLogProbabilities(reference, flat)).map { $0 - $1 }
        (kl, klError) = meanAndStandardError(ratios)
    }
    if let reference, judgeWins {
        var settingsForReference = settings
        settingsForReference.seed = settings.seed &+ 0x5EED
        let theirs = sampleCompletions(reference, tokenizer: tokenizer, prompts: prompts, reward: reward, settings: settingsForReference).flatMap { $0 }
        let wins = zip(flat, theirs).reduce(0.0) { $0 + ($1.0.reward > $1.1.reward ? 1 : $1.0.reward == $1.1.reward ? 0.5 : 0) }
        winRate = wins / Double(max(flat.count, 1))
    }
    let examples = samples.prefix(8).compactMap { $0.first }.map { ["prompt": $0.prompt, "completion": $0.text, "reward": String(format: "%.3f", $0.reward)] }
    return PolicyEvaluation(prompts: prompts.count, samples: flat.count, meanReward: meanReward, rewardStandardError: rewardError,
                            kl: kl, klStandardError: klError, winRate: winRate, examples: examples)
}

/// A labelled pair: the best and the worst of k samples by reward.
public struct LabelledPair: Codable, Sendable {
    public var prompt: String
    public var chosen: String
    public var rejected: String
    public var chosen_reward: Float
    public var rejected_reward: Float
}

/// Preference pairs from a model's samples and a reward: per prompt, the highest- and lowest-reward
/// completions (prompts whose samples tie, or whose completions are empty or identical, give none).
public func labelPairs(_ samples: [[SampledCompletion]]) -> [LabelledPair] {
    samples.compactMap { group in
        let usable = group.filter { !$0.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        guard let best = usable.max(by: { $0.reward < $1.reward }), let worst = usable.min(by: { $0.reward < $1.reward }),
              best.reward > worst.reward, best.text != worst.text else { return nil }
        return LabelledPair(prompt: best.prompt, chosen: best.text, rejected: worst.text, chosen_reward: best.reward, rejected_reward: worst.reward)
    }
}

/// Which lines of a corpus prompts are cut from: training and held-out prompts come from disjoint
/// lines (every tenth usable line is held out), so no held-out prompt was trained on.
public enum PromptSplit: String, Codable, Sendable, CaseIterable {
    case all, train, heldout
}

/// Prompts cut from a text: the first `words` words of randomly chosen lines that have at least
/// `words + 2` words (deterministic for a seed), from the lines of `split`. A prompt that also begins a
/// line of the other split is skipped, so the two splits share no prompt text.
public func corpusPrompts(_ text: String, count: Int, words: Int, seed: UInt64, split: PromptSplit = .all) -> [String] {
    // Lines of verse or prose, not speaker names ("Hor.") or headings in capitals.
    func usable(_ line: [Substring]) -> Bool {
        guard line.count >= words + 2, let first = line.first, let c = first.first else { return false }
        return c.isLetter && first.uppercased() != String(first)
    }
    let all = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }.filter(usable)
    func start(_ line: [Substring]) -> String { line.prefix(words).joined(separator: " ") }
    let heldOut = all.indices.filter { $0 % 10 == 9 }
    let lines: [[Substring]], other: Set<String>
    switch split {
    case .all: lines = all; other = []
    case .heldout: lines = heldOut.map { all[$0] }; other = Set(all.indices.filter { $0 % 10 != 9 }.map { start(all[$0]) })
    case .train: lines = all.indices.filter { $0 % 10 != 9 }.map { all[$0] }; other = Set(heldOut.map { start(all[$0]) })
    }
    guard !lines.isEmpty else { return [] }
    var generator = RandomGenerator(seed: seed)
    var seen = Set<String>(), prompts: [String] = []
    var attempts = 0
    while prompts.count < count && attempts < count * 20 {
        attempts += 1
        let line = lines[Int(generator.next() % UInt64(lines.count))]
        let prompt = start(line)
        if !other.contains(prompt) && seen.insert(prompt).inserted { prompts.append(prompt) }
    }
    return prompts
}

/// Writes JSON Lines atomically.
public func writeJSONLines<T: Encodable>(_ records: [T], to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var data = Data()
    for r in records { data += try encoder.encode(r); data.append(UInt8(ascii: "\n")) }
    try writeAtomically(data, to: url)
}

// Preference pairs score their shared prompt once (SharedPromptRows): the log-probabilities and every
// parameter's gradient must equal scoring chosen and rejected as separate full rows.
import AlignKitAlignment
import AlignKitModels
import AlignKitNN
import AlignKitText
import Testing

@Suite("Shared prompts")
struct SharedPromptTests {
    /// Pairs with prompts of 1 to 9 tokens and completions of 1 to 8, so that both paddings occur.
    static func pairs(vocabulary: Int) -> [EncodedExample] {
        var generator = RandomGenerator(seed: 5)
        func ids(_ n: Int) -> [Int] { (0..<n).map { _ in Int(generator.next() % UInt64(vocabulary)) } }
        return (0..<5).map { i in
            EncodedExample(line: i, prompt: ids(1 + (i * 4) % 9), completions: [ids(1 + (i * 3) % 8), ids(1 + (i * 5 + 2) % 8)])
        }
    }

    static let configurations = [
        GPTConfiguration(architecture: .gpt2, vocabularySize: 50, contextLength: 32, modelSize: 16, layerCount: 2, headCount: 2),
        GPTConfiguration(architecture: .llama, vocabularySize: 50, contextLength: 32, modelSize: 16, layerCount: 2, headCount: 4,
                         kvHeadCount: 2, tiedEmbeddings: false),
    ]

    @Test(arguments: configurations) func sharedPromptsScoreAsSeparateRows(_ configuration: GPTConfiguration) {
        let model = GPT(configuration: configuration, seed: 3)
        let pairs = Self.pairs(vocabulary: configuration.vocabularySize)
        let shared = CompletionBatch(pairs: pairs, padID: 0), flat = CompletionBatch(pairs: pairs, padID: 0, sharePrompts: false)
        #expect(shared.sharedPrompts != nil && flat.sharedPrompts == nil)
        // A weighted sum, so that every row's gradient counts with its own sign and size.
        let weights = Tensor((0..<10).map { Float($0 % 3) - 0.7 })
        func run(_ batch: CompletionBatch) -> (scores: CompletionScores, gradients: [Float]) {
            var scores: CompletionScores?
            let (_, gradient) = valueWithGradient(at: model) { m in
                scores = m.scoreCompletions(batch)
                return (scores!.logProbabilities * weights).sum()
            }
            var g = gradient, values: [Float] = []
            g.forEachParameter { values += $0.scalars }
            return (scores!, values)
        }
        let a = run(shared), b = run(flat)
        #expect(a.scores.lengths == b.scores.lengths)
        // Sums of up to 8 log-probabilities near −ln 50 ≈ −3.9: float32 reordering stays far below 1e-4.
        for (x, y) in zip(a.scores.logProbabilities.scalars, b.scores.logProbabilities.scalars) { #expect(abs(x - y) < 1e-4, "\(x) vs \(y)") }
        for (x, y) in zip(a.scores.meanLogitSums, b.scores.meanLogitSums) { #expect(abs(x - y) < 1e-4, "\(x) vs \(y)") }
        // Gradients: the same sums in another order; relative to the largest component.
        let scale = b.gradients.map(abs).max()!
        #expect(a.gradients.count == b.gradients.count && scale > 0)
        let worst = zip(a.gradients, b.gradients).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-4 * scale, "largest gradient difference \(worst), largest component \(scale)")
    }

    /// A long prompt with a short completion beside a short prompt with a long one: the padding of the
    /// first pair's rows would reach past the context (25 + 18 ≥ 32); it must not, and scores still agree.
    @Test func paddingStaysInsideTheContext() {
        let model = GPT(configuration: Self.configurations[1], seed: 4)
        let pairs = [EncodedExample(line: 0, prompt: Array(repeating: 3, count: 25), completions: [[4, 5], [6]]),
                     EncodedExample(line: 1, prompt: [7, 8], completions: [Array(1...20), [9, 9, 9]])]
        let shared = withoutGradient { model.scoreCompletions(CompletionBatch(pairs: pairs)) }.logProbabilities.scalars
        let flat = withoutGradient { model.scoreCompletions(CompletionBatch(pairs: pairs, sharePrompts: false)) }.logProbabilities.scalars
        for (x, y) in zip(shared, flat) { #expect(abs(x - y) < 1e-4, "\(x) vs \(y)") }
    }

    /// A block asked for some of its rows (repeats included) gives what gathering them from its full output
    /// gives, values and every parameter's gradient, before and after norms alike.
    @Test(arguments: [true, false]) func blockKeepingRowsEqualsGatheringThem(_ preNorm: Bool) {
        var generator = RandomGenerator(seed: 9)
        let block = TransformerBlock(attention: MultiHeadAttention(modelSize: 16, headCount: 2, generator: &generator),
                                     feedForward: FeedForward(modelSize: 16, hiddenSize: 32, kind: .geluTanh, generator: &generator),
                                     preNorm: preNorm)
        let layout = SharedPrefixLayout(prefixes: 2, prefixWidth: 3, starts: [0, 1], copies: 2, width: 4, lengths: [4, 2, 3, 4])
        let x = Tensor(randomNormal: [layout.rowCount, 16], seed: 10)
        let rows = [2, 6, 7, 2, 9, 21, 12]
        let weights = Tensor(randomNormal: [rows.count, 16], seed: 11)
        func run(_ keep: Bool) -> (value: [Float], gradient: [Float]) {
            var value: [Float] = []
            let (_, gradient) = valueWithGradient(at: block) { b in
                let y = keep ? b(x, layout: layout, keeping: rows) : b(x, layout: layout).gathering(atIndices: rows)
                value = y.scalars
                return (y * weights).sum()
            }
            var g = gradient, values: [Float] = []
            g.forEachParameter { values += $0.scalars }
            return (value, values)
        }
        let kept = run(true), gathered = run(false)
        // The kept rows go through the same per-row arithmetic; only the order of gradient sums changes.
        #expect(kept.value.count == rows.count * 16)
        for (a, b) in zip(kept.value, gathered.value) { #expect(abs(a - b) < 1e-5, "\(a) vs \(b)") }
        let scale = gathered.gradient.map(abs).max()!
        let worst = zip(kept.gradient, gathered.gradient).map { abs($0 - $1) }.max()!
        #expect(kept.gradient.count == gathered.gradient.count && worst < 1e-5 * scale, "\(worst) against \(scale)")
    }

    @Test func emptyPromptsFallBackToSeparateRows() {
        let pairs = [EncodedExample(line: 0, prompt: [], completions: [[1, 2], [3]])]
        #expect(CompletionBatch(pairs: pairs).sharedPrompts == nil)
    }
}

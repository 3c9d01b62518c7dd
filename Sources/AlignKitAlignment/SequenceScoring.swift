// Sequence log-probabilities of completions: log π(y | x) = Σ_t log π(y_t | x, y_<t), summed over the
// completion's tokens only (never the prompt's, never padding). All sequences of a batch — chosen and
// rejected together — go through the model in one forward pass as right-padded rows; a label of -1
// masks every position whose next token is not a completion token.
import AlignKitModels
import AlignKitNN
import AlignKitText

/// Prompt + completion rows, right-padded, ready for one forward pass.
public struct CompletionBatch: Sendable {
    public let rows: Int
    /// Input positions per row (the longest sequence minus one).
    public let width: Int
    /// rows × width input ids.
    public let inputs: [Int]
    /// rows × width next-token labels; -1 where the next token is not part of the completion.
    public let labels: [Int]
    /// Completion tokens scored per row.
    public let lengths: [Int]
    /// For preference pairs: the same rows with each prompt packed once for both completions (nil when
    /// the rows were given one by one, or a prompt is empty).
    public private(set) var sharedPrompts: SharedPromptRows?

    /// Rows from (prompt, completion) pairs; padding uses `padID`.
    public init(_ sequences: [(prompt: [Int], completion: [Int])], padID: Int = 0) {
        precondition(!sequences.isEmpty, "CompletionBatch: no sequences")
        rows = sequences.count
        width = max(1, sequences.map { $0.prompt.count + $0.completion.count }.max()! - 1)
        var inputs = [Int](repeating: padID, count: rows * width)
        var labels = [Int](repeating: -1, count: rows * width)
        var lengths = [Int](repeating: 0, count: rows)
        for (r, s) in sequences.enumerated() {
            let tokens = s.prompt + s.completion
            for t in 0..<min(width, tokens.count) { inputs[r * width + t] = tokens[t] }
            // Position t predicts token t + 1; it is scored when t + 1 falls in the completion.
            for t in max(s.prompt.count, 1)..<max(tokens.count, 1) { labels[r * width + t - 1] = tokens[t]; lengths[r] += 1 }
        }
        self.inputs = inputs
        self.labels = labels
        self.lengths = lengths
    }

    /// The rows of preference pairs: every chosen completion, then every rejected one. With
    /// `sharePrompts`, scoring runs each prompt through the model once for both completions.
    public init(pairs: [EncodedExample], padID: Int = 0, sharePrompts: Bool = true) {
        self.init(pairs.map { ($0.prompt, $0.completions[0]) } + pairs.map { ($0.prompt, $0.completions[1]) }, padID: padID)
        if sharePrompts && pairs.allSatisfy({ !$0.prompt.isEmpty }) {
            sharedPrompts = SharedPromptRows(prompts: pairs.map(\.prompt), completions: [pairs.map { $0.completions[0] }, pairs.map { $0.completions[1] }],
                                             padID: padID)
        }
    }
}

/// Prompts that several completions share, packed by a `SharedPrefixLayout`: the prompts left-padded
/// (so every prompt's last token, which predicts its completions' first, is at the same position), then
/// each completion's tokens but its last, right-padded. Position (prompt i, last) and (completion r, j)
/// predict completion r's tokens 0 and j + 1.
public struct SharedPromptRows: Sendable {
    public let layout: SharedPrefixLayout
    /// One token per packed row.
    public let tokens: [Int]
    /// The scored positions: packed rows, their labels, and the batch row (completion) each belongs to.
    let scored: ScoredPositions

    /// `completions[c][i]` continues `prompts[i]`; batch row c·prompts.count + i.
    init(prompts: [[Int]], completions: [[[Int]]], padID: Int) {
        let n = prompts.count, p = prompts.map(\.count).max()!
        let width = max(1, completions.joined().map { $0.count - 1 }.max() ?? 1)
        layout = SharedPrefixLayout(prefixes: n, prefixWidth: p, starts: prompts.map { p - $0.count }, copies: completions.count, width: width,
                                    lengths: completions.joined().map { Swift.max(0, $0.count - 1) })
        var tokens = [Int](repeating: padID, count: layout.rowCount)
        var scored = ScoredPositions()
        for (i, prompt) in prompts.enumerated() {
            for (j, id) in prompt.enumerated() { tokens[layout.prefixRow(i, p - prompt.count + j)] = id }
        }
        for (c, group) in completions.enumerated() {
            for (i, completion) in group.enumerated() {
                let r = c * n + i
                guard let first = completion.first else { continue }
                scored.append(row: layout.prefixRow(i, p - 1), label: first, owner: r)
                for j in 0..<(completion.count - 1) {
                    tokens[layout.continuationRow(r, j)] = completion[j]
                    scored.append(row: layout.continuationRow(r, j), label: completion[j + 1], owner: r)
                }
            }
        }
        self.tokens = tokens
        self.scored = scored
    }
}

/// Hidden-state rows that predict completion tokens: the row, the token it predicts, and the batch row
/// whose completion the token belongs to.
struct ScoredPositions: Sendable {
    var rows: [Int] = [], labels: [Int] = [], owners: [Int] = []
    mutating func append(row: Int, label: Int, owner: Int) { rows.append(row); labels.append(label); owners.append(owner) }

    /// [batch rows, N]: 1 where position k belongs to the row, so that a product sums each row's positions.
    func ownership(rows count: Int) -> Tensor {
        var values = [Float](repeating: 0, count: count * owners.count)
        for (k, owner) in owners.enumerated() { values[owner * owners.count + k] = 1 }
        return Tensor(values, shape: [count, owners.count])
    }
}

extension CompletionBatch {
    /// Flat indices (row · width + position) of the scored positions, row by row: the order of
    /// `GPT.completionTokenScores`' outputs.
    public var scoredPositions: [Int] { flatScored.rows }

    /// The scored positions of the flat rows (row · width + position).
    var flatScored: ScoredPositions {
        var scored = ScoredPositions()
        for (i, label) in labels.enumerated() where label >= 0 { scored.append(row: i, label: label, owner: i / width) }
        return scored
    }
}

/// A batch's completion scores under one model.
public struct CompletionScores {
    /// Σ log π over each row's completion tokens [rows]; differentiable when the model is.
    public var logProbabilities: Tensor
    /// Completion tokens per row.
    public var lengths: [Int]
    /// Per row, the sum over completion tokens of the logits' mean over the vocabulary (TRL's
    /// `logits/*` metrics divide the batch's total by its token count).
    public var meanLogitSums: [Double]
}

extension GPT {
    /// Scores each row's completion (see `CompletionBatch`) in one forward pass; only the positions that
    /// predict completion tokens go through the output head.
    public func scoreCompletions(_ batch: CompletionBatch, withLogitStatistics: Bool = true) -> CompletionScores {
        let c = configuration.modelSize
        let gathered: Tensor, scored: ScoredPositions
        if let shared = batch.sharedPrompts {
            // Only the scored rows leave the last block (a third of the rows are prompt positions nothing reads).
            scored = shared.scored
            gathered = hiddenStates(shared.tokens, layout: shared.layout, keeping: scored.rows)
        } else {
            scored = batch.flatScored
            gathered = hiddenStates(batch.inputs, batch: batch.rows).reshaped(to: [batch.rows * batch.width, c]).gathering(atIndices: scored.rows)
        }
        let perToken = logits(fromHidden: gathered).logSoftmaxGathering(labels: scored.labels)
        let sums = matmul(scored.ownership(rows: batch.rows), perToken.reshaped(to: [-1, 1])).reshaped(to: [batch.rows])
        var meanLogits = [Double](repeating: 0, count: batch.rows)
        if withLogitStatistics {
            // The head is linear, so a position's mean logit is h · w̄ (+ the bias's mean) with w̄ the mean
            // of the head's V output columns: [N, C] × [C] instead of another pass over the [N, V] logits.
            let perPosition = withoutGradient {
                let columnMean = head.map { $0.weight.mean(alongAxes: [1]) } ?? tokenEmbedding.table.mean(alongAxes: [0]).reshaped(to: [c, 1])
                return matmul(gathered.detached(), columnMean.reshaped(to: [c, 1])).scalars
            }
            let biasMean = Double(head?.bias?.mean().scalar ?? 0)
            for (k, owner) in scored.owners.enumerated() { meanLogits[owner] += Double(perPosition[k]) + biasMean }
        }
        return CompletionScores(logProbabilities: sums, lengths: batch.lengths, meanLogitSums: meanLogits)
    }
}

extension GPT {
    /// log π of every completion token [N] (in `scoredPositions` order; differentiable when the model
    /// is), and, when asked, the entropy of the model's next-token distribution at each of them.
    public func completionTokenScores(_ batch: CompletionBatch, entropies: Bool = false) -> (logProbabilities: Tensor, entropies: [Float]?) {
        let positions = batch.scoredPositions
        let c = configuration.modelSize
        let hidden = hiddenStates(batch.inputs, batch: batch.rows).reshaped(to: [batch.rows * batch.width, c])
        let logits = self.logits(fromHidden: hidden.gathering(atIndices: positions))
        let logps = logits.logSoftmaxGathering(labels: positions.map { batch.labels[$0] })
        guard entropies else { return (logps, nil) }
        let values = withoutGradient { () -> [Float] in
            let lp = logits.detached().logSoftmax(alongAxis: -1)
            return (-(lp.exp() * lp)).sum(squeezingAxes: [1]).scalars
        }
        return (logps, values)
    }
}

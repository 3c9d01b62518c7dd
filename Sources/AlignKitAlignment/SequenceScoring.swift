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

    /// The rows of preference pairs: every chosen completion, then every rejected one.
    public init(pairs: [EncodedExample], padID: Int = 0) {
        self.init(pairs.map { ($0.prompt, $0.completions[0]) } + pairs.map { ($0.prompt, $0.completions[1]) }, padID: padID)
    }
}

extension CompletionBatch {
    /// Flat indices (row · width + position) of the scored positions, row by row: the order of
    /// `GPT.completionTokenScores`' outputs.
    public var scoredPositions: [Int] { labels.indices.filter { labels[$0] >= 0 } }
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
    /// Scores each row's completion (see `CompletionBatch`) in one forward pass.
    public func scoreCompletions(_ batch: CompletionBatch, withLogitStatistics: Bool = true) -> CompletionScores {
        let v = configuration.vocabularySize, c = configuration.modelSize
        let hidden = hiddenStates(batch.inputs, batch: batch.rows)
        let logits = self.logits(fromHidden: hidden).reshaped(to: [batch.rows * batch.width, v])
        let perToken = logits.logSoftmaxGathering(labels: batch.labels)
        let sums = perToken.reshaped(to: [batch.rows, batch.width]).sum(squeezingAxes: [1])
        var meanLogits = [Double](repeating: 0, count: batch.rows)
        if withLogitStatistics {
            // The head is linear, so a position's mean logit is h · w̄ (+ the bias's mean) with w̄ the mean
            // of the head's V output columns: [N, C] × [C] instead of another pass over the [N, V] logits.
            let perPosition = withoutGradient {
                let columnMean = head.map { $0.weight.mean(alongAxes: [1]) } ?? tokenEmbedding.table.mean(alongAxes: [0]).reshaped(to: [c, 1])
                return matmul(hidden.detached().reshaped(to: [batch.rows * batch.width, c]), columnMean.reshaped(to: [c, 1])).scalars
            }
            let biasMean = Double(head?.bias?.mean().scalar ?? 0)
            for (i, label) in batch.labels.enumerated() where label >= 0 { meanLogits[i / batch.width] += Double(perPosition[i]) + biasMean }
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

// A GPT trunk with a scalar head: the reward model (one score per sequence, read at its last token,
// as Hugging Face's *ForSequenceClassification models read it) and PPO's value function (one value
// per position).
//
//   h = trunk.hiddenStates(tokens)  [B, T, C];   v = h w + b  [B, T];   reward(row) = v[row, last token]
//
// On disk a model folder as any other (config.json, model.safetensors, tokenizer.json) plus
// `score.safetensors` holding `score.weight` [1, C] (Hugging Face's layout) and `score.bias` [1].
import AlignKitNN
import AlignKitText
import Foundation

public struct ScalarHeadModel: NamedParameters {
    public var trunk: GPT
    /// [C, 1] weight and [1] bias.
    public var head: Linear

    public static let headFileName = "score.safetensors"

    /// `trunk` with a fresh head: weight N(0, 1/√(C+1)) (TRL's value-head scale), bias 0.
    public init(trunk: GPT, seed: UInt64 = 0) {
        let c = trunk.configuration.modelSize
        var generator = RandomGenerator(seed: seed)
        self.trunk = trunk
        head = Linear(weight: Tensor(randomNormal: [c, 1], standardDeviation: 1 / Float(c + 1).squareRoot(), generator: &generator),
                      bias: Tensor.zeros([1]))
    }

    public init(trunk: GPT, head: Linear) { self.trunk = trunk; self.head = head }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try trunk.forEachNamedParameter(prefix: joinName(prefix, "trunk"), body)
        try head.forEachNamedParameter(prefix: joinName(prefix, "score"), body)
    }

    /// Values [B, T] of every position of `tokens` (B·T ids, row-major).
    public func values(_ tokens: [Int], batch: Int) -> Tensor {
        let h = trunk.hiddenStates(tokens, batch: batch)
        return head(h).reshaped(to: [batch, tokens.count / batch])
    }

    /// One score per sequence: the head at its last token. Rows are right-padded into one pass.
    public func scores(_ sequences: [[Int]], padID: Int = 0) -> Tensor {
        precondition(!sequences.isEmpty && sequences.allSatisfy { !$0.isEmpty }, "ScalarHeadModel.scores: empty sequence")
        let width = sequences.map(\.count).max()!
        var tokens = [Int](repeating: padID, count: sequences.count * width)
        for (r, s) in sequences.enumerated() { tokens.replaceSubrange((r * width)..<(r * width + s.count), with: s) }
        let c = trunk.configuration.modelSize
        let h = trunk.hiddenStates(tokens, batch: sequences.count).reshaped(to: [sequences.count * width, c])
        let last = h.gathering(atIndices: sequences.enumerated().map { $0.offset * width + $0.element.count - 1 })
        return head(last).reshaped(to: [sequences.count])
    }

    /// Writes the trunk's model folder and `score.safetensors`.
    public func save(to directory: URL) throws {
        try trunk.save(to: directory)
        try writeSafeTensors([("score.weight", head.weight.transposed()), ("score.bias", head.bias!)],
                             to: directory.appendingPathComponent(Self.headFileName), metadata: ["format": "pt"])
    }

    /// Reads a folder written by `save`.
    public init(contentsOf directory: URL) throws {
        let url = directory.appendingPathComponent(Self.headFileName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DataFileError(file: url.path, "no such file; a reward or value model folder holds \(Self.headFileName) beside the model")
        }
        trunk = try GPT(contentsOf: directory)
        let file = try SafeTensorsFile(contentsOf: url)
        let c = trunk.configuration.modelSize
        let weight = try file.tensor("score.weight"), bias = try file.tensor("score.bias")
        guard weight.shape == [1, c] else { throw DataFileError(file: url.path, field: "score.weight", "has shape \(weight.shape); the trunk needs [1, \(c)]") }
        guard bias.shape == [1] else { throw DataFileError(file: url.path, field: "score.bias", "has shape \(bias.shape), not [1]") }
        head = Linear(weight: weight.transposed(), bias: bias)
    }

    /// Whether `directory` holds a scalar head.
    public static func exists(at directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(headFileName).path)
    }
}

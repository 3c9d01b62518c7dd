// `alignkit primer <lesson>`: each technique of the primer, runnable, printing what it shows.
import AlignKit
import ArgumentParser
import Foundation

struct PrimerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "primer",
        abstract: "Run a lesson of the primer (seed documents) and print what it shows.",
        subcommands: [MLPLessonCommand.self, CNNLessonCommand.self, TransformerLessonCommand.self, AttentionLessonCommand.self,
                      NormsLessonCommand.self, InitLessonCommand.self, OptimizersLessonCommand.self, LossesLessonCommand.self,
                      RNNLessonCommand.self, VAELessonCommand.self, ScoreLessonCommand.self, Word2VecLessonCommand.self,
                      LotteryLessonCommand.self])
}

/// `--data PATH` for the lessons that read the handwritten digits.
struct DigitsOption: ParsableArguments {
    @Option(name: .customLong("data"), help: "digits.csv.gz (default: the cache; `alignkit data fetch digits`).") var path: String?

    func load() throws -> DigitsDataset { try DigitsDataset(contentsOf: try DataCache.locate(.digits, explicit: path)) }
}

struct MLPLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlp", abstract: "The soccer-draft MLP n = [2, 3, 4, 3, 1]: hand-derived backpropagation vs autodiff.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Training steps.") var steps = 4000
    @Option(help: "Learning rate.") var learningRate: Float = 2
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() {
        global.apply()
        _ = MLPLesson.run(steps: steps, learningRate: learningRate, seed: seed) { print($0) }
    }
}

struct CNNLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cnn", abstract: "Conv → pool → MLP on the handwritten digits; the horizontal-edge kernel on a 5x5 \"0\".")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var data: DigitsOption
    @Option(help: "Training epochs.") var epochs = 12
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        global.apply()
        let digits = try data.load()
        _ = CNNLesson.run(digits: digits, epochs: epochs, seed: seed) { print($0) }
    }
}

struct TransformerLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transformer", abstract: "A tiny decoder on \"What is your name\": the causal attention matrix and next-word predictions.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Training steps.") var steps = 200
    @Option(help: "Random seed.") var seed: UInt64 = 0
    func run() { global.apply(); _ = TransformerLesson.run(steps: steps, seed: seed) { print($0) } }
}

struct AttentionLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention", abstract: "MHA vs GQA vs MQA: parameters and KV-cache sizes; GQA with kvHeadCount == headCount is MHA.")
    @OptionGroup var global: GlobalOptions
    func run() { global.apply(); _ = AttentionLesson.run { print($0) } }
}

struct InitLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Activation variance through 50 layers: Xavier/He preserve it, N(0, 1) explodes.")
    @OptionGroup var global: GlobalOptions
    func run() { global.apply(); _ = InitLesson.run { print($0) } }
}

struct OptimizersLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimizers", abstract: "SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam; AdaGrad's shrinking step; Theorem 3.2.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Random seed.") var seed: UInt64 = 0
    func run() { global.apply(); _ = OptimizersLesson.run(seed: seed) { print($0) } }
}

struct LossesLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "losses", abstract: "The 0-1, exponential, logistic and hinge losses training a linear classifier.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Random seed.") var seed: UInt64 = 0
    func run() { global.apply(); _ = LossesLesson.run(seed: seed) { print($0) } }
}

struct RNNLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnn", abstract: "Elman, Jordan and LSTM remembering a bit across a gap; the LSTM wins as the gap grows.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Training steps per model and gap.") var steps = 400
    @Option(help: "Comma-separated gaps.") var gaps = "5,20,40"
    @Option(help: "Random seed.") var seed: UInt64 = 0
    func run() throws {
        global.apply()
        let list = gaps.split(separator: ",").compactMap { Int($0) }
        guard !list.isEmpty, list.allSatisfy({ $0 > 0 }) else { throw ValidationError("--gaps: want positive integers, got '\(gaps)'") }
        _ = RNNLesson.run(gaps: list, steps: steps, seed: seed) { print($0) }
    }
}

struct ScoreLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score", abstract: "Denoising score matching on a 2-D mixture, then Langevin dynamics recovers the modes.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Random seed.") var seed: UInt64 = 0
    func run() { global.apply(); _ = ScoreLesson.run(seed: seed) { print($0) } }
}

struct NormsLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "norms", abstract: "BatchNorm, LayerNorm, RMSNorm, weight norm; a deep stack trained pre-norm vs post-norm.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Transformer blocks in the stack.") var layers = 12
    @Option(help: "Random seed.") var seed: UInt64 = 0
    func run() { global.apply(); _ = NormsLesson.run(layers: layers, seed: seed) { print($0) } }
}

struct VAELessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae", abstract: "A variational autoencoder on the digits; writes decoded samples as a PGM image.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var data: DigitsOption
    @Option(help: "Training epochs.") var epochs = 40
    @Option(help: "Where to write the samples image.") var out = "vae-samples.pgm"
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        global.apply()
        let digits = try data.load()
        let result = VAELesson.run(digits: digits, epochs: epochs, seed: seed) { print($0) }
        try Data(PGM.grid(result.samples, columns: 8)).write(to: URL(fileURLWithPath: out), options: .atomic)
        print("64 samples from z ~ N(0, I) written to \(out)")
    }
}

struct LotteryLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lottery", abstract: "Iterative magnitude pruning: rewinding to θ₀ vs random re-initialization (lottery tickets).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var data: DigitsOption
    @Option(help: "Pruning rounds (20% of each hidden layer per round).") var rounds = 10
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        global.apply()
        let digits = try data.load()
        _ = LotteryLesson.run(digits: digits, rounds: rounds, seed: seed) { print($0) }
    }
}

struct Word2VecLessonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "word2vec", abstract: "Skip-gram and CBOW with negative sampling on Shakespeare; nearest neighbours of a few words.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Folder of Shakespeare texts (default: the cache; `alignkit data fetch shakespeare`).") var data: String?
    @Option(help: "skip-gram or CBOW.") var mode = "skip-gram"
    @Option(help: "Passes over the corpus.") var epochs = 2
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        global.apply()
        guard let parsed = Word2VecLesson.Mode(rawValue: mode) else { throw ValidationError("--mode: choose skip-gram or CBOW") }
        let corpus = try WordCorpus(contentsOf: try DataCache.locate(.shakespeare, explicit: data))
        _ = Word2VecLesson.run(corpus: corpus, mode: parsed, epochs: epochs, seed: seed) { print($0) }
    }
}

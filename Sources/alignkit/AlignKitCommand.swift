// The `alignkit` command-line tool: parsing and printing only; the work happens in the library.
import AlignKit
import ArgumentParser

@main
struct AlignKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alignkit",
        abstract: "Train neural networks and align language models with human preferences.",
        discussion: "Every command also takes --config FILE.json: an object whose keys are the command's flags (\"batch-size\" or \"batchSize\"); flags given on the command line win.",
        subcommands: [DemoCommand.self, PrimerCommand.self, PretrainCommand.self, SampleCommand.self, ScoreCommand.self, SFTCommand.self, RewardCommand.self, PairsCommand.self, DPOCommand.self, KTOCommand.self, PPOCommand.self, EvalCommand.self, FrontierCommand.self, ReportCommand.self, DataCommand.self, BenchCommand.self]
    )

    /// Expands `--config FILE` before parsing (see `ConfigFile`).
    static func main() {
        do {
            main(try ConfigFile.expand(Array(CommandLine.arguments.dropFirst())))
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for kernels (default: ALIGNKIT_THREADS or the core count).")
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Matrix products in fp32, or in bf16 (operands rounded to bf16, sums in fp32; AMX where the CPU has it).",
        discussion: "Weights, optimizer state, activations and every other operation stay fp32.", valueName: "fp32|bf16"))
    var precision: GEMM.Precision = .fp32

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func apply() {
        if let threads { Parallel.threadCount = threads }
        GEMM.precision = precision
    }
}

/// `--precision fp32|bf16` (an unknown value is refused with the choices listed).
extension GEMM.Precision: ExpressibleByArgument {}

// `alignkit demo`: the best end-to-end run AlignKit has today (the DPO experiment replaces it).
import AlignKit
import ArgumentParser
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train an MLP to separate two spirals and watch its loss fall (offline, seconds).")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Training steps.") var steps: Int = 600
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func validate() throws {
        if steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
    }

    func run() throws {
        global.apply()
        var configuration = SpiralsClassifierTraining.Configuration()
        configuration.steps = steps
        configuration.seed = seed
        print("AlignKit demo: MLP \(configuration.sizes) on two spirals (\(2 * configuration.pointsPerClass) points), Adam, \(Parallel.threadCount) threads")
        let clock = ContinuousClock()
        let start = clock.now
        let (_, accuracy) = SpiralsClassifierTraining(configuration: configuration).run(every: max(1, steps / 15)) { p in
            let elapsed = clock.now - start
            print(String(format: "step %5d/%d  loss %.4f  accuracy %5.1f%%  %@", p.step, p.steps, p.loss, p.accuracy * 100,
                         "\(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))" as NSString))
        }
        print(String(format: "done: training accuracy %.1f%%", accuracy * 100))
    }
}

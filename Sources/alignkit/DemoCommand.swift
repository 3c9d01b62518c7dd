// `alignkit demo`: the DPO paper's experiment end to end (see AlignKitAlignment/Demo.swift), with one
// progress line per stage updated in place and a summary line when each stage finishes.
import AlignKit
import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Pretrain, fine-tune, then align a language model with PPO and with DPO, and report which gets more reward for less KL.",
        discussion: """
        Offline by default: an embedded corpus of short reviews written by a small grammar, judged by a sentiment
        lexicon of its own words (about 4-5 minutes on 2 cores). --corpus shakespeare uses the real corpus and the
        VADER lexicon (fetched when not cached; about 30 minutes). Stages: corpus, pretrain, sft, pairs, reward,
        ppo-kl<β> for each KL coefficient, dpo-beta<β> for each β, evaluate; then report.html. Everything goes under
        --out; running again with the same --out skips finished stages and resumes an interrupted one.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "embedded or shakespeare.") var corpus: String = "embedded"
    @Option(help: "Output folder (default: runs/demo-<date>-<time>).") var out: String?
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func validate() throws {
        if DemoOptions.Corpus(rawValue: corpus) == nil { throw ValidationError("--corpus must be embedded or shakespeare, not '\(corpus)'") }
    }

    func run() throws {
        global.apply()
        var options = DemoOptions.Corpus(rawValue: corpus)! == .shakespeare ? DemoOptions.shakespeare : DemoOptions()
        options.seed = seed
        let folder = out ?? "runs/demo-" + {
            let f = DateFormatter()
            f.dateFormat = "yyyyMMdd-HHmmss"
            return f.string(from: Date())
        }()
        installInterruptHandlers()
        let printer = DemoPrinter()
        let demo = try AlignmentDemo(options: options, folder: URL(fileURLWithPath: folder), emit: printer.handle) { interruptRequested != 0 }
        print("AlignKit demo (\(demo.options.corpus.rawValue) corpus, \(Parallel.threadCount) threads) in \(folder)")
        let started = Date()
        let finished = try demo.run()
        printer.endLine()
        guard finished else {
            print("interrupted; finished stages are kept. Continue with: alignkit demo --out \(folder)\(corpus == "embedded" ? "" : " --corpus \(corpus)")")
            return
        }
        let report = try DemoReport.write(folder: URL(fileURLWithPath: folder))
        print(String(format: "done in %@. Report: %@", formatDuration(Date().timeIntervalSince(started)), report.path))
    }
}

/// Prints demo events: progress lines overwrite each other on a terminal (one every 2 s in a log).
final class DemoPrinter: @unchecked Sendable {
    let terminal = isatty(1) != 0
    var lastProgress = Date.distantPast
    var pending = false

    func endLine() {
        if pending && terminal { print("") }
        pending = false
    }

    func handle(_ event: DemoEvent) {
        switch event {
        case let .stageStarted(name, description):
            endLine()
            print("▸ \(name): \(description)")
        case let .progress(stage, line):
            let now = Date()
            if terminal {
                print("\r\u{1B}[K  \(stage): \(line)", terminator: "")
                pending = true
            } else if now.timeIntervalSince(lastProgress) >= 2 {
                print("  \(stage): \(line)")
                lastProgress = now
            }
        case let .stageFinished(name, summary, seconds):
            if terminal && pending { print("\r\u{1B}[K", terminator: "") }
            pending = false
            print("✓ \(name) (\(formatDuration(seconds))): \(summary)")
        case let .stageSkipped(name, summary):
            print("✓ \(name) (done before): \(summary)")
        case .message(let text):
            endLine()
            print("  " + text)
        }
        flushStandardOutput()
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Rebuild a demo folder's report.html from what its stages wrote.")
    @Argument(help: "The demo folder.") var folder: String

    func run() throws {
        let url = try DemoReport.write(folder: URL(fileURLWithPath: folder))
        print("wrote \(url.path)")
    }
}

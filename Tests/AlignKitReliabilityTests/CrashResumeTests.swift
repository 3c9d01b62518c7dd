// A killed run costs only the work since its last checkpoint: pretraining and DPO runs of the
// `alignkit` executable are killed with SIGKILL at random moments (start-up, a training step, a
// checkpoint half written), resumed with --resume until they finish, and must end with the same
// bytes as an uninterrupted run: the final checkpoint's weights and AdamW moments, the model at the
// top of the run folder, and metrics.jsonl (which is also the determinism check across processes).
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

/// The `alignkit` executable built beside this test binary.
let alignkitExecutable: URL = {
    let me = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
    var folder = me.deletingLastPathComponent()
    // The test binary may sit inside a bundle (…/AlignKitPackageTests.xctest/Contents/MacOS on macOS).
    while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("alignkit").path) && folder.path != "/" {
        folder = folder.deletingLastPathComponent()
    }
    return folder.appendingPathComponent("alignkit")
}()

let alignmentFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("AlignKitAlignmentTests/Fixtures")

/// When to kill a run: after `seconds`, or a random moment (up to `jitter` seconds) after the run
/// folder's newest checkpoint reaches `step` (so the kill lands in a step or a checkpoint write).
enum KillMoment {
    case after(seconds: Double)
    case afterCheckpoint(step: Int, folder: URL, jitter: Double)
}

/// One run of the executable, killed with SIGKILL at `kill` unless it ended first. Returns whether it
/// was killed (false: it exited, and its status must be 0).
func runAlignkit(_ arguments: [String], log: URL, kill moment: KillMoment? = nil) throws -> Bool {
    let process = Process()
    process.executableURL = alignkitExecutable
    process.arguments = arguments
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    defer { try? handle.close() }
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    switch moment {
    case .after(let seconds)?:
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(1000) }
    case .afterCheckpoint(let step, let folder, let jitter)?:
        while process.isRunning && newestCheckpointStep(folder) < step { usleep(2000) }
        let deadline = Date().addingTimeInterval(Double.random(in: 0...jitter))
        while process.isRunning && Date() < deadline { usleep(500) }
    case nil: break
    }
    if moment != nil && process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    if process.terminationReason == .uncaughtSignal { return true }
    let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    #expect(process.terminationStatus == 0, "alignkit \(arguments.joined(separator: " ")) exited with \(process.terminationStatus):\n\(output)")
    return false
}

/// The step of a run folder's newest complete checkpoint (0 when none).
func newestCheckpointStep(_ run: URL) -> Int {
    let folder = run.appendingPathComponent("checkpoints")
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter {
        $0.hasPrefix("step-") && FileManager.default.fileExists(atPath: folder.appendingPathComponent($0 + "/state.json").path)
    }
    return names.compactMap { Int($0.dropFirst(5)) }.max() ?? 0
}

/// Runs `arguments` (a run of `steps` steps) uninterrupted into `reference`, then into `victim`: killed
/// once during start-up, then `kills` times at random moments after random checkpoints (inside a step
/// or a checkpoint write), resumed each time with --resume, and finally run to the end. The `files` of
/// both runs must be the same bytes.
func checkKilledRunMatches(_ arguments: [String], steps: Int, scratch: URL, kills: Int, files: [String]) throws {
    let reference = scratch.appendingPathComponent("reference"), victim = scratch.appendingPathComponent("killed")
    let started = Date()
    _ = try runAlignkit(arguments + ["--out", reference.path], log: scratch.appendingPathComponent("reference.log"))
    let duration = Date().timeIntervalSince(started), stepTime = duration / Double(steps)
    var moments: [String] = [], killed = 0, attempt = 0
    func launch(_ moment: KillMoment?) throws -> Bool {
        defer { attempt += 1 }
        return try runAlignkit(arguments + ["--out", victim.path] + (attempt > 0 ? ["--resume"] : []),
                               log: scratch.appendingPathComponent("attempt-\(attempt).log"), kill: moment)
    }
    // Start-up: reading data, the tokenizer, the reference's log-probabilities, the first steps.
    let early = duration * Double.random(in: 0.02...0.2)
    moments.append(String(format: "%.3f s after start", early))
    if try launch(.after(seconds: early)) { killed += 1 }
    for k in 0..<kills {
        let before = newestCheckpointStep(victim)
        let span = max(1, (steps - before) / (kills - k + 1))
        let target = before + Int.random(in: 1...span)
        moments.append("after checkpoint \(target)")
        if try launch(.afterCheckpoint(step: target, folder: victim, jitter: 3 * stepTime)) { killed += 1 }
    }
    let finished = try !launch(nil)
    let scenario = "kills \(moments.joined(separator: ", ")) (an uninterrupted run took \(String(format: "%.2f", duration)) s)"
    #expect(finished, "the killed run did not finish; \(scenario)")
    #expect(killed >= kills, "only \(killed) of \(kills + 1) attempts were killed before they ended; \(scenario)")
    for file in files {
        let a = try Data(contentsOf: reference.appendingPathComponent(file)), b = try Data(contentsOf: victim.appendingPathComponent(file))
        #expect(a == b, "\(file) differs between the uninterrupted run and the killed one; \(scenario)")
    }
}

@Suite("Crash and resume", .serialized)
struct CrashResumeTests {
    @Test func executableIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: alignkitExecutable.path), "no alignkit beside the tests at \(alignkitExecutable.path)")
    }

    @Test func pretrainingKilledAtRandomMomentsEndsBitForBit() throws {
        let scratch = try temporaryFolder("kill-pretrain")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let corpus = scratch.appendingPathComponent("corpus.txt")
        try DemoCorpus.reviews(count: 4000, seed: 3).joined(separator: "\n").write(to: corpus, atomically: true, encoding: .utf8)
        let steps = 200
        try checkKilledRunMatches(["pretrain", "--corpus", corpus.path, "--vocab-size", "320", "--model-size", "32", "--layers", "2",
                                   "--heads", "2", "--kv-heads", "1", "--context", "32", "--batch-size", "8", "--steps", "\(steps)",
                                   "--warmup", "5", "--eval-every", "20", "--save-every", "2", "--log-every", "1", "--threads", "2"],
                                  steps: steps, scratch: scratch, kills: 4,
                                  files: [String(format: "checkpoints/step-%08d/model.safetensors", steps),
                                          String(format: "checkpoints/step-%08d/optimizer.safetensors", steps),
                                          "model.safetensors", "tokenizer.json", "metrics.jsonl"])
    }

    @Test func dpoKilledAtRandomMomentsEndsBitForBit() throws {
        let scratch = try temporaryFolder("kill-dpo")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = alignmentFixtures.appendingPathComponent("trl-dpo")
        // 8 pairs in batches of 4 for 60 epochs: 120 steps.
        try checkKilledRunMatches(["dpo", "--model", data.appendingPathComponent("policy").path,
                                   "--data", data.appendingPathComponent("prefs.jsonl").path,
                                   "--eval-data", data.appendingPathComponent("prefs.jsonl").path,
                                   "--reference-cache", scratch.appendingPathComponent("cache").path,
                                   "--max-length", "48", "--batch-size", "4", "--epochs", "60", "--lr", "1e-3", "--beta", "0.5",
                                   "--eval-every", "10", "--save-every", "2", "--threads", "2"],
                                  steps: 120, scratch: scratch, kills: 4,
                                  files: ["checkpoints/step-00000120/model.safetensors", "checkpoints/step-00000120/optimizer.safetensors",
                                          "model.safetensors", "metrics.jsonl"])
    }

    /// SIGTERM (as Ctrl-C's SIGINT) finishes the step, writes a checkpoint, exits 0 and prints the
    /// command that continues the run; that command, run as printed, finishes it.
    @Test func sigtermStopsAtACheckpointAndPrintsTheCommandToResume() throws {
        let scratch = try temporaryFolder("sigterm")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = alignmentFixtures.appendingPathComponent("trl-dpo"), out = scratch.appendingPathComponent("run")
        let process = Process()
        process.executableURL = alignkitExecutable
        process.arguments = ["dpo", "--model", data.appendingPathComponent("policy").path, "--data", data.appendingPathComponent("prefs.jsonl").path,
                             "--reference-cache", scratch.appendingPathComponent("cache").path, "--max-length", "48", "--batch-size", "4",
                             "--epochs", "40", "--save-every", "10", "--log-every", "10", "--threads", "2", "--out", out.path]
        let log = scratch.appendingPathComponent("log.txt")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        while process.isRunning && newestCheckpointStep(out) < 10 { usleep(2000) }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        try handle.close()
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(output)")
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("interrupted at a checkpoint; continue with: alignkit dpo ") }, "\(output.suffix(800))")
        #expect(line.hasSuffix(" --resume"))
        let stopped = newestCheckpointStep(out)
        #expect(stopped >= 10 && stopped < 80, "stopped at \(stopped)")
        // The printed command, run by a shell as printed (with the built executable for `alignkit`).
        let command = String(line.dropFirst("interrupted at a checkpoint; continue with: alignkit".count))
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "'\(alignkitExecutable.path)'" + command]
        shell.standardOutput = FileHandle.nullDevice
        try shell.run()
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 0)
        #expect(newestCheckpointStep(out) == 80)
    }
}


// alignkit-fuzz: runs the parsers of user-supplied files over generated inputs.
//
//   alignkit-fuzz [TARGET ...] [--inputs N] [--seed S] [--timeout SECONDS] [--max-rss-mb MB]
//       property-based generation (see Mutator): every target (or the named ones), N inputs each
//   alignkit-fuzz run TARGET FILE
//       runs one input (to reproduce a crash file) and says what the parser did
//   alignkit-fuzz seeds TARGET FOLDER
//       writes the target's valid seed files into FOLDER (a corpus for libFuzzer)
//   alignkit-fuzz TARGET --libfuzzer [LIBFUZZER FLAGS ...]
//       coverage-guided fuzzing with libFuzzer; only in a build with -sanitize=fuzzer -DLIBFUZZER
//       (scripts/fuzz-libfuzzer.sh)
//
// A crash writes the input that caused it to crash-<target>.bin in the current folder; an input that
// runs past --timeout × 10 is written to hang-<target>.bin and the process aborts. Exit status 1 when
// an input was slower than --timeout, an error did not name its file, or the peak memory passed the limit.
import AlignKitFuzzing
import Foundation

/// The input being parsed, kept where a signal handler can write it out.
nonisolated(unsafe) var currentInput: UnsafeMutableRawBufferPointer = .allocate(byteCount: 1 << 22, alignment: 16)
nonisolated(unsafe) var currentLength = 0
nonisolated(unsafe) var currentStarted = 0.0
nonisolated(unsafe) var crashFile: [CChar] = Array("crash.bin".utf8CString)
nonisolated(unsafe) var hangFile: [CChar] = Array("hang.bin".utf8CString)
nonisolated(unsafe) var hangName = "hang.bin"

func remember(_ data: Data) {
    currentLength = min(data.count, currentInput.count)
    data.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: currentInput[..<currentLength]))
    currentStarted = Date().timeIntervalSince1970
}

func writeCurrentInput(_ path: UnsafePointer<CChar>) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd >= 0 { _ = write(fd, currentInput.baseAddress!, currentLength); close(fd) }
}

func installCrashHandlers() {
    for s in [SIGSEGV, SIGILL, SIGTRAP, SIGBUS, SIGABRT, SIGFPE] {
        signal(s) { sig in
            crashFile.withUnsafeBufferPointer { writeCurrentInput($0.baseAddress!) }
            signal(sig, SIG_DFL)
            raise(sig)
        }
    }
}

/// Aborts when one input runs far past the limit (a hang), after writing it out.
func startWatchdog(limit: Double) {
    Thread.detachNewThread {
        while true {
            sleep(1)
            let started = currentStarted
            if started > 0 && Date().timeIntervalSince1970 - started > limit {
                hangFile.withUnsafeBufferPointer { writeCurrentInput($0.baseAddress!) }
                FileHandle.standardError.write(Data("an input ran over \(Int(limit)) s: written to \(hangName)\n".utf8))
                abort()
            }
        }
    }
}

func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024   // kilobytes on Linux
}

/// Prints and flushes (so a later crash does not lose the line).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("alignkit-fuzz: \(message)\n".utf8))
    exit(2)
}

#if LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

nonisolated(unsafe) var libFuzzerWorkspace: FuzzWorkspace!
nonisolated(unsafe) var libFuzzerTarget: FuzzTarget = .safetensors

func runLibFuzzer(_ target: FuzzTarget, _ flags: [String]) -> Never {
    libFuzzerTarget = target
    do { libFuzzerWorkspace = try FuzzWorkspace() } catch { fail("cannot make a workspace: \(error)") }
    var arguments = ["alignkit-fuzz"] + flags
    var argc = Int32(arguments.count)
    var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    let status = pointers.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
        return LLVMFuzzerRunDriver(&argc, &argv) { bytes, count in
            let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
            if case .unclear(let message) = libFuzzerWorkspace.run(libFuzzerTarget, data) {
                fatalError("an error that does not name its file: \(message)")
            }
            return 0
        }
    }
    arguments.removeAll()
    exit(status)
}
#endif

@main
struct FuzzCommand {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "run" {
            guard arguments.count == 3, let target = FuzzTarget(rawValue: arguments[1]) else { fail("usage: alignkit-fuzz run TARGET FILE") }
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: arguments[2]))
                print("\(target.rawValue): \(try FuzzWorkspace().run(target, data))")
            } catch { fail("\(error)") }
            exit(0)
        }
        if arguments.first == "seeds" {
            guard arguments.count == 3, let target = FuzzTarget(rawValue: arguments[1]) else { fail("usage: alignkit-fuzz seeds TARGET FOLDER") }
            let folder = URL(fileURLWithPath: arguments[2])
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let workspace = try FuzzWorkspace()
                for (i, seed) in workspace.seeds(for: target).enumerated() { try seed.write(to: folder.appendingPathComponent("seed-\(i)")) }
            } catch { fail("\(error)") }
            exit(0)
        }
        var targets: [FuzzTarget] = [], inputs = 10_000, seed: UInt64 = 1, timeout = 2.0, maxRSS = 1024.0
        var index = 0
        func value(_ name: String) -> String {
            index += 1
            guard index < arguments.count else { fail("\(name) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let a = arguments[index]
            switch a {
            case "--inputs": inputs = Int(value(a)) ?? { fail("--inputs takes a count") }()
            case "--seed": seed = UInt64(value(a)) ?? { fail("--seed takes a number") }()
            case "--timeout": timeout = Double(value(a)) ?? { fail("--timeout takes seconds") }()
            case "--max-rss-mb": maxRSS = Double(value(a)) ?? { fail("--max-rss-mb takes megabytes") }()
            case "--libfuzzer":
                #if LIBFUZZER
                guard targets.count == 1 else { fail("--libfuzzer takes exactly one target before it") }
                runLibFuzzer(targets[0], Array(arguments[(index + 1)...]))
                #else
                fail("this build has no libFuzzer; build it with scripts/fuzz-libfuzzer.sh")
                #endif
            case "--help", "-h":
                print("usage: alignkit-fuzz [TARGET ...] [--inputs N] [--seed S] [--timeout SECONDS] [--max-rss-mb MB]\n" +
                      "       alignkit-fuzz run TARGET FILE\n       alignkit-fuzz seeds TARGET FOLDER\n       alignkit-fuzz TARGET --libfuzzer [FLAGS ...]\n" +
                      "targets: " + FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))
                exit(0)
            default:
                guard let t = FuzzTarget(rawValue: a) else { fail("unknown target or flag '\(a)'; targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))") }
                targets.append(t)
            }
            index += 1
        }
        arguments.removeAll()
        if targets.isEmpty { targets = FuzzTarget.allCases }
        installCrashHandlers()
        startWatchdog(limit: timeout * 10)
        let workspace: FuzzWorkspace
        do { workspace = try FuzzWorkspace() } catch { fail("cannot make a workspace: \(error)") }
        var failed = false
        say("target            inputs  accepted   refused  unclear  inputs/s  slowest (ms)  largest (kB)")
        for target in targets {
            crashFile = Array("crash-\(target.rawValue).bin".utf8CString)
            hangName = "hang-\(target.rawValue).bin"
            hangFile = Array(hangName.utf8CString)
            let report = fuzz(target, inputs: inputs, seed: seed, workspace: workspace, before: remember) { r in
                FileHandle.standardError.write(Data("\r\(target.rawValue): \(r.inputs)/\(inputs)".utf8))
            }
            currentStarted = 0
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            say(target.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: " %7d  %8d  %8d  %7d  %8.0f  %12.1f  %12.1f", report.inputs, report.accepted,
                         report.refused, report.unclearCount, report.inputsPerSecond, report.slowestSeconds * 1000,
                         Double(report.largestInput) / 1000))
            for message in report.unclear { say("  unclear error: \(message)") }
            if report.unclearCount > 0 || report.slowestSeconds > timeout { failed = true }
            if report.accepted == 0 { say("  no input was accepted, not even the seeds"); failed = true }
        }
        let rss = peakResidentMegabytes()
        print(String(format: "peak resident memory: %.0f MB (limit %.0f MB)", rss, maxRSS))
        if rss > maxRSS { failed = true }
        exit(failed ? 1 : 0)
    }
}

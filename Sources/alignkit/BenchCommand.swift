// `alignkit bench`: throughput benchmarks of the kernels.
import AlignKit
import ArgumentParser
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmark kernels.", subcommands: [GEMMBench.self])
}

struct GEMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "GFLOP/s of matrix multiplication at the foundation issue's shapes.")

    static let defaultShapes = "1024x1024x1024,4096x256x768,4096x256x1024,4096x1024x256,4096x256x4096,4096x384x1536,4096x1536x384,4096x768x3072,768x4096x3072"

    @Option(help: "Comma-separated MxKxN shapes.") var shapes: String = GEMMBench.defaultShapes
    @Option(help: "Comma-separated thread counts.") var threads: String = "1,2"
    @Option(help: "Kernel path: avx512, avx2 or portable (default: fastest supported).") var path: String?
    @Option(help: "Seconds per measurement round.") var seconds: Double = 0.3
    @Option(help: "Alternating rounds per case (AlignKit, PyTorch, AlignKit, ...); the median is reported.") var rounds: Int = 5
    @Option(help: "Also run PyTorch's torch.matmul with this Python (default: .venv-bench/bin/python if present; 'none' to skip).")
    var python: String?

    func run() throws {
        if let path {
            guard let p = GEMM.Path(rawValue: path), GEMM.supportedPaths.contains(p) else {
                throw ValidationError("--path \(path): choose one of \(GEMM.supportedPaths.map(\.rawValue).joined(separator: ", "))")
            }
            GEMM.path = p
        }
        let parsedShapes = try shapes.split(separator: ",").map { text -> (Int, Int, Int) in
            let parts = text.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else { throw ValidationError("--shapes: bad shape '\(text)', want MxKxN") }
            return (parts[0], parts[1], parts[2])
        }
        let threadCounts = try threads.split(separator: ",").map { text -> Int in
            guard let t = Int(text), t > 0 else { throw ValidationError("--threads: bad count '\(text)'") }
            return t
        }
        let reference = TorchReference(python: python)
        print("GEMM path: \(GEMM.path.rawValue); PyTorch: \(reference.map { "\($0.version) (\($0.python))" } ?? "not found (run scripts/setup-torch.sh)")")
        print("Median of \(rounds) alternating rounds of \(seconds) s each; GFLOP/s = 2MNK / median time.")
        print("shape (MxKxN)    threads  AlignKit GFLOP/s  PyTorch GFLOP/s  ratio")
        var ratios: [Double] = []
        for (m, k, n) in parsedShapes {
            for t in threadCounts {
                var ours: [Double] = [], theirs: [Double] = []
                for _ in 0..<rounds {
                    Parallel.threadCount = t
                    ours.append(GEMMBenchmark.measure(m: m, k: k, n: n, seconds: seconds))
                    if let value = reference?.gemm(m: m, k: k, n: n, threads: t, seconds: seconds) { theirs.append(value) }
                }
                let shape = "\(m)x\(k)x\(n)".padding(toLength: 16, withPad: " ", startingAt: 0)
                var line = shape + String(format: " %7d  %16.1f", t, median(ours))
                if !theirs.isEmpty {
                    let ratio = median(ours) / median(theirs)
                    line += String(format: "  %15.1f  %5.2f", median(theirs), ratio)
                    if t == threadCounts.max() { ratios.append(ratio) }
                }
                print(line)
            }
        }
        if !ratios.isEmpty {
            let geometricMean = Foundation.exp(ratios.map { Foundation.log($0) }.reduce(0, +) / Double(ratios.count))
            print(String(format: "ratio at %d threads: min %.2f, geometric mean %.2f", threadCounts.max()!, ratios.min()!, geometricMean))
        }
    }

    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}

/// Times C = A B on random matrices and returns GFLOP/s (median of repeated runs).
enum GEMMBenchmark {
    static func measure(m: Int, k: Int, n: Int, seconds: Double) -> Double {
        let a = Tensor(randomUniform: [m, k], lowerBound: -1, upperBound: 1, seed: 1)
        let b = Tensor(randomUniform: [k, n], lowerBound: -1, upperBound: 1, seed: 2)
        var c = Tensor.zeros([m, n])
        var times: [Double] = []
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(seconds)
        _ = matmul(a, b) // warm-up
        repeat {
            let start = clock.now
            c = matmul(a, b)
            let elapsed = clock.now - start
            times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        } while clock.now < deadline || times.count < 3
        _ = c
        times.sort()
        return 2 * Double(m) * Double(k) * Double(n) / times[times.count / 2] / 1e9
    }
}

/// A PyTorch process serving `benchmarks/torch_gemm.py` requests over a pipe.
final class TorchReference {
    let python: String
    let version: String
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var buffer = Data()

    /// nil when no Python with torch is found (or `python` is "none").
    init?(python requested: String?) {
        if requested == "none" { return nil }
        let candidate = requested ?? ".venv-bench/bin/python"
        guard FileManager.default.isExecutableFile(atPath: candidate),
              FileManager.default.fileExists(atPath: "benchmarks/torch_gemm.py") else { return nil }
        python = candidate
        process.executableURL = URL(fileURLWithPath: candidate)
        process.arguments = ["benchmarks/torch_gemm.py"]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        guard let hello = Self.readObject(output.fileHandleForReading, &buffer), let v = hello["torch"] as? String else { return nil }
        version = v
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    func gemm(m: Int, k: Int, n: Int, threads: Int, seconds: Double) -> Double? {
        input.fileHandleForWriting.write(Data("\(m) \(k) \(n) \(threads) \(seconds)\n".utf8))
        return Self.readObject(output.fileHandleForReading, &buffer)?["gflops"] as? Double
    }

    private static func readObject(_ handle: FileHandle, _ buffer: inout Data) -> [String: Any]? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[(newline + 1)...])
                return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }
}

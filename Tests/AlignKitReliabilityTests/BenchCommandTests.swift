// `alignkit bench gemm` with a training step's transposed products (TN:, NT:, TT: shapes), and the
// message for a shape it cannot read.
import AlignKitTestSupport
import Foundation
import Testing

/// Runs the executable to the end; returns its exit status and its output (stdout and stderr).
func runAlignkitCapturing(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let scratch = try temporaryFolder("bench-cli")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let log = scratch.appendingPathComponent("log.txt")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    let process = Process()
    process.executableURL = alignkitExecutable
    process.arguments = arguments
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    process.waitUntilExit()
    try handle.close()
    return (process.terminationStatus, try String(contentsOf: log, encoding: .utf8))
}

@Suite("Bench command")
struct BenchCommandTests {
    @Test func gemmBenchTakesTransposedShapes() throws {
        let (status, output) = try runAlignkitCapturing(["bench", "gemm", "--shapes", "TN:30x20x10,NT:7x5x3,TT:4x9x6,12x8x5",
                                                         "--threads", "1", "--rounds", "1", "--seconds", "0.01", "--python", "none"])
        #expect(status == 0, "\(output)")
        // One row per shape, named as given (the plain shape without a prefix), each with a positive rate.
        for name in ["TN:30x20x10", "NT:7x5x3", "TT:4x9x6", "12x8x5"] {
            let row = output.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            let fields = row?.split(separator: " ") ?? []
            #expect(fields.count >= 3 && (Double(fields[2]) ?? 0) > 0, "no row for \(name) in:\n\(output)")
        }
    }

    @Test func gemmBenchRejectsAnUnknownPrefix() throws {
        let (status, output) = try runAlignkitCapturing(["bench", "gemm", "--shapes", "XT:4x4x4", "--python", "none"])
        #expect(status != 0)
        #expect(output.contains("bad shape 'XT:4x4x4'"), "\(output)")
    }
}

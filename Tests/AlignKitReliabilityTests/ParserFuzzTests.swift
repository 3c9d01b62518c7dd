// The short fuzzing run of every parser that CI makes (the long runs are `alignkit-fuzz --inputs
// 100000` and scripts/fuzz-libfuzzer.sh; see the README): a few thousand generated inputs per parser,
// in this process, so a crash fails the suite. Each input must be accepted or refused with an error
// that names the file, within a second.
import AlignKitFuzzing
import Foundation
import Testing

@Suite("Parser fuzzing", .serialized)
struct ParserFuzzTests {
    @Test(arguments: FuzzTarget.allCases)
    func shortRunFindsNothing(_ target: FuzzTarget) throws {
        let workspace = try FuzzWorkspace()
        let seeds = workspace.seeds(for: target).count
        let report = fuzz(target, inputs: 2500, seed: 11, workspace: workspace)
        #expect(report.inputs == 2500)
        #expect(report.unclearCount == 0, "errors that do not name the file: \(report.unclear)")
        // The seeds are valid files: each is accepted (they run first, unmutated).
        #expect(report.accepted >= seeds, "\(report.accepted) accepted of \(seeds) seeds")
        // Mutants are refused often: the generator reaches the error paths.
        #expect(report.refused > report.inputs / 5, "only \(report.refused) refused")
        // One second is 100× the slowest input seen on the 2-core machine (about 25 ms).
        #expect(report.slowestSeconds < 1, "slowest input took \(report.slowestSeconds) s")
    }

    @Test func mutatorIsDeterministicForASeed() throws {
        let corpus = [Data(#"{"prompt": "a", "chosen": " b", "rejected": " c", "margin": 1}"#.utf8)]
        var a = Mutator(seed: 5), b = Mutator(seed: 5), c = Mutator(seed: 6)
        let x = (0..<50).map { _ in a.input(from: corpus, binary: false) }
        #expect(x == (0..<50).map { _ in b.input(from: corpus, binary: false) })
        #expect(x != (0..<50).map { _ in c.input(from: corpus, binary: false) })
        #expect(Set(x).count > 40)
    }
}

// Property-based generation for the parsers: inputs made from valid files by stacked mutations that
// reach the classes of bad input people meet (truncation, wrong types, huge or negative numbers,
// overlapping offsets, invalid UTF-8, empty fields, duplicated or spliced records), and a driver that
// runs a target over many of them, timing each, and reports what it saw.
import AlignKitTensor
import Foundation

/// Makes inputs from a corpus of valid files; deterministic for a seed.
public struct Mutator {
    var generator: RandomGenerator

    public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }

    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(generator.next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    static let interestingBytes: [UInt8] = Array("\"\\{}[],:-0123456789eE.+ \n\t\r".utf8) + [0x00, 0x01, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xE2, 0xED, 0xF0, 0xF4, 0xFE, 0xFF]
    static let interestingNumbers = ["0", "-1", "1", "-0", "2", "255", "256", "65536", "4294967295", "4294967296", "2147483648",
                                     "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616",
                                     "1e308", "1e309", "-1e309", "1e-400", "0.5", "1.5", "3.4e38", "NaN", "Infinity", "1e3", "100000000",
                                     "true", "false", "null", "\"\"", "\"0\"", "[]", "{}", "[0, 0]", "[1, -1]", "[0, 18446744073709551615]"]
    static let interestingStrings = ["", " ", "\\u0000", "\\ud800", "\\udfff\\ud800", "<|endoftext|>", "Ġ", "\\u00ff\\u0100",
                                     String(repeating: "a", count: 300), "assistant", "user", "system", "F32", "BF16", "F16", "I64",
                                     "llama", "gpt2", "BPE", "ByteLevel", "__metadata__", "q_proj", "c_attn", "lm_head.weight"]

    /// One input: a corpus member with 1-4 mutations (sometimes more), or two members spliced.
    public mutating func input(from corpus: [Data], binary: Bool) -> Data {
        var data = corpus[below(corpus.count)]
        let count = chance(10) ? 5 + below(12) : 1 + below(4)
        for _ in 0..<count { data = mutate(data, corpus: corpus, binary: binary) }
        return data
    }

    mutating func mutate(_ input: Data, corpus: [Data], binary: Bool) -> Data {
        var d = [UInt8](input)
        switch below(binary ? 13 : 12) {
        case 0 where !d.isEmpty:   // flip a bit
            let i = below(d.count); d[i] ^= UInt8(1) << UInt8(below(8))
        case 1 where !d.isEmpty:   // an interesting byte
            d[below(d.count)] = Self.interestingBytes[below(Self.interestingBytes.count)]
        case 2 where !d.isEmpty:   // delete a range
            let i = below(d.count); d.removeSubrange(i..<min(d.count, i + 1 + below(chance(80) ? 8 : 200)))
        case 3:                    // insert random or interesting bytes
            let i = below(d.count + 1)
            let n = 1 + below(16)
            d.insert(contentsOf: (0..<n).map { _ in chance(50) ? Self.interestingBytes[below(Self.interestingBytes.count)] : UInt8(truncatingIfNeeded: generator.next()) }, at: i)
        case 4 where !d.isEmpty:   // duplicate a range elsewhere
            let i = below(d.count), n = 1 + below(min(64, d.count - i))
            let piece = Array(d[i..<(i + n)])
            d.insert(contentsOf: piece, at: below(d.count + 1))
        case 5 where !d.isEmpty:   // truncate
            d.removeSubrange(below(d.count)...)
        case 6:                    // splice with another file
            let other = [UInt8](corpus[below(corpus.count)])
            let cut = below(d.count + 1), from = below(other.count + 1)
            d = Array(d[..<cut]) + Array(other[from...])
        case 7, 8:                 // replace a number
            if let r = numberRange(d) { d.replaceSubrange(r, with: Array(Self.interestingNumbers[below(Self.interestingNumbers.count)].utf8)) }
        case 9:                    // replace a string's contents
            if let r = stringRange(d) { d.replaceSubrange(r, with: Array(Self.interestingStrings[below(Self.interestingStrings.count)].utf8)) }
        case 10:                   // duplicate, drop or swap lines
            var lines = d.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
            guard !lines.isEmpty else { break }
            let i = below(lines.count), j = below(lines.count)
            switch below(3) {
            case 0: lines.insert(lines[i], at: j)
            case 1: lines.remove(at: i)
            default: lines.swapAt(i, j)
            }
            d = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
        case 11:                   // invalid UTF-8: a lone continuation byte, an overlong form, a surrogate
            let bad: [[UInt8]] = [[0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFF], [0xE2, 0x82]]
            d.insert(contentsOf: bad[below(bad.count)], at: below(d.count + 1))
        case 12 where d.count >= 8: // binary: a new little-endian header length
            let choices: [UInt64] = [0, 1, 2, 7, UInt64(d.count - 8), UInt64(d.count - 7), UInt64(d.count), 100_000_001,
                                     UInt64(Int64.max), UInt64.max, UInt64(truncatingIfNeeded: generator.next())]
            let v = choices[below(choices.count)]
            for k in 0..<8 { d[k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        default: break
        }
        return Data(d)
    }

    /// A random run of digits (with sign, point and exponent) in `d`.
    mutating func numberRange(_ d: [UInt8]) -> Range<Int>? {
        let starts = d.indices.filter { i in (d[i] >= 0x30 && d[i] <= 0x39) && (i == 0 || !(d[i - 1] >= 0x30 && d[i - 1] <= 0x39) && d[i - 1] != UInt8(ascii: ".")) }
        guard !starts.isEmpty else { return nil }
        var start = starts[below(starts.count)]
        if start > 0 && d[start - 1] == UInt8(ascii: "-") { start -= 1 }
        var end = start + 1
        while end < d.count, "0123456789.eE+-".utf8.contains(d[end]) { end += 1 }
        return start..<end
    }

    /// The contents of a random JSON string in `d` (between its quotes).
    mutating func stringRange(_ d: [UInt8]) -> Range<Int>? {
        let quotes = d.indices.filter { d[$0] == UInt8(ascii: "\"") && ($0 == 0 || d[$0 - 1] != UInt8(ascii: "\\")) }
        guard quotes.count >= 2 else { return nil }
        let k = below(quotes.count / 2) * 2
        return (quotes[k] + 1)..<quotes[k + 1]
    }
}

/// What a fuzzing run saw.
public struct FuzzReport: Sendable {
    public var target: FuzzTarget
    public var inputs = 0
    public var accepted = 0
    public var refused = 0
    /// Inputs refused with an error that does not name the file (with the first few messages).
    public var unclear: [String] = []
    public var unclearCount = 0
    /// The slowest input's time.
    public var slowestSeconds = 0.0
    /// The largest input's size in bytes.
    public var largestInput = 0
    public var seconds = 0.0

    public var inputsPerSecond: Double { Double(inputs) / max(seconds, 1e-9) }
}

/// Runs `target` over `count` inputs made by `Mutator(seed:)` from the target's seeds (which run
/// first, unmutated, and must be accepted). `progress` hears about every 1,000 inputs;
/// `before` sees each input before it runs (a crash handler can keep it).
public func fuzz(_ target: FuzzTarget, inputs count: Int, seed: UInt64, workspace: FuzzWorkspace,
                 before: (Data) -> Void = { _ in }, progress: (FuzzReport) -> Void = { _ in }) -> FuzzReport {
    var report = FuzzReport(target: target)
    var mutator = Mutator(seed: seed)
    var corpus = workspace.seeds(for: target)
    let seedCount = corpus.count
    let start = Date()
    for n in 0..<count {
        let data = n < seedCount ? corpus[n] : mutator.input(from: corpus, binary: target.isBinary)
        before(data)
        let t0 = Date()
        let outcome = workspace.run(target, data)
        report.slowestSeconds = max(report.slowestSeconds, Date().timeIntervalSince(t0))
        report.inputs += 1
        report.largestInput = max(report.largestInput, data.count)
        switch outcome {
        case .accepted:
            report.accepted += 1
            // Accepted mutants are good starting points (a few hundred at most).
            if n >= seedCount && corpus.count < 256 { corpus.append(data) }
        case .refused: report.refused += 1
        case .unclear(let message):
            report.unclearCount += 1
            if report.unclear.count < 5 { report.unclear.append(message) }
        }
        if (n + 1) % 1000 == 0 { report.seconds = Date().timeIntervalSince(start); progress(report) }
    }
    report.seconds = Date().timeIntervalSince(start)
    return report
}

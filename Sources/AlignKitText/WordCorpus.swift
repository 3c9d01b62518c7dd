// A word-level corpus: lowercase words (letters and inner apostrophes) from text files, with a
// vocabulary of the words seen at least `minimumCount` times.
import Foundation

public struct WordCorpus: Sendable {
    /// Token ids of the text, in order (words outside the vocabulary are dropped).
    public let ids: [Int]
    /// Words by id, most frequent first.
    public let words: [String]
    /// How often each word occurs.
    public let counts: [Int]
    /// Id by word.
    public let index: [String: Int]

    /// Reads every `.txt` file under `folder` (sorted by name), or the file itself.
    public init(contentsOf url: URL, minimumCount: Int = 5) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw DataFileError(file: url.path, "does not exist")
        }
        let files = isFolder.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.hasSuffix(".txt") && !$0.hasPrefix("COPYING") }
                .sorted().map { url.appendingPathComponent($0) }
            : [url]
        guard !files.isEmpty else { throw DataFileError(file: url.path, "no .txt files") }
        var tokens: [String] = []
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: file))
            tokens += Self.words(bytes)
        }
        var frequency: [String: Int] = [:]
        for token in tokens { frequency[token, default: 0] += 1 }
        let vocabulary = frequency.filter { $0.value >= minimumCount }.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
        words = vocabulary.map(\.key)
        counts = vocabulary.map(\.value)
        var index: [String: Int] = [:]
        for (i, word) in words.enumerated() { index[word] = i }
        self.index = index
        ids = tokens.compactMap { index[$0] }
    }

    /// Lowercase ASCII words: runs of letters, with apostrophes kept inside a word ("o'er").
    static func words(_ bytes: [UInt8]) -> [String] {
        var result: [String] = []
        var current: [UInt8] = []
        func flush() {
            while current.last == UInt8(ascii: "'") { current.removeLast() }
            if !current.isEmpty { result.append(String(decoding: current, as: UTF8.self)) }
            current.removeAll(keepingCapacity: true)
        }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): current.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): current.append(byte + 32)
            case UInt8(ascii: "'") where !current.isEmpty: current.append(byte)
            default: flush()
            }
        }
        flush()
        return result
    }
}

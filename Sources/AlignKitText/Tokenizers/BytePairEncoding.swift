// Byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2, Radford et al. 2019): text is split by
// the pre-tokenizer, each piece's UTF-8 bytes start as single-byte tokens, and the adjacent pair with
// the lowest merge rank is merged until no adjacent pair has one (ties: the leftmost pair).
//
// Two sources of merge ranks exist and both reduce to one pair table:
//  - a `.tiktoken` rank file gives each token a rank; a pair may merge when its concatenation is a
//    token, with that token's rank. Every split of every token into two tokens is entered in the table.
//  - `merges.txt` / `tokenizer.json` list the merges; a pair's rank is its line, and the result is the
//    vocabulary's id for the concatenated bytes.
import Foundation

/// What the models need from a tokenizer.
public protocol TextTokenizer: Sendable {
    /// The number of ids; every id is below it.
    var vocabularySize: Int { get }
    /// The id that ends a document, if the tokenizer has one.
    var endOfTextID: Int? { get }
    func encode(_ text: String, allowSpecial: Bool) -> [Int]
    func decode(_ ids: [Int]) -> String
}

extension TextTokenizer {
    public func encode(_ text: String) -> [Int] { encode(text, allowSpecial: true) }
}

/// A byte-level BPE tokenizer with a pair-merge table and special tokens that are never split.
public struct BytePairTokenizer: TextTokenizer {
    /// Id → token bytes (nil for ids no token uses). Special tokens hold their UTF-8 text.
    public let tokens: [[UInt8]?]
    /// Regular token bytes → id.
    public let ids: [[UInt8]: Int]
    /// Special tokens (such as "<|endoftext|>") → id.
    public let specialTokens: [String: Int]
    /// The merges in rank order: (left id, right id, rank).
    public let merges: [(left: Int, right: Int, rank: Int)]
    /// True when a piece that is itself a token becomes that token without merging (tiktoken does this).
    public let wholePieceLookup: Bool

    /// Pair key (left << 32 | right) → rank << 32 | merged id.
    let mergeTable: [UInt64: UInt64]
    let byteIDs: [Int32]

    public var vocabularySize: Int { tokens.count }
    public var endOfTextID: Int? { specialTokens[Self.endOfText] }

    /// GPT-2's end-of-text token.
    public static let endOfText = "<|endoftext|>"

    struct TableError: Error { let message: String }

    /// Ids run from 0 to below this (16.7 million; the largest vocabularies in use have a few hundred thousand).
    public static let idLimit = 1 << 24

    /// The general form: a vocabulary, merges in rank order, special tokens.
    init(vocabulary: [Int: [UInt8]], merges: [(left: Int, right: Int, rank: Int)], specialTokens: [String: Int],
         wholePieceLookup: Bool) throws(TableError) {
        let largest = max(vocabulary.keys.max() ?? -1, specialTokens.values.max() ?? -1)
        guard largest < Self.idLimit else { throw TableError(message: "id \(largest) is over AlignKit's limit of \(Self.idLimit - 1)") }
        let size = largest + 1
        var tokens = [[UInt8]?](repeating: nil, count: size)
        var ids: [[UInt8]: Int] = [:]
        for (id, bytes) in vocabulary {
            guard id >= 0 else { throw TableError(message: "negative id \(id)") }
            tokens[id] = bytes
            if let other = ids[bytes], other < id { continue }
            ids[bytes] = id
        }
        for (text, id) in specialTokens {
            guard id >= 0 else { throw TableError(message: "special token '\(text)' has negative id \(id)") }
            tokens[id] = Array(text.utf8)
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            guard let id = ids[[UInt8(b)]] else { throw TableError(message: "byte \(b) has no token; a byte-level vocabulary holds all 256") }
            byteIDs[b] = Int32(id)
        }
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (left, right, rank) in merges {
            guard left >= 0, left < size, let a = tokens[left], right >= 0, right < size, let b = tokens[right] else {
                throw TableError(message: "merge (\(left), \(right)) names an id outside the vocabulary")
            }
            guard let merged = ids[a + b] else {
                throw TableError(message: "merge '\(String(decoding: a, as: UTF8.self))' + '\(String(decoding: b, as: UTF8.self))' makes a token not in the vocabulary")
            }
            let key = UInt64(left) << 32 | UInt64(right)
            if table[key] == nil { table[key] = UInt64(rank) << 32 | UInt64(merged) }
        }
        self.tokens = tokens
        self.ids = ids
        self.specialTokens = specialTokens
        self.merges = merges
        self.wholePieceLookup = wholePieceLookup
        self.mergeTable = table
        self.byteIDs = byteIDs
    }

    /// A tokenizer from tiktoken-style ranks (token bytes → rank = id); ranks must fit a vocabulary
    /// (see `idLimit`), which a rank file's reader checks first.
    public init(ranks: [[UInt8]: Int], specialTokens: [String: Int] = [:]) {
        do { try self.init(checkedRanks: ranks, specialTokens: specialTokens) }
        catch { preconditionFailure("BytePairTokenizer(ranks:): \(error.message)") }
    }

    init(checkedRanks ranks: [[UInt8]: Int], specialTokens: [String: Int]) throws(TableError) {
        var vocabulary: [Int: [UInt8]] = [:]
        for (bytes, id) in ranks { vocabulary[id] = bytes }
        var merges: [(left: Int, right: Int, rank: Int)] = []
        for (rank, bytes) in vocabulary.sorted(by: { $0.key < $1.key }) where bytes.count > 1 {
            for k in 1..<bytes.count {
                if let a = ranks[Array(bytes[..<k])], let b = ranks[Array(bytes[k...])] { merges.append((a, b, rank)) }
            }
        }
        try self.init(vocabulary: vocabulary, merges: merges, specialTokens: specialTokens, wholePieceLookup: true)
    }

    /// The longest token a rank file may list (the longest in GPT-2's and cl100k's files is 128 bytes).
    public static let tokenLengthLimit = 1024

    /// Reads a `.tiktoken` rank file: one `<base64 token bytes> <rank>` per line. GPT-2's file lacks
    /// `<|endoftext|>`, which gets the id after the last rank (50256) unless `specialTokens` says otherwise.
    public init(tiktokenFile url: URL, specialTokens: [String: Int]? = nil) throws {
        let name = url.path
        let data = try readFile(url)
        var ranks: [[UInt8]: Int] = [:]
        var rankLines: [Int: Int] = [:]
        var lineNumber = 0
        var maximum = -1
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty { continue }
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count == 2 else { throw DataFileError(file: name, line: lineNumber, "expected '<base64> <rank>', found \(fields.count) fields") }
            guard let bytes = Data(base64Encoded: Data(fields[0])), !bytes.isEmpty else {
                throw DataFileError(file: name, line: lineNumber, "token field is not valid base64")
            }
            guard bytes.count <= Self.tokenLengthLimit else {
                throw DataFileError(file: name, line: lineNumber, "token of \(bytes.count) bytes; AlignKit allows at most \(Self.tokenLengthLimit)")
            }
            guard let rank = Int(String(decoding: fields[1], as: UTF8.self)), rank >= 0, rank < Self.idLimit - 1 else {
                throw DataFileError(file: name, line: lineNumber, "rank '\(String(decoding: fields[1], as: UTF8.self))' is not an integer from 0 to \(Self.idLimit - 2)")
            }
            if let first = rankLines.updateValue(lineNumber, forKey: rank) {
                throw DataFileError(file: name, line: lineNumber, "rank \(rank) was given already on line \(first)")
            }
            guard ranks.updateValue(rank, forKey: [UInt8](bytes)) == nil else {
                throw DataFileError(file: name, line: lineNumber, "token listed twice")
            }
            maximum = max(maximum, rank)
        }
        guard !ranks.isEmpty else { throw DataFileError(file: name, "no ranks found") }
        for b in 0..<256 where ranks[[UInt8(b)]] == nil {
            throw DataFileError(file: name, "byte \(b) has no rank; a byte-level rank file lists all 256 bytes")
        }
        do { try self.init(checkedRanks: ranks, specialTokens: specialTokens ?? [Self.endOfText: maximum + 1]) }
        catch { throw DataFileError(file: name, error.message) }
    }

    /// Token ids for `text`. Special tokens in the text become their ids when `allowSpecial` is true;
    /// otherwise they are encoded as ordinary text.
    public func encode(_ text: String, allowSpecial: Bool = true) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3)
        var cache: [Substring: [Int32]] = [:]
        var parts: [Int32] = []
        for (segment, special) in segments(text, allowSpecial: allowSpecial) {
            if let special { ids.append(special); continue }
            for scalars in GPT2PreTokenizer.split(String(segment)) {
                let piece = Substring(scalars)
                if let cached = cache[piece] { for id in cached { ids.append(Int(id)) }; continue }
                merge(piece.utf8, into: &parts)
                cache[piece] = parts
                for id in parts { ids.append(Int(id)) }
            }
        }
        return ids
    }

    /// The text of `ids` (bytes concatenated; invalid UTF-8 becomes U+FFFD).
    public func decode(_ ids: [Int]) -> String { String(decoding: decodeBytes(ids), as: UTF8.self) }

    /// The bytes of `ids`.
    public func decodeBytes(_ ids: [Int]) -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids {
            precondition(id >= 0 && id < tokens.count && tokens[id] != nil, "decode: id \(id) is not in the vocabulary of \(vocabularySize)")
            bytes += tokens[id]!
        }
        return bytes
    }

    /// Splits text around special tokens: (text, nil) runs and ("", id) for each special token.
    func segments(_ text: String, allowSpecial: Bool) -> [(Substring, Int?)] {
        guard allowSpecial, !specialTokens.isEmpty else { return [(Substring(text), nil)] }
        var result: [(Substring, Int?)] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            var earliest: (Range<Substring.Index>, Int)?
            for (token, id) in specialTokens {
                if let range = rest.range(of: token), earliest == nil || range.lowerBound < earliest!.0.lowerBound
                    || (range.lowerBound == earliest!.0.lowerBound && range.upperBound > earliest!.0.upperBound) { earliest = (range, id) }
            }
            guard let (range, id) = earliest else { result.append((rest, nil)); break }
            if range.lowerBound > rest.startIndex { result.append((rest[..<range.lowerBound], nil)) }
            result.append(("", id))
            rest = rest[range.upperBound...]
        }
        return result
    }

    /// BPE on one piece's bytes: merge the lowest-ranked adjacent pair (leftmost on ties) until none has a rank.
    func merge(_ bytes: Substring.UTF8View, into parts: inout [Int32]) {
        parts.removeAll(keepingCapacity: true)
        if wholePieceLookup, bytes.count > 1, let whole = ids[Array(bytes)] { parts.append(Int32(whole)); return }
        for b in bytes { parts.append(byteIDs[Int(b)]) }
        while parts.count > 1 {
            var best = UInt64.max, bestIndex = -1
            for i in 0..<(parts.count - 1) {
                if let entry = mergeTable[UInt64(UInt32(parts[i])) << 32 | UInt64(UInt32(parts[i + 1]))], entry < best {
                    best = entry; bestIndex = i
                }
            }
            if bestIndex < 0 { break }
            parts[bestIndex] = Int32(truncatingIfNeeded: best & 0xffff_ffff)
            parts.remove(at: bestIndex + 1)
        }
    }
}

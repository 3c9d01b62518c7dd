// Byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2, Radford et al. 2019): text is split by
// the pre-tokenizer, each piece's UTF-8 bytes start as single-byte parts, and the adjacent pair whose
// concatenation has the lowest rank is merged until none is in the table; a part's rank is its id.
import Foundation

/// A byte-level BPE tokenizer with a rank table and special tokens that are never split.
public struct BytePairTokenizer: Sendable {
    /// Token bytes → id (= merge rank).
    public let ranks: [[UInt8]: Int]
    /// Id → token bytes.
    public let tokens: [Int: [UInt8]]
    /// Special tokens (such as "<|endoftext|>") → id.
    public let specialTokens: [String: Int]

    /// The number of ids (regular and special).
    public var vocabularySize: Int { (tokens.keys.max() ?? -1) + 1 }

    public init(ranks: [[UInt8]: Int], specialTokens: [String: Int] = [:]) {
        self.ranks = ranks
        var tokens: [Int: [UInt8]] = [:]
        for (bytes, id) in ranks { tokens[id] = bytes }
        for (text, id) in specialTokens { tokens[id] = Array(text.utf8) }
        self.tokens = tokens
        self.specialTokens = specialTokens
    }

    /// GPT-2's end-of-text token.
    public static let endOfText = "<|endoftext|>"

    /// Reads a `.tiktoken` rank file: one `<base64 token bytes> <rank>` per line. GPT-2's file lacks
    /// `<|endoftext|>`, which gets the id after the last rank (50256) unless `specialTokens` says otherwise.
    public init(tiktokenFile url: URL, specialTokens: [String: Int]? = nil) throws {
        let name = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DataFileError(file: name, "cannot read: \(error.localizedDescription)") }
        var ranks: [[UInt8]: Int] = [:]
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
            guard let rank = Int(String(decoding: fields[1], as: UTF8.self)), rank >= 0 else {
                throw DataFileError(file: name, line: lineNumber, "rank '\(String(decoding: fields[1], as: UTF8.self))' is not a non-negative integer")
            }
            guard ranks.updateValue(rank, forKey: [UInt8](bytes)) == nil else {
                throw DataFileError(file: name, line: lineNumber, "token listed twice")
            }
            maximum = max(maximum, rank)
        }
        guard !ranks.isEmpty else { throw DataFileError(file: name, "no ranks found") }
        self.init(ranks: ranks, specialTokens: specialTokens ?? [Self.endOfText: maximum + 1])
    }

    /// Token ids for `text`. Special tokens in the text become their ids when `allowSpecial` is true;
    /// otherwise they are encoded as ordinary text.
    public func encode(_ text: String, allowSpecial: Bool = true) -> [Int] {
        var ids: [Int] = []
        var cache: [String: [Int]] = [:]
        for (segment, special) in segments(text, allowSpecial: allowSpecial) {
            if let special { ids.append(special); continue }
            for scalars in GPT2PreTokenizer.split(String(segment)) {
                let piece = String(scalars)
                if let cached = cache[piece] { ids += cached; continue }
                let encoded = merge(Array(piece.utf8))
                cache[piece] = encoded
                ids += encoded
            }
        }
        return ids
    }

    /// The text of `ids` (bytes concatenated; invalid UTF-8 becomes U+FFFD).
    public func decode(_ ids: [Int]) -> String { String(decoding: decodeBytes(ids), as: UTF8.self) }

    /// The bytes of `ids`.
    public func decodeBytes(_ ids: [Int]) -> [UInt8] {
        ids.flatMap { id -> [UInt8] in
            precondition(tokens[id] != nil, "decode: id \(id) is not in the vocabulary of \(vocabularySize)")
            return tokens[id]!
        }
    }

    /// Splits text around special tokens: (text, nil) runs and ("", id) for each special token.
    func segments(_ text: String, allowSpecial: Bool) -> [(Substring, Int?)] {
        guard allowSpecial, !specialTokens.isEmpty else { return [(Substring(text), nil)] }
        var result: [(Substring, Int?)] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            var earliest: (Range<Substring.Index>, Int)?
            for (token, id) in specialTokens {
                if let range = rest.range(of: token), earliest == nil || range.lowerBound < earliest!.0.lowerBound { earliest = (range, id) }
            }
            guard let (range, id) = earliest else { result.append((rest, nil)); break }
            if range.lowerBound > rest.startIndex { result.append((rest[..<range.lowerBound], nil)) }
            result.append(("", id))
            rest = rest[range.upperBound...]
        }
        return result
    }

    /// BPE on one piece's bytes: merge the lowest-ranked adjacent pair until no pair has a rank.
    func merge(_ bytes: [UInt8]) -> [Int] {
        if let whole = ranks[bytes] { return [whole] }
        var parts = bytes.map { [$0] }
        while parts.count > 1 {
            var best = Int.max, bestIndex = -1
            for i in 0..<(parts.count - 1) {
                if let rank = ranks[parts[i] + parts[i + 1]], rank < best { best = rank; bestIndex = i }
            }
            if bestIndex < 0 { break }
            parts[bestIndex] += parts[bestIndex + 1]
            parts.remove(at: bestIndex + 1)
        }
        return parts.map { part in
            guard let id = ranks[part] else { preconditionFailure("BPE: byte \(part) has no rank; the table must hold all 256 bytes") }
            return id
        }
    }
}

// The Hugging Face files for byte-level BPE: `vocab.json` + `merges.txt` (GPT-2's release) and
// `tokenizer.json` (the `tokenizers` library). Token strings there spell bytes with GPT-2's printable
// alphabet: bytes '!'...'~', '¡'...'¬' and '®'...'ÿ' stand for themselves, the other 68 bytes become
// U+0100 onward in byte order.
import Foundation

public enum ByteLevelAlphabet {
    /// Byte → the character that spells it.
    public static let characters: [Unicode.Scalar] = {
        var printable = Set<Int>()
        for range in [33...126, 161...172, 174...255] { printable.formUnion(range) }
        var next = 256
        return (0..<256).map { b in
            if printable.contains(b) { return Unicode.Scalar(UInt32(b))! }
            defer { next += 1 }
            return Unicode.Scalar(UInt32(next))!
        }
    }()

    static let bytes: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in characters.enumerated() { map[c] = UInt8(b) }
        return map
    }()

    /// The token string for `bytes`.
    public static func spell(_ bytes: [UInt8]) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(characters[Int(b)]) }
        return String(s)
    }

    /// The bytes a token string spells, or nil when a character is outside the alphabet.
    public static func read(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for c in token.unicodeScalars {
            guard let b = bytes[c] else { return nil }
            out.append(b)
        }
        return out
    }
}

extension BytePairTokenizer {
    /// Reads GPT-2's `vocab.json` (token string → id) and `merges.txt` (one "left right" pair per line,
    /// in rank order; a first line starting with "#version" is skipped). A vocabulary entry that is
    /// "<|endoftext|>" (or listed in `specialTokens`) is special.
    public init(vocabularyFile: URL, mergesFile: URL, specialTokens: [String] = [BytePairTokenizer.endOfText]) throws {
        let vocabName = vocabularyFile.path
        guard let object = try? JSONSerialization.jsonObject(with: readFile(vocabularyFile)), let vocab = object as? [String: Any] else {
            throw DataFileError(file: vocabName, "not a JSON object of token → id; is this a vocab.json?")
        }
        let mergesText = String(decoding: try readFile(mergesFile), as: UTF8.self)
        var lines: [(Int, Substring)] = []
        for (n, line) in mergesText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty || (n == 0 && line.hasPrefix("#version")) { continue }
            lines.append((n + 1, line))
        }
        try self.init(vocabulary: vocab, vocabularyFile: vocabName, mergeLines: lines, mergesFile: mergesFile.path,
                      special: Dictionary(uniqueKeysWithValues: specialTokens.compactMap { t in (vocab[t] as? Int).map { (t, $0) } }),
                      wholePieceLookup: false)
    }

    /// Reads a Hugging Face `tokenizer.json` whose model is byte-level BPE.
    public init(tokenizerJSON url: URL) throws {
        let name = url.path
        guard let object = try? JSONSerialization.jsonObject(with: readFile(url)), let root = object as? [String: Any] else {
            throw DataFileError(file: name, "not a JSON object; is this a tokenizer.json?")
        }
        guard let model = root["model"] as? [String: Any] else {
            throw DataFileError(file: name, "no 'model' object; a tokenizer.json has one (is this a config.json or vocab.json?)")
        }
        let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : "unknown")
        guard type == "BPE" else { throw DataFileError(file: name, "model.type is '\(type)'; AlignKit reads byte-level BPE tokenizers") }
        guard let vocab = model["vocab"] as? [String: Any] else { throw DataFileError(file: name, "model.vocab is missing or not an object") }
        guard let rawMerges = model["merges"] as? [Any] else { throw DataFileError(file: name, "model.merges is missing or not a list") }
        let pre = root["pre_tokenizer"] as? [String: Any]
        guard let pre, pre["type"] as? String == "ByteLevel" else {
            let found = (pre?["type"] as? String).map { "'\($0)'" } ?? "none"
            throw DataFileError(file: name, "pre_tokenizer is \(found); AlignKit reads the ByteLevel pre-tokenizer with GPT-2's pattern")
        }
        if pre["use_regex"] as? Bool == false || pre["add_prefix_space"] as? Bool == true {
            throw DataFileError(file: name, "pre_tokenizer: AlignKit supports ByteLevel with use_regex true and add_prefix_space false")
        }
        var lines: [(Int, Substring)] = []
        for (n, entry) in rawMerges.enumerated() {
            if let s = entry as? String { lines.append((n, Substring(s))) }
            else if let pair = entry as? [String], pair.count == 2 { lines.append((n, Substring(pair[0] + " " + pair[1]))) }
            else { throw DataFileError(file: name, "model.merges[\(n)] is neither \"left right\" nor [left, right]") }
        }
        var special: [String: Int] = [:]
        var added: [String: Any] = [:]
        for (n, entry) in (root["added_tokens"] as? [[String: Any]] ?? []).enumerated() {
            guard let content = entry["content"] as? String, let id = entry["id"] as? Int else {
                throw DataFileError(file: name, "added_tokens[\(n)] lacks 'content' or 'id'")
            }
            if vocab[content] == nil { added[content] = id }
            special[content] = id
        }
        try self.init(vocabulary: vocab.merging(added) { a, _ in a }, vocabularyFile: "\(name): model.vocab", mergeLines: lines,
                      mergesFile: "\(name): model.merges", special: special, wholePieceLookup: model["ignore_merges"] as? Bool ?? false)
    }

    private init(vocabulary vocab: [String: Any], vocabularyFile: String, mergeLines: [(Int, Substring)], mergesFile: String,
                 special: [String: Int], wholePieceLookup: Bool) throws {
        var vocabulary: [Int: [UInt8]] = [:]
        var byString: [Substring: Int] = [:]
        for (token, value) in vocab {
            guard let id = value as? Int, id >= 0 else { throw DataFileError(file: vocabularyFile, "token '\(token)' has id \(value), not a non-negative integer") }
            if special[token] != nil { continue }
            guard let bytes = ByteLevelAlphabet.read(token) else {
                throw DataFileError(file: vocabularyFile, "token '\(token)' is not spelled in the byte-level alphabet; is this a byte-level BPE vocabulary?")
            }
            vocabulary[id] = bytes
            byString[Substring(token)] = id
        }
        var merges: [(left: Int, right: Int, rank: Int)] = []
        merges.reserveCapacity(mergeLines.count)
        for (rank, (line, text)) in mergeLines.enumerated() {
            let halves = text.split(separator: " ", omittingEmptySubsequences: false)
            guard halves.count == 2 else { throw DataFileError(file: mergesFile, line: line, "expected 'left right', found '\(text)'") }
            guard let a = byString[halves[0]], let b = byString[halves[1]] else {
                throw DataFileError(file: mergesFile, line: line, "'\(text)' names a token that is not in the vocabulary")
            }
            merges.append((a, b, rank))
        }
        do { try self.init(vocabulary: vocabulary, merges: merges, specialTokens: special, wholePieceLookup: wholePieceLookup) }
        catch { throw DataFileError(file: mergesFile, error.message) }
    }

    /// The `tokenizer.json` text for this tokenizer (Hugging Face `tokenizers` format: byte-level BPE).
    public func tokenizerJSON() throws -> Data {
        var vocab: [String: Int] = [:]
        for (bytes, id) in ids { vocab[ByteLevelAlphabet.spell(bytes)] = id }
        let spelled = merges.sorted { ($0.rank, $0.left, $0.right) < ($1.rank, $1.left, $1.right) }.map {
            [ByteLevelAlphabet.spell(tokens[$0.left]!), ByteLevelAlphabet.spell(tokens[$0.right]!)]
        }
        let added = specialTokens.sorted { $0.value < $1.value }.map { (text, id) -> [String: Any] in
            ["id": id, "content": text, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added, "normalizer": NSNull(),
            "pre_tokenizer": byteLevel, "post_processor": byteLevel, "decoder": byteLevel,
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": wholePieceLookup,
                      "vocab": vocab, "merges": spelled] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }

    /// Writes `tokenizer.json` atomically (a temporary file, then rename).
    public func save(tokenizerJSON url: URL) throws {
        try writeAtomically(try tokenizerJSON(), to: url)
    }
}

extension BytePairTokenizer {
    /// A tokenizer from a path: a `.tiktoken` rank file, a `tokenizer.json`, or a folder holding
    /// `tokenizer.json` or `vocab.json` + `merges.txt`.
    public init(contentsOf url: URL) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else { throw DataFileError(file: url.path, "does not exist") }
        if isFolder.boolValue {
            let json = url.appendingPathComponent("tokenizer.json")
            if FileManager.default.fileExists(atPath: json.path) { try self.init(tokenizerJSON: json); return }
            let vocab = url.appendingPathComponent("vocab.json"), merges = url.appendingPathComponent("merges.txt")
            if FileManager.default.fileExists(atPath: vocab.path) { try self.init(vocabularyFile: vocab, mergesFile: merges); return }
            throw DataFileError(file: url.path, "holds no tokenizer.json and no vocab.json + merges.txt")
        }
        if url.pathExtension == "tiktoken" { try self.init(tiktokenFile: url); return }
        try self.init(tokenizerJSON: url)
    }
}

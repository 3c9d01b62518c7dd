// A character tokenizer for lessons: one id per Unicode scalar seen in the corpus (sorted), id 0 for
// any scalar not seen (decoded as U+FFFD), and "<|endoftext|>" as the last id.
import Foundation

public struct CharacterTokenizer: TextTokenizer, Codable, Equatable {
    /// Id - 1 → scalar (id 0 is the unknown character).
    public let characters: [String]
    let index: [Unicode.Scalar: Int]

    public var vocabularySize: Int { characters.count + 2 }
    public var endOfTextID: Int? { characters.count + 1 }

    /// The scalars of `corpus`, sorted.
    public init(corpus: String) {
        self.init(characters: Set(corpus.unicodeScalars).sorted().map { String($0) })
    }

    public init(characters: [String]) {
        self.characters = characters
        var index: [Unicode.Scalar: Int] = [:]
        for (i, c) in characters.enumerated() {
            guard let s = c.unicodeScalars.first, c.unicodeScalars.count == 1 else { preconditionFailure("CharacterTokenizer: '\(c)' is not one scalar") }
            index[s] = i + 1
        }
        self.index = index
    }

    enum CodingKeys: String, CodingKey { case characters }
    public init(from decoder: Decoder) throws {
        self.init(characters: try decoder.container(keyedBy: CodingKeys.self).decode([String].self, forKey: .characters))
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(characters, forKey: .characters)
    }

    public func encode(_ text: String, allowSpecial: Bool = true) -> [Int] {
        var ids: [Int] = []
        let parts = allowSpecial ? text.components(separatedBy: BytePairTokenizer.endOfText) : [text]
        for (n, part) in parts.enumerated() {
            if n > 0 { ids.append(endOfTextID!) }
            for s in part.unicodeScalars { ids.append(index[s] ?? 0) }
        }
        return ids
    }

    public func decode(_ ids: [Int]) -> String {
        var out = ""
        for id in ids {
            precondition(id >= 0 && id < vocabularySize, "decode: id \(id) is not in the vocabulary of \(vocabularySize)")
            if id == 0 { out += "\u{FFFD}" } else if id == endOfTextID { out += BytePairTokenizer.endOfText } else { out += characters[id - 1] }
        }
        return out
    }
}

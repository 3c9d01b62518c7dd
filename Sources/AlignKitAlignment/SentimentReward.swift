// A programmatic sentiment reward over the VADER lexicon (Hutto & Gilbert 2014: 7,500 words and
// emoticons with a mean human valence rating in [-4, 4]), the ground truth of the DPO paper's
// controlled-sentiment experiment. The scorer is our own, using the rules and constants the VADER
// paper reports:
//
//  - words are lower-cased runs of letters and apostrophes; a word in the lexicon contributes its valence v;
//  - an intensifier just before it ("very", "so", "most", …) adds 0.293 in the direction of v, a
//    dampener ("slightly", "barely", …) removes 0.293; the effect halves for the word two back;
//  - a negation among the three words before it ("not", "never", "no", any "…n't") scales v by -0.74;
//  - after the last "but", valences count 1.5×; before it, 0.5×;
//  - a word in capitals when the text is not all capitals adds 0.733 in the direction of v;
//  - each "!" (up to four) adds 0.292 in the direction of the sum.
//
// The sum S is normalized to [-1, 1] as S / √(S² + 15), so a reward is comparable across lengths.
import AlignKitText
import Foundation

/// A reward for a completion (and its prompt), such as a sentiment score or a reward model.
public protocol RewardFunction: Sendable {
    func reward(prompt: String, completion: String) -> Float
    /// Rewards of many (prompt, completion) pairs; a model-based reward scores them in batches.
    func rewards(_ pairs: [(prompt: String, completion: String)]) -> [Float]
}

extension RewardFunction {
    public func rewards(_ pairs: [(prompt: String, completion: String)]) -> [Float] { pairs.map { reward(prompt: $0.prompt, completion: $0.completion) } }
}

public struct SentimentLexicon: RewardFunction {
    /// Lower-cased word → mean valence in [-4, 4].
    public let valences: [String: Float]

    static let boosters: Set<String> = ["absolutely", "amazingly", "awfully", "completely", "considerably", "decidedly", "deeply",
                                        "enormously", "entirely", "especially", "exceptionally", "extremely", "fabulously", "greatly",
                                        "highly", "hugely", "incredibly", "intensely", "most", "much", "particularly", "purely", "quite",
                                        "really", "remarkably", "so", "substantially", "thoroughly", "totally", "tremendously", "truly",
                                        "utterly", "very", "more", "too", "exceeding", "passing", "full", "wondrous"]
    static let dampeners: Set<String> = ["almost", "barely", "hardly", "scarcely", "slightly", "somewhat", "partly", "marginally",
                                         "little", "less", "occasionally", "sometimes"]
    static let negations: Set<String> = ["not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "cannot",
                                         "without", "ne'er", "naught", "nought", "nay"]
    static let boost: Float = 0.293, negation: Float = -0.74, capitals: Float = 0.733, exclamation: Float = 0.292

    public init(valences: [String: Float]) { self.valences = valences }

    /// Reads `vader_lexicon.txt`: tab-separated token, mean valence, standard deviation, ratings.
    public init(contentsOf url: URL) throws {
        let data = try readFile(url)
        guard let text = String(data: data, encoding: .utf8) else { throw DataFileError(file: url.path, "is not UTF-8 text") }
        var valences: [String: Float] = [:]
        for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() where !line.isEmpty {  // "\r\n" is one Character
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 2 else { throw DataFileError(file: url.path, line: i + 1, "expected a token and a valence separated by a tab") }
            guard let v = Float(fields[1]), v.isFinite, abs(v) <= 4 else {
                throw DataFileError(file: url.path, line: i + 1, field: "valence", "'\(fields[1])' is not a number in [-4, 4]")
            }
            valences[fields[0].lowercased()] = v
        }
        guard !valences.isEmpty else { throw DataFileError(file: url.path, "holds no entries") }
        self.valences = valences
    }

    /// The lexicon of the cached `vader` data set (`alignkit data fetch vader`), or of `path`.
    public static func load(_ path: String? = nil) throws -> SentimentLexicon {
        try SentimentLexicon(contentsOf: DataCache.locate(.vader, explicit: path))
    }

    /// Words (letters and apostrophes) with whether each was written in capitals.
    static func words(_ text: String) -> [(word: String, capitals: Bool)] {
        var result: [(String, Bool)] = []
        var current = ""
        func flush() {
            if !current.isEmpty {
                let trimmed = current.trimmingCharacters(in: CharacterSet(charactersIn: "'"))
                if !trimmed.isEmpty { result.append((trimmed.lowercased(), trimmed.count > 1 && trimmed == trimmed.uppercased())) }
            }
            current = ""
        }
        for ch in text {
            if ch.isLetter || ch == "'" || ch == "’" { current.append(ch == "’" ? "'" : ch) } else { flush() }
        }
        flush()
        return result
    }

    /// The unnormalized sum of valences (see the file's comment).
    public func valenceSum(_ text: String) -> Float {
        let words = Self.words(text)
        let allCapitals = !words.isEmpty && words.allSatisfy(\.capitals)
        var sum: Float = 0
        var afterBut = false
        var beforeBut: Float = 0
        for (i, (word, caps)) in words.enumerated() {
            if word == "but" {
                afterBut = true
                beforeBut += sum   // everything before the last "but"
                sum = 0
                continue
            }
            guard var v = valences[word], !Self.boosters.contains(word) else { continue }
            let direction: Float = v >= 0 ? 1 : -1
            for back in 1...2 where i - back >= 0 {
                let w = words[i - back].word
                let scale: Float = back == 1 ? 1 : 0.5
                if Self.boosters.contains(w) { v += direction * Self.boost * scale }
                if Self.dampeners.contains(w) { v -= direction * Self.boost * scale }
            }
            if caps && !allCapitals { v += direction * Self.capitals }
            for back in 1...3 where i - back >= 0 {
                let w = words[i - back].word
                if Self.negations.contains(w) || w.hasSuffix("n't") { v *= Self.negation; break }
            }
            sum += v
        }
        if afterBut { sum = beforeBut * 0.5 + sum * 1.5 }
        let bangs = min(text.reduce(0) { $0 + ($1 == "!" ? 1 : 0) }, 4)
        if sum != 0 { sum += (sum > 0 ? 1 : -1) * Float(bangs) * Self.exclamation }
        return sum
    }

    /// The sentiment of `text` in [-1, 1]: S / √(S² + 15).
    public func score(_ text: String) -> Float {
        let s = valenceSum(text)
        return s / (s * s + 15).squareRoot()
    }

    /// The completion's sentiment (the prompt is not scored).
    public func reward(prompt: String, completion: String) -> Float { score(completion) }
}

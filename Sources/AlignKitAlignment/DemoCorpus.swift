// The demo's embedded world: short reviews written by a small grammar, and the reward that judges
// them — a lexicon of this grammar's own words scored by the same rules as the VADER reward
// (negation, intensifiers, "but", exclamation marks). Everything is generated from a seed, so the
// demo needs no download and every run sees the same data.
//
//   the soup was lovely and the waiter was very kind .
//   i thought the ending was not good but the music was superb !
//
// Adjectives are drawn positive, negative or neutral with equal chances, so the pretrained model
// writes reviews of every mood, and aligning it toward the reward has somewhere to go.
import Foundation

public enum DemoCorpus {
    static let subjects = ["the soup", "the room", "the film", "the waiter", "the music", "the ending", "the staff", "the bread",
                           "the view", "the service", "the coffee", "the plot", "the hotel", "the garden", "the book", "the show",
                           "the bed", "the price", "the cake", "the actors"]
    public static let verbs = ["was", "seemed", "felt", "looked", "tasted", "sounded"]
    static let positive: [String: Float] = ["wonderful": 2.7, "lovely": 2.8, "great": 3.1, "delightful": 2.9, "superb": 2.9,
                                            "charming": 2.4, "excellent": 2.7, "pleasant": 2.3, "good": 1.9, "fantastic": 2.6,
                                            "kind": 2.4, "warm": 0.9, "perfect": 2.7, "fresh": 1.3, "beautiful": 2.9]
    static let negative: [String: Float] = ["awful": -2.0, "terrible": -2.1, "bland": -0.6, "rude": -2.0, "boring": -1.3,
                                            "dreadful": -2.0, "poor": -2.1, "bad": -2.5, "horrible": -2.5, "dull": -1.7,
                                            "cold": -0.7, "stale": -1.4, "ugly": -2.3, "noisy": -0.7, "dirty": -1.9]
    static let neutral = ["long", "quiet", "small", "late", "brief", "ordinary", "plain", "simple", "large", "new", "old", "busy"]
    static let intensifiers = ["very", "really", "quite", "so", "extremely"]
    static let openers = ["i thought", "we found", "honestly ,", "overall ,", "to be fair ,", "sadly ,", "happily ,", "in short ,"]

    /// The reward: the sentiment of a completion under the grammar's lexicon, in [-1, 1].
    public static var reward: SentimentLexicon {
        SentimentLexicon(valences: positive.merging(negative) { a, _ in a }.merging(["happily": 1.6, "sadly": -1.7]) { a, _ in a })
    }

    /// `count` reviews, one per line (deterministic for a seed).
    public static func reviews(count: Int, seed: UInt64 = 1) -> [String] {
        var g = RandomGenerator(seed: seed)
        func pick<T>(_ xs: [T]) -> T { xs[Int(g.next() % UInt64(xs.count))] }
        func chance(_ p: Double) -> Bool { Double(g.next() % 10_000) / 10_000 < p }
        let pos = positive.keys.sorted(), neg = negative.keys.sorted()
        func adjective() -> String {
            var word: String
            switch g.next() % 3 {
            case 0: word = pick(pos)
            case 1: word = pick(neg)
            default: word = pick(neutral)
            }
            if chance(0.12) { word = "not " + word }
            if chance(0.25) { word = pick(intensifiers) + " " + word }
            return word
        }
        func clause() -> String { "\(pick(subjects)) \(pick(verbs)) \(adjective())" }
        return (0..<count).map { _ in
            var review = chance(0.25) ? pick(openers) + " " + clause() : clause()
            if chance(0.6) { review += (chance(0.25) ? " but " : " and ") + clause() }
            review += chance(0.2) ? " !" : " ."
            if chance(0.3) { review += " " + clause() + (chance(0.2) ? " !" : " .") }
            return review
        }
    }

    /// Prompts: a review's first words up to and including its first verb ("the soup was"), so the
    /// completion chooses the judgement.
    public static func prompts(count: Int, seed: UInt64) -> [String] {
        let verbSet = Set(verbs)
        return reviews(count: count, seed: seed).map { review in
            let words = review.split(separator: " ")
            let end = (words.firstIndex { verbSet.contains(String($0)) } ?? 1) + 1
            return words[..<min(end, words.count)].joined(separator: " ")
        }
    }
}

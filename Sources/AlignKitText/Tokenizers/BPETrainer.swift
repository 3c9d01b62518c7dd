// Training a byte-level BPE vocabulary (Sennrich et al. 2016, with GPT-2's byte-level base): the
// corpus is pre-tokenized, each piece starts as its UTF-8 bytes (ids 0-255), and the most frequent
// adjacent pair (counted over pieces weighted by frequency; ties broken by the smaller pair of ids)
// is merged into a new token, until the vocabulary has the requested size or no pair occurs twice.
// Merge order is rank order, so `BytePairTokenizer` replays the merges when it encodes (a pair's rank
// is the step that learned it, as in `merges.txt`).

public enum BPETrainer {
    struct Pair: Hashable, Comparable {
        let a: Int, b: Int
        static func < (l: Pair, r: Pair) -> Bool { (l.a, l.b) < (r.a, r.b) }
    }

    /// A tokenizer with `vocabularySize` regular tokens (256 bytes + merges) learned from `texts`,
    /// followed by `specialTokens` (ids after the regular ones). `progress` gets (merges done, target).
    public static func train(texts: [String], vocabularySize: Int, specialTokens: [String] = [BytePairTokenizer.endOfText],
                             progress: (Int, Int) -> Void = { _, _ in }) -> BytePairTokenizer {
        precondition(vocabularySize >= 256, "BPETrainer: vocabularySize \(vocabularySize) must be at least 256 (the bytes)")
        // Distinct pieces and their frequencies.
        var frequency: [String: Int] = [:]
        for text in texts {
            for piece in GPT2PreTokenizer.split(text) { frequency[String(piece), default: 0] += 1 }
        }
        let sortedPieces = frequency.keys.sorted()
        var words = sortedPieces.map { Array($0.utf8).map(Int.init) }
        let counts = sortedPieces.map { frequency[$0]! }
        var tokenBytes: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        var merges: [(left: Int, right: Int, rank: Int)] = []
        var idOfBytes = Dictionary(uniqueKeysWithValues: tokenBytes.enumerated().map { ($0.element, $0.offset) })

        var pairCounts: [Pair: Int] = [:]
        var wordsWithPair: [Pair: Set<Int>] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let pair = Pair(a: word[i], b: word[i + 1])
                pairCounts[pair, default: 0] += counts[w]
                wordsWithPair[pair, default: []].insert(w)
            }
        }
        let target = vocabularySize - 256
        while tokenBytes.count < vocabularySize {
            var best: Pair?, bestCount = 1
            for (pair, count) in pairCounts where count > bestCount || (count == bestCount && best != nil && pair < best!) {
                if count >= 2 { best = pair; bestCount = count }
            }
            guard let pair = best else { break }
            let bytes = tokenBytes[pair.a] + tokenBytes[pair.b]
            // Two pairs can spell the same bytes (a+bc, ab+c): the second merge reuses the first one's token.
            let newID = idOfBytes[bytes] ?? tokenBytes.count
            if newID == tokenBytes.count { tokenBytes.append(bytes); idOfBytes[bytes] = newID }
            merges.append((pair.a, pair.b, merges.count))
            for w in wordsWithPair[pair] ?? [] {
                let old = words[w]
                // Remove the word's old pairs, merge, add its new pairs.
                for i in 0..<(old.count - 1) {
                    let p = Pair(a: old[i], b: old[i + 1])
                    let left = pairCounts[p, default: 0] - counts[w]
                    pairCounts[p] = left > 0 ? left : nil
                }
                var merged: [Int] = []
                merged.reserveCapacity(old.count)
                var i = 0
                while i < old.count {
                    if i + 1 < old.count && old[i] == pair.a && old[i + 1] == pair.b { merged.append(newID); i += 2 } else { merged.append(old[i]); i += 1 }
                }
                words[w] = merged
                if merged.count > 1 {
                    for j in 0..<(merged.count - 1) {
                        let p = Pair(a: merged[j], b: merged[j + 1])
                        pairCounts[p, default: 0] += counts[w]
                        wordsWithPair[p, default: []].insert(w)
                    }
                }
            }
            pairCounts[pair] = nil
            wordsWithPair[pair] = nil
            let done = tokenBytes.count - 256
            if done % 100 == 0 || done == target { progress(done, target) }
        }
        var specials: [String: Int] = [:]
        for (offset, token) in specialTokens.enumerated() { specials[token] = tokenBytes.count + offset }
        let vocabulary = Dictionary(uniqueKeysWithValues: tokenBytes.enumerated().map { ($0.offset, $0.element) })
        do { return try BytePairTokenizer(vocabulary: vocabulary, merges: merges, specialTokens: specials, wholePieceLookup: false) }
        catch { preconditionFailure("BPETrainer: \(error.message)") }
    }
}

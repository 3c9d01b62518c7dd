// Lesson `word2vec` (Mikolov et al. 2013): word vectors learned with negative sampling on Shakespeare.
//   skip-gram: each center word's vector v_c predicts the words around it
//   CBOW:      the mean of the context vectors predicts the center word
//   loss per pair = -log σ(u_o · h) - Σ_{k negatives} log σ(-u_k · h),   negatives ~ unigram^0.75
// Trained as the original: sequential per-pair SGD touching only the rows involved, lr 0.025 → 0.
// Frequent words are subsampled (kept with probability √(t / f) + t / f, t = 1e-4).
import AlignKitNN
import AlignKitText
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum Word2VecLesson {
    public enum Mode: String, Sendable, CaseIterable { case skipGram = "skip-gram", cbow = "CBOW" }

    public struct Result: Sendable {
        public let mode: Mode
        public let initialLoss: Float, finalLoss: Float
        /// For each probe word, its nearest neighbours by cosine similarity.
        public let neighbours: [String: [String]]
    }

    public static func run(corpus: WordCorpus, mode: Mode = .skipGram, dimension: Int = 64, window: Int = 4,
                           negatives: Int = 5, epochs: Int = 2, learningRate: Float = 0.025,
                           probes: [String] = ["king", "queen", "lord", "love", "death"], seed: UInt64 = 0,
                           report: (String) -> Void = { _ in }) -> Result {
        var g = RandomGenerator(seed: seed)
        let v = corpus.words.count
        // Input vectors start small and random, output vectors at zero (as word2vec). [V, D] each.
        var input = Tensor(randomUniform: [v, dimension], lowerBound: -0.5 / Float(dimension),
                           upperBound: 0.5 / Float(dimension), generator: &g).scalars
        var output = [Float](repeating: 0, count: v * dimension)
        // Negative-sampling table: unigram counts to the 3/4 power.
        let weights = corpus.counts.map { Double($0).squareRoot() * Double($0).squareRoot().squareRoot() }
        let total = weights.reduce(0, +)
        var table: [Int] = []
        for (id, w) in weights.enumerated() { table += [Int](repeating: id, count: max(1, Int(w / total * 1_000_000))) }
        let frequency = corpus.counts.map { Double($0) / Double(corpus.ids.count) }
        report("\(mode.rawValue): \(corpus.ids.count) words, vocabulary \(v), dimension \(dimension), window \(window), \(negatives) negatives")

        // Per-pair SGD with sparse updates, as the original word2vec: for the hidden vector h (the
        // center's input vector, or the mean of the context's), each target word o with label
        // ℓ ∈ {1 (positive), 0 (negative)} gets  g = lr (ℓ - σ(u_o·h)),  u_o += g h,  and h += Σ g u_o.
        let d = dimension
        var initial: Float?, last: Float = 0
        let totalExamples = epochs * corpus.ids.count
        var processed = 0
        var hidden = [Float](repeating: 0, count: d), update = [Float](repeating: 0, count: d)
        for epoch in 1...epochs {
            var epochLoss: Double = 0, examples = 0
            let kept = corpus.ids.filter { id in
                let ratio = 1e-4 / frequency[id]
                return Double(g.nextUniform()) < ratio.squareRoot() + ratio
            }
            for (i, center) in kept.enumerated() {
                processed += 1
                let lr = learningRate * max(0.0001, 1 - Float(processed) / Float(totalExamples))
                let reach = 1 + g.nextInt(below: window)
                let around = (max(0, i - reach)..<min(kept.count, i + reach + 1)).filter { $0 != i }.map { kept[$0] }
                if around.isEmpty { continue }
                // Skip-gram: one example per context word, h = v_center; CBOW: one example, h = mean v_context.
                let examplesHere: [(inputs: [Int], target: Int)] = mode == .skipGram
                    ? around.map { ([center], $0) } : [(around, center)]
                for (inputs, target) in examplesHere {
                    for j in 0..<d { hidden[j] = 0; update[j] = 0 }
                    for w in inputs { for j in 0..<d { hidden[j] += input[w * d + j] } }
                    let scale = 1 / Float(inputs.count)
                    for j in 0..<d { hidden[j] *= scale }
                    var loss: Float = 0
                    for k in 0...negatives {
                        let word = k == 0 ? target : table[g.nextInt(below: table.count)]
                        if k > 0 && word == target { continue }
                        let label: Float = k == 0 ? 1 : 0
                        var dot: Float = 0
                        for j in 0..<d { dot += output[word * d + j] * hidden[j] }
                        let probability = Tensor.sigmoidScalar(dot)
                        loss -= label == 1 ? logf(max(probability, 1e-7)) : logf(max(1 - probability, 1e-7))
                        let step = lr * (label - probability)
                        for j in 0..<d {
                            update[j] += step * output[word * d + j]
                            output[word * d + j] += step * hidden[j]
                        }
                    }
                    for w in inputs { for j in 0..<d { input[w * d + j] += update[j] } }
                    if initial == nil { initial = loss }
                    epochLoss += Double(loss); examples += 1
                }
            }
            last = Float(epochLoss / Double(max(examples, 1)))
            report("epoch \(epoch): \(examples) training examples, mean loss \(last)")
        }
        let neighbours = nearest(Tensor(input, shape: [v, d]), corpus: corpus, probes: probes, count: 8)
        for probe in probes { if let list = neighbours[probe] { report("\(probe): \(list.joined(separator: ", "))") } }
        return Result(mode: mode, initialLoss: initial ?? 0, finalLoss: last, neighbours: neighbours)
    }

    /// The `count` nearest words to each probe by cosine similarity of the input vectors.
    public static func nearest(_ vectors: Tensor, corpus: WordCorpus, probes: [String], count: Int) -> [String: [String]] {
        let norms = vectors.raised(toPower: 2).sum(alongAxes: [1]).squareRoot() + 1e-8
        let unit = vectors / norms
        var result: [String: [String]] = [:]
        for probe in probes {
            guard let id = corpus.index[probe] else { continue }
            let similarity = matmul(unit, unit.gathering(atIndices: [id]), transposeB: true).scalars
            let ranked = similarity.indices.filter { $0 != id }.sorted { similarity[$0] > similarity[$1] }
            result[probe] = ranked.prefix(count).map { corpus.words[$0] }
        }
        return result
    }
}

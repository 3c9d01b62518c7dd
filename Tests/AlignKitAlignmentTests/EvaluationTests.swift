// The sentiment reward's rules on hand-made sentences, the real lexicon's format (CRLF lines), batched
// sampling against one-at-a-time sampling, pair labelling and the KL estimate.
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite("Evaluation")
struct EvaluationTests {
    static let lexicon = SentimentLexicon(valences: ["good": 1.9, "bad": -2.5, "love": 3.2, "dead": -3.3, "fair": 1.3])

    @Test func sentimentRules() {
        let l = Self.lexicon
        #expect(l.valenceSum("a good day") == 1.9)
        #expect(abs(l.valenceSum("a very good day") - (1.9 + 0.293)) < 1e-6)            // intensifier
        #expect(abs(l.valenceSum("a slightly good day") - (1.9 - 0.293)) < 1e-6)        // dampener
        #expect(abs(l.valenceSum("it is not good") - 1.9 * -0.74) < 1e-6)               // negation
        #expect(abs(l.valenceSum("it isn't so very good") - (1.9 + 0.293 + 0.293 * 0.5) * -0.74) < 1e-6)
        #expect(abs(l.valenceSum("good, but bad") - (1.9 * 0.5 - 2.5 * 1.5)) < 1e-6)     // "but"
        #expect(abs(l.valenceSum("good but bad but fair") - ((1.9 - 2.5) * 0.5 + 1.3 * 1.5)) < 1e-6)   // all before the last "but"
        #expect(abs(l.valenceSum("a GOOD day") - (1.9 + 0.733)) < 1e-6)                // capitals in mixed case
        #expect(l.valenceSum("GOOD DAY") == 1.9)                                         // all capitals: no emphasis
        #expect(abs(l.valenceSum("good!!!!!!") - (1.9 + 4 * 0.292)) < 1e-6)            // at most four "!"
        #expect(l.valenceSum("nothing here") == 0)
        // Normalized to [-1, 1], monotone in the sum.
        let s = l.score("love love love love love love")
        #expect(s > 0.97 && s < 1 && l.score("bad") < 0 && l.score("bad") > -1)
        #expect(l.score("good") < l.score("very good"))
    }

    @Test func realLexiconReadsEveryLine() throws {
        let url = sharedData.appendingPathComponent("vader/vader_lexicon.txt")
        let l = try SentimentLexicon(contentsOf: url)
        #expect(l.valences.count > 7000)   // 7,520 lines, CRLF-terminated
        #expect(l.valences["good"] == 1.9 && l.valences["hate"]! < -2)
        #expect(l.score("O, she doth teach the torches to burn bright! Sweet love, fair and good.") > 0.8)
        #expect(l.score("Murder most foul, hateful death and bloody war.") < -0.8)
    }

    @Test func malformedLexiconLineIsNamed() throws {
        let url = try writeLines(["good\t1.9\t0.9\t[]", "bad\tworse\t1\t[]"], name: "lexicon.txt")
        #expect(throws: DataFileError(file: url.path, line: 2, field: "valence", "'worse' is not a number in [-4, 4]")) {
            try SentimentLexicon(contentsOf: url)
        }
    }

    static func tinyModel() throws -> (GPT, BytePairTokenizer) {
        let folder = fixtures.appendingPathComponent("trl-dpo/policy")
        return (try GPT(contentsOf: folder), try BytePairTokenizer(contentsOf: folder))
    }

    @Test func batchedSamplingMatchesOneAtATime() throws {
        let (model, _) = try Self.tinyModel()
        var options = SamplingOptions()
        options.maximumNewTokens = 12
        options.seed = 5
        let batched = Sampler.generate(model, prompt: [40, 33, 45], count: 3, options: options)
        for row in 0..<3 {
            var single = options
            single.seed = options.seed + UInt64(row)
            #expect(batched[row] == Sampler.generate(model, prompt: [40, 33, 45], options: single))
        }
    }

    @Test func evaluationOfAModelAgainstItselfHasZeroKL() throws {
        let (model, tokenizer) = try Self.tinyModel()
        var settings = GenerationSettings()
        settings.samplesPerPrompt = 3
        settings.maximumNewTokens = 8
        let prompts = ["To be", "The rest is"]
        let result = evaluatePolicy(model, reference: model, tokenizer: tokenizer, prompts: prompts, reward: Self.lexicon, settings: settings)
        #expect(result.samples == 6)
        #expect(abs(result.kl!) < 1e-9)
        #expect(result.winRate! >= 0 && result.winRate! <= 1)
        // Against a different model the estimate is a mean of log-ratios of real samples: finite, and
        // positive on average for a policy sampling its own likely text.
        let other = try GPT(contentsOf: fixtures.appendingPathComponent("trl-dpo/reference"))
        settings.samplesPerPrompt = 16
        let versus = evaluatePolicy(model, reference: other, tokenizer: tokenizer, prompts: prompts, reward: Self.lexicon, settings: settings)
        #expect(versus.kl!.isFinite && versus.kl! > 0)
    }

    @Test func labellingKeepsTheBestAndWorst() {
        func sample(_ text: String, _ reward: Float) -> SampledCompletion {
            SampledCompletion(prompt: "p", promptIDs: [1], completionIDs: [2], text: text, reward: reward)
        }
        let pairs = labelPairs([[sample(" a", 0.1), sample(" b", 0.9), sample(" c", -0.4)], [sample(" x", 0), sample(" y", 0)],
                                [sample(" ", 0.5), sample(" z", -0.5), sample(" w", 0.2)]])
        #expect(pairs.count == 2)
        #expect(pairs[0].chosen == " b" && pairs[0].rejected == " c")
        #expect(pairs[1].chosen == " w" && pairs[1].rejected == " z")   // the blank completion is not used
    }
}

@Suite("Reward–KL frontier")
struct FrontierTests {
    @Test func frontierKeepsUndominatedPointsAndTheSVGParses() throws {
        func point(_ step: Int, _ kl: Double, _ reward: Double) -> FrontierPoint {
            FrontierPoint(checkpoint: "c\(step)", step: step, kl: kl, klStandardError: 0.1, reward: reward, rewardStandardError: 0.01)
        }
        // Step 30 is beaten by step 20 (less KL, more reward); the rest trade KL for reward.
        let run = FrontierRun(name: "dpo <β=0.1>", points: [point(30, 5, 0.4), point(10, 1, 0.2), point(20, 3, 0.5), point(40, 8, 0.7)])
        #expect(run.points.map(\.step) == [10, 20, 30, 40])
        #expect(run.points.map(\.onFrontier) == [true, true, false, true])
        let frontier = RewardKLFrontier(referenceReward: 0.02, runs: [run, FrontierRun(name: "ppo", points: [point(50, 2, 0.3)])],
                                        prompts: 10, samplesPerPrompt: 4)
        let svg = frontier.svg()
        #expect(svg.components(separatedBy: "<circle").count - 1 == 5 + 2)   // the points, the reference and its legend mark
        #expect(svg.contains("dpo &lt;β=0.1&gt;"))
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        let decoded = try JSONDecoder().decode(RewardKLFrontier.self, from: frontier.json())
        #expect(decoded.runs[0].points[2].onFrontier == false && decoded.referenceReward == 0.02)
    }
}

@Suite("Prompt splits")
struct PromptSplitTests {
    @Test func trainAndHeldOutPromptsAreDisjoint() {
        // 200 lines; some share their first words with others so a prompt could fall in both splits.
        let text = (0..<200).map { "the line number \($0 % 150) of the corpus goes on" }.joined(separator: "\n")
        let train = corpusPrompts(text, count: 500, words: 4, seed: 1, split: .train)
        let heldOut = corpusPrompts(text, count: 500, words: 4, seed: 2, split: .heldout)
        #expect(!train.isEmpty && !heldOut.isEmpty)
        #expect(Set(train).isDisjoint(with: heldOut))
        #expect(Set(train).union(heldOut).count <= 150)
    }
}

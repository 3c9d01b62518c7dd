// Each primer lesson's claim, asserted.
import AlignKitModels
import AlignKitNN
import AlignKitText
import AlignKitTestSupport
import Foundation
import Testing

@Suite("Primer lessons")
struct PrimerTests {
    @Test func mlpHandDerivedBackpropagationMatchesAutodiff() {
        let result = MLPLesson.run(steps: 3000)
        #expect(result.largestGradientDifference <= 1e-6)
        #expect(result.accuracy == 1 && result.autodiffAccuracy == 1)
        #expect(result.finalCost < result.initialCost / 10)
        // Same start, same rate, gradients equal to 1e-8: the two trainings end at the same cost.
        #expect(abs(result.finalCost - result.autodiffFinalCost) < 1e-3)
    }

    @Test func cnnReachesNinetyFivePercentOnHeldOutDigits() throws {
        let response = CNNLesson.edgeResponse()
        #expect(abs(response[0, 1] - 2.7) < 1e-5 && abs(response[2, 1] + 2.7) < 1e-5)   // top edge high, bottom low
        #expect(response.slice(alongAxis: 0, range: 1..<2).absoluteValue().max().scalar < 1e-6)  // uniform middle: 0
        let digits = try DigitsDataset(contentsOf: sharedData.appendingPathComponent("digits/digits.csv.gz"))
        let result = CNNLesson.run(digits: digits, epochs: 10)
        #expect(result.testAccuracy >= 0.95)
    }

    @Test func transformerAttentionIsCausalAndItLearnsTheNextWord() {
        let result = TransformerLesson.run(steps: 150)
        for i in 0..<4 {
            #expect(abs(result.attention[i].reduce(0, +) - 1) < 1e-5)
            for j in (i + 1)..<4 where j < 4 { #expect(result.attention[i][j] == 0) }
        }
        #expect(result.predictions == ["is", "your", "name", "<end>"])
        #expect(result.finalLoss < result.initialLoss / 10)
    }

    @Test func attentionVariantsTradeParametersAndCache() {
        let result = AttentionLesson.run()
        let (mha, gqa, mqa) = (result.variants[0], result.variants[1], result.variants[2])
        #expect(mha.parameterCount > gqa.parameterCount && gqa.parameterCount > mqa.parameterCount)
        #expect(mha.kvCacheBytes == 4 * gqa.kvCacheBytes && gqa.kvCacheBytes == 2 * mqa.kvCacheBytes)
        #expect(mha.kvCacheBytes == 12 * 1024 * 2 * 8 * 64 * 4)
        #expect(result.gqaVersusMHADifference == 0)
    }

    @Test func initializationPreservesOrBreaksVariance() {
        let traces = Dictionary(uniqueKeysWithValues: InitLesson.run().map { ($0.name, $0.variances) })
        let he = traces["He N(0,2/n) + ReLU"]!, linear = traces["N(0,1/n) + linear"]!
        #expect(he[50] > 0.1 && he[50] < 10)
        #expect(linear[50] > 0.1 && linear[50] < 10)
        #expect(traces["N(0,1) + ReLU"]![10] > 1e10)           // explodes: ×n/2 per layer
        #expect(traces["N(0,1/n) + ReLU"]![50] < 1e-10)        // vanishes: ×1/2 per layer
    }

    @Test func optimizersBehaveAsTheSeedSays() {
        let result = OptimizersLesson.run(quadraticSteps: 100, mlpSteps: 200, runs: 100)
        let quadratic = Dictionary(uniqueKeysWithValues: result.quadratic.map { ($0.name, $0.value) })
        for (_, value) in quadratic { #expect(value < 13) }      // f(1, 1) = 13
        #expect(quadratic["momentum"]! < quadratic["SGD"]! && quadratic["Nesterov"]! < quadratic["SGD"]!)
        #expect(result.adaGradSteps[0] > result.adaGradSteps[1] && result.adaGradSteps[1] > result.adaGradSteps[2])
        #expect(result.adaGradSteps[2] < result.adaGradSteps[0] / 3)
        #expect(result.averagedGap <= result.bound)
        let mlp = Dictionary(uniqueKeysWithValues: result.mlp.map { ($0.name, $0.value) })
        #expect(mlp["Adam"]! < mlp["SGD"]!)
    }

    @Test func surrogateLossesTrainAndZeroOneCannot() {
        let outcomes = LossesLesson.run()
        for outcome in outcomes {
            if outcome.loss == .zeroOne {
                #expect(outcome.distanceMoved == 0 && outcome.finalError == outcome.initialError)
            } else {
                #expect(outcome.finalError < 0.1 && outcome.finalError < outcome.initialError)
            }
        }
    }

    @Test func lstmRemembersAcrossGapsWhereSimpleRNNsForget() {
        let outcomes = RNNLesson.run(gaps: [5, 40], steps: 400)
        func accuracy(_ model: String, _ gap: Int) -> Float { outcomes.first { $0.model == model && $0.gap == gap }!.accuracy }
        for model in ["Elman", "Jordan", "LSTM"] { #expect(accuracy(model, 5) >= 0.9) }
        #expect(accuracy("LSTM", 40) >= 0.9)
        #expect(accuracy("Elman", 40) <= 0.7 && accuracy("Jordan", 40) <= 0.7)   // chance is 0.5
    }

    @Test func langevinWithALearnedScoreFindsTheModes() {
        let result = ScoreLesson.run(samples: 600)
        #expect(result.finalLoss < result.initialLoss / 2)
        #expect(result.nearModeFraction >= 0.8)
        for share in result.modeShares { #expect(share >= 0.1) }   // every mode is found
    }

    @Test func normsNormalizeAndPreNormTrainsDeepStacks() {
        let result = NormsLesson.run()
        #expect(result.batchNormMean < 1e-5 && abs(result.batchNormVariance - 1) < 1e-3)
        #expect(result.layerNormMean < 1e-5 && abs(result.layerNormVariance - 1) < 1e-3)
        #expect(abs(result.rmsNormRMS - 1) < 1e-3)
        for (norm, g) in zip(result.weightNormNorms, result.weightNormMagnitudes) { #expect(abs(norm - g) < 1e-5) }
        #expect(result.preNormLoss < 0.1)
        #expect(result.postNormLoss > 10 * result.preNormLoss)
    }

    @Test func vaeLearnsAndItsSamplesLookLikeDigits() throws {
        let digits = try DigitsDataset(contentsOf: sharedData.appendingPathComponent("digits/digits.csv.gz"))
        let result = VAELesson.run(digits: digits, epochs: 30)
        #expect(result.finalLoss < 0.7 * result.initialLoss)   // from ≈ 64 ln 2 = 44 at the start
        #expect(result.finalKL > 1)                            // the latent code carries information
        // Samples lie near real digits: the mean distance to the nearest training image is far below
        // that of uniform noise images (‖a - b‖² = ‖a‖² + ‖b‖² - 2 a·b, all pairs by one matmul).
        func meanNearestDistance(_ images: Tensor) -> Float {
            let a = images.reshaped(to: [-1, 64]), b = digits.images.reshaped(to: [-1, 64])
            let squared = a.raised(toPower: 2).sum(alongAxes: [1]) + b.raised(toPower: 2).sum(alongAxes: [1]).reshaped(to: [1, -1])
                - matmul(a, b, transposeB: true) * 2
            return squared.min(alongAxes: [1]).clamped(lower: 0).squareRoot().mean().scalar
        }
        let sampleDistance = meanNearestDistance(result.samples)
        let noiseDistance = meanNearestDistance(Tensor(randomUniform: [64, 1, 8, 8], seed: 9))
        #expect(sampleDistance < 0.5 * noiseDistance)
        // And they are of many classes, as a CNN trained on the digits reads them.
        let judge = CNNLesson.run(digits: digits, epochs: 6).network
        #expect(Set(CNNLesson.classify(judge, result.samples).labels).count >= 5)
        let image = PGM.grid(result.samples, columns: 8)
        #expect(image.starts(with: Array("P5\n288 288\n255\n".utf8)) && image.count == 15 + 288 * 288)
    }

    @Test func rewoundLotteryTicketsBeatRandomReinitialization() throws {
        let digits = try DigitsDataset(contentsOf: sharedData.appendingPathComponent("digits/digits.csv.gz"))
        let result = LotteryLesson.run(digits: digits, rounds: 14)
        #expect(result.finalSparsity > 0.9)
        #expect(result.rounds.filter { $0.sparsity >= 0.8 }.allSatisfy { $0.rewoundAccuracy >= result.denseAccuracy - 0.025 })
        #expect(result.randomReinitAccuracy <= result.finalRewoundAccuracy - 0.015)
    }

    /// Words of rank and title in the plays: kings, queens, dukes, earls, and forms of address.
    static let nobility: Set<String> = [
        "king", "queen", "prince", "princess", "duke", "duchess", "lord", "lady", "earl", "liege", "majesty", "highness",
        "sir", "madam", "cousin", "uncle", "cardinal", "emperor", "caesar", "henry", "richard", "edward", "harry",
        "margaret", "elizabeth", "isabel", "york", "lancaster", "gloster", "gloucester", "buckingham", "clarence",
        "suffolk", "somerset", "warwick", "exeter", "hereford", "dorset", "norfolk", "hastings", "rivers", "grey",
        "northumberland", "westmoreland", "bolingbroke", "mowbray", "salisbury", "lewis", "france", "england",
    ]

    @Test(arguments: [(Word2VecLesson.Mode.skipGram, 2), (.cbow, 5)])
    func word2vecPutsKingsAndQueensTogether(mode: Word2VecLesson.Mode, epochs: Int) throws {
        let corpus = try WordCorpus(contentsOf: sharedData.appendingPathComponent("shakespeare"))
        #expect(corpus.ids.count > 800_000 && corpus.index["king"] != nil)
        let result = Word2VecLesson.run(corpus: corpus, mode: mode, epochs: epochs, probes: ["king", "queen"])
        #expect(result.finalLoss < result.initialLoss)
        // Chance: about 50 of 9,119 words are in the set, so 8 random neighbours hold 0.04 of them.
        for probe in ["king", "queen"] {
            let hits = result.neighbours[probe]!.filter { Self.nobility.contains($0) }.count
            #expect(hits >= 3, "\(mode) \(probe): \(result.neighbours[probe]!)")
        }
    }
}

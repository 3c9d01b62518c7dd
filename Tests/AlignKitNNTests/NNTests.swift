// Losses, initializers, optimizers, schedules: hand-computed values, and a model that learns.
import AlignKitModels
import AlignKitNN
import AlignKitTestSupport
import Foundation
import Testing

@Suite("Losses")
struct LossTests {
    @Test func valuesMatchHandComputation() {
        // BCE(z = 0, y = 1) = ln 2; BCE(z = 2, y = 0) = ln(1 + e²) = 2.126928.
        #expect(abs(binaryCrossEntropy(logits: Tensor([0, 2]), labels: Tensor([1, 0])).scalar - (0.693147 + 2.126928) / 2) < 1e-5)
        // From probabilities: -(ln 0.8 + ln 0.6) / 2.
        #expect(abs(binaryCrossEntropy(probabilities: Tensor([0.8, 0.4]), labels: Tensor([1, 0])).scalar - 0.366985) < 1e-5)
        #expect(meanSquaredError(Tensor([1, 2]), Tensor([3, 2])).scalar == 2)
        #expect(abs(crossEntropy(logits: Tensor.zeros([2, 4]), labels: [1, 3]).scalar - 1.386294) < 1e-5)  // ln 4
    }

    @Test func crossEntropyIgnoreIndexAndSmoothing() {
        let logits = Tensor(rows: [[2, 0, -1], [0.5, 0.5, 3], [1, 1, 1]])
        let logP = logits.logSoftmax()
        // Row 1 ignored (-100): mean over rows 0 and 2 only.
        let plain = crossEntropy(logits: logits, labels: [0, -100, 2], ignoreIndex: -100).scalar
        #expect(abs(plain - (-(logP[0, 0] + logP[2, 2]) / 2)) < 1e-6)
        // Smoothing ε = 0.1: (1 - ε)(-log pᵧ) + ε mean_c(-log p_c).
        let smoothed = crossEntropy(logits: logits, labels: [0, 1, 2], labelSmoothing: 0.1).scalar
        var expected: Float = 0
        for (row, label) in [0, 1, 2].enumerated() {
            let uniform = -(logP[row, 0] + logP[row, 1] + logP[row, 2]) / 3
            expected += 0.9 * -logP[row, label] + 0.1 * uniform
        }
        #expect(abs(smoothed - expected / 3) < 1e-6)
        #expect(noMismatch(gradientMismatches([logits]) { crossEntropy(logits: $0[0], labels: [0, -100, 2], ignoreIndex: -100, labelSmoothing: 0.2) }, "CE"))
    }

    @Test func klDivergenceValue() {
        let p = Tensor([0.5, 0.5], shape: [1, 2]), q = Tensor([0.9, 0.1], shape: [1, 2])
        let kl = klDivergence(logProbabilitiesP: p.log(), logProbabilitiesQ: q.log()).scalar
        #expect(abs(kl - Float(0.5 * log(0.5 / 0.9) + 0.5 * log(0.5 / 0.1))) < 1e-6)
        #expect(klDivergence(logProbabilitiesP: p.log(), logProbabilitiesQ: p.log()).scalar == 0)
    }

    @Test func surrogateLossesOfSeed004() {
        let margins = Tensor([-1, 0.5, 2])
        #expect(abs(SurrogateLoss.zeroOne(margins: margins).scalar - 1.0 / 3) < 1e-6)
        #expect(abs(SurrogateLoss.exponential(margins: margins).scalar - Float((Foundation.exp(1.0) + Foundation.exp(-0.5) + Foundation.exp(-2.0)) / 3)) < 1e-5)
        #expect(abs(SurrogateLoss.logistic(margins: margins).scalar - Float((Foundation.log(1 + Foundation.exp(1.0)) + Foundation.log(1 + Foundation.exp(-0.5)) + Foundation.log(1 + Foundation.exp(-2.0))) / 3)) < 1e-5)
        #expect(abs(SurrogateLoss.hinge(margins: margins).scalar - Float((2 + 0.5 + 0) / 3)) < 1e-6)
        for loss in [SurrogateLoss.exponential, .logistic] {
            #expect(noMismatch(gradientMismatches([margins]) { loss(margins: $0[0]) }, "\(loss)"))
        }
    }

    @Test func bradleyTerry() {
        let chosen = Tensor([2, 0]), rejected = Tensor([1, 1])
        // -[log σ(1) + log σ(-1)] / 2
        #expect(abs(bradleyTerryLoss(chosenRewards: chosen, rejectedRewards: rejected).scalar - Float((Foundation.log(1 + Foundation.exp(-1.0)) + Foundation.log(1 + Foundation.exp(1.0))) / 2)) < 1e-5)
        let withMargin = bradleyTerryLoss(chosenRewards: chosen, rejectedRewards: rejected, margin: Tensor([1, 0])).scalar
        #expect(abs(withMargin - Float((Foundation.log(2.0) + Foundation.log(1 + Foundation.exp(1.0))) / 2)) < 1e-5)
        #expect(noMismatch(gradientMismatches([chosen, rejected]) { bradleyTerryLoss(chosenRewards: $0[0], rejectedRewards: $0[1]) }, "BT"))
    }
}

@Suite("Initializers")
struct InitializerTests {
    @Test(arguments: [Initializer.xavierUniform, .xavierNormal, .heUniform, .heNormal, .normal(standardDeviation: 0.3)])
    func varianceMatchesTheFormula(_ initializer: Initializer) {
        var g = RandomGenerator(seed: 1)
        let w = initializer.tensor([200, 300], generator: &g)
        let expected: Float
        switch initializer {
        case .xavierUniform, .xavierNormal: expected = 2.0 / 500
        case .heUniform, .heNormal: expected = 2.0 / 200
        case .normal(let sigma): expected = sigma * sigma
        case .zeros: expected = 0
        }
        // 60,000 draws: the sample variance's relative standard error is about √(2/n) ≈ 0.6%.
        #expect(abs(w.variance().scalar / expected - 1) < 0.03)
        #expect(abs(w.mean().scalar) < 0.02 * expected.squareRoot())   // standard error σ/√60,000 ≈ 0.004σ: 5 SE
    }

    @Test func fansOfConvolutionFilters() {
        #expect(Initializer.fans([16, 3, 5, 5]) == (75, 400))
        #expect(Initializer.fans([3, 7]) == (3, 7))
        var g = RandomGenerator(seed: 2)
        #expect(Initializer.zeros.tensor([2, 2], generator: &g).scalars == [0, 0, 0, 0])
    }
}

@Suite("Optimizers")
struct OptimizerTests {
    @Test func sgdAndMomentum() {
        var x = Tensor([1, -2])
        var sgd = SGD(learningRate: 0.1)
        sgd.update(&x, along: Tensor([0.5, 1]))
        #expect(x.scalars == [0.95, -2.1])
        var y = Tensor([1])
        var momentum = SGD(learningRate: 0.1, momentum: 0.9)
        momentum.update(&y, along: Tensor([1]))  // v = 0.1; θ = 0.9
        momentum.update(&y, along: Tensor([1]))  // v = 0.09 + 0.1 = 0.19; θ = 0.71
        #expect(abs(y.scalar - 0.71) < 1e-6)
    }

    @Test func nesterovEvaluatesTheGradientAtTheLookAhead() {
        // f(θ) = θ²/2, g(θ) = θ. θ₀ = 1, α = 0.1, β = 0.9.
        // Step 1: ϑ = 1, v = 0.1, θ = 0.9.  Step 2: ϑ = 0.9 - 0.09 = 0.81, v = 0.09 + 0.081 = 0.171, θ = 0.729.
        var theta = Tensor([1])
        var nesterov = SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)
        _ = nesterov.step(&theta) { ($0 * $0 * 0.5).sum() }
        #expect(abs(theta.scalar - 0.9) < 1e-6)
        _ = nesterov.step(&theta) { ($0 * $0 * 0.5).sum() }
        #expect(abs(theta.scalar - 0.729) < 1e-6)
    }

    @Test func adaGradAndRMSProp() {
        var x = Tensor([1])
        var adagrad = AdaGrad(learningRate: 0.1)
        adagrad.update(&x, along: Tensor([2]))   // n = 4: θ = 1 - 0.1 · 2/2 = 0.9
        adagrad.update(&x, along: Tensor([2]))   // n = 8: θ = 0.9 - 0.1 · 2/√8
        #expect(abs(x.scalar - Float(0.9 - 0.2 / 8.0.squareRoot())) < 1e-6)
        #expect(abs(adagrad.effectiveStepSizes[0].scalar - Float(0.1 / 8.0.squareRoot())) < 1e-6)
        var y = Tensor([1])
        var rmsprop = RMSProp(learningRate: 0.01, rho: 0.9)
        rmsprop.update(&y, along: Tensor([2]))   // n = 0.1 · 4 = 0.4: θ = 1 - 0.01 · 2/√0.4
        #expect(abs(y.scalar - Float(1 - 0.02 / 0.4.squareRoot())) < 1e-6)
    }

    @Test func adamAndAdamW() {
        var x = Tensor([1])
        var adam = Adam(learningRate: 0.1)
        adam.update(&x, along: Tensor([3]))      // m̂ = 3, v̂ = 9: step 0.1 · 3/3
        #expect(abs(x.scalar - 0.9) < 1e-6)
        adam.update(&x, along: Tensor([1]))      // m = 0.27 + 0.1 = 0.37, v = 0.999·0.009 + 0.001
        let m = 0.37 / (1 - 0.81), v = (0.999 * 0.009 + 0.001) / (1 - 0.999 * 0.999)
        #expect(abs(x.scalar - Float(0.9 - 0.1 * m / (v.squareRoot() + 1e-8))) < 1e-5)
        var w = Tensor([2])
        var adamw = AdamW(learningRate: 0.1, weightDecay: 0.5)
        adamw.update(&w, along: Tensor([3]))     // θ = 2 (1 - 0.05) - 0.1 = 1.8
        #expect(abs(w.scalar - 1.8) < 1e-6)
    }

    @Test func schedulesClippingAndAccumulation() {
        let cosine = LearningRateSchedule.cosine(peak: 1, minimum: 0.1, warmupSteps: 10, totalSteps: 110)
        #expect(abs(cosine.learningRate(at: 0) - 0.1) < 1e-6)
        #expect(abs(cosine.learningRate(at: 9) - 1) < 1e-6)
        #expect(abs(cosine.learningRate(at: 60) - 0.55) < 1e-6)    // halfway: (1 + 0.1) / 2
        #expect(abs(cosine.learningRate(at: 110) - 0.1) < 1e-6)
        #expect(LearningRateSchedule.linearWarmup(peak: 2, warmupSteps: 4).learningRate(at: 1) == 1)
        #expect(LearningRateSchedule.constant(3).learningRate(at: 99) == 3)

        var clipped = [Tensor([3, 0]), Tensor([4])]           // norm 5
        let norm = clipByGlobalNorm(&clipped, maximumNorm: 1)
        #expect(norm == 5)
        #expect(abs(globalNorm(clipped) - 1) < 1e-5)
        #expect(abs(clipped[0][0] - 0.6) < 1e-5)

        // The mean of two half-batch gradients equals the full-batch gradient of a mean loss.
        let model = MLP(sizes: [3, 4, 1], seed: 1)
        let x = makeInput([8, 3], .any, seed: 2), y = makeInput([8, 1], .any, seed: 3)
        func loss(_ m: MLP, _ rows: Range<Int>) -> Tensor {
            meanSquaredError(m(x.slice(alongAxis: 0, range: rows)), y.slice(alongAxis: 0, range: rows))
        }
        var accumulator = GradientAccumulator<MLP>()
        accumulator.add(gradient(at: model) { loss($0, 0..<4) })
        accumulator.add(gradient(at: model) { loss($0, 4..<8) })
        let mean = accumulator.mean(like: model).parameters
        let full = gradient(at: model) { loss($0, 0..<8) }.parameters
        for (a, b) in zip(mean, full) { #expect((a - b).absoluteValue().max().scalar < 1e-6) }
    }
}

@Suite("Training")
struct TrainingTests {
    @Test func spiralsAreLearned() {
        var configuration = SpiralsClassifierTraining.Configuration()
        configuration.steps = 400
        configuration.pointsPerClass = 100
        var losses: [Float] = []
        let (_, accuracy) = SpiralsClassifierTraining(configuration: configuration).run(every: 100) { losses.append($0.loss) }
        #expect(losses.count == 4)
        #expect(losses.last! < losses.first! * 0.5)
        #expect(accuracy > 0.9)
    }
}

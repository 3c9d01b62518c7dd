// Every layer: gradients by finite differences, and a known output or invariant.
import AlignKitNN
import AlignKitTestSupport
import Foundation
import Testing

func noMismatch(_ failures: [GradientCheckFailure], _ name: String) -> Bool {
    if !failures.isEmpty { Issue.record("\(name): \(failures.prefix(3))") }
    return failures.isEmpty
}

/// Checks d f / d parameters and d f / d input for a layer.
func checkLayer<L: Layer>(_ layer: L, input: Tensor, _ name: String) {
    #expect(noMismatch(gradientMismatches(model: layer) { $0(input) }, "\(name) parameters"))
    #expect(noMismatch(gradientMismatches([input]) { layer($0[0]) }, "\(name) input"))
}

@Suite("Layers")
struct LayerTests {
    @Test func linearAndMLPGradients() {
        var g = RandomGenerator(seed: 1)
        checkLayer(Linear(inputSize: 3, outputSize: 4, generator: &g), input: makeInput([2, 3], .any, seed: 2), "Linear")
        checkLayer(MLP(sizes: [2, 3, 4, 3, 1], activation: .tanh, seed: 3), input: makeInput([5, 2], .any, seed: 4), "MLP")
        #expect(MLP(sizes: [2, 3, 1]).parameterNames == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
    }

    @Test func convolutionAndPooling() {
        var g = RandomGenerator(seed: 5)
        checkLayer(Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, padding: 1, generator: &g),
                   input: makeInput([1, 2, 4, 4], .any, seed: 6), "Conv2D")
        let x = Tensor((0..<16).map(Float.init), shape: [1, 1, 4, 4])
        #expect(MaxPool2D(size: 2)(x).scalars == [5, 7, 13, 15])
        #expect(AvgPool2D(size: 2)(x).scalars == [2.5, 4.5, 10.5, 12.5])
        let cube = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        #expect(Flatten()(cube).shape == [2, 12] && Flatten()(cube).scalars == cube.scalars)
    }

    @Test func embeddingGathersAndAccumulates() {
        var g = RandomGenerator(seed: 7)
        let embedding = Embedding(vocabularySize: 5, dimension: 3, generator: &g)
        let ids = [1, 4, 1, 0]
        #expect(embedding(ids, shape: [2, 2]).shape == [2, 2, 3])
        #expect(embedding([4]).scalars == embedding.table.slice(alongAxis: 0, range: 4..<5).scalars)
        #expect(noMismatch(gradientMismatches(model: embedding) { $0(ids) }, "Embedding"))
        let grad = gradient(at: embedding) { $0(ids).sum() }
        #expect(grad.table.scalars == [1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1])  // row 1 used twice
    }

    @Test func sinusoidalEncodingValues() {
        let pe = sinusoidalPositionalEncoding(length: 4, dimension: 6)
        #expect(abs(pe[1, 0] - Float(sin(1.0))) < 1e-6)
        #expect(abs(pe[1, 1] - Float(cos(1.0))) < 1e-6)
        #expect(abs(pe[3, 2] - Float(sin(3 / pow(10000, 2.0 / 6)))) < 1e-6)
        #expect(pe[0, 0] == 0 && pe[0, 1] == 1)
    }

    @Test func learnedPositionsGradient() {
        var g = RandomGenerator(seed: 8)
        checkLayer(LearnedPositionalEmbedding(maximumLength: 5, dimension: 3, generator: &g),
                   input: makeInput([2, 4, 3], .any, seed: 9), "LearnedPositionalEmbedding")
    }

    @Test func rotaryPreservesNormsAndEncodesRelativePosition() {
        let rope = RotaryEmbedding(dimension: 8, maximumLength: 16)
        let x = makeInput([1, 1, 8], .any, seed: 10)
        // Rotating pairs (i, i + D/2) keeps the vector's length.
        let rotated = rope(x, offset: 5)
        #expect(abs(rotated.raised(toPower: 2).sum().scalar - x.raised(toPower: 2).sum().scalar) < 1e-4)
        // <R(p) q, R(k) k> depends only on p - k.
        let q = makeInput([1, 1, 8], .any, seed: 11), k = makeInput([1, 1, 8], .any, seed: 12)
        let a = (rope(q, offset: 7) * rope(k, offset: 3)).sum().scalar
        let b = (rope(q, offset: 10) * rope(k, offset: 6)).sum().scalar
        #expect(abs(a - b) < 1e-4)
        #expect(noMismatch(gradientMismatches([makeInput([2, 3, 8], .any, seed: 13)]) { rope($0[0], offset: 2) }, "RoPE"))
    }

    @Test func attentionGradientsAndCausality() {
        var g = RandomGenerator(seed: 14)
        let attention = MultiHeadAttention(modelSize: 8, headCount: 4, kvHeadCount: 2, generator: &g)
        checkLayer(attention, input: makeInput([2, 3, 8], .any, seed: 15), "GQA attention")
        let weights = attention.attentionWeights(makeInput([1, 4, 8], .any, seed: 16))  // [1, 4, 4, 4]
        for head in 0..<4 {
            for i in 0..<4 {
                var rowSum: Float = 0
                for j in 0..<4 {
                    rowSum += weights[0, head, i, j]
                    if j > i { #expect(weights[0, head, i, j] == 0) }
                }
                #expect(abs(rowSum - 1) < 1e-5)
            }
        }
    }

    @Test func groupedQueryAttentionEqualsMHAWithSharedHeads() {
        // A GQA layer (4 query heads, 2 KV heads) equals an MHA layer whose key and value
        // projections repeat each KV head's columns for the query heads it serves.
        var g = RandomGenerator(seed: 17)
        let gqa = MultiHeadAttention(modelSize: 8, headCount: 4, kvHeadCount: 2, generator: &g)
        var mha = MultiHeadAttention(modelSize: 8, headCount: 4, generator: &g)
        func repeatHeads(_ w: Tensor) -> Tensor {  // [rows, 2·D] → [rows, 4·D], head h serves 2h, 2h+1
            let heads = w.split(sizes: [2, 2], alongAxis: -1)
            return concatenate([heads[0], heads[0], heads[1], heads[1]], alongAxis: -1)
        }
        mha.query = gqa.query; mha.output = gqa.output
        mha.key = Linear(weight: repeatHeads(gqa.key.weight), bias: repeatHeads(gqa.key.bias!.reshaped(to: [1, 4])).reshaped(to: [8]))
        mha.value = Linear(weight: repeatHeads(gqa.value.weight), bias: repeatHeads(gqa.value.bias!.reshaped(to: [1, 4])).reshaped(to: [8]))
        let x = makeInput([2, 5, 8], .any, seed: 18)
        let difference = (gqa(x) - mha(x)).absoluteValue().max().scalar
        #expect(difference < 1e-5)
        #expect(gqa.kvCacheFloatsPerToken == 2 * 2 * 2 && mha.kvCacheFloatsPerToken == 2 * 4 * 2)
        #expect(gqa.parameterCount < mha.parameterCount)
    }

    @Test func normalizations() {
        let x = makeInput([3, 6], .any, seed: 19)
        let layerNorm = LayerNorm(6)(x)
        #expect(layerNorm.mean(alongAxes: [1]).absoluteValue().max().scalar < 1e-5)
        #expect((layerNorm.variance(alongAxes: [1]) - 1).absoluteValue().max().scalar < 1e-3)  // ε = 1e-5 shifts it slightly
        let rms = RMSNorm(6)(x)
        #expect((rms.raised(toPower: 2).mean(alongAxes: [1]) - 1).absoluteValue().max().scalar < 1e-3)
        var ln = LayerNorm(6)
        ln.scale = makeInput([6], .positive, seed: 20); ln.offset = makeInput([6], .any, seed: 21)
        checkLayer(ln, input: x, "LayerNorm")
        var rn = RMSNorm(6)
        rn.scale = makeInput([6], .positive, seed: 22)
        checkLayer(rn, input: x, "RMSNorm")
    }

    @Test func batchNormTrainingAndInference() {
        let norm = BatchNorm(channels: 2)
        let x = makeInput([4, 2, 3, 3], .any, seed: 23)
        let y = norm(x)
        let mean = y.mean(alongAxes: [0, 2, 3]), variance = y.variance(alongAxes: [0, 2, 3])
        #expect(mean.absoluteValue().max().scalar < 1e-5 && (variance - 1).absoluteValue().max().scalar < 1e-3)
        // Running averages moved 10% toward the batch statistics (variance unbiased: n/(n-1), n = 36).
        let batchMean = x.mean(squeezingAxes: [0, 2, 3])
        let batchVariance = x.variance(alongAxes: [0, 2, 3]).reshaped(to: [2]) * (36.0 / 35.0)
        #expect((norm.running.mean - batchMean * 0.1).absoluteValue().max().scalar < 1e-6)
        #expect((norm.running.variance - (batchVariance * 0.1 + 0.9)).absoluteValue().max().scalar < 1e-5)
        // Inference uses the running averages: (x - μ_run) / √(σ²_run + ε).
        let inference = withLearningPhase(.inference) { norm(x) }
        let expected = (x - norm.running.mean.reshaped(to: [1, 2, 1, 1])) / (norm.running.variance.reshaped(to: [1, 2, 1, 1]) + 1e-5).squareRoot()
        #expect((inference - expected).absoluteValue().max().scalar < 1e-5)
        #expect(noMismatch(gradientMismatches(model: BatchNorm(channels: 2)) { ($0(x) * Tensor([1, 2], shape: [1, 2, 1, 1])).sum() }, "BatchNorm parameters"))
        #expect(noMismatch(gradientMismatches([makeInput([5, 3], .any, seed: 24)]) { BatchNorm(channels: 3)($0[0]) }, "BatchNorm input"))
    }

    @Test func weightNormalization() {
        var g = RandomGenerator(seed: 25)
        var layer = WeightNormLinear(inputSize: 3, outputSize: 2, generator: &g)
        layer.magnitude = Tensor([2, 0.5])
        let columnNorms = layer.weight.raised(toPower: 2).sum(squeezingAxes: [0]).squareRoot()
        #expect((columnNorms - Tensor([2, 0.5])).absoluteValue().max().scalar < 1e-5)
        checkLayer(layer, input: makeInput([4, 3], .any, seed: 26), "WeightNormLinear")
    }

    @Test func dropoutLayerPhases() {
        let layer = Dropout(probability: 0.5, seed: 1)
        let x = Tensor.ones([1000])
        #expect(withLearningPhase(.inference) { layer(x) }.scalars == x.scalars)
        let zeros = layer(x).scalars.filter { $0 == 0 }.count
        #expect(zeros > 420 && zeros < 580)  // Binomial(1000, 0.5): ± 5σ ≈ ± 79
    }

    @Test func feedForwardAndTransformerBlocks() {
        var g = RandomGenerator(seed: 27)
        let x = makeInput([1, 3, 8], .any, seed: 28)
        for kind in [FeedForward.Kind.gelu, .swiglu] {
            checkLayer(FeedForward(modelSize: 8, hiddenSize: 12, kind: kind, generator: &g), input: x, "FeedForward \(kind)")
        }
        for preNorm in [true, false] {
            let block = TransformerBlock(
                attention: MultiHeadAttention(modelSize: 8, headCount: 2, generator: &g),
                feedForward: FeedForward(modelSize: 8, hiddenSize: 16, kind: .gelu, generator: &g), preNorm: preNorm)
            checkLayer(block, input: x, "TransformerBlock preNorm \(preNorm)")
            #expect(block(x).shape == [1, 3, 8])
        }
    }

    @Test func recurrentNetworks() {
        var g = RandomGenerator(seed: 29)
        let x = makeInput([2, 3, 2], .any, seed: 30)
        checkLayer(ElmanRNN(inputSize: 2, hiddenSize: 3, generator: &g), input: x, "Elman")
        checkLayer(JordanRNN(inputSize: 2, hiddenSize: 3, outputSize: 2, generator: &g), input: x, "Jordan")
        let lstm = LSTM(inputSize: 2, hiddenSize: 3, generator: &g)
        checkLayer(lstm, input: x, "LSTM")
        #expect(lstm(x).shape == [2, 3, 3])
        // The first LSTM step from zero state by hand: c = σ(i) tanh(g), h = σ(o) tanh(c).
        let x0 = x.slice(alongAxis: 1, range: 0..<1).reshaped(to: [2, 2])
        let gates = lstm.cell.input(x0).split(sizes: [3, 3, 3, 3], alongAxis: 1)
        let c = gates[0].sigmoid() * gates[2].tanh()
        let h = gates[3].sigmoid() * c.tanh()
        let first = lstm(x).slice(alongAxis: 1, range: 0..<1).reshaped(to: [2, 3])
        #expect((first - h).absoluteValue().max().scalar < 1e-6)
    }
}

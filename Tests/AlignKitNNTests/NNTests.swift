// Layers, losses and optimizers: hand-computed values and a model that learns.
import AlignKitModels
import AlignKitNN
import Testing

@Suite("Neural networks")
struct NNTests {
    @Test func linearShapesAndParameters() {
        var g = RandomGenerator(seed: 1)
        let layer = Linear(inputSize: 3, outputSize: 5, generator: &g)
        #expect(layer(Tensor.zeros([7, 3])).shape == [7, 5])
        #expect(layer(Tensor.zeros([2, 7, 3])).shape == [2, 7, 5])
        #expect(layer.parameterCount == 20)
        let limit = (6.0 / 8.0).squareRoot()
        #expect(layer.weight.scalars.allSatisfy { abs(Double($0)) <= limit })
    }

    @Test func mlpUsesThePrimersSizes() {
        let mlp = MLP(sizes: [2, 3, 4, 3, 1])
        #expect(mlp.layers.map(\.weight.shape) == [[2, 3], [3, 4], [4, 3], [3, 1]])
        #expect(mlp(Tensor.zeros([5, 2])).shape == [5, 1])
    }

    @Test func lossesMatchHandComputedValues() {
        // BCE(z = 0, y = 1) = ln 2; BCE(z = 2, y = 0) = ln(1 + e²) = 2.126928.
        let bce = binaryCrossEntropy(logits: Tensor([0, 2]), labels: Tensor([1, 0])).scalar
        #expect(abs(bce - (0.693147 + 2.126928) / 2) < 1e-5)
        #expect(meanSquaredError(Tensor([1, 2]), Tensor([3, 2])).scalar == 2)
        // CE of uniform logits over 4 classes = ln 4.
        #expect(abs(crossEntropy(logits: Tensor.zeros([2, 4]), labels: [1, 3]).scalar - 1.386294) < 1e-5)
    }

    @Test func sgdAndAdamStepsMatchHandComputation() {
        var x = Tensor([1, -2])
        var sgd = SGD(learningRate: 0.1, momentum: 0.9)
        sgd.update(&x, along: Tensor([0.5, 1]))   // v = g; θ = θ - 0.1 g
        #expect(x.scalars == [0.95, -2.1])
        sgd.update(&x, along: Tensor([0.5, 1]))   // v = 0.9 g + g = 1.9 g
        #expect(abs(x[0] - (0.95 - 0.1 * 0.95)) < 1e-6)
        var y = Tensor([1])
        var adam = Adam(learningRate: 0.1)
        adam.update(&y, along: Tensor([3]))       // first step: m̂ = g, v̂ = g², step = lr · g/|g|
        #expect(abs(y.scalar - 0.9) < 1e-6)
    }

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

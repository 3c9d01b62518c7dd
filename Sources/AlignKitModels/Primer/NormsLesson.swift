// Lesson `norms`: what BatchNorm, LayerNorm, RMSNorm and weight normalization do to their inputs,
// and a deep transformer stack trained with pre-norm (x + F(Norm(x))) and post-norm
// (Norm(x + F(x))) at the same high learning rate without warm-up (Xiong et al. 2020: post-norm's
// gradients near the output are large at initialization, so it needs warm-up; pre-norm does not).
import AlignKitNN

public enum NormsLesson {
    public struct Result: Sendable {
        /// Per-channel mean and variance after BatchNorm; per-row after LayerNorm; RMS after RMSNorm.
        public let batchNormMean: Float, batchNormVariance: Float
        public let layerNormMean: Float, layerNormVariance: Float
        public let rmsNormRMS: Float
        /// ‖w_j‖ of a weight-normalized layer and its g_j (equal).
        public let weightNormNorms: [Float], weightNormMagnitudes: [Float]
        /// Final training loss of the deep stack.
        public let preNormLoss: Float, postNormLoss: Float
        /// Gradient norm of each block's parameters at initialization, first block to last.
        public let preNormGradients: [Float], postNormGradients: [Float]
    }

    public static func run(layers: Int = 12, steps: Int = 150, learningRate: Float = 1e-2, seed: UInt64 = 0,
                           report: (String) -> Void = { _ in }) -> Result {
        var g = RandomGenerator(seed: seed)
        let x4 = Tensor(randomNormal: [16, 3, 4, 4], mean: 3, standardDeviation: 2, generator: &g)
        let bn = BatchNorm(channels: 3)(x4)
        let x2 = Tensor(randomNormal: [8, 32], mean: -1, standardDeviation: 5, generator: &g)
        let ln = LayerNorm(32)(x2), rms = RMSNorm(32)(x2)
        var wn = WeightNormLinear(inputSize: 6, outputSize: 3, generator: &g)
        wn.magnitude = Tensor([0.5, 1, 2])
        let wnNorms = wn.weight.raised(toPower: 2).sum(squeezingAxes: [0]).squareRoot().scalars
        let result0 = (bn.mean(alongAxes: [0, 2, 3]).absoluteValue().max().scalar, bn.variance(alongAxes: [0, 2, 3]).mean().scalar,
                       ln.mean(alongAxes: [1]).absoluteValue().max().scalar, ln.variance(alongAxes: [1]).mean().scalar,
                       rms.raised(toPower: 2).mean(alongAxes: [1]).squareRoot().mean().scalar)
        report("input mean 3, sd 2 → BatchNorm per channel: |mean| ≤ \(result0.0), variance \(result0.1)")
        report("input mean -1, sd 5 → LayerNorm per row: |mean| ≤ \(result0.2), variance \(result0.3); RMSNorm: RMS \(result0.4)")
        report("weight norm with g = [0.5, 1, 2]: column norms \(wnNorms)")

        // A deep stack memorizing a random 16-token sequence (predict each next token).
        let vocabulary = 16, length = 16
        let sequence = (0...length).map { _ in g.nextInt(below: vocabulary) }
        let ids = [Array(sequence[..<length])], targets = [Array(sequence[1...])]
        var losses: [Bool: Float] = [:], gradients: [Bool: [Float]] = [:]
        for preNorm in [true, false] {
            var model = TinyDecoder(vocabularySize: vocabulary, modelSize: 32, headCount: 4, layerCount: layers,
                                    contextLength: length, preNorm: preNorm, seed: seed)
            let initial = gradient(at: model) { $0.loss(ids, targets: targets) }
            gradients[preNorm] = initial.blocks.map { globalNorm($0) }
            var optimizer = Adam(learningRate: learningRate)
            var loss: Float = 0
            for _ in 0..<steps { loss = optimizer.step(&model) { $0.loss(ids, targets: targets) }.scalar }
            losses[preNorm] = loss
        }
        let pre = gradients[true]!, post = gradients[false]!
        report("\(layers)-block decoder, Adam lr \(learningRate), no warm-up, \(steps) steps:")
        report("  pre-norm:  final loss \(losses[true]!); block gradient norms at init, first → last: \(pre.first!) → \(pre.last!)")
        report("  post-norm: final loss \(losses[false]!); block gradient norms at init, first → last: \(post.first!) → \(post.last!)")
        return Result(batchNormMean: result0.0, batchNormVariance: result0.1, layerNormMean: result0.2, layerNormVariance: result0.3,
                      rmsNormRMS: result0.4, weightNormNorms: wnNorms, weightNormMagnitudes: [0.5, 1, 2],
                      preNormLoss: losses[true]!, postNormLoss: losses[false]!, preNormGradients: pre, postNormGradients: post)
    }
}

// Lesson `vae` (seed 004): a variational autoencoder on the 8 x 8 digits (Kingma & Welling).
//   encoder: x [N,64] → 128 ReLU → μ, log σ² [N, d];  reparameterization z = μ + σ ⊙ ζ, ζ ~ N(0, I)
//   decoder: z → 128 ReLU → 64 logits (Bernoulli pixels)
//   loss = ‖x - d(z)‖ (binary cross-entropy, summed over pixels) + KL[N(μ, σ²) ‖ N(0, I)],
//   KL = -½ Σ (1 + log σ² - μ² - σ²); averaged over the batch.
import AlignKitNN
import AlignKitText

public struct VAE: NamedParameters {
    public var encoder: Linear, mean: Linear, logVariance: Linear
    public var decoderHidden: Linear, decoderOutput: Linear
    public let latentSize: Int

    public init(inputSize: Int = 64, hiddenSize: Int = 128, latentSize: Int = 8, seed: UInt64) {
        var g = RandomGenerator(seed: seed)
        self.latentSize = latentSize
        encoder = Linear(inputSize: inputSize, outputSize: hiddenSize, initializer: .heUniform, generator: &g)
        mean = Linear(inputSize: hiddenSize, outputSize: latentSize, generator: &g)
        logVariance = Linear(inputSize: hiddenSize, outputSize: latentSize, generator: &g)
        decoderHidden = Linear(inputSize: latentSize, outputSize: hiddenSize, initializer: .heUniform, generator: &g)
        decoderOutput = Linear(inputSize: hiddenSize, outputSize: inputSize, generator: &g)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try encoder.forEachNamedParameter(prefix: joinName(prefix, "encoder"), body)
        try mean.forEachNamedParameter(prefix: joinName(prefix, "mean"), body)
        try logVariance.forEachNamedParameter(prefix: joinName(prefix, "log_variance"), body)
        try decoderHidden.forEachNamedParameter(prefix: joinName(prefix, "decoder_hidden"), body)
        try decoderOutput.forEachNamedParameter(prefix: joinName(prefix, "decoder_output"), body)
    }

    /// Pixel logits for latent codes z [N, d].
    public func decode(_ z: Tensor) -> Tensor { decoderOutput(decoderHidden(z).relu()) }

    /// The loss terms for a batch x [N, 64] with noise ζ [N, d]: (reconstruction, KL), each averaged over N.
    public func loss(_ x: Tensor, noise: Tensor) -> (reconstruction: Tensor, kl: Tensor) {
        let h = encoder(x).relu()
        let mu = mean(h), logVar = logVariance(h)
        let z = mu + (logVar * 0.5).exp() * noise                     // reparameterization trick
        let logits = decode(z)
        let n = Float(x.shape[0])
        let reconstruction = -(x * logits.logSigmoid() + (1 - x) * (-logits).logSigmoid()).sum() / n
        let kl = ((1 + logVar - mu * mu - logVar.exp()).sum() * -0.5) / n
        return (reconstruction, kl)
    }
}

public enum VAELesson {
    public struct Result: Sendable {
        public let initialLoss: Float, finalLoss: Float
        public let finalKL: Float
        /// Decoded samples from z ~ N(0, I): [count, 1, 8, 8], pixels in [0, 1].
        public let samples: Tensor
    }

    public static func run(digits: DigitsDataset, epochs: Int = 40, batchSize: Int = 64, sampleCount: Int = 64,
                           seed: UInt64 = 0, report: (String) -> Void = { _ in }) -> Result {
        let x = digits.images.reshaped(to: [digits.count, 64])
        var model = VAE(seed: seed)
        var optimizer = Adam(learningRate: 2e-3)
        var g = RandomGenerator(seed: seed &+ 1)
        var first: Float?, last: Float = 0, lastKL: Float = 0
        report("VAE 64 → 128 → z(\(model.latentSize)) → 128 → 64 on \(digits.count) digits; loss = reconstruction + KL")
        for epoch in 1...epochs {
            var order = Array(0..<digits.count)
            order.shuffle(using: &g)
            var total: Float = 0, totalKL: Float = 0, batches = 0
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let rows = Array(order[start..<min(start + batchSize, order.count)])
                let batch = x.gathering(atIndices: rows, alongAxis: 0)
                let noise = Tensor(randomNormal: [rows.count, model.latentSize], generator: &g)
                var kl: Float = 0
                let value = optimizer.step(&model) { m in
                    let (reconstruction, divergence) = m.loss(batch, noise: noise)
                    kl = divergence.scalar
                    return reconstruction + divergence
                }
                if first == nil { first = value.scalar }
                total += value.scalar; totalKL += kl; batches += 1
            }
            last = total / Float(batches); lastKL = totalKL / Float(batches)
            if epoch % max(1, epochs / 5) == 0 { report(String(format: "epoch %3d: loss %.2f (KL %.2f)", epoch, last, lastKL)) }
        }
        let z = Tensor(randomNormal: [sampleCount, model.latentSize], generator: &g)
        let samples = withoutGradient { model.decode(z).sigmoid() }.reshaped(to: [sampleCount, 1, 8, 8])
        return Result(initialLoss: first ?? 0, finalLoss: last, finalKL: lastKL, samples: samples)
    }
}

/// Portable graymap images (binary PGM, "P5"): enough to look at samples without dependencies.
public enum PGM {
    /// A grid of images [N, 1, H, W] with values in [0, 1], `columns` per row, each pixel scaled up `scale` times.
    public static func grid(_ images: Tensor, columns: Int, scale: Int = 4) -> [UInt8] {
        let (n, h, w) = (images.shape[0], images.shape[2], images.shape[3])
        let rows = (n + columns - 1) / columns
        let width = columns * (w + 1) * scale, height = rows * (h + 1) * scale
        var pixels = [UInt8](repeating: 0, count: width * height)
        let values = images.scalars
        for i in 0..<n {
            let (gr, gc) = (i / columns, i % columns)
            for y in 0..<(h * scale) {
                for x in 0..<(w * scale) {
                    let v = values[(i * h + y / scale) * w + x / scale]
                    let py = gr * (h + 1) * scale + y, px = gc * (w + 1) * scale + x
                    pixels[py * width + px] = UInt8(max(0, min(255, (v * 255).rounded())))
                }
            }
        }
        return Array("P5\n\(width) \(height)\n255\n".utf8) + pixels
    }
}

// Lesson `score` (seed 000): a score model s_θ(x) ≈ ∇ log p(x) trained by denoising score matching
// (Vincent 2011) on a 2-D mixture of four Gaussians, then Langevin dynamics
//   x ← x + ε s_θ(x) + √(2ε) z
// carries random starting points to the modes.
//   DSM: x̃ = x + σ z,  loss = mean ‖s_θ(x̃) + z / σ‖²   (the score of the noised data given x is -z/σ)
import AlignKitNN

public enum ScoreLesson {
    public static let modes: [(Float, Float)] = [(2, 2), (-2, 2), (-2, -2), (2, -2)]
    public static let modeDeviation: Float = 0.3

    public struct Result: Sendable {
        /// The first step's loss, and the mean over the last 10% of steps.
        public let initialLoss: Float, finalLoss: Float
        /// Fraction of Langevin samples within 1 of some mode, and the share each mode gets.
        public let nearModeFraction: Float
        public let modeShares: [Float]
    }

    static func sampleData(_ n: Int, generator: inout RandomGenerator) -> Tensor {
        var values: [Float] = []
        for _ in 0..<n {
            let (mx, my) = modes[generator.nextInt(below: modes.count)]
            values += [mx + modeDeviation * generator.nextNormal(), my + modeDeviation * generator.nextNormal()]
        }
        return Tensor(values, shape: [n, 2])
    }

    public static func run(steps: Int = 1500, noise sigma: Float = 0.3, langevinSteps: Int = 500, stepSize: Float = 0.01,
                           samples: Int = 1000, seed: UInt64 = 0, report: (String) -> Void = { _ in }) -> Result {
        var g = RandomGenerator(seed: seed)
        var model = MLP(sizes: [2, 64, 64, 2], activation: .silu, seed: seed)
        var optimizer = Adam(learningRate: 3e-3)
        var initial: Float = 0, last: Float = 0
        report("mixture of 4 Gaussians at (±2, ±2), σ = \(modeDeviation); DSM with noise σ = \(sigma)")
        for step in 1...steps {
            let x = sampleData(256, generator: &g)
            let z = Tensor(randomNormal: [256, 2], generator: &g)
            let noisy = x + z * sigma
            let target = z * (-1 / sigma)
            let loss = optimizer.step(&model) { meanSquaredError($0(noisy), target) }
            if step == 1 { initial = loss.scalar }
            // The DSM loss has a large irreducible part (Var of -z/σ): average the last 10% of steps.
            if step > steps - max(1, steps / 10) { last += loss.scalar / Float(max(1, steps / 10)) }
            if step % max(1, steps / 3) == 0 { report("step \(step): DSM loss \(loss.scalar)") }
        }
        // Langevin dynamics from uniform starting points in [-4, 4]².
        var x = Tensor(randomUniform: [samples, 2], lowerBound: -4, upperBound: 4, generator: &g)
        withoutGradient {
            for _ in 0..<langevinSteps {
                let z = Tensor(randomNormal: [samples, 2], generator: &g)
                x = x + model(x) * stepSize + z * (2 * stepSize).squareRoot()
            }
        }
        let points = x.scalars
        var counts = [Int](repeating: 0, count: modes.count), near = 0
        for i in 0..<samples {
            let (px, py) = (points[2 * i], points[2 * i + 1])
            let distances = modes.map { ((px - $0.0) * (px - $0.0) + (py - $0.1) * (py - $0.1)).squareRoot() }
            let nearest = distances.indices.min { distances[$0] < distances[$1] }!
            if distances[nearest] < 1 { near += 1; counts[nearest] += 1 }
        }
        let result = Result(initialLoss: initial, finalLoss: last, nearModeFraction: Float(near) / Float(samples),
                            modeShares: counts.map { Float($0) / Float(samples) })
        report("Langevin (\(langevinSteps) steps, ε = \(stepSize)) from uniform points: \(Int(result.nearModeFraction * 100))% land within 1 of a mode")
        report("share per mode: " + zip(modes, result.modeShares).map { "(\(Int($0.0.0)),\(Int($0.0.1))) \(Int($0.1 * 100))%" }.joined(separator: "  "))
        return result
    }
}

// Lesson `optimizers` (seed 004): SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam on an
// ill-conditioned convex quadratic and on an MLP; AdaGrad's shrinking steps; and a numerical check
// of Theorem 3.2 (convex f, E[g] = ∇f, E‖g‖² ≤ B²) for SGD's weighted average iterate:
//   E[f(θ̄ᵀ) - f*] ≤ (‖θ⁰ - θ*‖² + B² Σⱼ αⱼ²) / (2 Σⱼ αⱼ),   θ̄ᵀ = Σⱼ αⱼ θʲ / Σⱼ αⱼ  (j = 0…T)
import AlignKitNN

public enum OptimizersLesson {
    public struct Result: Sendable {
        /// Final f on the quadratic f(θ) = ½ (θ₁² + 25 θ₂²), from θ = (1, 1), per optimizer.
        public let quadratic: [(name: String, value: Float)]
        /// AdaGrad's effective step size on θ₁ (noisy gradients) after steps 1, 10, 100.
        public let adaGradSteps: [Float]
        /// Theorem 3.2: the measured E[f(θ̄) - f*] and the bound.
        public let averagedGap: Double, bound: Double
        /// Final training loss on the spirals MLP, per optimizer.
        public let mlp: [(name: String, value: Float)]
    }

    static func optimizers() -> [(String, any Optimizer)] {
        [("SGD", SGD(learningRate: 0.03)), ("momentum", SGD(learningRate: 0.03, momentum: 0.9)),
         ("Nesterov", SGD(learningRate: 0.03, momentum: 0.9, nesterov: true)), ("AdaGrad", AdaGrad(learningRate: 0.5)),
         ("RMSProp", RMSProp(learningRate: 0.02)), ("Adam", Adam(learningRate: 0.05))]
    }

    /// Runs `steps` optimizer steps on `model` for `loss`, returning the final loss.
    static func minimize<M: Parameterized>(_ optimizer: any Optimizer, _ model: M, steps: Int, _ loss: (M) -> Tensor) -> (Float, any Optimizer) {
        var optimizer = optimizer
        var model = model
        for _ in 0..<steps { _ = optimizer.step(&model, loss: loss) }
        return (loss(model).scalar, optimizer)
    }

    public static func run(quadraticSteps: Int = 100, mlpSteps: Int = 300, runs: Int = 200, seed: UInt64 = 0,
                           report: (String) -> Void = { _ in }) -> Result {
        // Part 1: f(θ) = ½ Σ aᵢ θᵢ², a = (1, 25): condition number 25.
        let a = Tensor([1, 25])
        let quadratic: (Tensor) -> Tensor = { theta in (theta * theta * a).sum() * 0.5 }
        var results: [(String, Float)] = []
        var adaGradSteps: [Float] = []
        report("f(θ) = ½(θ₁² + 25θ₂²) from θ = (1, 1), \(quadraticSteps) steps:")
        for (name, optimizer) in optimizers() {
            let (value, _) = minimize(optimizer, Tensor([1, 1]), steps: quadraticSteps, quadratic)
            results.append((name, value))
            report("  \(name.padding(toLength: 9, withPad: " ", startingAt: 0)) f = \(value)")
        }
        // With noisy gradients (g = ∇f + ξ, ξ ~ N(0, 1)) the accumulated n keeps growing like k, so
        // AdaGrad's per-coordinate step α/√n shrinks like 1/√k: the seed's "goes to zero quickly".
        var adagrad = AdaGrad(learningRate: 0.5)
        var theta = Tensor([1, 1])
        var noise = RandomGenerator(seed: seed &+ 7)
        for step in 1...100 {
            let xi = Tensor(randomNormal: [2], generator: &noise)
            _ = adagrad.step(&theta) { quadratic($0) + ($0 * xi).sum() }
            if [1, 10, 100].contains(step) { adaGradSteps.append(adagrad.effectiveStepSizes[0][0]) }
        }
        report("AdaGrad's step α/√n on θ₁ with noisy gradients, after 1, 10, 100 steps: " + adaGradSteps.map { "\($0)" }.joined(separator: ", "))

        // Part 2: Theorem 3.2 on the same quadratic with noisy gradients g = ∇f + σ ξ, αₖ = α₀/√(k+1).
        let (gap, bound) = theorem32(runs: runs, steps: 200, seed: seed)
        report(String(format: "Theorem 3.2: E[f(θ̄) - f*] = %.5f ≤ bound %.5f over %d runs of 200 noisy SGD steps", gap, bound, runs))

        // Part 3: the spirals MLP.
        let data = TwoSpirals(pointsPerClass: 100, seed: seed)
        let model = MLP(sizes: [2, 32, 32, 1], activation: .tanh, seed: seed)
        var mlp: [(String, Float)] = []
        report("MLP [2, 32, 32, 1] on two spirals, \(mlpSteps) steps, final loss:")
        for (name, optimizer) in optimizers() {
            let (value, _) = minimize(optimizer, model, steps: mlpSteps) { binaryCrossEntropy(logits: $0(data.points), labels: data.labels) }
            mlp.append((name, value))
            report("  \(name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(value)")
        }
        return Result(quadratic: results, adaGradSteps: adaGradSteps, averagedGap: gap, bound: bound, mlp: mlp)
    }

    /// Measures E[f(θ̄ᵀ) - f*] over `runs` and the theorem's bound with B² = sup over visited θ of
    /// ‖∇f(θ)‖² + d σ² (= E‖g‖² there).
    static func theorem32(runs: Int, steps: Int, seed: UInt64) -> (Double, Double) {
        let a = [1.0, 25.0], sigma = 2.0, alpha0 = 0.02
        var generator = RandomGenerator(seed: seed)
        var gapSum = 0.0, bSquared = 0.0
        let alphas = (0...steps).map { alpha0 / Double($0 + 1).squareRoot() }
        for _ in 0..<runs {
            var theta = [1.0, 1.0]
            var weighted = [0.0, 0.0]
            for k in 0...steps {
                for i in 0..<2 { weighted[i] += alphas[k] * theta[i] }
                let gradient = (0..<2).map { a[$0] * theta[$0] }
                bSquared = max(bSquared, gradient.reduce(0) { $0 + $1 * $1 } + 2 * sigma * sigma)
                if k == steps { break }
                for i in 0..<2 { theta[i] -= alphas[k] * (gradient[i] + sigma * Double(generator.nextNormal())) }
            }
            let total = alphas.reduce(0, +)
            let average = weighted.map { $0 / total }
            gapSum += 0.5 * (a[0] * average[0] * average[0] + a[1] * average[1] * average[1])  // f* = 0 at θ* = 0
        }
        let bound = (2.0 + bSquared * alphas.reduce(0) { $0 + $1 * $1 }) / (2 * alphas.reduce(0, +))
        return (gapSum / Double(runs), bound)
    }
}

// The DPO family of preference losses. With sequence log-probabilities c, r (policy, chosen and
// rejected completions) and c₀, r₀ (reference), the implicit rewards of seed 000 §5.2 are
// β(c - c₀) and β(r - r₀), and Δ = (c - c₀) - (r - r₀). Per pair, with σ the logistic function and
// ε the label smoothing (the formulas are TRL's, `DPOTrainer`, reverse-KL scores):
//
//   sigmoid       -log σ(βΔ)                                          (Rafailov et al. 2023, the seeds' loss)
//   hinge         max(0, 1 - βΔ)                                      (SLiC)
//   ipo           ((c - c₀)/|y_c| - (r - r₀)/|y_r| - 1/(2β))²          (Azar et al., per-token normalized)
//   robust        (-(1-ε) log σ(βΔ) + ε log σ(-βΔ)) / (1 - 2ε)          (Chowdhury et al.)
//   exo_pair      σ(βΔ)(log σ(βΔ) - log(1-ε)) + σ(-βΔ)(log σ(-βΔ) - log ε)   (Ji et al., ε > 0)
//   nca_pair      -log σ(β(c-c₀)) - ½ log σ(-β(c-c₀)) - ½ log σ(-β(r-r₀))
//   bco_pair      -log σ(β(c-c₀)) - log σ(-β(r-r₀))
//   sppo_hard     (c - c₀ - 1/(2β))² + (r - r₀ + 1/(2β))²
//   aot           δ = sort(c - r) - sort(c₀ - r₀) over the batch; -(1-ε) log σ(βδ) - ε log σ(-βδ)
//   aot_unpaired  δ = sort(c - c₀) - sort(r - r₀); the same
//   apo_zero      1 - σ(β(c-c₀)) + σ(β(r-r₀))
//   apo_down      σ(β(c-c₀)) + 1 - σ(βΔ)
//   discopop      z = βΔ, m = σ(z/τ): -log σ(z)(1 - m) + e^(-z) m
//   sft           -Σ c / Σ|y_c|: the chosen completions' mean token negative log-likelihood (RPO's term)
//   sigmoid_norm  -log σ(β((c - c₀)/|y_c| - (r - r₀)/|y_r|))
//
// and the reference-free ones, with c̄ = c/|y_c| (TRL's CPO and ORPO trainers):
//
//   simpo         -(1-ε) log σ(β(c̄ - r̄) - γ) - ε log σ(-(β(c̄ - r̄) - γ))   (Meng et al.)
//   cpo           -(1-ε) log σ(β(c - r)) - ε log σ(-β(c - r)) + α · sft      (Xu et al.)
//   orpo          sft - β log σ(log odds(c̄) - log odds(r̄)), odds(p) = p/(1-p) (Hong et al.)
//
// The loss is Σ_k w_k · mean over pairs of term k. Every term is built from differentiable tensor
// operations, so the gradient with respect to c and r comes from the tape.
import AlignKitNN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One term of a preference loss.
public enum PreferenceLossType: String, Codable, Sendable, CaseIterable {
    case sigmoid, hinge, ipo, robust
    case exoPair = "exo_pair", ncaPair = "nca_pair", bcoPair = "bco_pair", sppoHard = "sppo_hard"
    case aot, aotUnpaired = "aot_unpaired", apoZero = "apo_zero", apoDown = "apo_down", discopop, sft
    case sigmoidNorm = "sigmoid_norm"
    case simpo, cpo, orpo

    /// Whether the term belongs to the reference-free methods (SimPO, CPO, ORPO). Every other term
    /// is one of TRL's DPO loss types, whose runs load a reference (even `sft` alone, as TRL's do,
    /// so the rewards it reports are β(log π - log π_ref)).
    public var isReferenceFree: Bool { self == .simpo || self == .cpo || self == .orpo }

    /// Whether the rewards it reports are length-normalized (SimPO, ORPO).
    var normalizesLength: Bool { self == .simpo || self == .orpo }
}

/// A weighted sum of loss terms and their hyperparameters.
public struct PreferenceObjective: Codable, Sendable, Equatable {
    public struct Term: Codable, Sendable, Equatable {
        public var type: PreferenceLossType
        public var weight: Float
        public init(_ type: PreferenceLossType, weight: Float = 1) { self.type = type; self.weight = weight }
    }

    public var terms: [Term]
    /// β: the strength of the KL regularization (DPO), or the reward scale (SimPO, CPO, ORPO).
    public var beta: Float = 0.1
    /// ε of robust, exo_pair, aot, simpo and cpo.
    public var labelSmoothing: Float = 0
    /// τ of discopop.
    public var discopopTau: Float = 0.05
    /// γ of SimPO: the target reward margin.
    public var simpoGamma: Float = 0.5
    /// α of CPO: the weight of its negative log-likelihood term.
    public var cpoAlpha: Float = 1

    public init(_ terms: [Term] = [Term(.sigmoid)], beta: Float = 0.1, labelSmoothing: Float = 0) {
        self.terms = terms; self.beta = beta; self.labelSmoothing = labelSmoothing
    }

    /// Whether any term needs the reference model.
    public var needsReference: Bool { terms.contains { !$0.type.isReferenceFree } }

    /// Whether the implicit rewards are length-normalized policy log-probabilities (SimPO, ORPO).
    var normalizedRewards: Bool { !needsReference && terms.contains { $0.type.normalizesLength } }

    /// Checks the combination; the message names the option.
    public func validate() throws(ConfigurationError) {
        if terms.isEmpty { throw ConfigurationError("loss: at least one loss type is needed") }
        if !(beta > 0) { throw ConfigurationError("beta is \(beta); it must be positive") }
        if !(labelSmoothing >= 0 && labelSmoothing < 0.5) { throw ConfigurationError("label smoothing is \(labelSmoothing); it must be in [0, 0.5)") }
        let free = terms.filter { $0.type.isReferenceFree }
        if !free.isEmpty && needsReference {
            throw ConfigurationError("loss: \(free[0].type.rawValue) is reference-free and cannot be mixed with reference-based terms")
        }
        if terms.contains(where: { $0.type == .exoPair }) && labelSmoothing <= 0 {
            throw ConfigurationError("loss exo_pair needs a label smoothing ε > 0 (its target distribution is (1-ε, ε)); try 1e-3")
        }
        if terms.contains(where: { $0.type == .discopop }) && !(discopopTau > 0) { throw ConfigurationError("discopop tau must be positive") }
    }
}

/// The sequence log-probabilities of a batch of pairs.
public struct PairLogProbabilities {
    /// Policy, Σ log π over each chosen / rejected completion [B]; differentiable.
    public var chosen: Tensor
    public var rejected: Tensor
    /// Reference, the same [B]; constants (zeros for reference-free losses).
    public var referenceChosen: Tensor
    public var referenceRejected: Tensor
    /// Completion tokens per pair.
    public var chosenLengths: [Int]
    public var rejectedLengths: [Int]

    public init(chosen: Tensor, rejected: Tensor, referenceChosen: Tensor, referenceRejected: Tensor, chosenLengths: [Int], rejectedLengths: [Int]) {
        self.chosen = chosen; self.rejected = rejected
        self.referenceChosen = referenceChosen; self.referenceRejected = referenceRejected
        self.chosenLengths = chosenLengths; self.rejectedLengths = rejectedLengths
    }
}

/// The loss and the per-pair implicit rewards (for metrics).
public struct PreferenceLossResult {
    public var loss: Tensor
    public var chosenRewards: [Float]
    public var rejectedRewards: [Float]
}

extension PreferenceObjective {
    /// The loss of a batch of pairs (see the file's comment for each term).
    public func loss(_ p: PairLogProbabilities) -> PreferenceLossResult {
        let b = beta, eps = labelSmoothing
        let chosenRatio = p.chosen - p.referenceChosen, rejectedRatio = p.rejected - p.referenceRejected
        let delta = chosenRatio - rejectedRatio
        let chosenCount = Tensor(p.chosenLengths.map { Float(max($0, 1)) }), rejectedCount = Tensor(p.rejectedLengths.map { Float(max($0, 1)) })
        let chosenMean = p.chosen / chosenCount, rejectedMean = p.rejected / rejectedCount
        /// -(1-ε) log σ(z) - ε log σ(-z)
        func smoothedLogistic(_ z: Tensor) -> Tensor {
            let clean = -z.logSigmoid()
            return eps == 0 ? clean : (1 - eps) * clean - eps * (-z).logSigmoid()
        }
        /// The chosen completions' mean token negative log-likelihood, as a scalar.
        func nll() -> Tensor { -p.chosen.sum() / Float(max(p.chosenLengths.reduce(0, +), 1)) }
        /// The permutation that sorts `x` ascending (the gradient follows the values).
        func sorted(_ x: Tensor) -> Tensor {
            let v = x.scalars
            return x.gathering(atIndices: v.indices.sorted { v[$0] < v[$1] || (v[$0] == v[$1] && $0 < $1) })
        }
        var total: Tensor?
        for term in terms {
            let perPair: Tensor
            switch term.type {
            case .sigmoid: perPair = -(b * delta).logSigmoid()
            case .hinge: perPair = (1 - b * delta).relu()
            case .ipo:
                let d = chosenRatio / chosenCount - rejectedRatio / rejectedCount - 1 / (2 * b)
                perPair = d * d
            case .robust:
                perPair = ((1 - eps) * -(b * delta).logSigmoid() + eps * (-b * delta).logSigmoid()) / (1 - 2 * eps)
            case .exoPair:
                let z = b * delta
                perPair = z.sigmoid() * (z.logSigmoid() - logf(1 - eps)) + (-z).sigmoid() * ((-z).logSigmoid() - logf(eps))
            case .ncaPair:
                let c = b * chosenRatio, r = b * rejectedRatio
                perPair = -c.logSigmoid() - 0.5 * (-c).logSigmoid() - 0.5 * (-r).logSigmoid()
            case .bcoPair: perPair = -(b * chosenRatio).logSigmoid() - (-b * rejectedRatio).logSigmoid()
            case .sppoHard:
                let w = chosenRatio - 0.5 / b, l = rejectedRatio + 0.5 / b
                perPair = w * w + l * l
            case .aot: perPair = smoothedLogistic(b * (sorted(p.chosen - p.rejected) - sorted(p.referenceChosen - p.referenceRejected)))
            case .aotUnpaired: perPair = smoothedLogistic(b * (sorted(chosenRatio) - sorted(rejectedRatio)))
            case .apoZero: perPair = 1 - (b * chosenRatio).sigmoid() + (b * rejectedRatio).sigmoid()
            case .apoDown: perPair = (b * chosenRatio).sigmoid() + 1 - (b * delta).sigmoid()
            case .discopop:
                let z = b * delta, m = (z / discopopTau).sigmoid()
                perPair = -z.logSigmoid() * (1 - m) + (-z).exp() * m
            case .sft: perPair = nll().reshaped(to: [1])
            case .sigmoidNorm: perPair = -(b * (chosenRatio / chosenCount - rejectedRatio / rejectedCount)).logSigmoid()
            case .simpo: perPair = smoothedLogistic(b * (chosenMean - rejectedMean) - simpoGamma)
            case .cpo: perPair = smoothedLogistic(b * (p.chosen - p.rejected)) + cpoAlpha * nll().reshaped(to: [1])
            case .orpo:
                let logOdds = (chosenMean - rejectedMean) - (log1mexp(chosenMean) - log1mexp(rejectedMean))
                perPair = nll().reshaped(to: [1]) - b * logOdds.logSigmoid()
            }
            let weighted = perPair.mean() * term.weight
            total = total.map { $0 + weighted } ?? weighted
        }
        let (chosenRewards, rejectedRewards): (Tensor, Tensor) = needsReference
            ? (b * chosenRatio, b * rejectedRatio)
            : normalizedRewards ? (b * chosenMean, b * rejectedMean) : (b * p.chosen, b * p.rejected)
        return PreferenceLossResult(loss: total!, chosenRewards: chosenRewards.scalars, rejectedRewards: rejectedRewards.scalars)
    }
}

/// log(1 - eˣ) for x < 0 (a mean token log-probability); 1 - eˣ is held above the smallest normal
/// float so a completion of probability one gives a large finite value, not infinity.
func log1mexp(_ x: Tensor) -> Tensor {
    (1 - x.exp()).clamped(lower: .leastNormalMagnitude).log()
}

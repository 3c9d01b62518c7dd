// Loss functions, each returning a scalar tensor (the mean over the batch unless noted).

/// Mean squared error: mean((prediction - target)²).
public func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    (prediction - target).raised(toPower: 2).mean()
}

/// Binary cross-entropy from logits z and labels y ∈ [0, 1], stable for large |z|:
/// -[y log σ(z) + (1 - y) log σ(-z)], averaged.
public func binaryCrossEntropy(logits: Tensor, labels: Tensor) -> Tensor {
    precondition(logits.shape == labels.shape, "binaryCrossEntropy: logits \(logits.shape) and labels \(labels.shape) differ")
    return -(labels * logits.logSigmoid() + (1 - labels) * (-logits).logSigmoid()).mean()
}

/// Binary cross-entropy from probabilities p (clamped to [ε, 1 - ε], ε = 1e-7):
/// -[y log p + (1 - y) log(1 - p)], averaged.
public func binaryCrossEntropy(probabilities: Tensor, labels: Tensor) -> Tensor {
    precondition(probabilities.shape == labels.shape, "binaryCrossEntropy: probabilities \(probabilities.shape) and labels \(labels.shape) differ")
    let p = probabilities.clamped(lower: 1e-7, upper: 1 - 1e-7)
    return -(labels * p.log() + (1 - labels) * (1 - p).log()).mean()
}

/// Cross-entropy of logits [N, C] against class indices, averaged over the rows whose label is not
/// `ignoreIndex`. With label smoothing ε the target is (1 - ε) one-hot + ε / C uniform:
/// loss = (1 - ε)(-log pᵧ) + ε · mean_c(-log p_c)  (as PyTorch).
public func crossEntropy(logits: Tensor, labels: [Int], ignoreIndex: Int? = nil, labelSmoothing: Float = 0) -> Tensor {
    precondition(logits.rank == 2 && logits.shape[0] == labels.count,
                 "crossEntropy: logits \(logits.shape) need [N, C] with N = \(labels.count) labels")
    precondition(labelSmoothing >= 0 && labelSmoothing < 1, "crossEntropy: label smoothing \(labelSmoothing) must be in [0, 1)")
    let classes = logits.shape[1]
    let keep = labels.map { $0 == ignoreIndex ? Float(0) : 1 }
    let kept = keep.reduce(0, +)
    let safeLabels = labels.map { $0 == ignoreIndex ? 0 : $0 }
    for label in safeLabels { precondition(label >= 0 && label < classes, "crossEntropy: label \(label) is out of range 0..<\(classes)") }
    if labelSmoothing == 0 {
        // Fused: the [N, C] log-softmax is never stored.
        let picked = logits.logSoftmaxGathering(labels: labels.map { $0 == ignoreIndex ? -1 : $0 })
        return -picked.sum() / Swift.max(kept, 1)
    }
    let logProbabilities = logits.logSoftmax()
    var perRow = -logProbabilities.gathering(alongAxis: 1, indices: safeLabels)  // [N, 1]
    if labelSmoothing > 0 {
        perRow = perRow * (1 - labelSmoothing) - logProbabilities.mean(alongAxes: [1]) * labelSmoothing
    }
    let mask = Tensor(keep, shape: [labels.count, 1])
    return (perRow * mask).sum() / Swift.max(kept, 1)
}

/// KL(P ‖ Q) = Σ p (log p - log q) over the last axis from log-probabilities, averaged over rows.
public func klDivergence(logProbabilitiesP: Tensor, logProbabilitiesQ: Tensor) -> Tensor {
    precondition(logProbabilitiesP.shape == logProbabilitiesQ.shape, "klDivergence: shapes \(logProbabilitiesP.shape) and \(logProbabilitiesQ.shape) differ")
    let perRow = (logProbabilitiesP.exp() * (logProbabilitiesP - logProbabilitiesQ)).sum(alongAxes: [-1])
    return perRow.mean()
}

/// The surrogate losses of seed 004 for a margin m = y · f(x) with labels y ∈ {-1, +1}.
public enum SurrogateLoss: String, CaseIterable, Sendable {
    /// I(m < 0): the error count; not differentiable (its gradient is zero almost everywhere).
    case zeroOne
    /// exp(-m) (AdaBoost).
    case exponential
    /// log(1 + exp(-m)) (logistic regression), computed as softplus(-m).
    case logistic
    /// max(1 - m, 0) (SVM).
    case hinge

    /// The mean loss over margins `m`.
    public func callAsFunction(margins m: Tensor) -> Tensor {
        switch self {
        case .zeroOne: m.isLess(than: Tensor(0)).mean()
        case .exponential: (-m).exp().mean()
        case .logistic: (-m).softplus().mean()
        case .hinge: (1 - m).relu().mean()
        }
    }
}

/// Bradley–Terry pairwise loss (seed 000 §5.1.1): -log σ(r_chosen - r_rejected - margin), averaged.
public func bradleyTerryLoss(chosenRewards: Tensor, rejectedRewards: Tensor, margin: Tensor? = nil) -> Tensor {
    precondition(chosenRewards.shape == rejectedRewards.shape, "bradleyTerryLoss: shapes \(chosenRewards.shape) and \(rejectedRewards.shape) differ")
    var difference = chosenRewards - rejectedRewards
    if let margin { difference = difference - margin }
    return -difference.logSigmoid().mean()
}

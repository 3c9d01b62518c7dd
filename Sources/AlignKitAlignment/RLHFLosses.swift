// The losses of KTO and of PPO-RLHF (seed 000 §5.1.2), and generalized advantage estimation.
//
//   KTO (Ethayarajh et al. 2024, TRL's KTOTrainer): with r = log π(y|x) - log π_ref(y|x) and z₀ the
//   batch's KL estimate (mean of the same ratio on mismatched prompt/completion pairs, clamped at 0,
//   no gradient): desirable y: λ_D (1 - σ(β(r - z₀))); undesirable y: λ_U (1 - σ(β(z₀ - r))); mean.
//
//   GAE (Schulman et al. 2016): δ_t = r_t + γ V_{t+1} - V_t with V after the last step 0;
//   A_t = δ_t + γλ A_{t+1}; returns R_t = A_t + V_t.
//
//   PPO (Schulman et al. 2017): ρ = exp(log π - log π_old);
//   policy loss  mean(max(-A ρ, -A clip(ρ, 1-ε, 1+ε)));
//   value loss   ½ mean(max((V - R)², (V_old + clip(V - V_old, -ε_v, ε_v) - R)²)).
import AlignKitNN

/// KTO's loss for a batch of single completions (see the file's comment).
public func ktoLoss(logProbabilities: Tensor, referenceLogProbabilities: Tensor, desirable: [Bool], klEstimate: Float,
                    beta: Float, desirableWeight: Float = 1, undesirableWeight: Float = 1) -> Tensor {
    let ratio = logProbabilities - referenceLogProbabilities
    let sign = Tensor(desirable.map { $0 ? 1 : -1 })
    let weight = Tensor(desirable.map { $0 ? desirableWeight : undesirableWeight })
    // Desirable: 1 - σ(β(r - z₀)); undesirable: 1 - σ(β(z₀ - r)) = 1 - σ(-β(r - z₀)).
    return (weight * (1 - (beta * sign * (ratio - klEstimate)).sigmoid())).mean()
}

/// Generalized advantage estimates and returns for one episode of per-step rewards and values.
public func generalizedAdvantages(rewards: [Float], values: [Float], gamma: Float, lambda: Float) -> (advantages: [Float], returns: [Float]) {
    precondition(rewards.count == values.count, "generalizedAdvantages: \(rewards.count) rewards but \(values.count) values")
    var advantages = [Float](repeating: 0, count: rewards.count)
    var running: Float = 0
    for t in rewards.indices.reversed() {
        let next = t + 1 < values.count ? values[t + 1] : 0
        let delta = rewards[t] + gamma * next - values[t]
        running = delta + gamma * lambda * running
        advantages[t] = running
    }
    return (advantages, zip(advantages, values).map(+))
}

/// PPO's clipped policy loss over tokens, and the share of tokens whose ratio left [1-ε, 1+ε].
public func ppoPolicyLoss(logProbabilities: Tensor, oldLogProbabilities: Tensor, advantages: Tensor, clip: Float) -> (loss: Tensor, clipFraction: Float) {
    let ratio = (logProbabilities - oldLogProbabilities).exp()
    let unclipped = -advantages * ratio
    let clipped = -advantages * ratio.clamped(lower: 1 - clip, upper: 1 + clip)
    let fraction = ratio.scalars.reduce(0) { $0 + (abs($1 - 1) > clip ? 1 : 0) } / Float(max(ratio.scalarCount, 1))
    return (unclipped.maximum(clipped).mean(), fraction)
}

/// PPO's clipped value loss over tokens.
public func ppoValueLoss(values: Tensor, oldValues: Tensor, returns: Tensor, clip: Float) -> Tensor {
    let clippedValues = oldValues + (values - oldValues).clamped(lower: -clip, upper: clip)
    let a = values - returns, b = clippedValues - returns
    return 0.5 * (a * a).maximum(b * b).mean()
}

// Every preference loss, the Bradley–Terry loss, KTO, GAE and the PPO losses against float64 PyTorch
// numbers (scripts/make-loss-fixtures.py), value and gradient, plus finite differences of our own.
//
// Tolerance: 1e-4 relative with an absolute floor of 1e-5. Inputs are float32 log-probabilities near
// -40 whose differences (the implicit rewards) are a few units; float32 keeps them to about 4e-6, and
// each loss is a handful of operations on them, so 1e-4 relative is two orders above the rounding
// while any wrong term, sign or factor moves the value by far more.
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

struct LossFixture: Decodable {
    struct Inputs: Decodable { let chosen, rejected, ref_chosen, ref_rejected, chosen_len, rejected_len: [Float] }
    struct Preference: Decodable {
        let type: String; let beta: Float; let label_smoothing: Float
        let loss: Double; let grad_chosen: [Double]; let grad_rejected: [Double]
    }
    struct BradleyTerry: Decodable { let chosen, rejected, margin: [Float]; let loss: Double; let grad_chosen, grad_rejected: [Double] }
    struct KTO: Decodable {
        let logps, ref_logps: [Float]; let labels: [Bool]; let kl, beta, desirable_weight, undesirable_weight: Float
        let loss: Double; let grad: [Double]
    }
    struct GAE: Decodable { let rewards, values: [Float]; let gamma, lambda: Float; let advantages, returns: [Double] }
    struct PPO: Decodable {
        let new_logps, old_logps, advantages, new_values, old_values, returns: [Float]; let clip, value_clip: Float
        let policy_loss, value_loss, clip_fraction: Double; let grad_logps, grad_values: [Double]
    }
    let inputs: Inputs
    let preference: [Preference]
    let bradley_terry: BradleyTerry
    let kto: KTO
    let gae: GAE
    let ppo: PPO
}

func close(_ a: Double, _ b: Double, relative: Double = 1e-4, absolute: Double = 1e-5) -> Bool {
    abs(a - b) <= max(relative * abs(b), absolute)
}

@Suite("Alignment losses")
struct LossTests {
    static let fixture = try! JSONDecoder().decode(LossFixture.self, from: Data(contentsOf: fixtures.appendingPathComponent("losses.json")))

    static func objective(_ c: LossFixture.Preference) -> PreferenceObjective {
        PreferenceObjective([.init(PreferenceLossType(rawValue: c.type)!)], beta: c.beta, labelSmoothing: c.label_smoothing)
    }

    static func pairs(_ c: Tensor, _ r: Tensor) -> PairLogProbabilities {
        let i = fixture.inputs
        return PairLogProbabilities(chosen: c, rejected: r, referenceChosen: Tensor(i.ref_chosen), referenceRejected: Tensor(i.ref_rejected),
                                    chosenLengths: i.chosen_len.map { Int($0) }, rejectedLengths: i.rejected_len.map { Int($0) })
    }

    @Test(arguments: fixture.preference.indices)
    func preferenceLossMatchesReference(_ index: Int) throws {
        let c = Self.fixture.preference[index]
        let objective = Self.objective(c)
        try objective.validate()
        let (loss, grads) = valueWithGradient(at: [Tensor(Self.fixture.inputs.chosen), Tensor(Self.fixture.inputs.rejected)]) { xs in
            objective.loss(Self.pairs(xs[0], xs[1])).loss
        }
        #expect(close(Double(loss.scalar), c.loss), "\(c.type) β=\(c.beta): loss \(loss.scalar) vs \(c.loss)")
        for (ours, theirs) in zip(grads[0].scalars, c.grad_chosen) { #expect(close(Double(ours), theirs), "\(c.type) d/dchosen \(ours) vs \(theirs)") }
        for (ours, theirs) in zip(grads[1].scalars, c.grad_rejected) { #expect(close(Double(ours), theirs), "\(c.type) d/drejected \(ours) vs \(theirs)") }
    }

    @Test(arguments: PreferenceLossType.allCases)
    func preferenceLossGradientMatchesFiniteDifferences(_ type: PreferenceLossType) {
        // Log-probabilities of a few units so the losses are neither saturated nor flat; β = 0.5 so a
        // central difference of step 1e-2 sees each term's curvature.
        var objective = PreferenceObjective([.init(type)], beta: 0.5, labelSmoothing: type == .exoPair ? 0.1 : 0.05)
        objective.simpoGamma = 0.3
        let c = Tensor([-3.1, -2.2, -4.0, -1.5]), r = Tensor([-2.5, -3.7, -2.9, -2.0])
        let c0 = Tensor([-2.9, -2.8, -3.5, -1.9]), r0 = Tensor([-2.6, -3.1, -3.3, -2.2])
        let failures = gradientMismatches([c, r]) { xs in
            objective.loss(PairLogProbabilities(chosen: xs[0], rejected: xs[1], referenceChosen: c0, referenceRejected: r0,
                                                chosenLengths: [3, 5, 2, 4], rejectedLengths: [4, 2, 6, 3])).loss
        }
        #expect(failures.isEmpty, "\(type.rawValue): \(failures.prefix(3))")
    }

    @Test func bradleyTerryMatchesReference() {
        let f = Self.fixture.bradley_terry
        let (loss, grads) = valueWithGradient(at: [Tensor(f.chosen), Tensor(f.rejected)]) { xs in
            bradleyTerryLoss(chosenRewards: xs[0], rejectedRewards: xs[1], margin: Tensor(f.margin))
        }
        #expect(close(Double(loss.scalar), f.loss))
        for (a, b) in zip(grads[0].scalars + grads[1].scalars, f.grad_chosen + f.grad_rejected) { #expect(close(Double(a), b)) }
    }

    @Test func ktoMatchesReference() {
        let f = Self.fixture.kto
        let (loss, grad) = valueWithGradient(at: Tensor(f.logps)) { x in
            ktoLoss(logProbabilities: x, referenceLogProbabilities: Tensor(f.ref_logps), desirable: f.labels, klEstimate: f.kl,
                    beta: f.beta, desirableWeight: f.desirable_weight, undesirableWeight: f.undesirable_weight)
        }
        #expect(close(Double(loss.scalar), f.loss))
        for (a, b) in zip(grad.scalars, f.grad) { #expect(close(Double(a), b), "KTO gradient \(a) vs \(b)") }
    }

    @Test func gaeMatchesReference() {
        let f = Self.fixture.gae
        let (advantages, returns) = generalizedAdvantages(rewards: f.rewards, values: f.values, gamma: f.gamma, lambda: f.lambda)
        for (a, b) in zip(advantages, f.advantages) { #expect(close(Double(a), b), "advantage \(a) vs \(b)") }
        for (a, b) in zip(returns, f.returns) { #expect(close(Double(a), b), "return \(a) vs \(b)") }
    }

    @Test func ppoLossesMatchReference() {
        let f = Self.fixture.ppo
        var fraction: Float = 0
        let (_, grads) = valueWithGradient(at: [Tensor(f.new_logps), Tensor(f.new_values)]) { xs in
            let (policy, clipped) = ppoPolicyLoss(logProbabilities: xs[0], oldLogProbabilities: Tensor(f.old_logps),
                                                  advantages: Tensor(f.advantages), clip: f.clip)
            let value = ppoValueLoss(values: xs[1], oldValues: Tensor(f.old_values), returns: Tensor(f.returns), clip: f.value_clip)
            #expect(close(Double(policy.scalar), f.policy_loss), "policy loss \(policy.scalar) vs \(f.policy_loss)")
            #expect(close(Double(value.scalar), f.value_loss), "value loss \(value.scalar) vs \(f.value_loss)")
            fraction = clipped
            return policy + value
        }
        #expect(close(Double(fraction), f.clip_fraction))
        for (a, b) in zip(grads[0].scalars, f.grad_logps) { #expect(close(Double(a), b), "PPO d/dlogp \(a) vs \(b)") }
        for (a, b) in zip(grads[1].scalars, f.grad_values) { #expect(close(Double(a), b), "PPO d/dV \(a) vs \(b)") }
    }
}

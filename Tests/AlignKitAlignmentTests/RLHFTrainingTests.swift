// The RLHF pipeline DPO replaces: the reward model (Bradley–Terry with margins and centering, scored
// at the last token whatever the padding) and PPO (what a rollout holds, each baseline's defining
// property, learning a programmatic reward, and a resumed run ending where an uninterrupted one does).
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

let tinyModel = fixtures.appendingPathComponent("trl-dpo/policy")
let tinyPairs = fixtures.appendingPathComponent("trl-dpo/prefs.jsonl")

@Suite("Reward model")
struct RewardModelTests {
    @Test func lossWithMarginAndCentering() throws {
        let chosen = Tensor([1.5, -0.25, 0.5]), rejected = Tensor([0.5, 0.75, 0.5])
        let margins: [Float] = [0.5, 0, 1], c: Float = 0.1
        // By hand: mean of -log σ(r_c - r_r - m) plus c · mean((r_c + r_r)²).
        let d: [Double] = [1.5 - 0.5 - 0.5, -0.25 - 0.75, 0.5 - 0.5 - 1]
        let bt = d.map { Foundation.log(1 + Foundation.exp(-$0)) }.reduce(0, +) / 3
        let centering = Double(c) * ([2.0, 0.5, 1.0].map { $0 * $0 }.reduce(0, +) / 3)
        let loss = rewardModelLoss(chosen: chosen, rejected: rejected, margins: margins, centering: c).scalar
        #expect(abs(Double(loss) - (bt + centering)) < 1e-6)
        let failures = gradientMismatches([chosen, rejected]) { rewardModelLoss(chosen: $0[0], rejected: $0[1], margins: margins, centering: c) }
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func scoresReadEachSequenceAtItsLastTokenWhateverThePadding() throws {
        let model = ScalarHeadModel(trunk: try GPT(contentsOf: tinyModel), seed: 3)
        let short = [5, 17, 42], long = [5, 17, 42, 99, 7, 250]
        let together = model.scores([short, long], padID: 0).scalars
        let alone = model.scores([short]).scalar
        #expect(abs(together[0] - alone) < 1e-5)
        // The score is the value at the last position.
        let values = model.values(long, batch: 1).scalars
        #expect(abs(together[1] - values[5]) < 1e-5)
    }

    @Test func savedFolderRoundTripsAndAMissingHeadIsNamed() throws {
        let out = try temporaryFolder("scalar")
        defer { try? FileManager.default.removeItem(at: out) }
        let model = ScalarHeadModel(trunk: try GPT(contentsOf: tinyModel), seed: 5)
        try model.save(to: out)
        let loaded = try ScalarHeadModel(contentsOf: out)
        #expect(loaded.scores([[1, 2, 3]]).scalar == model.scores([[1, 2, 3]]).scalar)
        let error = #expect(throws: DataFileError.self) { try ScalarHeadModel(contentsOf: tinyModel) }
        #expect(error?.description.contains("score.safetensors") == true)
    }

    @Test func trainingRanksEveryPairAndTheFolderServesAsAReward() throws {
        let out = try temporaryFolder("reward")
        defer { try? FileManager.default.removeItem(at: out) }
        var o = RewardTrainingOptions()
        o.data = tinyPairs.path; o.evaluationData = tinyPairs.path; o.model = tinyModel.path
        o.batchSize = 4; o.epochs = 10; o.learningRate = 3e-3; o.minimumLearningRate = 3e-3; o.evaluateEvery = 20
        var evaluations: [[String: Double]] = []
        let trainer = try RewardTrainer(options: o, output: out) { if case .evaluation(_, let m) = $0 { evaluations.append(m) } }
        try trainer.run()
        let first = try #require(evaluations.first), last = try #require(evaluations.last)
        #expect(last["eval_accuracy"] == 1, "\(last)")
        #expect(last["eval_loss"]! < first["eval_loss"]! / 2, "\(first) → \(last)")
        // The run folder scores each pair as the trainer did: chosen above rejected.
        let reward = try RewardModelFunction(contentsOf: out)
        for pair in try PreferenceExample.read(tinyPairs).records {
            guard case .plain(let p) = pair.prompt, case .plain(let c) = pair.chosen, case .plain(let r) = pair.rejected else { continue }
            #expect(reward.reward(prompt: p, completion: c) > reward.reward(prompt: p, completion: r), "\(p)")
        }
    }

    @Test func aMarginThatIsNotANumberIsNamed() throws {
        let data = try writeLines([#"{"prompt": "a", "chosen": "b", "rejected": "c", "margin": "big"}"#], name: "margin.jsonl")
        let error = #expect(throws: DataFileError.self) { try PreferenceExample.read(data) }
        #expect(error?.description.contains("margin.jsonl:1: field 'margin'") == true, "\(String(describing: error))")
    }
}

/// A reward the tiny model can learn to raise: the share of the completion's letters that are vowels.
struct VowelShare: RewardFunction {
    func reward(prompt: String, completion: String) -> Float {
        let letters = completion.lowercased().filter(\.isLetter)
        return letters.isEmpty ? 0 : Float(letters.filter { "aeiou".contains($0) }.count) / Float(letters.count)
    }
}

@Suite("PPO", .serialized)
struct PPOTests {
    static func options(_ advantage: AdvantageEstimator = .gae) -> PPOOptions {
        var o = PPOOptions()
        o.data = tinyPairs.path; o.model = tinyModel.path
        o.batchSize = 4; o.samplesPerPrompt = advantage == .gae ? 1 : 4; o.maximumNewTokens = 8
        o.advantage = advantage; o.learningRate = 3e-3; o.minimumLearningRate = 3e-3
        o.saveEvery = 1000
        o.epochs = 100   // runs stop at maxSteps
        return o
    }

    @Test func rolloutQuantities() throws {
        let out = try temporaryFolder("ppo-rollout")
        defer { try? FileManager.default.removeItem(at: out) }
        var o = Self.options()
        o.whitenAdvantages = false
        o.gamma = 0.9; o.lambda = 0.8
        let trainer = try PPOTrainer(options: o, output: out, reward: VowelShare())
        let rollout = trainer.rollout(step: 0)
        #expect(rollout.sequences.count == 4)
        for r in rollout.sequences.indices {
            let n = rollout.sequences[r].completion.count
            #expect(rollout.oldLogProbabilities[r].count == n && rollout.oldValues[r].count == n)
            // The reference is the starting policy: the per-token KL is 0, so the score is the only reward.
            for (a, b) in zip(rollout.oldLogProbabilities[r], rollout.referenceLogProbabilities[r]) { #expect(abs(a - b) < 1e-5) }
            let (advantages, returns) = generalizedAdvantages(rewards: (0..<n).map { $0 == n - 1 ? rollout.scores[r] : 0 },
                                                              values: rollout.oldValues[r], gamma: 0.9, lambda: 0.8)
            for t in 0..<n {
                #expect(abs(rollout.advantages[r][t] - advantages[t]) < 1e-4)
                #expect(abs(rollout.returns[r][t] - returns[t]) < 1e-4)
            }
        }
        #expect(rollout.entropies.allSatisfy { $0 > 0 && $0 <= Float(Foundation.log(400.0)) + 1e-3 })
    }

    @Test func rlooAndGRPOBaselinesCentreEachPromptsSamples() throws {
        for advantage in [AdvantageEstimator.rloo, .grpo] {
            let out = try temporaryFolder("ppo-\(advantage)")
            defer { try? FileManager.default.removeItem(at: out) }
            var o = Self.options(advantage)
            o.whitenAdvantages = false
            let rollout = try PPOTrainer(options: o, output: out, reward: VowelShare()).rollout(step: 0)
            #expect(rollout.sequences.count == 16)
            for g in stride(from: 0, to: 16, by: 4) {
                let perSample = (g..<(g + 4)).map { rollout.advantages[$0].first ?? 0 }
                #expect(abs(perSample.reduce(0, +)) < 1e-4, "\(advantage): \(perSample)")
                if advantage == .rloo {
                    // A_i = R_i - mean of the others (R = score, the KL being 0 at the start).
                    let s = (g..<(g + 4)).map { rollout.scores[$0] }
                    #expect(abs(perSample[0] - (s[0] - (s[1] + s[2] + s[3]) / 3)) < 1e-5)
                }
            }
        }
        var o = Self.options(.grpo)
        o.samplesPerPrompt = 1
        #expect(throws: DataFileError.self) { try PPOTrainer(options: o, output: temporaryFolder("ppo-bad"), reward: VowelShare()) }
    }

    /// 80 steps of 4 prompts × 4 samples with a KL coefficient of 0.01 raise the held-out vowel share
    /// (32 samples with fixed seeds, 0.36 at the start) by 0.39-0.67 over seeds 1-8, every baseline, on the
    /// AVX2 and portable GEMM paths (48 runs); the test asks for 0.2. At the default 0.05 the penalty held
    /// the gains to 0.10-0.30 (rloo) and 0.14-0.24 (gae), and a run on an AVX-512 Xeon, whose roundings
    /// differ, gained 0.07: the old test's 0.1 failed there on rounding alone.
    @Test func everyBaselineRaisesAProgrammaticRewardWithFiniteKL() throws {
        for advantage in AdvantageEstimator.allCases {
            let out = try temporaryFolder("ppo-learn")
            defer { try? FileManager.default.removeItem(at: out) }
            var o = Self.options(advantage)
            o.samplesPerPrompt = 4
            o.learningRate = 6e-3; o.minimumLearningRate = 6e-3
            o.klCoefficient = 0.01
            o.evaluationData = tinyPairs.path
            o.maxSteps = 80; o.evaluateEvery = 80
            var evaluations: [[String: Double]] = []
            let trainer = try PPOTrainer(options: o, output: out, reward: VowelShare()) { if case .evaluation(_, let m) = $0 { evaluations.append(m) } }
            try trainer.run()
            let first = try #require(evaluations.first), last = try #require(evaluations.last)
            #expect(last["eval_reward"]! > first["eval_reward"]! + 0.2, "\(advantage): \(first) → \(last)")
            #expect(last["eval_kl"]!.isFinite && last["eval_kl"]! > 0, "\(advantage): \(last)")
        }
    }

    @Test func resumedRunEndsWhereAnUninterruptedOneDoes() throws {
        try withKernelSettingsLock {
            let whole = try temporaryFolder("ppo-whole"), split = try temporaryFolder("ppo-split")
            defer { for u in [whole, split] { try? FileManager.default.removeItem(at: u) } }
            var o = Self.options()
            o.maxSteps = 6; o.saveEvery = 2; o.targetKL = 0.01   // the adaptive β is part of the state
            let uninterrupted = try PPOTrainer(options: o, output: whole, reward: VowelShare())
            try uninterrupted.run()
            var steps = 0
            let stopped = try PPOTrainer(options: o, output: split, reward: VowelShare())
            try stopped.run { steps += 1; return steps > 3 }
            let resumed = try PPOTrainer(options: o, output: split, resume: true, reward: VowelShare())
            #expect(resumed.step == 3)
            #expect(resumed.klCoefficient == stopped.klCoefficient)
            try resumed.run()
            var a = uninterrupted.models, b = resumed.models
            var pa: [[Float]] = [], pb: [[Float]] = []
            a.forEachParameter { pa.append($0.scalars) }
            b.forEachParameter { pb.append($0.scalars) }
            #expect(pa == pb)
            #expect(uninterrupted.klCoefficient == resumed.klCoefficient)
        }
    }
}

@Suite("KTO")
struct KTOTests {
    /// The tiny pairs as unpaired data: each chosen completion desirable, each rejected one not.
    static func unpairedData() throws -> URL {
        var lines: [String] = []
        for pair in try PreferenceExample.read(tinyPairs).records {
            guard case .plain(let p) = pair.prompt, case .plain(let c) = pair.chosen, case .plain(let r) = pair.rejected else { continue }
            for (completion, label) in [(c, true), (r, false)] {
                let object: [String: Any] = ["prompt": p, "completion": completion, "label": label]
                lines.append(String(data: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), encoding: .utf8)!)
            }
        }
        return try writeLines(lines, name: "kto.jsonl")
    }

    @Test func trainingSeparatesDesirableFromUndesirable() throws {
        let data = try Self.unpairedData(), out = try temporaryFolder("kto")
        defer { try? FileManager.default.removeItem(at: out) }
        var o = KTOOptions()
        o.data = data.path; o.evaluationData = data.path; o.model = tinyModel.path
        o.batchSize = 4; o.epochs = 6; o.learningRate = 3e-3; o.minimumLearningRate = 3e-3; o.beta = 0.5; o.evaluateEvery = 100
        var evaluations: [[String: Double]] = []
        let trainer = try KTOTrainer(options: o, output: out) { if case .evaluation(_, let m) = $0 { evaluations.append(m) } }
        #expect(trainer.train.filter { $0.label == true }.count == 8 && trainer.train.count == 16)
        try trainer.run()
        let first = try #require(evaluations.first), last = try #require(evaluations.last)
        // Before training the policy is the reference: every reward and the KL estimate are 0, the loss is 1 - σ(0).
        #expect(abs(first["eval_loss"]! - 0.5) < 1e-6 && abs(first["eval_kl"]!) < 1e-5 && abs(first["eval_rewards/margins"]!) < 1e-5, "\(first)")   // (rows batched differently: 1e-5)
        #expect(last["eval_rewards/margins"]! > 1, "\(last)")
        #expect(last["eval_loss"]! < 0.4, "\(last)")
        #expect(last["eval_kl"]! >= 0)
    }

    @Test func aLabelThatIsNotABooleanIsNamed() throws {
        let data = try writeLines([#"{"prompt": "a", "completion": "b", "label": true}"#, #"{"prompt": "a", "completion": "b", "label": 1}"#],
                                  name: "labels.jsonl")
        let error = #expect(throws: DataFileError.self) { try CompletionExample.readUnpaired(data) }
        #expect(error?.description.contains("labels.jsonl:2: field 'label'") == true, "\(String(describing: error))")
    }
}

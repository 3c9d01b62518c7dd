// Parity with TRL end to end: scripts/make-trl-parity.py ran TRL's DPOTrainer at learning rate 0 on a
// tiny random Llama policy and a different tiny GPT-2 reference, for every loss type, and committed
// the metrics it logged. AlignKit's trainer runs one step on the same checkpoints, tokenizer and file
// and must log the same loss, rewards/* and logps/*.
//
// Tolerance: 1e-4 relative, with an absolute floor of 1e-5 for values near zero. Both sides compute
// in float32; a sequence log-probability near -100 carries rounding of about 1e-5, and the rewards
// are β times differences of two such sums, so 1e-5 absolute is the smallest error both can promise.
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

struct TRLRun: Decodable {
    let name: String
    let loss_type: [String]
    let loss_weights: [Float]?
    let beta: Float
    let label_smoothing: Float
    let reference: Bool
    let metrics: [String: Double]
}

struct TRLFixture: Decodable {
    let trl: String
    let max_length: Int
    let runs: [TRLRun]
}

@Suite("TRL parity")
struct TRLParityTests {
    static let folder = fixtures.appendingPathComponent("trl-dpo")
    static let fixture = try! JSONDecoder().decode(TRLFixture.self, from: Data(contentsOf: folder.appendingPathComponent("metrics.json")))

    @Test(arguments: fixture.runs.map(\.name))
    func oneStepMatchesTRL(_ name: String) throws {
        let run = Self.fixture.runs.first { $0.name == name }!
        var options = PreferenceTrainingOptions()
        options.data = Self.folder.appendingPathComponent("prefs.jsonl").path
        options.model = Self.folder.appendingPathComponent("policy").path
        options.referenceModel = run.reference ? Self.folder.appendingPathComponent("reference").path : nil
        let weights = run.loss_weights ?? run.loss_type.map { _ in 1 }
        options.objective = PreferenceObjective(zip(run.loss_type, weights).map { .init(PreferenceLossType(rawValue: $0)!, weight: $1) },
                                                beta: run.beta, labelSmoothing: run.label_smoothing)
        options.batchSize = 8
        options.maxLength = Self.fixture.max_length
        options.learningRate = 0
        options.minimumLearningRate = 0
        options.precomputeReference = false
        let out = try temporaryFolder("parity")
        defer { try? FileManager.default.removeItem(at: out) }
        let trainer = try PreferenceTrainer(options: options, output: out)
        #expect(trainer.train.count == 8)
        let ours = trainer.trainStep(learningRate: 0)
        for key in ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected",
                    "logits/chosen", "logits/rejected"] {
            let expected = run.metrics[key]!, actual = ours[key]!
            #expect(close(actual, expected), "\(name) \(key): AlignKit \(actual), TRL \(expected)")
        }
    }
}

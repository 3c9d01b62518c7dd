// The demo pipeline at toy sizes: every stage runs, an interrupted demo keeps its finished stages and
// the next run resumes after them, and the report holds its charts and tables.
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

@Suite("Demo", .serialized)
struct DemoTests {
    static var tiny: DemoOptions {
        var o = DemoOptions()
        o.vocabularySize = 300; o.modelSize = 48; o.layerCount = 2; o.headCount = 2; o.kvHeadCount = 1; o.contextLength = 32
        o.pretrainSteps = 300; o.pretrainBatchSize = 8; o.pretrainLearningRate = 1e-2; o.sftExamples = 40; o.sftSteps = 3
        o.pairPrompts = 60; o.samplesPerPrompt = 4; o.maximumNewTokens = 10; o.heldOutPrompts = 6; o.evaluationSamples = 2
        o.rewardEpochs = 1; o.ppoKLCoefficients = [0.05]; o.ppoSteps = 2; o.ppoBatchSize = 4; o.ppoSamples = 2
        o.dpoBetas = [0.1]; o.dpoEpochs = 1; o.checkpointsPerRun = 2
        return o
    }

    @Test func interruptedDemoResumesAndReports() throws {
        let folder = try temporaryFolder("demo")
        defer { try? FileManager.default.removeItem(at: folder) }
        var finishedStages: [String] = []
        let first = try AlignmentDemo(options: Self.tiny, folder: folder, emit: { if case .stageFinished(let n, _, _) = $0 { finishedStages.append(n) } },
                                      shouldStop: { finishedStages.contains("sft") })
        #expect(try first.run() == false)
        #expect(finishedStages == ["corpus", "pretrain", "sft"])
        var skipped: [String] = [], finished: [String] = []
        let second = try AlignmentDemo(options: Self.tiny, folder: folder, emit: {
            if case .stageSkipped(let n, _) = $0 { skipped.append(n) }
            if case .stageFinished(let n, _, _) = $0 { finished.append(n) }
        })
        #expect(try second.run() == true)
        #expect(skipped == ["corpus", "pretrain", "sft"])
        #expect(finished == ["pairs", "reward", "ppo-kl0.05", "dpo-beta0.1", "evaluate"])
        let report = try DemoReport.write(folder: folder)
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(html.components(separatedBy: "<svg").count - 1 == 1 + 2 + 4 + 2)   // frontier, pretrain/SFT, DPO, PPO
        #expect(html.contains("ppo-kl0.05") && html.contains("dpo-beta0.1") && html.contains("<h2>Samples"))
        let frontier = try JSONDecoder().decode(RewardKLFrontier.self, from: Data(contentsOf: folder.appendingPathComponent("frontier.json")))
        #expect(frontier.runs.map(\.name) == ["ppo-kl0.05", "dpo-beta0.1"])
        #expect(frontier.runs.allSatisfy { !$0.points.isEmpty && $0.points.allSatisfy { $0.kl.isFinite && $0.reward.isFinite } })
    }

    @Test func embeddedCorpusAndItsReward() {
        let reviews = DemoCorpus.reviews(count: 200, seed: 3)
        #expect(reviews == DemoCorpus.reviews(count: 200, seed: 3))
        let reward = DemoCorpus.reward
        let scores = reviews.map { reward.reward(prompt: "", completion: $0) }
        // Every mood occurs.
        #expect(scores.filter { $0 > 0.3 }.count > 30 && scores.filter { $0 < -0.3 }.count > 30 && scores.filter { $0 == 0 }.count > 5)
        #expect(reward.reward(prompt: "", completion: "the soup was very lovely !") > reward.reward(prompt: "", completion: "the soup was lovely ."))
        #expect(reward.reward(prompt: "", completion: "the soup was not lovely .") < 0)
        #expect(DemoCorpus.prompts(count: 50, seed: 4).allSatisfy { p in DemoCorpus.verbs.contains { p.hasSuffix(" " + $0) } })
    }
}

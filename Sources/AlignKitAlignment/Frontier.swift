// The reward–KL frontier (the DPO paper's Figure 2 plot): each checkpoint of each run is one point,
// x = KL(π ‖ π_ref) estimated from its samples, y = the mean reward of the same samples. A run's
// frontier is its points not beaten by another point of the run with both less KL and more reward.
// Written as JSON (every point with its standard errors) and as a self-contained SVG.
import AlignKitText
import Foundation

public struct FrontierPoint: Codable, Sendable {
    public var checkpoint: String
    public var step: Int
    public var kl: Double
    public var klStandardError: Double
    public var reward: Double
    public var rewardStandardError: Double
    /// On the run's frontier (no point of the run has less KL and more reward).
    public var onFrontier = false
    public init(checkpoint: String, step: Int, kl: Double, klStandardError: Double, reward: Double, rewardStandardError: Double) {
        self.checkpoint = checkpoint; self.step = step; self.kl = kl; self.klStandardError = klStandardError
        self.reward = reward; self.rewardStandardError = rewardStandardError
    }
}

public struct FrontierRun: Codable, Sendable {
    public var name: String
    public var points: [FrontierPoint]
    public init(name: String, points: [FrontierPoint]) {
        self.name = name
        self.points = points.sorted { $0.step < $1.step }
        for i in self.points.indices {
            let p = self.points[i]
            self.points[i].onFrontier = !points.contains { $0.kl <= p.kl && $0.reward >= p.reward && ($0.kl < p.kl || $0.reward > p.reward) }
        }
    }
}

public struct RewardKLFrontier: Codable, Sendable {
    /// The reference's own mean reward (its KL is 0).
    public var referenceReward: Double
    public var runs: [FrontierRun]
    public var prompts: Int
    public var samplesPerPrompt: Int
    public init(referenceReward: Double, runs: [FrontierRun], prompts: Int, samplesPerPrompt: Int) {
        self.referenceReward = referenceReward; self.runs = runs; self.prompts = prompts; self.samplesPerPrompt = samplesPerPrompt
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// A scatter plot with each run's points joined in step order, its frontier drawn bold, and the
    /// reference at KL 0.
    public func svg(width: Double = 640, height: Double = 420) -> String {
        let left = 64.0, right = 160.0, top = 24.0, bottom = 48.0
        let all = runs.flatMap(\.points)
        let maxKL = max(all.map(\.kl).max() ?? 1, 1e-3) * 1.05
        let rewards = all.map(\.reward) + [referenceReward]
        var low = rewards.min() ?? 0, high = rewards.max() ?? 1
        if high - low < 1e-6 { low -= 0.5; high += 0.5 }
        let pad = (high - low) * 0.08
        low -= pad; high += pad
        func x(_ kl: Double) -> Double { left + max(kl, 0) / maxKL * (width - left - right) }
        func y(_ r: Double) -> Double { top + (high - r) / (high - low) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <line x1="\(f(left))" y1="\(f(height - bottom))" x2="\(f(width - right))" y2="\(f(height - bottom))" stroke="black"/>
        <line x1="\(f(left))" y1="\(f(top))" x2="\(f(left))" y2="\(f(height - bottom))" stroke="black"/>
        <text x="\(f((left + width - right) / 2))" y="\(f(height - 10))" text-anchor="middle">KL(π ‖ π_ref), nats per completion</text>
        <text x="16" y="\(f((top + height - bottom) / 2))" text-anchor="middle" transform="rotate(-90 16 \(f((top + height - bottom) / 2)))">mean reward</text>

        """
        for i in 0...4 {
            let kl = maxKL * Double(i) / 4, r = low + (high - low) * Double(i) / 4
            out += "<text x=\"\(f(x(kl)))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">\(String(format: "%.3g", kl))</text>\n"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y(r) + 4))\" text-anchor=\"end\">\(String(format: "%.2f", r))</text>\n"
        }
        out += "<circle cx=\"\(f(x(0)))\" cy=\"\(f(y(referenceReward)))\" r=\"5\" fill=\"black\"><title>reference: \(String(format: "%.3f", referenceReward))</title></circle>\n"
        for (i, run) in runs.enumerated() {
            let color = colors[i % colors.count]
            let path = run.points.map { "\(f(x($0.kl))),\(f(y($0.reward)))" }.joined(separator: " ")
            out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-opacity=\"0.35\"/>\n"
            let frontier = run.points.filter(\.onFrontier).sorted { $0.kl < $1.kl }
            if frontier.count > 1 {
                out += "<polyline points=\"\(frontier.map { "\(f(x($0.kl))),\(f(y($0.reward)))" }.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2.5\"/>\n"
            }
            for p in run.points {
                out += "<circle cx=\"\(f(x(p.kl)))\" cy=\"\(f(y(p.reward)))\" r=\"\(p.onFrontier ? 4 : 3)\" fill=\"\(color)\"><title>\(escape(run.name)) step \(p.step): reward \(String(format: "%.3f ± %.3f", p.reward, p.rewardStandardError)), KL \(String(format: "%.2f ± %.2f", p.kl, p.klStandardError))</title></circle>\n"
            }
            let ly = top + 18 * Double(i)
            out += "<rect x=\"\(f(width - right + 12))\" y=\"\(f(ly))\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            out += "<text x=\"\(f(width - right + 30))\" y=\"\(f(ly + 10))\">\(escape(run.name))</text>\n"
        }
        let ly = top + 18 * Double(runs.count)
        out += "<circle cx=\"\(f(width - right + 18))\" cy=\"\(f(ly + 6))\" r=\"5\" fill=\"black\"/><text x=\"\(f(width - right + 30))\" y=\"\(f(ly + 10))\">reference</text>\n"
        return out + "</svg>\n"
    }
}

extension FrontierPoint {
    /// One checkpoint's point: its samples of `prompts` (no win-rate sampling), their mean reward and
    /// their KL to `reference`. The step is read from the folder's name (`step-N`).
    public static func evaluate(checkpoint: URL, reference: GPT, tokenizer: BytePairTokenizer, prompts: [String],
                                reward: any RewardFunction, settings: GenerationSettings) throws -> FrontierPoint {
        let model = try GPT(contentsOf: checkpoint)
        let e = evaluatePolicy(model, reference: reference, tokenizer: tokenizer, prompts: prompts, reward: reward, settings: settings, winRate: false)
        let step = Int(checkpoint.lastPathComponent.split(separator: "-").last ?? "") ?? 0
        return FrontierPoint(checkpoint: checkpoint.path, step: step, kl: e.kl ?? 0, klStandardError: e.klStandardError ?? 0,
                             reward: e.meanReward, rewardStandardError: e.rewardStandardError)
    }
}

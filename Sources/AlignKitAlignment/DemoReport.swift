// The demo's report: one self-contained HTML file (no scripts, no network; charts are inline SVG)
// built from what the stages left in the demo folder — metrics.jsonl of every trainer, demo.json
// (options, wall-clock, FLOPs), frontier.svg/json and samples.jsonl. `alignkit report <folder>`
// rebuilds it.
import Foundation

public enum DemoReport {
    /// Writes `<folder>/report.html` and returns its URL.
    @discardableResult
    public static func write(folder: URL) throws -> URL {
        let stateURL = folder.appendingPathComponent("demo.json")
        guard FileManager.default.fileExists(atPath: stateURL.path) else {
            throw DataFileError(file: stateURL.path, "no such file: is \(folder.path) a demo folder?")
        }
        let state = try JSONDecoder().decode(DemoState.self, from: readFile(stateURL))
        let html = try render(folder: folder, state: state)
        let url = folder.appendingPathComponent("report.html")
        try writeAtomically(Data(html.utf8), to: url)
        return url
    }

    /// A metrics file's records (an absent file gives none).
    static func metrics(_ url: URL) -> [[String: Double]] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
    }

    /// (step, value) points of `key`.
    static func series(_ records: [[String: Double]], _ key: String) -> [(Double, Double)] {
        records.compactMap { r in r[key].flatMap { v in r["step"].map { ($0, v) } } }.filter { $0.1.isFinite }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    /// A line chart of named series as inline SVG.
    public static func lineChart(title: String, xLabel: String, series: [(name: String, points: [(Double, Double)])],
                                 width: Double = 460, height: Double = 260) -> String {
        let left = 56.0, right = 12.0, top = 28.0, bottom = 40.0
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return "<p><em>\(escape(title)): no data</em></p>" }
        var (x0, x1) = (all.map(\.0).min()!, all.map(\.0).max()!)
        var (y0, y1) = (all.map(\.1).min()!, all.map(\.1).max()!)
        if x1 - x0 < 1e-9 { x0 -= 1; x1 += 1 }
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.06
        y0 -= pad; y1 += pad
        func x(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * (width - left - right) }
        func y(_ v: Double) -> Double { top + (y1 - v) / (y1 - y0) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(f(left))\" y=\"16\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(height - bottom))\" x2=\"\(f(width - right))\" y2=\"\(f(height - bottom))\" stroke=\"#444\"/>"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(height - bottom))\" stroke=\"#444\"/>"
        for i in 0...4 {
            let xv = x0 + (x1 - x0) * Double(i) / 4, yv = y0 + (y1 - y0) * Double(i) / 4
            svg += "<text x=\"\(f(x(xv)))\" y=\"\(f(height - bottom + 14))\" text-anchor=\"middle\">\(String(format: "%.4g", xv))</text>"
            svg += "<text x=\"\(f(left - 4))\" y=\"\(f(y(yv) + 4))\" text-anchor=\"end\">\(String(format: "%.3g", yv))</text>"
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y(yv)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(yv)))\" stroke=\"#eee\"/>"
        }
        svg += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        for (i, s) in series.enumerated() where !s.points.isEmpty {
            let color = colors[i % colors.count]
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(s.points.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " "))\"/>"
            if series.count > 1 || !s.name.isEmpty {
                let lx = left + 8 + Double(i % 3) * 130, ly = top + 4 + Double(i / 3) * 14
                svg += "<rect x=\"\(f(lx))\" y=\"\(f(ly))\" width=\"10\" height=\"3\" fill=\"\(color)\"/><text x=\"\(f(lx + 14))\" y=\"\(f(ly + 5))\">\(escape(s.name))</text>"
            }
        }
        return svg + "</svg>"
    }

    static func render(folder: URL, state: DemoState) throws -> String {
        let o = state.options
        func file(_ name: String) -> URL { folder.appendingPathComponent(name) }
        let ppo = o.ppoKLCoefficients.map { "ppo-kl" + String(format: "%g", $0) }
        let dpo = o.dpoBetas.map { "dpo-beta" + String(format: "%g", $0) }
        var body = ""
        // Headline.
        let evaluation = state.finished["evaluate"]?.values ?? [:]
        body += "<h1>AlignKit demo: PPO-RLHF and DPO on the \(o.corpus.rawValue) corpus</h1>"
        body += "<p>A GPT is pretrained, fine-tuned (SFT), and aligned to the ground-truth reward two ways: RLHF (a Bradley–Terry reward model, then PPO with a KL penalty) and DPO on the same preference pairs. Every checkpoint is sampled on held-out prompts; its mean ground-truth reward and its KL to the SFT model give one point of the reward–KL frontier.</p>"
        if let sft = evaluation["sft_reward"] {
            body += "<table><tr><th>model</th><th>mean reward (held out)</th><th>KL to SFT (nats)</th></tr>"
            body += "<tr><td>SFT (reference)</td><td>\(String(format: "%.3f", sft))</td><td>0</td></tr>"
            for name in ppo + dpo {
                if let r = evaluation["\(name)_reward"], let k = evaluation["\(name)_kl"] {
                    body += "<tr><td>\(name) (final)</td><td>\(String(format: "%.3f", r))</td><td>\(String(format: "%.2f", k))</td></tr>"
                }
            }
            body += "</table>"
        }
        // Frontier.
        body += "<h2>Reward–KL frontier</h2>"
        if let svg = try? String(contentsOf: file("frontier.svg"), encoding: .utf8) { body += "<div class=\"figure\">\(svg)</div>" }
        body += "<p>Each point is one checkpoint (\(o.heldOutPrompts) held-out prompts × \(o.evaluationSamples) samples); a run's frontier (bold) joins the points no other point of the run beats on both axes. Hover a point for its step and standard errors.</p>"
        // Training curves.
        body += "<h2>Pretraining and SFT</h2><div class=\"row\">"
        let pre = metrics(file("pretrain/metrics.jsonl"))
        body += lineChart(title: "pretraining loss", xLabel: "step", series: [("train", series(pre, "loss")), ("validation", series(pre, "val_loss"))])
        body += lineChart(title: "SFT loss (completion tokens)", xLabel: "step", series: [("train", series(metrics(file("sft/metrics.jsonl")), "loss"))])
        body += "</div><h2>DPO</h2><div class=\"row\">"
        let dpoMetrics = dpo.map { ($0, metrics(file("\($0)/metrics.jsonl"))) }
        for (key, title) in [("rewards/chosen", "rewards/chosen"), ("rewards/rejected", "rewards/rejected"), ("rewards/margins", "rewards/margins"), ("rewards/accuracies", "rewards/accuracies")] {
            body += lineChart(title: title, xLabel: "step", series: dpoMetrics.map { ($0.0, series($0.1, key)) })
        }
        body += "</div><h2>PPO</h2><div class=\"row\">"
        let ppoMetrics = ppo.map { ($0, metrics(file("\($0)/metrics.jsonl"))) }
        body += lineChart(title: "reward-model score of rollouts", xLabel: "rollout", series: ppoMetrics.map { ($0.0, series($0.1, "reward")) })
        body += lineChart(title: "KL to the reference (nats per completion)", xLabel: "rollout", series: ppoMetrics.map { ($0.0, series($0.1, "kl")) })
        body += "</div>"
        // Compute.
        body += "<h2>Compute</h2><table><tr><th>stage</th><th>wall-clock</th><th>estimated FLOPs</th><th>summary</th></tr>"
        for name in ["corpus", "pretrain", "sft", "pairs", "reward"] + ppo + dpo + ["evaluate"] {
            guard let r = state.finished[name] else { continue }
            body += "<tr><td>\(name)</td><td>\(String(format: "%.1f s", r.seconds))</td><td>\(r.flops > 0 ? String(format: "%.3g", r.flops) : "—")</td><td>\(escape(r.summary))</td></tr>"
        }
        body += "</table>"
        func cost(_ names: [String]) -> (Double, Double) {
            names.compactMap { state.finished[$0] }.reduce((0, 0)) { ($0.0 + $1.seconds, $0.1 + $1.flops) }
        }
        for (method, names) in [("RLHF: reward model + one PPO run (mean over KL coefficients)", ["reward"]), ("DPO: one run (mean over β)", [])] {
            let runs = method.hasPrefix("RLHF") ? ppo : dpo
            let shared = cost(names), each = cost(runs)
            let n = Double(max(runs.count, 1))
            body += "<p>\(escape(method)): \(String(format: "%.1f s, %.3g FLOPs", shared.0 + each.0 / n, shared.1 + each.1 / n)) (after the shared pretraining, SFT and pair sampling).</p>"
        }
        body += "<p>FLOPs are estimated as 6N per trained token and 2N per forward-only token (N = parameters); PPO counts sampling, four scoring passes and its update epochs over policy and value model.</p>"
        // Samples.
        body += "<h2>Samples (same prompts and seeds)</h2><table><tr><th>model</th><th>prompt</th><th>completion</th><th>reward</th></tr>"
        if let text = try? String(contentsOf: file("samples.jsonl"), encoding: .utf8) {
            for line in text.split(separator: "\n") {
                guard let r = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String] else { continue }
                body += "<tr><td>\(escape(r["model"] ?? ""))</td><td>\(escape(r["prompt"] ?? ""))</td><td>\(escape(r["completion"] ?? ""))</td><td>\(r["reward"] ?? "")</td></tr>"
            }
        }
        body += "</table>"
        // Configuration.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        body += "<h2>Configuration</h2><pre>\(escape(String(decoding: try encoder.encode(o), as: UTF8.self)))</pre>"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>AlignKit demo report</title>
        <style>
        body { font-family: sans-serif; max-width: 1000px; margin: 24px auto; padding: 0 16px; color: #222; }
        table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 13px; }
        .row { display: flex; flex-wrap: wrap; gap: 12px; } pre { background: #f6f6f6; padding: 8px; font-size: 12px; }
        </style></head><body>
        \(body)
        </body></html>

        """
    }
}

// A training run's folder, shared by every trainer:
//
//   <run>/options.json               the run's options (what `--resume` continues with)
//   <run>/metrics.jsonl              one JSON object per logged step or evaluation
//   <run>/checkpoints/step-N/        model files, optimizer.safetensors (AdamW moments), options.json,
//                                    state.json (written last: a folder without it is incomplete)
//   <run>/config.json, model…        the newest model, ready for `alignkit sample` and `score`
//
// A checkpoint is staged in a hidden folder and renamed into place, so a crash never leaves a
// half-written `step-N`. The `keep` newest complete checkpoints are kept (two by default; keep more to
// draw a reward–KL frontier over a run's checkpoints).
import AlignKitNN
import AlignKitTensor
import AlignKitText
import Foundation

public struct RunFolder: Sendable {
    public let root: URL
    /// Checkpoints kept (the newest).
    public let keep: Int
    public init(_ root: URL, keep: Int = 2) { self.root = root; self.keep = max(1, keep) }

    public var checkpointsFolder: URL { root.appendingPathComponent("checkpoints") }
    public var metricsFile: URL { root.appendingPathComponent("metrics.jsonl") }
    public var optionsFile: URL { root.appendingPathComponent("options.json") }

    /// Creates the folder; a folder that already holds a run is an error unless resuming.
    public func prepare(resume: Bool) throws {
        let fm = FileManager.default
        if !resume && fm.fileExists(atPath: checkpointsFolder.path) {
            throw DataFileError(file: root.path, "already holds a run; pass --resume to continue it or choose another --out")
        }
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// Prepares the folder and, when resuming, finds the newest checkpoint and the options saved with
    /// it (which win over `options`).
    public func open<Options: Codable>(resume: Bool, options: Options) throws -> (newest: URL?, options: Options) {
        try prepare(resume: resume)
        guard resume, let newest = newestCheckpoint() else { return (nil, options) }
        let saved = try JSONDecoder().decode(Options.self, from: readFile(newest.appendingPathComponent("options.json")))
        return (newest, saved)
    }

    /// The step and AdamW moments a checkpoint resumes from.
    public static func resumeState(_ checkpoint: URL, parameterNames: [String]) throws -> (step: Int, optimizer: Adam.State) {
        guard let step = try readState(checkpoint)["step"] as? Int else {
            throw DataFileError(file: checkpoint.appendingPathComponent("state.json").path, "no 'step'")
        }
        return (step, try readOptimizer(checkpoint, parameterNames: parameterNames))
    }

    /// Writes the options (pretty, sorted keys) and starts a fresh metrics file.
    public func start<Options: Encodable>(options: Options) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(options), to: optionsFile)
        try? FileManager.default.removeItem(at: metricsFile)
    }

    /// Appends one record to `metrics.jsonl`.
    public func appendMetrics(_ record: [String: Any]) throws {
        var line = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
        line.append(UInt8(ascii: "\n"))
        if let handle = try? FileHandle(forWritingTo: metricsFile) {
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } else {
            try line.write(to: metricsFile)
        }
    }

    /// Complete checkpoints, oldest first.
    public func checkpoints() -> [URL] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: checkpointsFolder.path) else { return [] }
        return names.filter { $0.hasPrefix("step-") }.sorted().map { checkpointsFolder.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("state.json").path) }
    }

    public func newestCheckpoint() -> URL? { checkpoints().last }

    /// A checkpoint's `state.json`.
    public static func readState(_ checkpoint: URL) throws -> [String: Any] {
        let url = checkpoint.appendingPathComponent("state.json")
        guard let state = try JSONSerialization.jsonObject(with: readFile(url)) as? [String: Any] else {
            throw DataFileError(file: url.path, "not a JSON object")
        }
        return state
    }

    /// Saves checkpoints/step-N: `writeModel` fills the folder with the model's files, then the
    /// optimizer's moments (named after `parameterNames`), the options and `state` (with "step").
    /// The model is also written at the top of the run folder; `writeExtra` adds files to the
    /// checkpoint only. Returns the checkpoint's folder.
    @discardableResult
    public func saveCheckpoint(step: Int, state: [String: Any], optimizer: Adam.State, parameterNames: [String],
                               writeModel: (URL) throws -> Void, writeExtra: (URL) throws -> Void = { _ in }) throws -> URL {
        let fm = FileManager.default
        let name = String(format: "step-%08d", step)
        let folder = checkpointsFolder.appendingPathComponent(name)
        let staging = checkpointsFolder.appendingPathComponent(".\(name).partial")
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        try writeModel(staging)
        try writeExtra(staging)
        var tensors: [(String, Tensor)] = []
        for (i, name) in parameterNames.enumerated() where i < optimizer.first.count {
            tensors.append(("m." + name, optimizer.first[i])); tensors.append(("v." + name, optimizer.second[i]))
        }
        try writeSafeTensors(tensors, to: staging.appendingPathComponent("optimizer.safetensors"),
                             metadata: ["step_count": "\(optimizer.stepCount)"])
        if fm.fileExists(atPath: optionsFile.path) {
            try fm.copyItem(at: optionsFile, to: staging.appendingPathComponent("options.json"))
        }
        var state = state
        state["step"] = step
        try writeAtomically(try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys]),
                            to: staging.appendingPathComponent("state.json"))
        try? fm.removeItem(at: folder)
        try fm.moveItem(at: staging, to: folder)
        try writeModel(root)
        for old in checkpoints().dropLast(keep) { try? fm.removeItem(at: old) }
        return folder
    }

    /// The AdamW moments of a checkpoint, for a model with `parameterNames`.
    public static func readOptimizer(_ checkpoint: URL, parameterNames: [String]) throws -> Adam.State {
        let url = checkpoint.appendingPathComponent("optimizer.safetensors")
        let file = try SafeTensorsFile(contentsOf: url)
        guard let count = file.metadata["step_count"].flatMap(Int.init) else { throw DataFileError(file: url.path, "no step_count in __metadata__") }
        var first: [Tensor] = [], second: [Tensor] = []
        if count > 0 {
            for name in parameterNames {
                first.append(try file.tensor("m." + name)); second.append(try file.tensor("v." + name))
            }
        }
        return Adam.State(stepCount: count, first: first, second: second)
    }

    /// Copies the tokenizer and chat template of a model folder into the run, so the run's model
    /// folder is complete.
    public func copyTokenizer(from model: URL) throws {
        let fm = FileManager.default
        for name in ["tokenizer.json", ChatTemplate.fileName] {
            let source = model.appendingPathComponent(name), target = root.appendingPathComponent(name)
            guard fm.fileExists(atPath: source.path), source.standardizedFileURL != target.standardizedFileURL else { continue }
            try? fm.removeItem(at: target)
            try fm.copyItem(at: source, to: target)
        }
    }
}

/// Steps of a run over `count` examples: ⌈count / batch⌉ per epoch, at most `maxSteps`.
public func trainingSteps(count: Int, batchSize: Int, epochs: Int, maxSteps: Int?) -> Int {
    let all = (count + batchSize - 1) / batchSize * epochs
    return maxSteps.map { min($0, all) } ?? all
}

// A training run's folder, shared by every trainer:
//
//   <run>/options.json               the run's options (what `--resume` continues with)
//   <run>/metrics.jsonl              one JSON object per logged step or evaluation: a function of the
//                                    seed, the data and the thread count alone (no wall-clock fields)
//   <run>/timing.jsonl               the wall-clock side: step, seconds since the start, rate
//   <run>/checkpoints/step-N/        model files, optimizer.safetensors (AdamW moments), options.json,
//                                    state.json (written last: a folder without it is incomplete)
//   <run>/config.json, model…        the newest model, ready for `alignkit sample` and `score`
//
// A checkpoint is staged in a hidden folder and renamed into place, so a crash never leaves a
// half-written `step-N`; `state.json` records how long the metrics files were, and a resumed run cuts
// them back to that, so a run killed at any moment and resumed writes the same metrics as one that
// never stopped. The `keep` newest complete checkpoints are kept (two by default; keep more to
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
    public var timingFile: URL { root.appendingPathComponent("timing.jsonl") }

    /// Creates the folder (checking that it can be written); a folder that already holds a run is an
    /// error unless resuming.
    public func prepare(resume: Bool) throws {
        if !resume && FileManager.default.fileExists(atPath: checkpointsFolder.path) {
            throw DataFileError(file: root.path, "already holds a run; pass --resume to continue it or choose another --out")
        }
        try checkWritableFolder(root, needs: 0, for: "the run")
    }

    /// Bytes a checkpoint of a model with `parameters` scalars takes, with the copy at the top of the
    /// run folder: weights and two AdamW moments in fp32, the model again, and a megabyte for the rest.
    public static func checkpointBytes(parameters: Int) -> Int64 { Int64(parameters) * 4 * 4 + 1 << 20 }

    /// Before any work: the disk must have room for one more checkpoint of `parameters` scalars.
    public func checkRoom(parameters: Int) throws {
        try checkWritableFolder(root, needs: Self.checkpointBytes(parameters: parameters),
                                for: "a checkpoint of \(parameters) parameters (weights and AdamW moments)")
    }

    /// Prepares the folder and, when resuming, finds the newest checkpoint and the options saved with
    /// it (which win over `options`), and cuts the metrics files back to that checkpoint.
    public func open<Options: Codable>(resume: Bool, options: Options) throws -> (newest: URL?, options: Options) {
        try prepare(resume: resume)
        guard resume, let newest = newestCheckpoint() else { return (nil, options) }
        let saved = try JSONDecoder().decode(Options.self, from: readFile(newest.appendingPathComponent("options.json")))
        try restoreLogs(to: newest)
        return (newest, saved)
    }

    /// Cuts `metrics.jsonl` and `timing.jsonl` back to their lengths when `checkpoint` was written,
    /// dropping the records (and any half-written line) of steps after it.
    public func restoreLogs(to checkpoint: URL) throws {
        let state = try Self.readState(checkpoint)
        for (file, key) in [(metricsFile, "metrics_bytes"), (timingFile, "timing_bytes")] {
            guard let length = state[key] as? Int, FileManager.default.fileExists(atPath: file.path) else { continue }
            if truncate(file.path, off_t(length)) != 0 {
                throw DataFileError(file: file.path, "cannot cut back to the checkpoint's \(length) bytes: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The step and AdamW moments a checkpoint resumes from.
    public static func resumeState(_ checkpoint: URL, parameterNames: [String]) throws -> (step: Int, optimizer: Adam.State) {
        guard let step = try readState(checkpoint)["step"] as? Int else {
            throw DataFileError(file: checkpoint.appendingPathComponent("state.json").path, "no 'step'")
        }
        return (step, try readOptimizer(checkpoint, parameterNames: parameterNames))
    }

    /// Writes the options (pretty, sorted keys) and starts fresh metrics files.
    public func start<Options: Encodable>(options: Options) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(options), to: optionsFile)
        try? FileManager.default.removeItem(at: metricsFile)
        try? FileManager.default.removeItem(at: timingFile)
    }

    /// Appends one record to `metrics.jsonl` (a non-finite number is written as null: JSON has no NaN).
    public func appendMetrics(_ record: [String: Any]) throws { try append(record, to: metricsFile) }

    /// Appends one record to `timing.jsonl`.
    public func appendTiming(_ record: [String: Any]) throws { try append(record, to: timingFile) }

    func append(_ record: [String: Any], to file: URL) throws {
        let clean = record.mapValues { value -> Any in
            if let d = value as? Double, !d.isFinite { return NSNull() }
            if let f = value as? Float, !f.isFinite { return NSNull() }
            return value
        }
        var line = try JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys])
        line.append(UInt8(ascii: "\n"))
        let fd = Foundation.open(file.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DataFileError(file: file.path, "cannot open for appending: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        guard written == line.count else { throw DataFileError(file: file.path, "cannot append: \(String(cString: strerror(errno)))") }
    }

    /// The size of a file in bytes (0 when absent).
    static func fileSize(_ url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.intValue ?? 0
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
            try writeAtomically(readFile(optionsFile), to: staging.appendingPathComponent("options.json"))
        }
        var state = state
        state["step"] = step
        state["metrics_bytes"] = Self.fileSize(metricsFile)
        state["timing_bytes"] = Self.fileSize(timingFile)
        try writeAtomically(try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys]),
                            to: staging.appendingPathComponent("state.json"))
        syncFolder(staging)
        try? fm.removeItem(at: folder)
        try fm.moveItem(at: staging, to: folder)
        syncFolder(checkpointsFolder)
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

/// Steps skipped because the loss or the gradient was not finite. A skipped step changes nothing; a
/// run stops after `limit` of them in a row, with `TrainingDiverged`.
public struct NonFiniteSteps: Sendable {
    /// Skips in a row that stop the run.
    public let limit: Int
    public private(set) var inARow = 0
    public private(set) var total = 0

    /// The default limit of skips in a row.
    public static let defaultLimit = 5

    public init(limit: Int?) { self.limit = max(1, limit ?? Self.defaultLimit) }

    /// Records a step; throws once `limit` steps in a row were skipped. `parts` are the step's loss
    /// parts and gradient norm, named in the error.
    public mutating func record(skipped: Bool, step: Int, parts: [String: Double], run: RunFolder) throws {
        guard skipped else { inARow = 0; return }
        inARow += 1; total += 1
        if inARow >= limit {
            throw TrainingDiverged(step: step, inARow: inARow, parts: parts, lastCheckpoint: run.newestCheckpoint()?.path, run: run.root.path)
        }
    }

    /// "step 12: non-finite loss or gradient (loss nan, grad_norm inf); skipped, 2 in a row".
    public static func message(step: Int, parts: [String: Double], inARow: Int) -> String {
        "step \(step): non-finite loss or gradient (\(TrainingDiverged.describe(parts))); step skipped, \(inARow) in a row"
    }
}

/// A run stopped because its loss or gradient was not finite for several steps in a row. Nothing
/// non-finite was saved: the newest checkpoint is the last good one.
public struct TrainingDiverged: Error, CustomStringConvertible, Sendable {
    public let step: Int
    public let inARow: Int
    public let parts: [String: Double]
    public let lastCheckpoint: String?
    public let run: String

    /// The loss parts first ("loss", then the rest sorted), then the gradient norm.
    static func describe(_ parts: [String: Double]) -> String {
        let keys = parts.keys.filter { $0 != "grad_norm" && $0 != "learning_rate" && $0 != "skipped" }.sorted { a, b in
            a == "loss" ? true : b == "loss" ? false : a < b
        }
        return (keys + (parts["grad_norm"] != nil ? ["grad_norm"] : [])).map { "\($0) \(parts[$0]!)" }.joined(separator: ", ")
    }

    public var description: String {
        let checkpoint = lastCheckpoint.map { "the last good checkpoint is \($0) (a model folder: start a new run from it with a lower learning rate)" }
            ?? "no checkpoint was written; start again with a lower learning rate"
        return "training diverged: the loss or gradient was not finite for \(inARow) steps in a row, up to step \(step) (\(Self.describe(parts))); \(checkpoint)"
    }
}

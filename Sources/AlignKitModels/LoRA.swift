// LoRA adapters on a GPT's projections, saved and loaded as PEFT saves them:
//
//   adapter_config.json          {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout", "target_modules",
//                                 "fan_in_fan_out", "bias": "none", "task_type": "CAUSAL_LM", ...}
//   adapter_model.safetensors    base_model.model.<module>.lora_A.weight [r, in], ….lora_B.weight [out, r]
//
// Module names are Hugging Face's (model.layers.0.self_attn.q_proj; transformer.h.0.mlp.c_fc). Targets
// are the last components: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj (Llama), c_proj c_fc
// (GPT-2; its fused c_attn is not offered: AlignKit keeps query, key and value as separate layers).
import AlignKitNN
import AlignKitText
import Foundation

public struct LoRASettings: Codable, Sendable, Equatable {
    public var rank = 8
    public var alpha: Float = 16
    public var dropout: Float = 0.05
    /// Module name endings, e.g. ["q_proj", "v_proj"].
    public var targets: [String] = ["q_proj", "v_proj"]
    public init(rank: Int = 8, alpha: Float = 16, dropout: Float = 0.05, targets: [String] = ["q_proj", "v_proj"]) {
        self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets
    }
}

extension GPT {
    public static let adapterConfigFileName = "adapter_config.json"
    public static let adapterWeightsFileName = "adapter_model.safetensors"

    /// The targetable projections under their Hugging Face module names.
    public static func projectionNames(_ architecture: GPTConfiguration.Architecture) -> [String] {
        architecture == .llama ? ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] : ["c_proj", "c_fc"]
    }

    /// Visits every block's projections with their Hugging Face module names.
    mutating func forEachProjection(_ body: (String, inout Linear) throws -> Void) rethrows {
        for i in blocks.indices {
            switch configuration.architecture {
            case .llama:
                let p = "model.layers.\(i)."
                try body(p + "self_attn.q_proj", &blocks[i].attention.query)
                try body(p + "self_attn.k_proj", &blocks[i].attention.key)
                try body(p + "self_attn.v_proj", &blocks[i].attention.value)
                try body(p + "self_attn.o_proj", &blocks[i].attention.output)
                try body(p + "mlp.gate_proj", &blocks[i].feedForward.gate!)
                try body(p + "mlp.up_proj", &blocks[i].feedForward.up)
                try body(p + "mlp.down_proj", &blocks[i].feedForward.down)
            case .gpt2:
                let p = "transformer.h.\(i)."
                try body(p + "attn.c_proj", &blocks[i].attention.output)
                try body(p + "mlp.c_fc", &blocks[i].feedForward.up)
                try body(p + "mlp.c_proj", &blocks[i].feedForward.down)
            }
        }
    }

    /// Adds fresh adapters to the targeted projections and freezes everything else.
    public mutating func addAdapters(_ settings: LoRASettings, seed: UInt64 = 0) throws(ConfigurationError) {
        let known = Self.projectionNames(configuration.architecture)
        for t in settings.targets where !known.contains(t) {
            throw ConfigurationError("LoRA target '\(t)' is not one of \(known.joined(separator: ", ")) for \(configuration.architecture.rawValue)"
                                     + (t == "c_attn" ? " (AlignKit keeps GPT-2's query, key and value as separate layers)" : ""))
        }
        guard settings.rank > 0, settings.alpha > 0, (0..<1).contains(settings.dropout) else {
            throw ConfigurationError("LoRA needs a positive rank and alpha and a dropout in [0, 1)")
        }
        var generator = RandomGenerator(seed: seed)
        forEachProjection { name, layer in
            guard settings.targets.contains(where: { name.hasSuffix("." + $0) }) else { return }
            layer.adapter = LowRankAdapter(inputSize: layer.weight.shape[0], outputSize: layer.weight.shape[1], rank: settings.rank,
                                           alpha: settings.alpha, dropout: settings.dropout, generator: &generator)
        }
        trainsAdaptersOnly = true
    }

    /// Reseeds every adapter's dropout from `seed` and `step`, so a step's masks do not depend on the
    /// steps before it and a resumed run draws the masks an uninterrupted one would. No-op without adapters.
    public func reseedAdapterDropout(seed: UInt64, step: Int) {
        guard trainsAdaptersOnly else { return }
        var copy = self   // the generators are shared references: reseeding the copy's reseeds ours
        var index: UInt64 = 0
        copy.forEachProjection { _, layer in
            layer.adapter?.dropout?.reseed(seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: step) &* 0xBF58_476D_1CE4_E5B9 &+ index)
            index += 1
        }
    }

    /// The model with every adapter folded into its weight: a plain model again.
    public func mergingAdapters() -> GPT {
        var copy = self
        copy.forEachProjection { _, layer in layer = layer.merged() }
        copy.trainsAdaptersOnly = false
        return copy
    }

    /// Writes adapter_config.json and adapter_model.safetensors (PEFT's names and layouts).
    public func saveAdapters(to directory: URL, settings: LoRASettings, baseModel: String) throws {
        var copy = self
        var tensors: [(String, Tensor)] = []
        copy.forEachProjection { name, layer in
            guard let a = layer.adapter else { return }
            tensors.append(("base_model.model.\(name).lora_A.weight", a.a.transposed()))
            tensors.append(("base_model.model.\(name).lora_B.weight", a.b.transposed()))
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try writeSafeTensors(tensors, to: directory.appendingPathComponent(Self.adapterWeightsFileName), metadata: ["format": "pt"])
        let config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": settings.rank, "lora_alpha": settings.alpha,
            "lora_dropout": settings.dropout, "target_modules": settings.targets, "bias": "none",
            "fan_in_fan_out": configuration.architecture == .gpt2, "base_model_name_or_path": baseModel,
            "inference_mode": true, "init_lora_weights": true, "modules_to_save": NSNull(),
        ]
        try writeAtomically(try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]),
                            to: directory.appendingPathComponent(Self.adapterConfigFileName))
    }

    /// Reads a PEFT adapter folder into this model (adapters frozen-base, as after `addAdapters`).
    /// Returns the adapter's settings.
    @discardableResult
    public mutating func loadAdapters(from directory: URL) throws -> LoRASettings {
        let configURL = directory.appendingPathComponent(Self.adapterConfigFileName)
        guard let config = (try? JSONSerialization.jsonObject(with: readFile(configURL))) as? [String: Any] else {
            throw DataFileError(file: configURL.path, "not a JSON object")
        }
        guard config["peft_type"] as? String == "LORA" else { throw DataFileError(file: configURL.path, field: "peft_type", "must be \"LORA\"") }
        guard let rank = config["r"] as? Int else { throw DataFileError(file: configURL.path, field: "r", "missing or not an integer") }
        guard let alpha = (config["lora_alpha"] as? NSNumber)?.floatValue else { throw DataFileError(file: configURL.path, field: "lora_alpha", "missing or not a number") }
        let dropout = (config["lora_dropout"] as? NSNumber)?.floatValue ?? 0
        guard rank > 0 else { throw DataFileError(file: configURL.path, field: "r", "is \(rank); it must be positive") }
        guard alpha.isFinite && alpha > 0 else { throw DataFileError(file: configURL.path, field: "lora_alpha", "is \(alpha); it must be a positive number") }
        guard (0..<1).contains(dropout) else { throw DataFileError(file: configURL.path, field: "lora_dropout", "is \(dropout); it must be in [0, 1)") }
        let targets = config["target_modules"] as? [String] ?? []
        let weightsURL = directory.appendingPathComponent(Self.adapterWeightsFileName)
        let file = try SafeTensorsFile(contentsOf: weightsURL)
        var names = Set(file.names), failure: DataFileError?
        forEachProjection { name, layer in
            guard failure == nil else { return }
            let a = "base_model.model.\(name).lora_A.weight", b = "base_model.model.\(name).lora_B.weight"
            guard names.contains(a) || names.contains(b) else { return }
            do {
                let ta = try file.tensor(a), tb = try file.tensor(b)
                guard ta.shape == [rank, layer.weight.shape[0]], tb.shape == [layer.weight.shape[1], rank] else {
                    throw DataFileError(file: weightsURL.path, field: a, "shapes \(ta.shape) and \(tb.shape) do not fit a rank-\(rank) adapter of \(layer.weight.shape)")
                }
                layer.adapter = LowRankAdapter(a: ta.transposed(), b: tb.transposed(), alpha: alpha, dropout: dropout)
                names.remove(a); names.remove(b)
            } catch let error as DataFileError { failure = error } catch { failure = DataFileError(file: weightsURL.path, "\(error)") }
        }
        if let failure { throw failure }
        if let extra = names.sorted().first { throw DataFileError(file: weightsURL.path, field: extra, "matches no projection of this model") }
        trainsAdaptersOnly = true
        return LoRASettings(rank: rank, alpha: alpha, dropout: dropout, targets: targets)
    }
}

// Checkpoints as Hugging Face writes them: a folder with `config.json` (GPT2LMHeadModel or
// LlamaForCausalLM keys) and `model.safetensors` (their tensor names and layouts), so a downloaded
// checkpoint loads here and ours load in `transformers`.
//
// Layouts: AlignKit's Linear weight is [in, out]. GPT-2's Conv1D weight is [in, out] too, with the
// query, key and value projections fused into c_attn [C, 3C]; Llama's nn.Linear weight is [out, in].
import AlignKitNN
import AlignKitTensor
import AlignKitText
import Foundation

extension GPT {
    /// Parameters under Hugging Face's names and layouts (also works on a gradient, which is a `GPT`).
    public func huggingFaceTensors() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        switch configuration.architecture {
        case .gpt2:
            out.append(("transformer.wte.weight", tokenEmbedding.table))
            out.append(("transformer.wpe.weight", positionEmbedding!.table))
            for (i, b) in blocks.enumerated() {
                let p = "transformer.h.\(i)."
                let a = b.attention
                out.append((p + "ln_1.weight", b.norm1.scale)); out.append((p + "ln_1.bias", b.norm1.offset!))
                out.append((p + "attn.c_attn.weight", concatenate([a.query.weight, a.key.weight, a.value.weight], alongAxis: 1)))
                out.append((p + "attn.c_attn.bias", concatenate([a.query.bias!, a.key.bias!, a.value.bias!], alongAxis: 0)))
                out.append((p + "attn.c_proj.weight", a.output.weight)); out.append((p + "attn.c_proj.bias", a.output.bias!))
                out.append((p + "ln_2.weight", b.norm2.scale)); out.append((p + "ln_2.bias", b.norm2.offset!))
                out.append((p + "mlp.c_fc.weight", b.feedForward.up.weight)); out.append((p + "mlp.c_fc.bias", b.feedForward.up.bias!))
                out.append((p + "mlp.c_proj.weight", b.feedForward.down.weight)); out.append((p + "mlp.c_proj.bias", b.feedForward.down.bias!))
            }
            out.append(("transformer.ln_f.weight", finalNorm.scale)); out.append(("transformer.ln_f.bias", finalNorm.offset!))
        case .llama:
            out.append(("model.embed_tokens.weight", tokenEmbedding.table))
            for (i, b) in blocks.enumerated() {
                let p = "model.layers.\(i)."
                let a = b.attention, f = b.feedForward
                out.append((p + "input_layernorm.weight", b.norm1.scale))
                for (name, layer) in [("q_proj", a.query), ("k_proj", a.key), ("v_proj", a.value), ("o_proj", a.output)] {
                    out.append((p + "self_attn.\(name).weight", layer.weight.transposed()))
                    if let bias = layer.bias { out.append((p + "self_attn.\(name).bias", bias)) }
                }
                out.append((p + "post_attention_layernorm.weight", b.norm2.scale))
                for (name, layer) in [("gate_proj", f.gate!), ("up_proj", f.up), ("down_proj", f.down)] {
                    out.append((p + "mlp.\(name).weight", layer.weight.transposed()))
                }
            }
            out.append(("model.norm.weight", finalNorm.scale))
        }
        if let head { out.append(("lm_head.weight", head.weight.transposed())) }
        return out
    }

    /// A model with `configuration` whose parameters come from Hugging Face-named tensors.
    /// `file` names the source in errors. Buffers that are not parameters (GPT-2's "attn.bias" masks,
    /// "rotary_emb.inv_freq") are ignored; a missing or misshapen parameter, or an unknown tensor, is an error.
    public init(configuration: GPTConfiguration, huggingFaceTensors source: [String: Tensor], file: String) throws {
        var model = GPT(configuration: configuration) { shape, _ in Tensor.zeros(shape) }
        let expected = model.huggingFaceTensors()
        // Real GPT-2 files were saved from GPT2Model: names lack the "transformer." prefix.
        var named: [String: Tensor] = [:]
        for (name, t) in source {
            if name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") || name.hasSuffix("rotary_emb.inv_freq") { continue }
            named[configuration.architecture == .gpt2 && !name.hasPrefix("transformer.") && name != "lm_head.weight" ? "transformer." + name : name] = t
        }
        // A tied head may be stored as well; it must equal the embedding's shape.
        if configuration.tiedEmbeddings, let stored = named.removeValue(forKey: "lm_head.weight"),
           stored.shape != [configuration.vocabularySize, configuration.modelSize] {
            throw DataFileError(file: file, "lm_head.weight has shape \(stored.shape), expected \([configuration.vocabularySize, configuration.modelSize])")
        }
        var values: [String: Tensor] = [:]
        for (name, t) in expected {
            guard let stored = named.removeValue(forKey: name) else { throw DataFileError(file: file, "missing tensor '\(name)'") }
            guard stored.shape == t.shape else {
                throw DataFileError(file: file, "tensor '\(name)' has shape \(stored.shape); config.json implies \(t.shape)")
            }
            values[name] = stored
        }
        if let extra = named.keys.sorted().first {
            throw DataFileError(file: file, "unexpected tensor '\(extra)' (\(named.count) unknown in all); does config.json describe this file?")
        }
        model.assign(huggingFace: values)
        self = model
    }

    /// Sets parameters from a complete set of Hugging Face-named tensors of the right shapes.
    mutating func assign(huggingFace v: [String: Tensor]) {
        func t(_ x: Tensor) -> Tensor { x.transposed() }
        let c = configuration
        switch c.architecture {
        case .gpt2:
            tokenEmbedding.table = v["transformer.wte.weight"]!
            positionEmbedding!.table = v["transformer.wpe.weight"]!
            for i in blocks.indices {
                let p = "transformer.h.\(i)."
                blocks[i].norm1.scale = v[p + "ln_1.weight"]!; blocks[i].norm1.offset = v[p + "ln_1.bias"]!
                let w = v[p + "attn.c_attn.weight"]!.split(sizes: [c.modelSize, c.modelSize, c.modelSize], alongAxis: 1)
                let bias = v[p + "attn.c_attn.bias"]!.split(sizes: [c.modelSize, c.modelSize, c.modelSize], alongAxis: 0)
                blocks[i].attention.query = Linear(weight: w[0], bias: bias[0])
                blocks[i].attention.key = Linear(weight: w[1], bias: bias[1])
                blocks[i].attention.value = Linear(weight: w[2], bias: bias[2])
                blocks[i].attention.output = Linear(weight: v[p + "attn.c_proj.weight"]!, bias: v[p + "attn.c_proj.bias"]!)
                blocks[i].norm2.scale = v[p + "ln_2.weight"]!; blocks[i].norm2.offset = v[p + "ln_2.bias"]!
                blocks[i].feedForward.up = Linear(weight: v[p + "mlp.c_fc.weight"]!, bias: v[p + "mlp.c_fc.bias"]!)
                blocks[i].feedForward.down = Linear(weight: v[p + "mlp.c_proj.weight"]!, bias: v[p + "mlp.c_proj.bias"]!)
            }
            finalNorm.scale = v["transformer.ln_f.weight"]!; finalNorm.offset = v["transformer.ln_f.bias"]!
        case .llama:
            tokenEmbedding.table = v["model.embed_tokens.weight"]!
            for i in blocks.indices {
                let p = "model.layers.\(i)."
                blocks[i].norm1.scale = v[p + "input_layernorm.weight"]!
                blocks[i].norm2.scale = v[p + "post_attention_layernorm.weight"]!
                func linear(_ name: String) -> Linear { Linear(weight: t(v[p + name + ".weight"]!), bias: v[p + name + ".bias"]) }
                blocks[i].attention.query = linear("self_attn.q_proj")
                blocks[i].attention.key = linear("self_attn.k_proj")
                blocks[i].attention.value = linear("self_attn.v_proj")
                blocks[i].attention.output = linear("self_attn.o_proj")
                blocks[i].feedForward.gate = linear("mlp.gate_proj")
                blocks[i].feedForward.up = linear("mlp.up_proj")
                blocks[i].feedForward.down = linear("mlp.down_proj")
            }
            finalNorm.scale = v["model.norm.weight"]!
        }
        if head != nil { head = Linear(weight: t(v["lm_head.weight"]!), bias: nil) }
    }

    public static let weightsFileName = "model.safetensors"

    /// Writes `config.json` and `model.safetensors` into `directory` (created if needed), each atomically.
    public func save(to directory: URL, dtype: SafeTensorsDType = .f32) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try writeSafeTensors(huggingFaceTensors(), to: directory.appendingPathComponent(Self.weightsFileName), dtype: dtype,
                             metadata: ["format": "pt"])
        try configuration.saveHuggingFaceConfig(to: directory.appendingPathComponent("config.json"),
                                                dtype: dtype == .bf16 ? "bfloat16" : "float32")
    }

    /// Reads a model folder: `config.json` and `model.safetensors`.
    public init(contentsOf directory: URL) throws {
        let configuration = try GPTConfiguration(huggingFaceConfig: directory.appendingPathComponent("config.json"))
        let url = directory.appendingPathComponent(Self.weightsFileName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DataFileError(file: url.path, "no such file; a model folder holds config.json and \(Self.weightsFileName)")
        }
        let file = try SafeTensorsFile(contentsOf: url)
        // Before allocating a model of config.json's size, the file must hold about that many numbers
        // (a small difference gets the precise message below: which tensor is missing or misshapen).
        let stored = file.entries.values.reduce(0) { $0 + $1.scalarCount }
        guard configuration.parameterCount <= 2 * stored + (1 << 20) else {
            throw DataFileError(file: url.path, "holds \(stored) numbers; config.json describes a model of \(configuration.parameterCount) parameters")
        }
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(name) }
        try self.init(configuration: configuration, huggingFaceTensors: tensors, file: url.path)
    }
}

extension GPTConfiguration {
    /// Reads a Hugging Face `config.json` of a GPT-2 or Llama model.
    public init(huggingFaceConfig url: URL) throws {
        let name = url.path
        let data = try readFile(url)
        guard let object = try? JSONSerialization.jsonObject(with: data) else { throw DataFileError(file: name, "not valid JSON") }
        guard let json = object as? [String: Any] else { throw DataFileError(file: name, "not a JSON object") }
        func fail(_ message: String) -> DataFileError { DataFileError(file: name, message) }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            if let v = json[key] as? Int { return v }
            if json[key] == nil || json[key] is NSNull, let value { return value }
            throw json[key] == nil ? fail("missing key '\(key)'") : fail("'\(key)' is \(json[key]!), not an integer")
        }
        func float(_ key: String, default value: Float) throws -> Float {
            guard let v = json[key], !(v is NSNull) else { return value }
            guard let d = v as? Double else { throw fail("'\(key)' is \(v), not a number") }
            return Float(d)
        }
        let modelType = json["model_type"] as? String ?? ((json["architectures"] as? [String])?.first ?? "none")
        switch modelType {
        case "gpt2", "GPT2LMHeadModel":
            let activation = json["activation_function"] as? String ?? "gelu_new"
            guard ["gelu_new", "gelu_pytorch_tanh"].contains(activation) else {
                throw fail("activation_function '\(activation)' is not supported (GPT-2 uses gelu_new)")
            }
            let size = try int("n_embd")
            self.init(architecture: .gpt2, vocabularySize: try int("vocab_size"), contextLength: try int("n_positions"), modelSize: size,
                      layerCount: try int("n_layer"), headCount: try int("n_head"), hiddenSize: try int("n_inner", default: 4 &* size),
                      normEpsilon: try float("layer_norm_epsilon", default: 1e-5), tiedEmbeddings: json["tie_word_embeddings"] as? Bool ?? true)
        case "llama", "LlamaForCausalLM":
            let act = json["hidden_act"] as? String ?? "silu"
            guard act == "silu" else { throw fail("hidden_act '\(act)' is not supported (Llama uses silu)") }
            if let scaling = json["rope_scaling"], !(scaling is NSNull) { throw fail("rope_scaling is not supported") }
            if json["attention_bias"] as? Bool == true || json["mlp_bias"] as? Bool == true { throw fail("attention_bias and mlp_bias are not supported") }
            var theta = try float("rope_theta", default: 10000)
            if let rope = json["rope_parameters"] as? [String: Any] {
                if let type = rope["rope_type"] as? String, type != "default" { throw fail("rope_parameters.rope_type '\(type)' is not supported") }
                if let t = rope["rope_theta"] as? Double { theta = Float(t) }
            }
            let size = try int("hidden_size"), heads = try int("num_attention_heads")
            guard heads > 0 else { throw fail("num_attention_heads is \(heads); it must be positive") }
            if let headDim = json["head_dim"] as? Int, headDim != size / heads {
                throw fail("head_dim \(headDim) differs from hidden_size / num_attention_heads = \(size / heads); not supported")
            }
            self.init(architecture: .llama, vocabularySize: try int("vocab_size"), contextLength: try int("max_position_embeddings"),
                      modelSize: size, layerCount: try int("num_hidden_layers"), headCount: heads,
                      kvHeadCount: try int("num_key_value_heads", default: heads), hiddenSize: try int("intermediate_size"),
                      normEpsilon: try float("rms_norm_eps", default: 1e-6), ropeTheta: theta,
                      tiedEmbeddings: json["tie_word_embeddings"] as? Bool ?? false)
        default:
            throw fail("unknown architecture '\(modelType)' (model_type); AlignKit reads gpt2 and llama")
        }
        do { try validate() } catch { throw fail(error.message) }
    }

    /// The `config.json` object `transformers` reads for this configuration.
    public func huggingFaceConfig(dtype: String = "float32") -> [String: Any] {
        switch architecture {
        case .gpt2:
            return ["architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocabularySize, "n_positions": contextLength,
                    "n_ctx": contextLength, "n_embd": modelSize, "n_layer": layerCount, "n_head": headCount, "n_inner": hiddenSize,
                    "activation_function": "gelu_new", "layer_norm_epsilon": Double(normEpsilon), "tie_word_embeddings": tiedEmbeddings,
                    "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": 0.02, "torch_dtype": dtype]
        case .llama:
            return ["architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocabularySize,
                    "max_position_embeddings": contextLength, "hidden_size": modelSize, "intermediate_size": hiddenSize,
                    "num_hidden_layers": layerCount, "num_attention_heads": headCount, "num_key_value_heads": kvHeadCount,
                    "head_dim": headSize, "hidden_act": "silu", "rms_norm_eps": Double(normEpsilon), "rope_theta": Double(ropeTheta),
                    "tie_word_embeddings": tiedEmbeddings, "attention_bias": false, "mlp_bias": false, "attention_dropout": 0.0,
                    "initializer_range": 0.02, "torch_dtype": dtype]
        }
    }

    public func saveHuggingFaceConfig(to url: URL, dtype: String = "float32") throws {
        let data = try JSONSerialization.data(withJSONObject: huggingFaceConfig(dtype: dtype), options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(data, to: url)
    }
}

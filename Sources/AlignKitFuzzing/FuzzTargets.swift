// The parsers of everything a user hands AlignKit, as fuzz targets: each takes arbitrary bytes, writes
// them where the parser reads (a scratch folder), and runs the parser as a command would, touching
// every value it returns. A parser may accept the bytes or throw an error that names the file; it
// must never crash, hang, allocate without bound or throw an error that does not say which file.
import AlignKitAlignment
import AlignKitModels
import AlignKitText
import Foundation

public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Preference JSONL (`alignkit dpo`, `reward`).
    case preferences
    /// SFT JSONL (`alignkit sft`).
    case sft
    /// KTO's unpaired JSONL (`alignkit kto`).
    case unpaired
    /// Prompt JSONL (`alignkit ppo`, `pairs`, `eval`).
    case prompts
    /// A safetensors file, every tensor read.
    case safetensors
    /// A model folder's `config.json`, loaded with matching weights.
    case config
    /// A Hugging Face `tokenizer.json`, then used to encode and decode.
    case tokenizerJSON = "tokenizer-json"
    /// GPT-2's `vocab.json` and `merges.txt` (one input: the two files joined by `FuzzTarget.separator`).
    case vocabMerges = "vocab-merges"
    /// A `.tiktoken` rank file.
    case tiktoken
    /// A `--config` file.
    case configFile = "config-file"
    /// A LoRA adapter's `adapter_config.json`, loaded with matching weights.
    case adapterConfig = "adapter-config"

    /// Joins the two files of a two-file input.
    public static let separator = Data("\n\u{1E}\u{1E}\n".utf8)

    /// Whether the input is binary (mutations need not keep text) — only safetensors.
    public var isBinary: Bool { self == .safetensors }
}

/// What one input did.
public enum FuzzOutcome: Sendable, Equatable {
    /// Parsed (and used) without error.
    case accepted
    /// Refused with an error naming the file.
    case refused
    /// Refused with an error that does not name the file: a finding.
    case unclear(String)
}

/// A scratch folder and the fixed files some targets read beside the fuzzed one.
public final class FuzzWorkspace {
    public let folder: URL
    let seeds: FuzzSeeds

    public init(folder: URL? = nil) throws {
        let base = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("alignkit-fuzz-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        self.folder = base
        seeds = try FuzzSeeds(scratch: base.appendingPathComponent("seed-material"))
        // The model folder the config target loads: the seed model's weights; the adapter target's base model.
        for (name, architecture) in [("model-llama", GPTConfiguration.Architecture.llama), ("model-gpt2", .gpt2), ("adapter-base", .llama)] {
            let dir = base.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try (architecture == .llama ? seeds.llamaWeights : seeds.gpt2Weights).write(to: dir.appendingPathComponent("model.safetensors"))
            try seeds.config(architecture).write(to: dir.appendingPathComponent("config.json"))
        }
        let adapter = base.appendingPathComponent("adapter")
        try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
        try seeds.adapterWeights.write(to: adapter.appendingPathComponent(GPT.adapterWeightsFileName))
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// Valid files to start from.
    public func seeds(for target: FuzzTarget) -> [Data] { seeds.seeds(for: target) }

    /// Runs `target`'s parser on `data`.
    public func run(_ target: FuzzTarget, _ data: Data) -> FuzzOutcome {
        let file: URL
        do {
            switch target {
            case .preferences, .sft, .unpaired, .prompts:
                file = try place(data, "data.jsonl")
                // Both policies: skipping bad lines (which must leave only good records), then stopping at the first.
                for policy in [BadLinePolicy.skip, .error] {
                    switch target {
                    case .preferences: touch(try PreferenceExample.read(file, onBadLine: policy).records.map { "\($0)" })
                    case .sft: touch(try CompletionExample.readSFT(file, onBadLine: policy).records.map { "\($0)" })
                    case .unpaired: touch(try CompletionExample.readUnpaired(file, onBadLine: policy).records.map { "\($0)" })
                    default: touch(try PromptExample.read(file, onBadLine: policy).records.map { "\($0)" })
                    }
                }
            case .safetensors:
                file = try place(data, "weights.safetensors")
                let st = try SafeTensorsFile(contentsOf: file)
                for name in st.names { touch(try st.tensor(name).scalars.reduce(0, +)) }
            case .config:
                // Beside the weights of the architecture the config names (GPT-2's when it says gpt2 anywhere).
                let name = data.range(of: Data("gpt2".utf8)) != nil ? "model-gpt2" : "model-llama"
                let dir = folder.appendingPathComponent(name)
                file = try place(data, name + "/config.json")
                let model = try GPT(contentsOf: dir)
                touch(model.configuration.parameterCount)
            case .tokenizerJSON:
                file = try place(data, "tokenizer.json")
                exercise(try BytePairTokenizer(tokenizerJSON: file))
            case .vocabMerges:
                let (vocab, merges) = split(data)
                file = try place(vocab, "vocab.json")
                let mergesFile = try place(merges, "merges.txt")
                exercise(try BytePairTokenizer(vocabularyFile: file, mergesFile: mergesFile))
            case .tiktoken:
                file = try place(data, "ranks.tiktoken")
                exercise(try BytePairTokenizer(tiktokenFile: file))
            case .configFile:
                file = try place(data, "options.json")
                touch(try ConfigFile.flags(fromFile: file.path))
            case .adapterConfig:
                let adapter = folder.appendingPathComponent("adapter")
                file = try place(data, "adapter/" + GPT.adapterConfigFileName)
                var model = try GPT(contentsOf: folder.appendingPathComponent("adapter-base"))
                _ = try model.loadAdapters(from: adapter)
                touch(model.mergingAdapters().configuration.parameterCount)
            }
            return .accepted
        } catch {
            let text = "\(error)"
            let named = folder.path
            return text.contains(named) ? .refused : .unclear("\(type(of: error)): \(text)")
        }
    }

    func place(_ data: Data, _ name: String) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    func split(_ data: Data) -> (Data, Data) {
        guard let r = data.range(of: FuzzTarget.separator) else { return (data, Data()) }
        return (data[..<r.lowerBound], data[r.upperBound...])
    }

    /// Uses a tokenizer as a run would: encode text with and without special tokens, decode the ids.
    func exercise(_ tokenizer: BytePairTokenizer) {
        for text in ["Hello, world! <|endoftext|> ünïcödé 123", "", "  \n\t", "the the the"] {
            let ids = tokenizer.encode(text)
            touch(tokenizer.decode(ids))
            touch(tokenizer.encode(text, allowSpecial: false))
        }
        touch(tokenizer.vocabularySize)
    }
}

/// Keeps a value alive so the work that made it is not optimized away.
@inline(never) func touch<T>(_ value: T) { withExtendedLifetime(value) {} }

// Valid files for every fuzz target, written by AlignKit's own writers (small, so that a fuzzer
// runs thousands of inputs a second): JSONL records of every form, safetensors in F32 and BF16, GPT-2
// and Llama configs with matching weights, a trained byte-level BPE as tokenizer.json, vocab.json +
// merges.txt and .tiktoken, a --config file and a PEFT adapter config.
import AlignKitAlignment
import AlignKitModels
import AlignKitNN
import AlignKitTensor
import AlignKitText
import Foundation

struct FuzzSeeds {
    let tokenizerJSON: Data
    let vocabJSON: Data
    let mergesText: Data
    let tiktoken: Data
    let llamaWeights: Data
    let gpt2Weights: Data
    let adapterWeights: Data
    let smallWeights: [Data]
    let adapterConfig: Data
    static let llama = GPTConfiguration(architecture: .llama, vocabularySize: 40, contextLength: 16, modelSize: 8, layerCount: 1,
                                        headCount: 2, kvHeadCount: 1, tiedEmbeddings: true)
    static let gpt2 = GPTConfiguration(architecture: .gpt2, vocabularySize: 40, contextLength: 16, modelSize: 8, layerCount: 1,
                                       headCount: 2, kvHeadCount: 2, tiedEmbeddings: true)

    init(scratch: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: scratch) }
        // A small byte-level BPE: 256 bytes, a few merges, the end-of-text token.
        let texts = ["the cat sat on the mat", "the dog ate the bone", "then the cat and the dog slept"]
        let tokenizer = BPETrainer.train(texts: texts, vocabularySize: 270)
        tokenizerJSON = try tokenizer.tokenizerJSON()
        let root = try JSONSerialization.jsonObject(with: tokenizerJSON) as! [String: Any]
        let model = root["model"] as! [String: Any]
        let vocab = model["vocab"] as! [String: Int]
        vocabJSON = try JSONSerialization.data(withJSONObject: vocab.merging(["<|endoftext|>": vocab.count]) { a, _ in a }, options: [.sortedKeys])
        let merges = (model["merges"] as! [Any]).map { ($0 as? String) ?? ($0 as! [String]).joined(separator: " ") }
        mergesText = Data(("#version: 0.2\n" + merges.joined(separator: "\n") + "\n").utf8)
        tiktoken = Data(vocab.sorted { $0.value < $1.value }.map { token, id in
            Data(ByteLevelAlphabet.read(token)!).base64EncodedString() + " \(id)"
        }.joined(separator: "\n").utf8)
        // Weights: the Llama seed model (read by the config and adapter targets), its adapter, small files.
        func bytes(_ write: (URL) throws -> Void) throws -> Data {
            let url = scratch.appendingPathComponent("file-\(UUID().uuidString)")
            try write(url)
            return try Data(contentsOf: url)
        }
        let gpt = GPT(configuration: Self.llama, seed: 1)
        llamaWeights = try bytes { try writeSafeTensors(gpt.huggingFaceTensors(), to: $0, metadata: ["format": "pt"]) }
        gpt2Weights = try bytes { try writeSafeTensors(GPT(configuration: Self.gpt2, seed: 1).huggingFaceTensors(), to: $0) }
        var adapted = gpt
        let settings = LoRASettings(rank: 2, alpha: 4, dropout: 0, targets: ["q_proj", "v_proj"])
        try adapted.addAdapters(settings, seed: 2)
        let adapterFolder = scratch.appendingPathComponent("adapter")
        try adapted.saveAdapters(to: adapterFolder, settings: settings, baseModel: "base")
        adapterWeights = try Data(contentsOf: adapterFolder.appendingPathComponent(GPT.adapterWeightsFileName))
        adapterConfig = try Data(contentsOf: adapterFolder.appendingPathComponent(GPT.adapterConfigFileName))
        let small: [(String, Tensor)] = [("a", Tensor([1, -2, 3.5, 0])), ("b.weight", Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])),
                                         ("empty", Tensor.zeros([0, 4])), ("scalar", Tensor([7], shape: []))]
        smallWeights = [try bytes { try writeSafeTensors(small, to: $0, metadata: ["format": "pt", "step_count": "3"]) },
                        try bytes { try writeSafeTensors(small, to: $0, dtype: .bf16) }]
    }

    func config(_ architecture: GPTConfiguration.Architecture) throws -> Data {
        try JSONSerialization.data(withJSONObject: (architecture == .llama ? Self.llama : Self.gpt2).huggingFaceConfig(),
                                   options: [.prettyPrinted, .sortedKeys])
    }

    func seeds(for target: FuzzTarget) -> [Data] {
        func lines(_ l: [String]) -> Data { Data(l.joined(separator: "\n").utf8) }
        let messages = #"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]"#
        switch target {
        case .preferences:
            return [lines([#"{"prompt": "Who's there?", "chosen": " Nay, answer me.", "rejected": " Long live the King!"}"#,
                           #"{"chosen": "The film was great fun.", "rejected": "The film was dull.", "margin": 1.5}"#,
                           #"{"prompt": \#(messages), "chosen": [{"role": "assistant", "content": "Hello."}], "rejected": [{"role": "assistant", "content": "Go away."}]}"#]),
                    lines([#"{"prompt":"a","chosen":" b","rejected":" c"}"#, "", #"{"prompt":"é\u00e9\ud83d\ude00","chosen":" x","rejected":" y"}"#])]
        case .sft:
            return [lines([#"{"prompt": "Say hi.", "completion": " Hi!"}"#,
                           #"{"messages": \#(messages.dropLast()), {"role": "assistant", "content": "Hello."}]}"#])]
        case .unpaired:
            return [lines([#"{"prompt": "Rate it:", "completion": " Lovely.", "label": true}"#,
                           #"{"prompt": "Rate it:", "completion": " Awful.", "label": false}"#])]
        case .prompts:
            return [lines([#"{"prompt": "Tell me a story."}"#, #"{"prompt": \#(messages), "other": 3}"#])]
        case .safetensors:
            return smallWeights + [llamaWeights, adapterWeights]
        case .config:
            return [(try? config(.llama)) ?? Data(), (try? config(.gpt2)) ?? Data()]
        case .tokenizerJSON:
            return [tokenizerJSON]
        case .vocabMerges:
            return [vocabJSON + FuzzTarget.separator + mergesText]
        case .tiktoken:
            return [tiktoken]
        case .configFile:
            return [Data(#"{"batch-size": 4, "lr": 0.001, "resume": true, "corpus": ["a.txt", "b.txt"], "seed": 7, "evalData": null}"#.utf8)]
        case .adapterConfig:
            return [adapterConfig]
        }
    }
}

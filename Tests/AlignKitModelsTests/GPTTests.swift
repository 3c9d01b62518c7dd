// GPT against Hugging Face `transformers`: fixtures from scripts/make-gpt-fixtures.py (a tiny
// GPT2LMHeadModel and a tiny LlamaForCausalLM with grouped-query attention and an untied head).
import AlignKitModels
import AlignKitNN
import AlignKitTensor
import AlignKitTestSupport
import AlignKitText
import Foundation
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")


@Suite("GPT parity with transformers")
struct GPTParityTests {
    @Test(arguments: ["gpt2-tiny", "llama-tiny"])
    func logitsAndGradientsAgree(name: String) throws {
        let folder = fixtures.appendingPathComponent(name)
        let model = try GPT(contentsOf: folder)
        let expected = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("expected.safetensors"))
        let tokens = try expected.tensor("tokens").scalars.map { Int($0) }
        // Logits: float32 sums over 16-wide rows through two blocks; 1e-4 absolute is the issue's bound.
        let logits = model.logits(tokens, batch: 2)
        let reference = try expected.tensor("logits")
        #expect(logits.shape == reference.shape)
        let worst = zip(logits.scalars, reference.scalars).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4, "largest logit difference \(worst)")

        let (loss, gradient) = valueWithGradient(at: model) { m in m.loss(tokens, batch: 2) }
        #expect(abs(loss.scalar - (try expected.tensor("loss").scalar)) <= 1e-5)
        // Every parameter's gradient, compared under Hugging Face's name: ‖ours − theirs‖∞ ≤ 1e-3 ‖theirs‖∞.
        let ours = gradient.huggingFaceTensors()
        let gradientNames = Set(expected.names.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) })
        #expect(Set(ours.map(\.0)) == gradientNames)
        for (parameter, g) in ours {
            let theirs = try expected.tensor("grad." + parameter)
            #expect(g.shape == theirs.shape, "\(parameter)")
            let r = relativeDifference(g, theirs)
            #expect(r <= 1e-3, "\(parameter): relative difference \(r)")
        }
    }

    @Test(arguments: ["gpt2-tiny", "llama-tiny"])
    func savedCheckpointLoadsBackWithTheSameLogits(name: String) throws {
        let model = try GPT(contentsOf: fixtures.appendingPathComponent(name))
        let folder = try temporaryFolder("gpt")
        defer { try? FileManager.default.removeItem(at: folder) }
        try model.save(to: folder)
        let loaded = try GPT(contentsOf: folder)
        #expect(loaded.configuration == model.configuration)
        let tokens = Array(0..<12)
        #expect(loaded.logits(tokens).scalars == model.logits(tokens).scalars)
        // BF16 keeps 8 bits of mantissa: logits move, but by far less than their spread.
        try model.save(to: folder, dtype: .bf16)
        let rounded = try GPT(contentsOf: folder)
        let difference = zip(rounded.logits(tokens).scalars, model.logits(tokens).scalars).map { abs($0 - $1) }.max()!
        #expect(difference > 0 && difference < 0.1)
    }
}

@Suite("Checkpoint files")
struct CheckpointFileTests {
    static let source = fixtures.appendingPathComponent("llama-tiny")

    func copyOfFixture() throws -> URL {
        let folder = try temporaryFolder("ckpt")
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: Self.source.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        return folder
    }

    @Test func truncatedOrCorruptWeightsNameTheFileAndTheFault() throws {
        let folder = try copyOfFixture()
        defer { try? FileManager.default.removeItem(at: folder) }
        let weights = folder.appendingPathComponent("model.safetensors")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count - 100).write(to: weights)
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("model.safetensors: truncated: tensor") }
        try bytes.prefix(5).write(to: weights)
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("shorter than the 8-byte header length") }
        var corrupt = bytes
        corrupt[8] = UInt8(ascii: "x")     // the JSON header's opening brace
        try corrupt.write(to: weights)
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("model.safetensors: header is not a JSON object") }
        var huge = bytes
        huge[6] = 0x7f                     // header length far beyond the file
        try huge.write(to: weights)
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("exceeds the file's remaining") }
    }

    @Test func badConfigsNameTheKey() throws {
        let folder = try copyOfFixture()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("config.json")
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as! [String: Any]
        func write(_ change: (inout [String: Any]) -> Void) throws {
            var json = original
            change(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: config)
        }
        try write { $0["model_type"] = "bert" }
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("config.json: unknown architecture 'bert'") }
        try write { $0["hidden_size"] = nil }
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("config.json: missing key 'hidden_size'") }
        try write { $0["num_hidden_layers"] = 3 }
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("model.safetensors: missing tensor 'model.layers.2.input_layernorm.weight'") }
        try write { $0["intermediate_size"] = 48 }
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [40, 16]; config.json implies [48, 16]") }
        try "{not json".write(to: config, atomically: true, encoding: .utf8)
        #expect { try GPT(contentsOf: folder) } throws: { "\($0)".contains("config.json: not valid JSON") }
    }

    @Test func halfAndBFloat16Convert() throws {
        // F16 bits: 1.0 = 0x3C00, -2.5 = 0xC100, smallest subnormal 2^-24 = 0x0001, 65504 = 0x7BFF.
        let folder = try temporaryFolder("f16")
        defer { try? FileManager.default.removeItem(at: folder) }
        let header = #"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}"#
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        for h: UInt16 in [0x3C00, 0xC100, 0x0001, 0x7BFF, 0x3FC0, 0xC040] { withUnsafeBytes(of: h.littleEndian) { data.append(contentsOf: $0) } }
        let url = folder.appendingPathComponent("x.safetensors")
        try data.write(to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        #expect(try file.tensor("h").scalars == [1, -2.5, 0x1p-24, 65504])
        #expect(try file.tensor("b").scalars == [1.5, -3])          // BF16 0x3FC0 = 1.5, 0xC040 = -3
    }
}

@Suite("Sampling")
struct SamplingTests {
    @Test(arguments: ["gpt2-tiny", "llama-tiny"])
    func cacheGivesTheTokensOfRecomputing(name: String) throws {
        let model = try GPT(contentsOf: fixtures.appendingPathComponent(name))
        for temperature: Float in [0, 1] {
            var options = SamplingOptions()
            options.temperature = temperature
            options.maximumNewTokens = model.configuration.contextLength - 3     // up to the end of the context
            options.seed = 3
            let cached = Sampler.generate(model, prompt: [5, 17, 2], options: options)
            options.recompute = true
            let recomputed = Sampler.generate(model, prompt: [5, 17, 2], options: options)
            #expect(cached.count == options.maximumNewTokens)
            #expect(cached == recomputed, "temperature \(temperature)")
        }
        // Past the context, both paths keep generating from the most recent tokens.
        var long = SamplingOptions()
        long.maximumNewTokens = 3 * model.configuration.contextLength
        #expect(Sampler.generate(model, prompt: [5, 17, 2], options: long).count == long.maximumNewTokens)
    }

    /// A fixture by name, or "width-256": a 2-layer GPT-2 of width 256 (4 heads of 64, context 128), large enough
    /// that decoding's products split K between two threads and its heads run as parallel tasks.
    static func decodingModel(_ name: String) throws -> GPT {
        if name != "width-256" { return try GPT(contentsOf: fixtures.appendingPathComponent(name)) }
        return GPT(configuration: GPTConfiguration(architecture: .gpt2, vocabularySize: 64, contextLength: 128, modelSize: 256, layerCount: 2,
                                                   headCount: 4, kvHeadCount: 4, tiedEmbeddings: true), seed: 2)
    }

    /// Decoding multiplies by the query, key and value weights joined side by side; with an adapter on the
    /// query projection (B = 0, so the same function) it runs three products. The logits agree exactly.
    @Test(arguments: ["gpt2-tiny", "llama-tiny", "width-256"])
    func decodingJoinsTheProjectionsExactly(name: String) throws {
        let model = try Self.decodingModel(name)
        var separate = model
        var generator = RandomGenerator(seed: 4)
        for i in separate.blocks.indices {
            let query = separate.blocks[i].attention.query.weight
            separate.blocks[i].attention.query.adapter = LowRankAdapter(inputSize: query.shape[0], outputSize: query.shape[1],
                                                                          rank: 2, alpha: 4, generator: &generator)
        }
        let (joinedCache, separateCache) = (model.makeCache(), separate.makeCache())
        withoutGradient {
            for step in [[5, 17, 2], [9], [30], [11]] {
                let joined = model.logits(step, cache: joinedCache).scalars
                let apart = separate.logits(step, cache: separateCache).scalars
                #expect(joined == apart, "after \(joinedCache.length) positions")
                #expect(joined.allSatisfy { $0.isFinite })
            }
        }
    }

    /// Each decoding step's logits (one position against the cache: per head, scores, softmax and values in one
    /// task) against the full forward pass over every position so far. Tolerance: the two take different
    /// summation orders in fp32 (packed products and blocked attention against skinny kernels), about 1e-6 here;
    /// 1e-4 of the largest logit still catches a wrong key, a stale value or a missed position.
    @Test(arguments: ["gpt2-tiny", "llama-tiny", "width-256"])
    func decodingMatchesTheFullForwardPass(name: String) throws {
        let model = try Self.decodingModel(name)
        let v = model.configuration.vocabularySize
        var generator = RandomGenerator(seed: 6)
        let length = min(90, model.configuration.contextLength)
        let tokens = (0..<length).map { _ in Int(generator.next() % UInt64(v)) }
        let cache = model.makeCache()
        withoutGradient {
            _ = model.logits(Array(tokens.prefix(3)), cache: cache)
            for position in 3..<length {
                let step = model.logits([tokens[position]], cache: cache).scalars
                let full = model.logits(Array(tokens.prefix(position + 1))).scalars.suffix(v)
                let largest = full.map(abs).max()!
                let difference = zip(step, full).map { abs($0 - $1) }.max()!
                #expect(difference <= 1e-4 * max(1, largest), "position \(position): \(difference)")
                if position % 16 == 0 {   // the last position alone (what sampling asks for), without a cache
                    let last = model.nextTokenLogits(Array(tokens.prefix(position + 1)))
                    #expect(last.shape == [1, v])
                    #expect(zip(last.scalars, full).map { abs($0 - $1) }.max()! <= 1e-4 * max(1, largest), "position \(position)")
                }
            }
        }
    }

    @Test func stopStringsAndTokensEndGeneration() throws {
        let model = try GPT(contentsOf: fixtures.appendingPathComponent("llama-tiny"))
        let decode: ([Int]) -> String = { ids in String(String.UnicodeScalarView(ids.map { Unicode.Scalar(UInt32(0x41 + $0))! })) }
        var options = SamplingOptions()
        options.temperature = 0
        options.maximumNewTokens = 20
        let free = Sampler.generate(model, prompt: [5, 17, 2], options: options)
        let stop = decode(Array(free[6...7]))
        let expected = (1...free.count).first { decode(Array(free.prefix($0))).contains(stop) }!
        options.stopStrings = [stop]
        #expect(Sampler.generate(model, prompt: [5, 17, 2], options: options, decode: decode) == Array(free.prefix(expected)))
        options.stopStrings = []
        options.stopTokens = [free[3]]
        #expect(Sampler.generate(model, prompt: [5, 17, 2], options: options) == Array(free.prefix(free.firstIndex(of: free[3])! + 1)))
    }

    @Test func topKAndTopPKeepOnlyTheLikeliestTokens() {
        // Probabilities ∝ e^3, e^2, e^1, e^0 = 0.64, 0.24, 0.09, 0.03.
        let logits: [Float] = [3, 2, 1, 0]
        func counts(_ configure: (inout SamplingOptions) -> Void) -> [Int] {
            var options = SamplingOptions()
            configure(&options)
            var generator = RandomGenerator(seed: 9)
            var counts = [0, 0, 0, 0]
            logits.withUnsafeBufferPointer { for _ in 0..<4000 { counts[Sampler.pick($0, options: options, generator: &generator)] += 1 } }
            return counts
        }
        #expect(counts { $0.temperature = 0 } == [4000, 0, 0, 0])
        #expect(counts { $0.topK = 1 } == [4000, 0, 0, 0])
        let two = counts { $0.topK = 2 }
        #expect(two[2] == 0 && two[3] == 0)
        // e³/(e³+e²) = 0.7311 of 4000 = 2924; 4 standard deviations = 4·√(4000·0.731·0.269) ≈ 112.
        #expect(abs(two[0] - 2924) < 115)
        let nucleus = counts { $0.topP = 0.85 }              // 0.64 + 0.24 reaches 0.85: two tokens
        #expect(nucleus[2] == 0 && nucleus[3] == 0 && nucleus[1] > 0)
        let all = counts { _ in }
        #expect(all[3] > 0 && abs(all[0] - 2576) < 125)     // 0.6439 · 4000 = 2576 ± 4σ (σ ≈ 30)
    }
}

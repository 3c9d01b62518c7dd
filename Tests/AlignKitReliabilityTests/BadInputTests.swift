// Each class of bad input the README's table lists, with what the user sees: an error naming the file
// (and the line and field where there is one) and what is wrong. The fuzzing finds that nothing
// crashes; these pin down the messages.
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

/// The message a parser's error shows for `bytes` written to `name`, without the scratch folder's path.
func message(_ name: String, _ bytes: Data, _ parse: (URL) throws -> Void) throws -> String {
    let folder = try temporaryFolder("bad-input")
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent(name)
    try bytes.write(to: url)
    do { try parse(url) } catch { return "\(error)".replacingOccurrences(of: folder.path + "/", with: "") }
    return "accepted"
}

func text(_ s: String) -> Data { Data(s.utf8) }

/// A safetensors file from a header object and a data section.
func safetensorsFile(_ header: String, data: Int) -> Data {
    var header = Data(header.utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var out = Data()
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
    return out + header + Data(count: data)
}

@Suite("Bad input")
struct BadInputTests {
    func weights(_ bytes: Data) throws -> String {
        try message("w.safetensors", bytes) { url in
            let file = try SafeTensorsFile(contentsOf: url)
            for name in file.names { _ = try file.tensor(name) }
        }
    }

    @Test func safetensorsFiles() throws {
        let good = #"{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}"#
        #expect(try weights(Data([1, 2, 3])) == "w.safetensors: file is 3 bytes, shorter than the 8-byte header length; truncated or not safetensors")
        let cut = try weights(safetensorsFile(good, data: 16).prefix(30))
        #expect(cut.hasPrefix("w.safetensors: header length ") && cut.hasSuffix("exceeds the file's remaining 22 bytes; truncated or not safetensors"), "\(cut)")
        #expect(try weights(safetensorsFile(good, data: 10)) == "w.safetensors: truncated: tensor 'a' ends at byte 16 of the data section, which has 10")
        var huge = safetensorsFile(good, data: 16)
        huge.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64.max.littleEndian) { Data($0) })
        #expect(try weights(huge).hasPrefix("w.safetensors: header length 18446744073709551615 exceeds"))
        let big = safetensorsFile(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"# + String(repeating: " ", count: 100_000_008), data: 4)
        #expect(try weights(big) == "w.safetensors: header length 100000072 is over the format's limit of 100000000 bytes; not safetensors")
        #expect(try weights(safetensorsFile(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#, data: 12))
                == "w.safetensors: tensor 'b' starts at byte 4 of the data section, expected 8 (tensors overlap or leave a gap)")
        #expect(try weights(safetensorsFile(#"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}"#, data: 12))
                == "w.safetensors: tensor 'a': 12 bytes for shape [4] of F32, which needs 16")
        #expect(try weights(safetensorsFile(#"{"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#, data: 4))
                == "w.safetensors: tensor 'a': shape [4294967296, 4294967296] is too large for any file")
        #expect(try weights(safetensorsFile(#"{"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}"#, data: 8))
                == "w.safetensors: tensor 'a': dtype I64 is not supported (AlignKit reads F32, F16, BF16)")
        #expect(try weights(safetensorsFile(#"{"a": {"dtype": "F32", "shape": "[1]", "data_offsets": [0, 4]}}"#, data: 4))
                == "w.safetensors: tensor 'a': shape is missing or not a list of sizes")
        #expect(try weights(safetensorsFile(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}"#, data: 4))
                == "w.safetensors: tensor 'a': data_offsets must be [begin, end] with begin ≤ end")
        #expect(try weights(safetensorsFile("[1, 2]", data: 0)) == "w.safetensors: header is not a JSON object; not a safetensors file")
    }

    func preferences(_ lines: [String]) throws -> String {
        try message("pairs.jsonl", text(lines.joined(separator: "\n"))) { _ = try PreferenceExample.read($0) }
    }

    @Test func jsonLines() throws {
        let good = #"{"prompt": "Hi", "chosen": " a", "rejected": " b"}"#
        #expect(try preferences([good, #"{"prompt": "Hi", "chosen": " a", "rejected": " b""#]).hasPrefix("pairs.jsonl:2: not valid JSON"))
        #expect(try message("pairs.jsonl", text(good + "\n") + Data([0x7B, 0x22, 0xC3, 0x28, 0x22, 0x7D])) { _ = try PreferenceExample.read($0) }
                == "pairs.jsonl:2: not valid UTF-8")
        #expect(try preferences([#"{"prompt": "Hi", "chosen": 3, "rejected": " b"}"#]) == "pairs.jsonl:1: field 'chosen': must be a string or a list of messages, not a number")
        #expect(try preferences([#"{"prompt": "", "chosen": " a", "rejected": " b"}"#]) == "pairs.jsonl:1: field 'prompt': is empty")
        #expect(try preferences([#"{"prompt": "Hi", "chosen": " a"}"#]) == "pairs.jsonl:1: field 'rejected': missing")
        #expect(try preferences([#"{"prompt": "Hi", "chosen": null, "rejected": " b"}"#]) == "pairs.jsonl:1: field 'chosen': is null")
        #expect(try preferences([#"["Hi", " a", " b"]"#]) == "pairs.jsonl:1: expected a JSON object, found a list")
        #expect(try preferences([#"{"prompt": "Hi", "chosen": " a", "rejected": " b", "margin": 1e999}"#]).hasPrefix("pairs.jsonl:1: "))
        #expect(try preferences([#"{"prompt": [{"role": "king", "content": "x"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#])
                == "pairs.jsonl:1: field 'prompt[0].role': 'king' is not one of system, user, assistant")
        #expect(try message("pairs.jsonl", Data()) { _ = try PreferenceExample.read($0) } == "accepted")   // an empty file has no records
    }

    func config(_ json: String) throws -> String {
        try message("config.json", text(json)) { _ = try GPTConfiguration(huggingFaceConfig: $0) }
    }

    @Test func modelConfig() throws {
        let llama = #""model_type": "llama", "vocab_size": 40, "max_position_embeddings": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_key_value_heads": 1"#
        #expect(try config("{") == "config.json: not valid JSON")
        #expect(try config("[]") == "config.json: not a JSON object")
        #expect(try config("{" + llama + #", "hidden_size": 12.5, "num_attention_heads": 2}"#) == "config.json: 'hidden_size' is 12.5, not an integer")
        #expect(try config("{" + llama + #", "hidden_size": 8, "num_attention_heads": 0}"#) == "config.json: num_attention_heads is 0; it must be positive")
        #expect(try config("{" + llama + #", "hidden_size": 1000000, "num_attention_heads": 2}"#) == "config.json: modelSize is 1000000; AlignKit allows at most 65536")
        #expect(try config(#"{"model_type": "bert"}"#) == "config.json: unknown architecture 'bert' (model_type); AlignKit reads gpt2 and llama")
        // A config.json larger than its weights is refused before the model is allocated.
        let folder = try temporaryFolder("big-config")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: policyFolder.appendingPathComponent("model.safetensors"), to: folder.appendingPathComponent("model.safetensors"))
        var big = try GPTConfiguration(huggingFaceConfig: policyFolder.appendingPathComponent("config.json"))
        big = GPTConfiguration(architecture: big.architecture, vocabularySize: 1 << 20, contextLength: big.contextLength, modelSize: 4096,
                               layerCount: 8, headCount: 32, kvHeadCount: 8)
        try big.saveHuggingFaceConfig(to: folder.appendingPathComponent("config.json"))
        let error = #expect(throws: DataFileError.self) { try GPT(contentsOf: folder) }
        #expect(error?.message.hasSuffix("config.json describes a model of \(big.parameterCount) parameters") == true, "\(String(describing: error))")
    }

    @Test func tokenizers() throws {
        func tokenizer(_ name: String, _ bytes: Data) throws -> String { try message(name, bytes) { _ = try BytePairTokenizer(contentsOf: $0) } }
        let bytes = (0..<256).map { b in "\"\(ByteLevelAlphabet.spell([UInt8(b)]).unicodeScalars.map { $0.value < 128 && $0 != "\"" && $0 != "\\" ? String($0) : String(format: "\\u%04x", $0.value) }.joined())\": \(b)" }
        func json(_ extra: String, merges: String = "[]", pre: String = #"{"type": "ByteLevel"}"#) -> Data {
            text(#"{"model": {"type": "BPE", "vocab": {"# + (bytes + (extra.isEmpty ? [] : [extra])).joined(separator: ", ") + #"}, "merges": \#(merges)}, "pre_tokenizer": \#(pre)}"#)
        }
        #expect(try tokenizer("tokenizer.json", json("")) == "accepted")
        #expect(try tokenizer("tokenizer.json", json(#""ab": 99999999999"#)) == "tokenizer.json: model.merges: id 99999999999 is over AlignKit's limit of 16777215")
        #expect(try tokenizer("tokenizer.json", json("", merges: #"["a zz"]"#)) == "tokenizer.json: model.merges:0: 'a zz' names a token that is not in the vocabulary")
        #expect(try tokenizer("tokenizer.json", json("", pre: #"{"type": "Whitespace"}"#))
                == "tokenizer.json: pre_tokenizer is 'Whitespace'; AlignKit reads the ByteLevel pre-tokenizer with GPT-2's pattern")
        #expect(try tokenizer("tokenizer.json", json(#""ab": -3"#)) == "tokenizer.json: model.vocab: token 'ab' has id -3, not a non-negative integer")
        let ranks = (0..<256).map { "\(Data([UInt8($0)]).base64EncodedString()) \($0)" }
        #expect(try tokenizer("r.tiktoken", text(ranks.joined(separator: "\n"))) == "accepted")
        #expect(try tokenizer("r.tiktoken", text((ranks + ["!!! 300"]).joined(separator: "\n"))) == "r.tiktoken:257: token field is not valid base64")
        #expect(try tokenizer("r.tiktoken", text((ranks + ["YWI= 5"]).joined(separator: "\n"))) == "r.tiktoken:257: rank 5 was given already on line 6")
        #expect(try tokenizer("r.tiktoken", text((ranks + ["YWI= 99999999999"]).joined(separator: "\n")))
                == "r.tiktoken:257: rank '99999999999' is not an integer from 0 to 16777214")
        #expect(try tokenizer("r.tiktoken", text(ranks.dropFirst().joined(separator: "\n"))) == "r.tiktoken: byte 0 has no rank; a byte-level rank file lists all 256 bytes")
    }

    @Test func configFilesAndAdapters() throws {
        #expect(try message("options.json", text("[1]")) { _ = try ConfigFile.flags(fromFile: $0.path) } == "options.json: a config file is one JSON object whose keys are flags")
        #expect(try message("options.json", text(#"{"lr": {"x": 1}}"#)) { _ = try ConfigFile.flags(fromFile: $0.path) } == "options.json: field 'lr': an object is not a string or a number")
        let folder = try temporaryFolder("adapter")
        defer { try? FileManager.default.removeItem(at: folder) }
        var model = try GPT(contentsOf: policyFolder)
        let settings = LoRASettings(rank: 2, alpha: 4, dropout: 0, targets: ["q_proj"])
        var adapted = model
        try adapted.addAdapters(settings)
        try adapted.saveAdapters(to: folder, settings: settings, baseModel: "x")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent(GPT.adapterConfigFileName))) as! [String: Any]
        config["lora_dropout"] = 3.4e38
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent(GPT.adapterConfigFileName))
        let error = #expect(throws: DataFileError.self) { try model.loadAdapters(from: folder) }
        #expect(error?.field == "lora_dropout" && error?.message.contains("must be in [0, 1)") == true, "\(String(describing: error))")
    }
}

// GPT-2's byte-level BPE from the .tiktoken rank file: the ids the data README lists, lossless round
// trips, special tokens, the pre-tokenizer's splits, and errors that name the line.
import AlignKitText
import AlignKitTestSupport
import Foundation
import Testing

@Suite("GPT-2 BPE")
struct TokenizerTests {
    static let gpt2: BytePairTokenizer = try! BytePairTokenizer(tiktokenFile: sharedData.appendingPathComponent("gpt2-bpe/gpt2.tiktoken"))

    @Test func knownIDs() {
        let t = Self.gpt2
        #expect(t.vocabularySize == 50257)
        #expect(t.encode("Hello world") == [15496, 995])
        #expect(t.encode(" the") == [262])
        #expect(t.encode("Once upon a time") == [7454, 2402, 257, 640])
        #expect(t.encode("<|endoftext|>") == [50256])
        #expect(t.encode("<|endoftext|>", allowSpecial: false).count > 1)
    }

    @Test func roundTripsAnyText() {
        let t = Self.gpt2
        for text in ["What is your name?", "  two  spaces\n\nand\ttabs ", "naïve café — 日本語 😀👍🏽", "it's they'll we've I'd",
                     "123 4567 3.14", "", " ", "\n", "A<|endoftext|>B"] {
            #expect(t.decode(t.encode(text)) == text, "\(text)")
        }
    }

    @Test func preTokenizerSplitsAsTheRegex() {
        func pieces(_ s: String) -> [String] { GPT2PreTokenizer.split(s).map { String($0) } }
        #expect(pieces("Hello world") == ["Hello", " world"])
        #expect(pieces("it's  fine!!") == ["it", "'s", " ", " fine", "!!"])
        #expect(pieces("a\n\nb") == ["a", "\n", "\n", "b"])     // \s+(?!\S) keeps the last newline for \s+
        #expect(pieces("x   ") == ["x", "   "])                   // trailing whitespace stays one piece
        #expect(pieces("abc123 45") == ["abc", "123", " 45"])
    }

    @Test func badRankFilesNameTheLine() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UInt32.random(in: 0...UInt32.max)).tiktoken")
        try "IQ== 0\nIg== 1\nnot-base64!! 2\n".write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect { try BytePairTokenizer(tiktokenFile: url) } throws: { "\($0)".contains(":3: token field is not valid base64") }
    }

    @Test func roundTripsAllOfShakespeare() throws {
        let folder = sharedData.appendingPathComponent("shakespeare")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".txt") }.sorted()
        #expect(files.count >= 40)
        var bytes = 0
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            let ids = Self.gpt2.encode(text)
            #expect(Self.gpt2.decode(ids) == text, "\(file)")
            bytes += text.utf8.count
        }
        #expect(bytes > 5_000_000)
    }
}

@Suite("GPT-2 BPE against tiktoken")
struct TokenizerParityTests {
    struct Case: Decodable { let text: String?; let file: String?; let start: Int?; let length: Int?; let ids: [Int] }

    @Test func sameIDsAsTiktoken() throws {
        // Made by scripts/make-bpe-fixture.py with OpenAI's tiktoken over the same rank file.
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/gpt2-bpe.json")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: fixture))
        #expect(cases.count == 5)
        for c in cases {
            let text: String
            if let file = c.file, let start = c.start, let length = c.length {
                // Python slices by code point: index the Unicode scalars, not grapheme clusters ("\r\n").
                let all = try String(contentsOf: sharedData.appendingPathComponent(file), encoding: .ascii).unicodeScalars
                let from = all.index(all.startIndex, offsetBy: start)
                text = String(all[from..<all.index(from, offsetBy: length)])
            } else {
                text = c.text!
            }
            #expect(TokenizerTests.gpt2.encode(text) == c.ids, "\(text.prefix(40))")
        }
    }
}

@Suite("BPE training")
struct BPETrainingTests {
    @Test func mergesTheMostFrequentPairFirst() {
        // Pieces: "ab", " ab" ×3, " cd": (a, b) occurs 4 times, then (" ", ab) 3 times.
        let t = BPETrainer.train(texts: ["ab ab ab ab cd"], vocabularySize: 258)
        #expect(t.ids[Array("ab".utf8)] == 256)
        #expect(t.ids[Array(" ab".utf8)] == 257)
        #expect(t.encode("ab ab") == [256, 257])
        #expect(t.specialTokens[BytePairTokenizer.endOfText] == 258)
        #expect(t.encode("x<|endoftext|>") == [120, 258])
    }

    @Test func trainedOnShakespeareItCompressesAndRoundTrips() throws {
        let text = try String(contentsOf: sharedData.appendingPathComponent("shakespeare/hamlet_gut.txt"), encoding: .ascii)
        let tokenizer = BPETrainer.train(texts: [text], vocabularySize: 1000)
        #expect(tokenizer.vocabularySize == 1001)
        let sample = String(text.suffix(5000))
        let ids = tokenizer.encode(sample)
        #expect(tokenizer.decode(ids) == sample)
        // Bytes per token: 1.0 with no merges; 744 merges learned on Hamlet give about 2.5 on its last scene.
        #expect(Double(sample.utf8.count) / Double(ids.count) > 2.0)
        #expect(tokenizer.decode(tokenizer.encode("naïve 日本 😀")) == "naïve 日本 😀")   // unseen bytes still encode
    }
}

@Suite("Hugging Face tokenizer files")
struct HuggingFaceTokenizerTests {
    // Made by scripts/make-tokenizer-fixture.py with the `tokenizers` library (byte-level BPE, 400 ids).
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/hf-bpe")
    struct Case: Decodable { let text: String; let ids: [Int] }
    static let cases = try! JSONDecoder().decode([Case].self, from: Data(contentsOf: folder.appendingPathComponent("cases.json")))

    @Test func tokenizerJSONGivesTheLibrarysIDs() throws {
        let t = try BytePairTokenizer(tokenizerJSON: Self.folder.appendingPathComponent("tokenizer.json"))
        #expect(t.vocabularySize == 400)
        #expect(t.endOfTextID == 0)
        for c in Self.cases { #expect(t.encode(c.text) == c.ids, "\(c.text)") }
    }

    @Test func vocabularyAndMergesGiveTheLibrarysIDs() throws {
        let t = try BytePairTokenizer(vocabularyFile: Self.folder.appendingPathComponent("vocab.json"),
                                      mergesFile: Self.folder.appendingPathComponent("merges.txt"))
        for c in Self.cases { #expect(t.encode(c.text) == c.ids, "\(c.text)") }
    }

    @Test func savedTokenizerJSONLoadsBackTheSame() throws {
        let text = try String(contentsOf: sharedData.appendingPathComponent("shakespeare/hamlet_gut.txt"), encoding: .ascii)
        let trained = BPETrainer.train(texts: [String(text.prefix(80_000))], vocabularySize: 600)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-\(UInt32.random(in: 0...UInt32.max)).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try trained.save(tokenizerJSON: url)
        let loaded = try BytePairTokenizer(tokenizerJSON: url)
        #expect(loaded.vocabularySize == trained.vocabularySize)
        let sample = String(text.suffix(20_000)) + "<|endoftext|> naïve 😀"
        #expect(loaded.encode(sample) == trained.encode(sample))
        #expect(loaded.decode(loaded.encode(sample)) == sample)
    }

    @Test func wrongKindsOfFileAreNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.json")
        try #"{"model_type": "gpt2", "n_embd": 8}"#.write(to: config, atomically: true, encoding: .utf8)
        #expect { try BytePairTokenizer(tokenizerJSON: config) } throws: { "\($0)".contains("config.json: no 'model' object") }
        let unigram = dir.appendingPathComponent("unigram.json")
        try #"{"model": {"type": "Unigram", "vocab": []}}"#.write(to: unigram, atomically: true, encoding: .utf8)
        #expect { try BytePairTokenizer(tokenizerJSON: unigram) } throws: { "\($0)".contains("unigram.json: model.type is 'Unigram'") }
        let merges = dir.appendingPathComponent("merges.txt")
        try "#version: 0.2\nĠ t\nzz qq\n".write(to: merges, atomically: true, encoding: .utf8)
        #expect { try BytePairTokenizer(vocabularyFile: Self.folder.appendingPathComponent("vocab.json"), mergesFile: merges) }
            throws: { "\($0)".contains("merges.txt:3: 'zz qq' names a token that is not in the vocabulary") }
        #expect { try BytePairTokenizer(vocabularyFile: merges, mergesFile: merges) } throws: { "\($0)".contains("is this a vocab.json?") }
    }
}

@Suite("Character tokenizer and chat template")
struct CharacterAndChatTests {
    @Test func characterTokenizerRoundTripsItsCorpus() {
        let t = CharacterTokenizer(corpus: "to be or not")
        #expect(t.vocabularySize == 9)   // unknown, 7 characters, end of text
        #expect(t.encode("be") == [2, 3])
        #expect(t.decode(t.encode("not to be<|endoftext|>or")) == "not to be<|endoftext|>or")
        #expect(t.decode(t.encode("bz")) == "b\u{FFFD}")
    }

    @Test func chatTemplateRendersTurnsAndStoresWithTheModel() throws {
        let template = ChatTemplate()
        let text = template.render([ChatMessage(.user, "Hi")], generationPrompt: true)
        #expect(text == "<|user|>\nHi<|end|>\n<|assistant|>\n")
        #expect(template.reply("Hello.") == "Hello.<|end|>")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("chat-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try ChatTemplate.load(from: dir) == nil)
        var custom = ChatTemplate()
        custom.endOfTurn = "<|eot|>"
        try custom.save(in: dir)
        #expect(try ChatTemplate.load(from: dir) == custom)
    }
}

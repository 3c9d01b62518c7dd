// Preference, SFT, unpaired and prompt files: each form parses, every bad line is reported with its
// file, line and field, `skip` leaves it out and counts it, and encoding follows TRL's rules.
import AlignKitAlignment
import AlignKitTestSupport
import Foundation
import Testing

func writeLines(_ lines: [String], name: String = "data.jsonl") throws -> URL {
    let folder = try temporaryFolder("data")
    let url = folder.appendingPathComponent(name)
    try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    return url
}

@Suite("Alignment data")
struct AlignmentDataTests {
    @Test func threePreferenceForms() throws {
        let url = try writeLines([
            #"{"prompt": "Q?", "chosen": " yes", "rejected": " no"}"#,
            #"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "Go away."}]}"#,
            #"{"chosen": "The sky is blue.", "rejected": "The sky is green."}"#,
            "",
            #"{"chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]}"#,
        ])
        let file = try PreferenceExample.read(url)
        #expect(file.records.count == 4 && file.skipped.count == 0)
        #expect(file.records[0] == PreferenceExample(line: 1, prompt: .plain("Q?"), chosen: .plain(" yes"), rejected: .plain(" no")))
        #expect(file.records[1].prompt == .messages([ChatMessage(.user, "Hi")]))
        // Implicit prompt: the shared text up to the last space, which goes with the completions.
        #expect(file.records[2] == PreferenceExample(line: 3, prompt: .plain("The sky is"), chosen: .plain(" blue."), rejected: .plain(" green.")))
        #expect(file.records[3].line == 5 && file.records[3].prompt == .messages([ChatMessage(.user, "2+2?")]))
        #expect(file.records[3].chosen == .messages([ChatMessage(.assistant, "4")]))
    }

    /// Each bad line's message names the file, the line and the field.
    @Test(arguments: [
        (#"{"prompt": "Q", "chosen": "a""#, nil, "not valid JSON"),
        (#"["prompt", "chosen"]"#, nil, "expected a JSON object, found a list"),
        (#"{"prompt": "Q", "rejected": "b"}"#, "chosen", "missing"),
        (#"{"prompt": "Q", "chosen": "", "rejected": "b"}"#, "chosen", "is empty"),
        (#"{"prompt": "Q", "chosen": 3, "rejected": "b"}"#, "chosen", "must be a string or a list of messages, not a number"),
        (#"{"prompt": "Q", "chosen": "a", "rejected": null}"#, "rejected", "is null"),
        (#"{"prompt": "Q", "chosen": "same", "rejected": "same"}"#, "rejected", "is identical to 'chosen'"),
        (#"{"prompt": "Q", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}"#, "rejected", "is a string but 'chosen' is a list of messages"),
        (#"{"prompt": [{"role": "user"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#, "prompt[0].content", "missing"),
        (#"{"prompt": [{"role": "robot", "content": "x"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#, "prompt[0].role", "'robot' is not one of"),
        (#"{"prompt": [], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#, "prompt", "is an empty list"),
        (#"{"chosen": "abc", "rejected": "xyz"}"#, "chosen", "shares no beginning"),
        (#"{"chosen": "same start", "rejected": "same start and more"}"#, "chosen", "has nothing after the shared prompt"),
    ] as [(String, String?, String)])
    func badPreferenceLineIsNamed(_ line: String, _ field: String?, _ message: String) throws {
        let url = try writeLines([#"{"prompt": "ok", "chosen": " a", "rejected": " b"}"#, line])
        #expect {
            _ = try PreferenceExample.read(url)
        } throws: { error in
            guard let e = error as? DataFileError else { return false }
            let text = e.description
            return e.file == url.path && e.line == 2 && e.field == field && text.contains(message) && text.hasPrefix("\(url.path):2:")
                && (field == nil || text.contains("field '\(field!)'"))
        }
    }

    @Test func invalidUTF8IsNamed() throws {
        let url = try writeLines(["placeholder"])
        var bytes = Array(#"{"prompt": "ok", "chosen": " a", "rejected": " b"}"#.utf8) + [10]
        bytes += Array(#"{"prompt": "bad "#.utf8) + [0xFF, 0xFE] + Array(#"", "chosen": "a", "rejected": "b"}"#.utf8) + [10]
        try Data(bytes).write(to: url)
        #expect(throws: DataFileError(file: url.path, line: 2, "not valid UTF-8")) { try PreferenceExample.read(url) }
    }

    @Test func skipCountsAndReportsBadLines() throws {
        let url = try writeLines([
            #"{"prompt": "Q", "chosen": " a", "rejected": " b"}"#,
            #"{"prompt": "Q", "chosen": " a"}"#,
            "not json",
            #"{"prompt": "Q2", "chosen": " c", "rejected": " d"}"#,
        ])
        let file = try PreferenceExample.read(url, onBadLine: .skip)
        #expect(file.records.map(\.line) == [1, 4])
        #expect(file.skipped.count == 2)
        #expect(file.skipped.errors.map(\.line) == [2, 3])
        let summary = try #require(file.skipped.summary())
        #expect(summary.contains("skipped 2 bad lines") && summary.contains("\(url.path):2: field 'rejected': missing"))
    }

    @Test func sftUnpairedAndPromptFiles() throws {
        let sft = try writeLines([
            #"{"prompt": "Say hi", "completion": " hi"}"#,
            #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}"#,
        ])
        let s = try CompletionExample.readSFT(sft)
        #expect(s.records[1].prompt == .messages([ChatMessage(.system, "Be brief."), ChatMessage(.user, "Hi")]))
        #expect(s.records[1].completion == .messages([ChatMessage(.assistant, "Hello.")]))
        let noAssistant = try writeLines([#"{"messages": [{"role": "user", "content": "Hi"}]}"#])
        #expect(throws: DataFileError(file: noAssistant.path, line: 1, field: "messages", "has no assistant message to learn")) {
            try CompletionExample.readSFT(noAssistant)
        }
        let kto = try writeLines([#"{"prompt": "P", "completion": " good", "label": true}"#, #"{"prompt": "P", "completion": " bad", "label": 0}"#])
        #expect(throws: DataFileError(file: kto.path, line: 2, field: "label", "must be true or false, not a number")) {
            try CompletionExample.readUnpaired(kto)
        }
        #expect(try CompletionExample.readUnpaired(kto, onBadLine: .skip).records.map(\.label) == [true])
        let prompts = try writeLines([#"{"prompt": "Once upon a time"}"#, #"{"text": "no prompt"}"#])
        #expect(throws: DataFileError(file: prompts.path, line: 2, field: "prompt", "missing")) { try PromptExample.read(prompts) }
    }

    @Test func encodingAppendsEndOfTextSplitsAtTheSharedPrefixAndTruncates() throws {
        let tokenizer = try BytePairTokenizer(contentsOf: fixtures.appendingPathComponent("trl-dpo/policy/tokenizer.json"))
        let eos = try #require(tokenizer.endOfTextID)
        var encoder = AlignmentEncoder(tokenizer: tokenizer, maxLength: 64)
        let pair = PreferenceExample(prompt: .plain("To be, or not to be:"), chosen: .plain(" that is the question."), rejected: .plain(" no."))
        let (encoded, report) = encoder.encode([pair], file: "f")
        let e = try #require(encoded.first)
        #expect(e.prompt == tokenizer.encode("To be, or not to be:"))
        #expect(e.completions[0].last == eos && e.completions[1].last == eos)
        #expect(e.prompt + e.completions[0] == tokenizer.encode("To be, or not to be: that is the question.<|endoftext|>"))
        #expect(report.examples == 1 && report.truncated == 0 && report.dropped.isEmpty)
        // Keep-start truncation: the completion's end is cut; a prompt that fills the length is dropped.
        encoder.maxLength = e.prompt.count + 3
        let (cut, cutReport) = encoder.encode([pair], file: "f")
        #expect(cut[0].completions[0] == Array(e.completions[0].prefix(3)) && cutReport.truncated == 1)
        encoder.maxLength = e.prompt.count
        let (none, dropReport) = encoder.encode([pair], file: "f")
        #expect(none.isEmpty && dropReport.dropped.count == 1 && dropReport.dropped[0].field == "prompt")
        // Conversations use the chat template and get no extra end-of-text.
        let chat = PreferenceExample(prompt: .messages([ChatMessage(.user, "Hi")]), chosen: .messages([ChatMessage(.assistant, "Hello")]),
                                     rejected: .messages([ChatMessage(.assistant, "Bye")]))
        encoder.maxLength = 64
        let c = try #require(encoder.encode([chat], file: "f").examples.first)
        #expect(tokenizer.decode(c.prompt) == "<|user|>\nHi<|end|>\n<|assistant|>\n")
        #expect(tokenizer.decode(c.completions[0]) == "Hello<|end|>\n")
    }

    @Test func completionBatchScoresOnlyCompletionTokens() {
        let batch = CompletionBatch([(prompt: [5, 6, 7], completion: [8, 9]), (prompt: [1], completion: [2, 3, 4, 5])], padID: 0)
        #expect(batch.width == 4 && batch.rows == 2)
        #expect(batch.inputs == [5, 6, 7, 8, 1, 2, 3, 4])
        #expect(batch.labels == [-1, -1, 8, 9, 2, 3, 4, 5])
        #expect(batch.lengths == [2, 4])
    }
}

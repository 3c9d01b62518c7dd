// The data of alignment, from JSON Lines:
//
//   preference   {"prompt", "chosen", "rejected"}     strings, or lists of {"role", "content"} messages
//                {"chosen", "rejected"}                implicit prompt: their shared beginning is the prompt
//   SFT          {"prompt", "completion"}  or  {"messages": [...]} (the last assistant turn is the completion)
//   unpaired     {"prompt", "completion", "label"}     label true (desirable) or false (KTO)
//   prompts      {"prompt"}                            for sampling (PPO, evaluation)
//
// Every bad line is an error naming the file, line and field; under `--on-bad-line skip` it is left
// out, counted and reported instead.
import Foundation

/// A prompt or completion: plain text, or messages that a chat template renders.
public enum DialogueText: Equatable, Sendable {
    case plain(String)
    case messages([ChatMessage])

    public var isConversational: Bool { if case .messages = self { true } else { false } }

    /// The text a model sees as this prompt: plain text as it is; messages rendered by `template`
    /// and followed by the assistant's marker.
    public func promptText(template: ChatTemplate) -> String {
        switch self {
        case .plain(let p): p
        case .messages(let m): template.render(m, generationPrompt: true)
        }
    }
}

public struct PreferenceExample: Equatable, Sendable {
    public var line: Int
    public var prompt: DialogueText
    public var chosen: DialogueText
    public var rejected: DialogueText
    /// How much better `chosen` is (the optional `margin` field; the reward model's loss subtracts it).
    public var margin: Float?
    public init(line: Int = 0, prompt: DialogueText, chosen: DialogueText, rejected: DialogueText, margin: Float? = nil) {
        self.margin = margin
        self.line = line; self.prompt = prompt; self.chosen = chosen; self.rejected = rejected
    }
}

/// A prompt and one completion: SFT data, or (with a label) KTO's unpaired data.
public struct CompletionExample: Equatable, Sendable {
    public var line: Int
    public var prompt: DialogueText
    public var completion: DialogueText
    /// KTO's label: true for a desirable completion. Nil for SFT data.
    public var label: Bool?
    public init(line: Int = 0, prompt: DialogueText, completion: DialogueText, label: Bool? = nil) {
        self.line = line; self.prompt = prompt; self.completion = completion; self.label = label
    }
}

public struct PromptExample: Equatable, Sendable {
    public var line: Int
    public var prompt: DialogueText
    public init(line: Int = 0, prompt: DialogueText) { self.line = line; self.prompt = prompt }
}

/// Records of one file and the lines left out of it.
public struct AlignmentFile<Record: Sendable>: Sendable {
    public var records: [Record]
    public var skipped: SkippedLines
    public init(records: [Record], skipped: SkippedLines = SkippedLines()) { self.records = records; self.skipped = skipped }
}

extension RecordFields {
    /// A string or a list of messages.
    func dialogue(_ name: String, _ value: JSONValue? = nil) throws -> DialogueText {
        let v = try value ?? required(name)
        if case .string = v { return .plain(try string(name, v)) }
        if case .array = v { return .messages(try messages(name, v)) }
        throw error(name, "must be a string or a list of messages, not \(v.kind)")
    }

    /// Prompt and completions must be all strings or all messages.
    func sameForm(_ fields: [(String, DialogueText)]) throws {
        guard let first = fields.first else { return }
        for (name, value) in fields.dropFirst() where value.isConversational != first.1.isConversational {
            throw error(name, "is \(value.isConversational ? "a list of messages" : "a string") but '\(first.0)' is " +
                        (first.1.isConversational ? "a list of messages" : "a string"))
        }
    }
}

extension PreferenceExample {
    /// Reads a preference file: standard, conversational or implicit-prompt lines (they may mix).
    public static func read(_ url: URL, onBadLine policy: BadLinePolicy = .error) throws -> AlignmentFile<PreferenceExample> {
        var skipped = SkippedLines()
        let records = try readJSONLines(url, onBadLine: policy, skipped: &skipped) { object, line in
            try PreferenceExample(RecordFields(object, file: url.path, line: line))
        }
        return AlignmentFile(records: records, skipped: skipped)
    }

    init(_ f: RecordFields) throws {
        line = f.line
        var chosen = try f.dialogue("chosen"), rejected = try f.dialogue("rejected")
        try f.sameForm([("chosen", chosen), ("rejected", rejected)])
        if chosen == rejected { throw f.error("rejected", "is identical to 'chosen'") }
        if f.object["prompt"] != nil {
            prompt = try f.dialogue("prompt")
            try f.sameForm([("prompt", prompt), ("chosen", chosen), ("rejected", rejected)])
        } else {
            (prompt, chosen, rejected) = try Self.extractPrompt(chosen, rejected, f)
        }
        self.chosen = chosen
        self.rejected = rejected
        margin = try f.optionalNumber("margin").map(Float.init)
    }

    /// The implicit prompt: the messages both conversations share, or the text both strings share up
    /// to the last point where they agree (a space there goes with the completions).
    static func extractPrompt(_ a: DialogueText, _ b: DialogueText, _ f: RecordFields) throws -> (DialogueText, DialogueText, DialogueText) {
        switch (a, b) {
        case (.messages(let x), .messages(let y)):
            var n = 0
            while n < min(x.count, y.count) && x[n] == y[n] { n += 1 }
            if n == 0 { throw f.error("chosen", "shares no leading messages with 'rejected', so there is no prompt; add a 'prompt' field") }
            if n == x.count || n == y.count { throw f.error(n == x.count ? "chosen" : "rejected", "has nothing after the shared prompt") }
            return (.messages(Array(x[..<n])), .messages(Array(x[n...])), .messages(Array(y[n...])))
        case (.plain(let x), .plain(let y)):
            let xc = Array(x), yc = Array(y)
            var n = 0
            while n < min(xc.count, yc.count) && xc[n] == yc[n] { n += 1 }
            if n > 0 && n < xc.count && n < yc.count && xc[n - 1] == " " { n -= 1 }
            if n == 0 { throw f.error("chosen", "shares no beginning with 'rejected', so there is no prompt; add a 'prompt' field") }
            if n == xc.count || n == yc.count { throw f.error(n == xc.count ? "chosen" : "rejected", "has nothing after the shared prompt") }
            return (.plain(String(xc[..<n])), .plain(String(xc[n...])), .plain(String(yc[n...])))
        default:
            throw f.error("rejected", "must have the same form as 'chosen'")
        }
    }
}

extension CompletionExample {
    /// Reads SFT data: `{"prompt", "completion"}` or `{"messages"}` lines.
    public static func readSFT(_ url: URL, onBadLine policy: BadLinePolicy = .error) throws -> AlignmentFile<CompletionExample> {
        var skipped = SkippedLines()
        let records = try readJSONLines(url, onBadLine: policy, skipped: &skipped) { object, line in
            let f = RecordFields(object, file: url.path, line: line)
            if let messages = object["messages"] {
                let all = try f.messages("messages", messages)
                guard let last = all.lastIndex(where: { $0.role == .assistant }) else {
                    throw f.error("messages", "has no assistant message to learn")
                }
                if last == 0 { throw f.error("messages", "has no prompt before the first assistant message") }
                return CompletionExample(line: line, prompt: .messages(Array(all[..<last])), completion: .messages([all[last]]))
            }
            let prompt = try f.dialogue("prompt"), completion = try f.dialogue("completion")
            try f.sameForm([("prompt", prompt), ("completion", completion)])
            return CompletionExample(line: line, prompt: prompt, completion: completion)
        }
        return AlignmentFile(records: records, skipped: skipped)
    }

    /// Reads KTO's unpaired data: `{"prompt", "completion", "label"}` lines.
    public static func readUnpaired(_ url: URL, onBadLine policy: BadLinePolicy = .error) throws -> AlignmentFile<CompletionExample> {
        var skipped = SkippedLines()
        let records = try readJSONLines(url, onBadLine: policy, skipped: &skipped) { object, line in
            let f = RecordFields(object, file: url.path, line: line)
            let prompt = try f.dialogue("prompt"), completion = try f.dialogue("completion")
            try f.sameForm([("prompt", prompt), ("completion", completion)])
            return CompletionExample(line: line, prompt: prompt, completion: completion, label: try f.bool("label"))
        }
        return AlignmentFile(records: records, skipped: skipped)
    }
}

extension PromptExample {
    /// Reads prompts: `{"prompt"}` lines (other fields are ignored, so preference files serve too).
    public static func read(_ url: URL, onBadLine policy: BadLinePolicy = .error) throws -> AlignmentFile<PromptExample> {
        var skipped = SkippedLines()
        let records = try readJSONLines(url, onBadLine: policy, skipped: &skipped) { object, line in
            PromptExample(line: line, prompt: try RecordFields(object, file: url.path, line: line).dialogue("prompt"))
        }
        return AlignmentFile(records: records, skipped: skipped)
    }
}

// From prompt and completions to token ids, as TRL does it so the same data and model give the same
// log-probabilities here and there:
//
//  - plain completions get the end-of-sequence text appended (unless they end with it already);
//    conversations are rendered with the chat template (the prompt with the assistant's marker);
//  - the prompt and each prompt + completion are tokenized as whole texts; the completion starts
//    where the tokenized prompt and the tokenized prompt + completion stop agreeing (the smallest such
//    point over the completions, so all completions of one prompt share it). A prompt whose tokens
//    are not a prefix of prompt + completion (tokens merged across the boundary) is counted;
//  - truncation keeps the start of each sequence: the prompt's start and the completion's start stay,
//    the completion's end is cut to fit `maxLength`. A prompt that alone fills `maxLength` leaves no
//    completion token to learn from, so its example is dropped and reported.
import Foundation

/// A prompt and its completions as token ids.
public struct EncodedExample: Equatable, Sendable {
    /// The data file's line.
    public var line: Int
    public var prompt: [Int]
    /// One per completion (chosen then rejected for a preference pair).
    public var completions: [[Int]]
    /// A preference pair's margin (reward-model data), when the file gave one.
    public var margin: Float?
    /// Whether the completion is desirable (KTO's unpaired data).
    public var label: Bool?
    public init(line: Int, prompt: [Int], completions: [[Int]], margin: Float? = nil, label: Bool? = nil) {
        self.line = line; self.prompt = prompt; self.completions = completions; self.margin = margin; self.label = label
    }
}

/// What encoding did to a data set, for the user.
public struct EncodingReport: Sendable, CustomStringConvertible {
    public var examples = 0
    /// Examples with a completion cut at `maxLength`.
    public var truncated = 0
    /// Examples left out because the prompt alone fills `maxLength` (the reason names the line).
    public var dropped: [DataFileError] = []
    /// Examples whose tokenized prompt is not a prefix of the tokenized prompt + completion.
    public var promptNotPrefix = 0

    public var description: String {
        var parts = ["\(examples) examples"]
        if truncated > 0 { parts.append("\(truncated) with a completion cut to the maximum length") }
        if !dropped.isEmpty { parts.append("\(dropped.count) dropped (the prompt fills the maximum length)") }
        if promptNotPrefix > 0 { parts.append("\(promptNotPrefix) whose prompt tokens merge into the completion") }
        return parts.joined(separator: ", ")
    }
}

/// Turns prompts and completions into ids (see the file's comment).
public struct AlignmentEncoder: Sendable {
    public var tokenizer: any TextTokenizer
    public var template: ChatTemplate
    /// The longest prompt + completion, in tokens.
    public var maxLength: Int
    /// Appended to plain completions; nil when the tokenizer has no end-of-text token.
    public var endOfSequence: String?

    public init(tokenizer: any TextTokenizer, template: ChatTemplate = ChatTemplate(), maxLength: Int) {
        self.tokenizer = tokenizer
        self.template = template
        self.maxLength = maxLength
        endOfSequence = tokenizer.endOfTextID.map { tokenizer.decode([$0]) }
    }

    /// The prompt's text as the model sees it before a completion.
    public func promptText(_ prompt: DialogueText) -> String { prompt.promptText(template: template) }

    /// The prompt + completion text.
    public func fullText(_ prompt: DialogueText, _ completion: DialogueText) -> String {
        switch (prompt, completion) {
        case (.plain(let p), .plain(let c)):
            guard let eos = endOfSequence, !c.hasSuffix(eos) else { return p + c }
            return p + c + eos
        case (.messages(let p), .messages(let c)): return template.render(p + c)
        case (.plain(let p), .messages(let c)): return p + template.render(c)
        case (.messages, .plain(let c)): return promptText(prompt) + c
        }
    }

    /// Encodes one prompt with its completions; nil (and a note in `report`) when it is dropped.
    public func encode(line: Int, file: String, prompt: DialogueText, completions: [DialogueText],
                       report: inout EncodingReport) -> EncodedExample? {
        let promptIDs = tokenizer.encode(promptText(prompt))
        let full = completions.map { tokenizer.encode(fullText(prompt, $0)) }
        var shared = promptIDs.count
        for ids in full {
            var n = 0
            while n < min(shared, ids.count) && ids[n] == promptIDs[n] { n += 1 }
            shared = n
        }
        if shared < promptIDs.count { report.promptNotPrefix += 1 }
        if shared >= maxLength {
            report.dropped.append(DataFileError(file: file, line: line, field: "prompt",
                                                "\(shared) tokens fill the maximum length of \(maxLength); no completion token is left"))
            return nil
        }
        var cut = false
        let completionIDs = full.map { ids -> [Int] in
            let end = min(ids.count, maxLength)
            if end < ids.count { cut = true }
            return Array(ids[shared..<end])
        }
        if cut { report.truncated += 1 }
        report.examples += 1
        return EncodedExample(line: line, prompt: Array(promptIDs[..<shared]), completions: completionIDs)
    }

    /// Reads a data file with `read`, encodes its records with `encode`, and tells `note` what was
    /// skipped, cut and dropped; a file with no usable record is an error.
    public func load<Record>(_ path: String, read: (URL) throws -> AlignmentFile<Record>,
                             encode: ([Record], String) -> (examples: [EncodedExample], report: EncodingReport),
                             note: (String) -> Void) throws -> [EncodedExample] {
        let file = try read(URL(fileURLWithPath: path))
        if let summary = file.skipped.summary() { note(summary) }
        let (encoded, report) = encode(file.records, path)
        note("\(path): \(report)")
        for dropped in report.dropped.prefix(3) { note("  dropped \(dropped)") }
        guard !encoded.isEmpty else { throw DataFileError(file: path, "holds no usable example") }
        return encoded
    }

    /// Encodes preference pairs (completions: chosen, rejected).
    public func encode(_ pairs: [PreferenceExample], file: String) -> (examples: [EncodedExample], report: EncodingReport) {
        var report = EncodingReport()
        let encoded = pairs.compactMap { pair in
            encode(line: pair.line, file: file, prompt: pair.prompt, completions: [pair.chosen, pair.rejected], report: &report)
                .map { e in var e = e; e.margin = pair.margin; return e }
        }
        return (encoded, report)
    }

    /// Encodes single completions (SFT, KTO).
    public func encode(_ examples: [CompletionExample], file: String) -> (examples: [EncodedExample], report: EncodingReport) {
        var report = EncodingReport()
        let encoded = examples.compactMap { example in
            encode(line: example.line, file: file, prompt: example.prompt, completions: [example.completion], report: &report)
                .map { e in var e = e; e.label = example.label; return e }
        }
        return (encoded, report)
    }
}

// A plain chat template: each turn is a role marker, a newline, the content, and the end-of-turn
// marker, then a newline. A prompt for generation ends with the assistant's marker and newline, so
// the model's reply is the content and then the end-of-turn marker (a natural stop string).
//
//   <|user|>
//   What is a sonnet?<|end|>
//   <|assistant|>
//   A poem of fourteen lines.<|end|>
//
// It is stored with a model as `chat_template.json`.
import Foundation

public struct ChatMessage: Codable, Equatable, Sendable {
    public enum Role: String, Codable, Sendable { case system, user, assistant }
    public var role: Role
    public var content: String
    public init(_ role: Role, _ content: String) { self.role = role; self.content = content }
}

public struct ChatTemplate: Codable, Equatable, Sendable {
    public var systemMarker = "<|system|>"
    public var userMarker = "<|user|>"
    public var assistantMarker = "<|assistant|>"
    public var endOfTurn = "<|end|>"

    public init() {}

    /// The markers, which a trained tokenizer keeps as special tokens so they never split.
    public var markers: [String] { [systemMarker, userMarker, assistantMarker, endOfTurn] }

    func marker(_ role: ChatMessage.Role) -> String {
        switch role {
        case .system: systemMarker
        case .user: userMarker
        case .assistant: assistantMarker
        }
    }

    /// The conversation as text; with `generationPrompt`, the assistant's marker follows it.
    public func render(_ messages: [ChatMessage], generationPrompt: Bool = false) -> String {
        var text = ""
        for m in messages { text += "\(marker(m.role))\n\(m.content)\(endOfTurn)\n" }
        if generationPrompt { text += "\(assistantMarker)\n" }
        return text
    }

    /// A reply as the model should produce it after `render(_:generationPrompt: true)`.
    public func reply(_ content: String) -> String { content + endOfTurn }

    public static let fileName = "chat_template.json"

    /// Reads `chat_template.json` from a model folder; nil when the folder has none.
    public static func load(from directory: URL) throws -> ChatTemplate? {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(ChatTemplate.self, from: readFile(url)) } catch let e as DataFileError { throw e } catch {
            throw DataFileError(file: url.path, "not a chat template: \(error)")
        }
    }

    public func save(in directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(self), to: directory.appendingPathComponent(Self.fileName))
    }
}

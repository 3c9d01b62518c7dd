// JSON Lines (one JSON value per line) read record by record, with each bad line reported by file,
// line number and field, and a policy for what to do with it: stop (`error`) or leave it out and
// count it (`skip`). Blank lines are not records and are passed over.
import Foundation

/// A JSON value, decoded strictly: `true` is a Boolean and `1` a number, never the other.
public enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let b = try? container.decode(Bool.self) { self = .bool(b); return }
        if let d = try? container.decode(Double.self) { self = .number(d); return }
        if let s = try? container.decode(String.self) { self = .string(s); return }
        if let a = try? container.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try container.decode([String: JSONValue].self))
    }

    /// The kind of value, for messages ("a number", "a list", …).
    public var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a Boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

/// What to do with a line that is not a valid record.
public enum BadLinePolicy: String, Codable, Sendable, CaseIterable {
    /// Stop with the line's error.
    case error
    /// Leave the line out, count it and keep its error for the report.
    case skip
}

/// Lines left out under `BadLinePolicy.skip`, with the reason for each.
public struct SkippedLines: Sendable {
    public private(set) var errors: [DataFileError] = []
    public init() {}
    public var count: Int { errors.count }
    public mutating func append(_ error: DataFileError) { errors.append(error) }

    /// "skipped 3 bad lines of f.jsonl: …" with the first few reasons, or nil when none.
    public func summary(limit: Int = 5) -> String? {
        guard let first = errors.first else { return nil }
        var text = "skipped \(count) bad line\(count == 1 ? "" : "s") of \(first.file)"
        for e in errors.prefix(limit) { text += "\n  " + e.description }
        if count > limit { text += "\n  … and \(count - limit) more" }
        return text
    }
}

/// Reads `url` as JSON Lines and turns each line's object into a record with `parse`, which throws
/// `DataFileError`s for bad fields. Under `.skip` a bad line is recorded in `skipped`; under `.error`
/// it is thrown. Lines that are not JSON objects are bad lines too.
public func readJSONLines<Record>(_ url: URL, onBadLine policy: BadLinePolicy, skipped: inout SkippedLines,
                                  _ parse: (_ object: [String: JSONValue], _ line: Int) throws -> Record) throws -> [Record] {
    let data = try readFile(url)
    let file = url.path
    var records: [Record] = []
    let decoder = JSONDecoder()
    var lineNumber = 0
    var start = data.startIndex
    while start < data.endIndex {
        lineNumber += 1
        let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
        var line = data[start..<end]
        start = end < data.endIndex ? data.index(after: end) : end
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
        do {
            let value: JSONValue
            do { value = try decoder.decode(JSONValue.self, from: Data(line)) } catch {
                throw DataFileError(file: file, line: lineNumber, String(data: Data(line), encoding: .utf8) == nil
                                    ? "not valid UTF-8" : "not valid JSON (\(decodingReason(error)))")
            }
            guard case .object(let object) = value else {
                throw DataFileError(file: file, line: lineNumber, "expected a JSON object, found \(value.kind)")
            }
            records.append(try parse(object, lineNumber))
        } catch let error as DataFileError {
            if policy == .error { throw error }
            skipped.append(error)
        }
    }
    return records
}

/// A short reason from a `DecodingError`.
private func decodingReason(_ error: Error) -> String {
    if case DecodingError.dataCorrupted(let context) = error {
        let underlying = (context.underlyingError as NSError?)?.userInfo["NSDebugDescription"] as? String
        return underlying ?? context.debugDescription
    }
    return "\(error)"
}

/// Typed access to a record's fields, each failure naming the file, line and field.
public struct RecordFields {
    public let object: [String: JSONValue]
    public let file: String
    public let line: Int

    public init(_ object: [String: JSONValue], file: String, line: Int) { self.object = object; self.file = file; self.line = line }

    public func error(_ field: String, _ message: String) -> DataFileError {
        DataFileError(file: file, line: line, field: field, message)
    }

    /// The field's value, or an error when it is missing or null.
    public func required(_ name: String) throws -> JSONValue {
        guard let value = object[name] else { throw error(name, "missing") }
        if value == .null { throw error(name, "is null") }
        return value
    }

    /// A non-empty string.
    public func string(_ name: String, _ value: JSONValue? = nil) throws -> String {
        let v = try value ?? required(name)
        guard case .string(let s) = v else { throw error(name, "must be a string, not \(v.kind)") }
        if s.isEmpty { throw error(name, "is empty") }
        return s
    }

    /// An optional finite number (absent or null gives nil).
    public func optionalNumber(_ name: String) throws -> Double? {
        guard let v = object[name], v != .null else { return nil }
        guard case .number(let x) = v else { throw error(name, "must be a number, not \(v.kind)") }
        guard x.isFinite else { throw error(name, "must be finite") }
        return x
    }

    /// A Boolean (`true`/`false` only).
    public func bool(_ name: String) throws -> Bool {
        let v = try required(name)
        guard case .bool(let b) = v else { throw error(name, "must be true or false, not \(v.kind)") }
        return b
    }

    /// A non-empty list of `{"role", "content"}` messages.
    public func messages(_ name: String, _ value: JSONValue) throws -> [ChatMessage] {
        guard case .array(let items) = value else { throw error(name, "must be a string or a list of messages, not \(value.kind)") }
        if items.isEmpty { throw error(name, "is an empty list") }
        return try items.enumerated().map { i, item in
            let path = "\(name)[\(i)]"
            guard case .object(let m) = item else { throw error(path, "must be a {\"role\", \"content\"} object, not \(item.kind)") }
            guard let roleValue = m["role"] else { throw error(path + ".role", "missing") }
            guard case .string(let roleName) = roleValue else { throw error(path + ".role", "must be a string, not \(roleValue.kind)") }
            guard let role = ChatMessage.Role(rawValue: roleName) else {
                throw error(path + ".role", "'\(roleName)' is not one of system, user, assistant")
            }
            guard let contentValue = m["content"] else { throw error(path + ".content", "missing") }
            guard case .string(let content) = contentValue else { throw error(path + ".content", "must be a string, not \(contentValue.kind)") }
            if content.isEmpty && role == .assistant { throw error(path + ".content", "is empty") }
            return ChatMessage(role, content)
        }
    }
}

// Reading members of the archives Python packages ship in: source archives (tar, gzip-compressed;
// ustar with PAX and GNU long names) and wheels (zip, stored or deflated members).

/// One regular file in an archive.
public struct ArchiveMember: Sendable {
    public let path: String
    public let contents: [UInt8]
}

public enum ArchiveError: Error, Equatable, CustomStringConvertible {
    case corrupt(String)
    case unsupported(String)
    public var description: String {
        switch self {
        case .corrupt(let what): "corrupt archive: \(what)"
        case .unsupported(let what): "unsupported archive feature: \(what)"
        }
    }
}

public enum Archive {
    /// Regular files of a tar stream whose path satisfies `include`.
    public static func tarMembers(_ bytes: [UInt8], include: (String) -> Bool) throws -> [ArchiveMember] {
        var members: [ArchiveMember] = []
        var offset = 0
        var pendingName: String?
        var ended = false
        while offset + 512 <= bytes.count {
            let header = bytes[offset..<(offset + 512)]
            if header.allSatisfy({ $0 == 0 }) { ended = true; break }
            func text(_ start: Int, _ length: Int) -> String {
                let field = bytes[(offset + start)..<(offset + start + length)]
                return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
            }
            let sizeText = text(124, 12).trimming(" ")
            guard let size = Int(sizeText.isEmpty ? "0" : sizeText, radix: 8) else { throw ArchiveError.corrupt("size field '\(sizeText)' at byte \(offset)") }
            let type = bytes[offset + 156]
            let dataStart = offset + 512
            guard size >= 0, dataStart + size <= bytes.count else { throw ArchiveError.corrupt("member at byte \(offset) runs past the end") }
            let data = Array(bytes[dataStart..<(dataStart + size)])
            var name = text(0, 100)
            if text(257, 5) == "ustar" { let prefix = text(345, 155); if !prefix.isEmpty { name = prefix + "/" + name } }
            switch type {
            case UInt8(ascii: "L"):  // GNU long name for the next member
                pendingName = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            case UInt8(ascii: "x"):  // PAX extended header: "LEN key=value\n" records
                for record in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                    if let space = record.firstIndex(of: " "), record[record.index(after: space)...].hasPrefix("path=") {
                        pendingName = String(record[record.index(after: space)...].dropFirst(5))
                    }
                }
            case UInt8(ascii: "0"), 0:
                let path = pendingName ?? name
                pendingName = nil
                if include(path) { members.append(ArchiveMember(path: path, contents: data)) }
            default:
                pendingName = nil
            }
            offset = dataStart + (size + 511) / 512 * 512
        }
        // A complete archive ends with a zero block, or exactly at a block boundary.
        guard ended || offset == bytes.count else { throw ArchiveError.corrupt("tar data ends inside a member (truncated)") }
        return members
    }

    /// Regular files of a zip archive whose path satisfies `include`.
    public static func zipMembers(_ bytes: [UInt8], include: (String) -> Bool) throws -> [ArchiveMember] {
        func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        // End of central directory: signature 0x06054b50, within the last 64 KiB + 22 bytes.
        var end = bytes.count - 22
        while end >= max(0, bytes.count - 65_557) && !(end >= 0 && u32(end) == 0x0605_4b50) { end -= 1 }
        guard end >= 0, u32(end) == 0x0605_4b50 else { throw ArchiveError.corrupt("no zip end-of-central-directory record") }
        let count = u16(end + 10)
        var entry = u32(end + 16)
        var members: [ArchiveMember] = []
        for _ in 0..<count {
            guard entry + 46 <= bytes.count, u32(entry) == 0x0201_4b50 else { throw ArchiveError.corrupt("bad central directory entry at byte \(entry)") }
            let method = u16(entry + 10)
            let compressedSize = u32(entry + 20), size = u32(entry + 24)
            let nameLength = u16(entry + 28), extraLength = u16(entry + 30), commentLength = u16(entry + 32)
            let local = u32(entry + 42)
            guard entry + 46 + nameLength <= bytes.count else { throw ArchiveError.corrupt("name runs past the end") }
            let path = String(decoding: bytes[(entry + 46)..<(entry + 46 + nameLength)], as: UTF8.self)
            entry += 46 + nameLength + extraLength + commentLength
            guard !path.hasSuffix("/"), include(path) else { continue }
            guard compressedSize != 0xFFFF_FFFF else { throw ArchiveError.unsupported("ZIP64 member \(path)") }
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4b50 else { throw ArchiveError.corrupt("bad local header for \(path)") }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + compressedSize <= bytes.count else { throw ArchiveError.corrupt("\(path) runs past the end") }
            let raw = Array(bytes[start..<(start + compressedSize)])
            let contents: [UInt8]
            switch method {
            case 0: contents = raw
            case 8:
                var stop = 0
                contents = try Inflate.deflate(raw, end: &stop, maximumOutput: max(size, 1) + 1)
            default: throw ArchiveError.unsupported("compression method \(method) for \(path)")
            }
            guard contents.count == size else { throw ArchiveError.corrupt("\(path): \(contents.count) bytes, header says \(size)") }
            members.append(ArchiveMember(path: path, contents: contents))
        }
        return members
    }
}

extension String {
    func trimming(_ set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}

// DEFLATE decompression (RFC 1951) and the gzip container (RFC 1952), in Swift: canonical
// Huffman decoding in the style of zlib's reference decoder "puff" (count codes per length, walk
// lengths bit by bit), so that reading data sets needs no system zlib.

/// Why decompression failed.
public enum InflateError: Error, Equatable, CustomStringConvertible {
    case truncated
    case invalidBlockType(Int)
    case storedLengthMismatch
    case invalidCode(String)
    case distanceTooFar(distance: Int, available: Int)
    case notGzip
    case unsupportedMethod(Int)
    case checksumMismatch(expected: UInt32, actual: UInt32)
    case sizeMismatch(expected: UInt32, actual: UInt32)
    case outputTooLarge(limit: Int)

    public var description: String {
        switch self {
        case .truncated: "compressed data ends early"
        case .invalidBlockType(let t): "invalid DEFLATE block type \(t)"
        case .storedLengthMismatch: "stored block length and its complement disagree"
        case .invalidCode(let what): "invalid Huffman code (\(what))"
        case .distanceTooFar(let d, let a): "back-reference distance \(d) exceeds the \(a) bytes written so far"
        case .notGzip: "not a gzip stream (magic bytes 1f 8b missing)"
        case .unsupportedMethod(let m): "gzip compression method \(m) is not DEFLATE (8)"
        case .checksumMismatch(let e, let a): "CRC-32 mismatch: stream says \(e), data gives \(a)"
        case .sizeMismatch(let e, let a): "size mismatch: stream says \(e) bytes, data has \(a)"
        case .outputTooLarge(let limit): "decompressed data exceeds the limit of \(limit) bytes"
        }
    }
}

/// Decompression of DEFLATE and gzip streams.
public enum Inflate {
    /// Decompresses a raw DEFLATE stream; `end` receives the index just past it.
    public static func deflate(_ input: [UInt8], from start: Int = 0, end: inout Int,
                               maximumOutput: Int = 1 << 31) throws -> [UInt8] {
        var reader = BitReader(bytes: input, position: start)
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 4)
        var last = false
        while !last {
            last = try reader.bits(1) == 1
            switch try reader.bits(2) {
            case 0: try stored(&reader, &output)
            case 1: try codes(&reader, &output, Huffman.fixedLiteral, Huffman.fixedDistance, maximumOutput)
            case 2:
                let (literal, distance) = try dynamicTables(&reader)
                try codes(&reader, &output, literal, distance, maximumOutput)
            case let other: throw InflateError.invalidBlockType(other)
            }
            if output.count > maximumOutput { throw InflateError.outputTooLarge(limit: maximumOutput) }
        }
        end = reader.position
        return output
    }

    /// Decompresses a gzip file's bytes (all members), checking each member's CRC-32 and size.
    public static func gzip(_ input: [UInt8], maximumOutput: Int = 1 << 31) throws -> [UInt8] {
        var result: [UInt8] = []
        var position = 0
        repeat {
            guard input.count >= position + 18 else { throw position == 0 ? InflateError.notGzip : InflateError.truncated }
            guard input[position] == 0x1f, input[position + 1] == 0x8b else { throw InflateError.notGzip }
            guard input[position + 2] == 8 else { throw InflateError.unsupportedMethod(Int(input[position + 2])) }
            let flags = input[position + 3]
            var p = position + 10
            if flags & 4 != 0 {  // FEXTRA
                guard p + 2 <= input.count else { throw InflateError.truncated }
                p += 2 + Int(input[p]) | Int(input[p + 1]) << 8
            }
            for flag in [UInt8(8), 16] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
                while p < input.count && input[p] != 0 { p += 1 }
                p += 1
            }
            if flags & 2 != 0 { p += 2 }  // FHCRC
            guard p <= input.count else { throw InflateError.truncated }
            var end = 0
            let member = try deflate(input, from: p, end: &end, maximumOutput: maximumOutput - result.count)
            guard end + 8 <= input.count else { throw InflateError.truncated }
            let expectedCRC = readLE32(input, end), expectedSize = readLE32(input, end + 4)
            let actualCRC = CRC32.checksum(member)
            guard expectedCRC == actualCRC else { throw InflateError.checksumMismatch(expected: expectedCRC, actual: actualCRC) }
            guard expectedSize == UInt32(truncatingIfNeeded: member.count) else {
                throw InflateError.sizeMismatch(expected: expectedSize, actual: UInt32(truncatingIfNeeded: member.count))
            }
            result += member
            position = end + 8
        } while position < input.count && input[position] == 0x1f
        return result
    }

    static func readLE32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    private static func stored(_ reader: inout BitReader, _ output: inout [UInt8]) throws {
        reader.alignToByte()
        let l0 = try reader.byte(), l1 = try reader.byte(), c0 = try reader.byte(), c1 = try reader.byte()
        let length = l0 | l1 << 8, complement = c0 | c1 << 8
        guard length == ~complement & 0xffff else { throw InflateError.storedLengthMismatch }
        guard reader.position + length <= reader.bytes.count else { throw InflateError.truncated }
        output.append(contentsOf: reader.bytes[reader.position..<(reader.position + length)])
        reader.position += length
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                               2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    private static func codes(_ reader: inout BitReader, _ output: inout [UInt8], _ literal: Huffman, _ distance: Huffman,
                              _ maximumOutput: Int) throws {
        while true {
            let symbol = try literal.decode(&reader)
            if symbol < 256 {
                output.append(UInt8(symbol))
            } else if symbol == 256 {
                return
            } else {
                let index = symbol - 257
                guard index < 29 else { throw InflateError.invalidCode("length symbol \(symbol)") }
                let length = lengthBase[index] + (try reader.bits(lengthExtra[index]))
                let d = try distance.decode(&reader)
                guard d < 30 else { throw InflateError.invalidCode("distance symbol \(d)") }
                let back = distanceBase[d] + (try reader.bits(distanceExtra[d]))
                guard back <= output.count else { throw InflateError.distanceTooFar(distance: back, available: output.count) }
                let start = output.count - back
                for i in 0..<length { output.append(output[start + i]) }
                if output.count > maximumOutput { throw InflateError.outputTooLarge(limit: maximumOutput) }
            }
        }
    }

    private static func dynamicTables(_ reader: inout BitReader) throws -> (Huffman, Huffman) {
        let literalCount = try reader.bits(5) + 257
        let distanceCount = try reader.bits(5) + 1
        let codeLengthCount = try reader.bits(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else { throw InflateError.invalidCode("too many lengths") }
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        var codeLengths = [Int](repeating: 0, count: 19)
        for i in 0..<codeLengthCount { codeLengths[order[i]] = try reader.bits(3) }
        let lengthCode = try Huffman(lengths: codeLengths, allowIncomplete: false)
        var lengths: [Int] = []
        while lengths.count < literalCount + distanceCount {
            let symbol = try lengthCode.decode(&reader)
            switch symbol {
            case 0..<16: lengths.append(symbol)
            case 16:
                guard let previous = lengths.last else { throw InflateError.invalidCode("repeat with no previous length") }
                lengths += [Int](repeating: previous, count: 3 + (try reader.bits(2)))
            case 17: lengths += [Int](repeating: 0, count: 3 + (try reader.bits(3)))
            default: lengths += [Int](repeating: 0, count: 11 + (try reader.bits(7)))
            }
        }
        guard lengths.count == literalCount + distanceCount else { throw InflateError.invalidCode("lengths overrun") }
        guard lengths[256] != 0 else { throw InflateError.invalidCode("no end-of-block code") }
        return (try Huffman(lengths: Array(lengths[..<literalCount]), allowIncomplete: false),
                try Huffman(lengths: Array(lengths[literalCount...]), allowIncomplete: true))
    }
}

/// Reads bits least-significant first, as DEFLATE packs them.
struct BitReader {
    let bytes: [UInt8]
    var position: Int
    var buffer: UInt64 = 0
    var count = 0

    init(bytes: [UInt8], position: Int) { self.bytes = bytes; self.position = position }

    mutating func bits(_ n: Int) throws -> Int {
        while count < n {
            guard position < bytes.count else { throw InflateError.truncated }
            buffer |= UInt64(bytes[position]) << UInt64(count)
            position += 1
            count += 8
        }
        let value = Int(buffer & ((1 << UInt64(n)) - 1))
        buffer >>= UInt64(n)
        count -= n
        return value
    }

    mutating func alignToByte() { buffer = 0; count = 0 }

    mutating func byte() throws -> Int {
        guard position < bytes.count else { throw InflateError.truncated }
        defer { position += 1 }
        return Int(bytes[position])
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    var counts = [Int](repeating: 0, count: 16)
    var symbols: [Int] = []

    init(lengths: [Int], allowIncomplete: Bool) throws {
        for length in lengths { counts[length] += 1 }
        counts[0] = 0
        var left = 1
        for length in 1..<16 {
            left <<= 1
            left -= counts[length]
            guard left >= 0 else { throw InflateError.invalidCode("over-subscribed code") }
        }
        // An incomplete code is allowed only for a distance code of at most one symbol.
        if left > 0 && !allowIncomplete && lengths.count - counts[0] > 1 {
            throw InflateError.invalidCode("incomplete code")
        }
        var offsets = [Int](repeating: 0, count: 16)
        for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
        symbols = [Int](repeating: 0, count: lengths.count)
        for (symbol, length) in lengths.enumerated() where length != 0 {
            symbols[offsets[length]] = symbol
            offsets[length] += 1
        }
    }

    func decode(_ reader: inout BitReader) throws -> Int {
        var code = 0, first = 0, index = 0
        for length in 1..<16 {
            code |= try reader.bits(1)
            let count = counts[length]
            if code - first < count { return symbols[index + code - first] }
            index += count
            first += count
            first <<= 1
            code <<= 1
        }
        throw InflateError.invalidCode("no symbol matches")
    }

    static let fixedLiteral: Huffman = {
        var lengths = [Int](repeating: 8, count: 288)
        for i in 144..<256 { lengths[i] = 9 }
        for i in 256..<280 { lengths[i] = 7 }
        return try! Huffman(lengths: lengths, allowIncomplete: false)
    }()
    static let fixedDistance = try! Huffman(lengths: [Int](repeating: 5, count: 30), allowIncomplete: true)
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as gzip and zip use.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

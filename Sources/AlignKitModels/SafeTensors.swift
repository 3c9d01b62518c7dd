// The safetensors file format: an 8-byte little-endian header length N, N bytes of JSON
// ({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}),
// then the data section, tensors little-endian and row-major at their offsets, with no gaps.
// Read: F32, F16, BF16 (converted to Float32). Write: F32 or BF16 (rounded to nearest even).
import AlignKitTensor
import AlignKitText
import Foundation

public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    var size: Int { self == .f32 ? 4 : 2 }
}

/// A safetensors file, read and checked; tensors are converted on request.
public struct SafeTensorsFile {
    public struct Entry: Sendable {
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        let range: Range<Int>
        /// Elements (the product of the shape).
        public var scalarCount: Int { range.count / dtype.size }
    }

    /// The longest header read (the format's own limit is 100 MB).
    public static let maximumHeaderLength: UInt64 = 100_000_000

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    let data: Data
    let dataStart: Int

    public var names: [String] { entries.keys.sorted() }

    public init(contentsOf url: URL) throws {
        path = url.path
        let bytes: Data
        do { bytes = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw DataFileError(file: path, "cannot read: \(error.localizedDescription)")
        }
        data = bytes
        func fail(_ message: String) -> DataFileError { DataFileError(file: url.path, message) }
        guard bytes.count >= 8 else { throw fail("file is \(bytes.count) bytes, shorter than the 8-byte header length; truncated or not safetensors") }
        let headerLength = bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) exceeds the file's remaining \(bytes.count - 8) bytes; truncated or not safetensors")
        }
        guard headerLength <= Self.maximumHeaderLength else {
            throw fail("header length \(headerLength) is over the format's limit of \(Self.maximumHeaderLength) bytes; not safetensors")
        }
        dataStart = 8 + Int(headerLength)
        let header = bytes[8..<dataStart]
        guard header.first == UInt8(ascii: "{"), let object = try? JSONSerialization.jsonObject(with: header), let root = object as? [String: Any] else {
            throw fail("header is not a JSON object; not a safetensors file")
        }
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in root {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in m { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let fields = value as? [String: Any] else { throw fail("tensor '\(name)': entry is not an object") }
            guard let dtypeName = fields["dtype"] as? String else { throw fail("tensor '\(name)': no dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)': dtype \(dtypeName) is not supported (AlignKit reads F32, F16, BF16)")
            }
            guard let shape = fields["shape"] as? [Int], shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor '\(name)': shape is missing or not a list of sizes") }
            guard let offsets = fields["data_offsets"] as? [Int], offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw fail("tensor '\(name)': data_offsets must be [begin, end] with begin ≤ end")
            }
            // The byte count, refusing a product that overflows (no file holds that many bytes).
            var expected = dtype.size
            for size in shape {
                let (product, overflow) = expected.multipliedReportingOverflow(by: size)
                guard !overflow else { throw fail("tensor '\(name)': shape \(shape) is too large for any file") }
                expected = product
            }
            guard offsets[1] - offsets[0] == expected else {
                throw fail("tensor '\(name)': \(offsets[1] - offsets[0]) bytes for shape \(shape) of \(dtypeName), which needs \(expected)")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        let available = bytes.count - dataStart
        var position = 0
        for (name, entry) in entries.sorted(by: { ($0.value.range.lowerBound, $0.value.range.upperBound) < ($1.value.range.lowerBound, $1.value.range.upperBound) }) {
            guard entry.range.lowerBound == position else {
                throw fail("tensor '\(name)' starts at byte \(entry.range.lowerBound) of the data section, expected \(position) (tensors overlap or leave a gap)")
            }
            guard entry.range.upperBound <= available else {
                throw fail("truncated: tensor '\(name)' ends at byte \(entry.range.upperBound) of the data section, which has \(available)")
            }
            position = entry.range.upperBound
        }
        if position != available { throw fail("the data section has \(available - position) bytes after the last tensor") }
        self.entries = entries
        self.metadata = metadata
    }

    /// The named tensor as Float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else { throw DataFileError(file: path, "no tensor named '\(name)'") }
        let count = entry.shape.reduce(1, *)
        return data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress!.advanced(by: dataStart + entry.range.lowerBound)
            return Tensor(shape: entry.shape) { out in
                switch entry.dtype {
                case .f32:
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                case .bf16:
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
                case .f16:
                    for i in 0..<count { out[i] = halfToFloat(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                }
            }
        }
    }
}

/// IEEE half-precision bits → Float (subnormals, infinities and NaN included).
func halfToFloat(_ h: UInt16) -> Float {
    let sign: UInt32 = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1f), mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        let magnitude = Float(mantissa) * 0x1p-24
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | mantissa << 13) }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
}

/// Float → bfloat16 bits, rounded to nearest even (NaN stays NaN).
func floatToBFloat16(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(bits >> 16) | 0x40 }
    let rounded = bits &+ 0x7fff &+ ((bits >> 16) & 1)
    return UInt16(rounded >> 16)
}

/// Writes `tensors` as a safetensors file (names sorted, data in that order), atomically.
public func writeSafeTensors(_ tensors: [(String, Tensor)], to url: URL, dtype: SafeTensorsDType = .f32,
                             metadata: [String: String] = [:]) throws {
    precondition(dtype != .f16, "writeSafeTensors: AlignKit writes F32 or BF16")
    let sorted = tensors.sorted { $0.0 < $1.0 }
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var offset = 0
    for (name, t) in sorted {
        let size = t.scalarCount * dtype.size
        header[name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + size]] as [String: Any]
        offset += size
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
    var out = Data(capacity: 8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(json)
    for (_, t) in sorted {
        t.withUnsafeBufferPointer { values in
            switch dtype {
            case .f32: out.append(contentsOf: UnsafeRawBufferPointer(values))   // little-endian hosts (x86-64, arm64)
            default:
                var half = [UInt16](repeating: 0, count: values.count)
                for i in 0..<values.count { half[i] = floatToBFloat16(values[i]).littleEndian }
                half.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
    }
    try writeAtomically(out, to: url)
}

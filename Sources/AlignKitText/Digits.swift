// The handwritten digits of UCI / scikit-learn (Alpaydin & Kaynak): 1,797 images of 8 x 8 pixels
// with values 0...16, one per CSV line as 64 pixel values and the label 0-9, gzip-compressed.
import Foundation

/// Errors reading a data file, naming the file, line and field.
public struct DataFileError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    /// The field of a record (a JSON key or path such as `chosen[1].role`), when one is at fault.
    public let field: String?
    public let message: String
    public init(file: String, line: Int? = nil, field: String? = nil, _ message: String) {
        self.file = file; self.line = line; self.field = field; self.message = message
    }
    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return field.map { "\(place): field '\($0)': \(message)" } ?? "\(place): \(message)"
    }
}

/// The digits data set, with a fixed train/test split.
public struct DigitsDataset: Sendable {
    /// Images [N, 1, 8, 8], pixels scaled to [0, 1].
    public let images: Tensor
    /// Labels 0-9.
    public let labels: [Int]

    public var count: Int { labels.count }

    /// Reads `digits.csv.gz` (or an uncompressed `.csv`).
    public init(contentsOf url: URL) throws {
        let name = url.path
        let raw = [UInt8](try readFile(url))
        let bytes: [UInt8]
        if raw.starts(with: [0x1f, 0x8b]) {
            do { bytes = try Inflate.gzip(raw, maximumOutput: 64 << 20) } catch {
                throw DataFileError(file: name, "corrupt gzip data: \(error)")
            }
        } else {
            bytes = raw
        }
        var pixels: [Float] = [], labels: [Int] = []
        var lineNumber = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty || line.allSatisfy({ $0 == UInt8(ascii: "\r") }) { continue }
            let fields = line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            guard fields.count == 65 else {
                throw DataFileError(file: name, line: lineNumber, "expected 65 comma-separated fields (64 pixels and a label), found \(fields.count)")
            }
            for (column, field) in fields.enumerated() {
                let text = String(decoding: field, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard let value = Double(text), value == value.rounded() else {
                    throw DataFileError(file: name, line: lineNumber, "field \(column + 1) '\(text)' is not an integer")
                }
                if column < 64 {
                    guard (0...16).contains(value) else { throw DataFileError(file: name, line: lineNumber, "pixel \(column + 1) = \(Int(value)) is outside 0...16") }
                    pixels.append(Float(value) / 16)
                } else {
                    guard (0...9).contains(value) else { throw DataFileError(file: name, line: lineNumber, "label \(Int(value)) is outside 0...9") }
                    labels.append(Int(value))
                }
            }
        }
        guard !labels.isEmpty else { throw DataFileError(file: name, "no images found") }
        self.images = Tensor(pixels, shape: [labels.count, 1, 8, 8])
        self.labels = labels
    }

    init(images: Tensor, labels: [Int]) { self.images = images; self.labels = labels }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> DigitsDataset {
        DigitsDataset(images: images.gathering(atIndices: indices, alongAxis: 0), labels: indices.map { labels[$0] })
    }

    /// A seeded shuffle split: `testFraction` of the examples held out.
    public func split(testFraction: Double = 0.2, seed: UInt64 = 0) -> (train: DigitsDataset, test: DigitsDataset) {
        var generator = RandomGenerator(seed: seed)
        var order = Array(0..<count)
        order.shuffle(using: &generator)
        let testCount = Int((Double(count) * testFraction).rounded())
        return (subset(Array(order[testCount...])), subset(Array(order[..<testCount])))
    }
}

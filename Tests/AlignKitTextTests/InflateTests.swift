// DEFLATE and gzip: stored, fixed-Huffman and dynamic-Huffman blocks, corruption, the real digits file.
import AlignKitText
import AlignKitTestSupport
import Foundation
import Testing

@Suite("Inflate")
struct InflateTests {
    // Made by Python's gzip.compress(data, compresslevel=0 and 9, mtime=0).
    let stored: [UInt8] = [31, 139, 8, 0, 0, 0, 0, 0, 4, 3, 1, 18, 0, 237, 255, 104, 101, 108, 108, 111, 32, 104, 101, 108, 108, 111, 32, 104, 101, 108, 108, 111, 10, 59, 124, 138, 223, 18, 0, 0, 0]
    let fixed: [UInt8] = [31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 75, 76, 42, 74, 76, 78, 76, 73, 4, 82, 10, 137, 216, 217, 0, 131, 222, 148, 249, 35, 0, 0, 0]

    @Test func storedAndFixedBlocks() throws {
        #expect(String(decoding: try Inflate.gzip(stored), as: UTF8.self) == "hello hello hello\n")
        #expect(String(decoding: try Inflate.gzip(fixed), as: UTF8.self) == "abracadabra abracadabra abracadabra")
    }

    @Test func corruptionIsReported() {
        var badCRC = fixed
        badCRC[badCRC.count - 8] ^= 1
        #expect(throws: InflateError.self) { try Inflate.gzip(badCRC) }
        #expect(throws: InflateError.truncated) { try Inflate.gzip(Array(fixed.prefix(20))) }
        #expect(throws: InflateError.notGzip) { try Inflate.gzip(Array("plain text, not gzip".utf8)) }
        // Random bytes after a valid header never crash: they decode or throw.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let noise = (0..<64).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? Inflate.gzip(Array(fixed.prefix(10)) + noise)
        }
    }

    @Test func realDigitsFile() throws {
        let url = sharedData.appendingPathComponent("digits/digits.csv.gz")
        let text = try Inflate.gzip([UInt8](Data(contentsOf: url)))   // dynamic Huffman blocks; CRC checked
        #expect(text.count == 264_712)
        #expect(text.filter { $0 == UInt8(ascii: "\n") }.count == 1797)
        let digits = try DigitsDataset(contentsOf: url)
        #expect(digits.images.shape == [1797, 1, 8, 8])
        #expect(digits.labels.prefix(5) == [0, 1, 2, 3, 4])
        #expect(digits.images.max().scalar == 1 && digits.images.min().scalar == 0)
        let (train, test) = digits.split()
        #expect(train.count == 1438 && test.count == 359)
    }

    @Test func badDigitsLinesNameTheLineAndField() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-digits-\(UInt32.random(in: 0...UInt32.max)).csv")
        let good = (0..<64).map { _ in "1" }.joined(separator: ",") + ",3"
        try (good + "\n" + good.replacingOccurrences(of: ",3", with: ",x") + "\n").write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect { try DigitsDataset(contentsOf: url) } throws: { error in
            "\(error)".contains(":2: field 65 'x' is not an integer")
        }
    }
}

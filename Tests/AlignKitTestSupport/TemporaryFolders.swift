// Scratch folders for tests: all under one folder per test process, removed when the process exits,
// so that a suite run leaves nothing behind in the system's temporary directory.
import Foundation

/// The process's scratch root (`alignkit-tests-<pid>` in the temporary directory), created on first use;
/// an exit handler removes it with everything in it.
private let scratchRoot: URL = {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("alignkit-tests-\(getpid())")
    try? FileManager.default.removeItem(at: root)   // a previous process with the same id
    atexit { try? FileManager.default.removeItem(at: scratchRoot) }
    return root
}()

/// A new, empty folder named after `name`, removed when the test process exits.
public func temporaryFolder(_ name: String) throws -> URL {
    let url = scratchRoot.appendingPathComponent("\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

import Foundation

/// The shared data folder (Shakespeare, GPT-2's BPE ranks, the VADER lexicon, the digits): the folder
/// named by ALIGNKIT_SHARED_DATA when set (a test binary run away from its source tree, as
/// scripts/bundle.sh packs it), else ../shared/data beside the repository, as CI has it.
public let sharedData: URL = {
    if let folder = ProcessInfo.processInfo.environment["ALIGNKIT_SHARED_DATA"], !folder.isEmpty {
        return URL(fileURLWithPath: folder, isDirectory: true)
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data")
}()

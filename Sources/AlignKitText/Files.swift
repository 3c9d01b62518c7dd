// Reading and writing the files a run depends on: whole-file reads that name the file in errors,
// durable atomic writes (temporary file in the same folder, flushed, renamed, folder flushed), and
// the checks a run makes before any work (the folder is writable, the disk has room).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The file's bytes, or an error that names it.
public func readFile(_ url: URL) throws -> Data {
    do { return try Data(contentsOf: url) } catch { throw DataFileError(file: url.path, "cannot read: \(error.localizedDescription)") }
}

/// Writes `data` to a temporary file beside `url`, flushes it to the disk, renames it over `url` and
/// flushes the folder: a reader (or a run resumed after a crash or power cut) sees the old file or the
/// new one, never half of one.
public func writeAtomically(_ data: Data, to url: URL) throws {
    let folder = url.deletingLastPathComponent()
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    func failure(_ what: String) -> DataFileError {
        let reason = String(cString: strerror(errno))
        unlink(temporary.path)
        return DataFileError(file: url.path, "cannot \(what): \(reason)")
    }
    let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw failure("create a temporary file beside it") }
    var written = 0
    let ok = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
        while written < raw.count {
            let n = write(fd, raw.baseAddress! + written, raw.count - written)
            if n < 0 { if errno == EINTR { continue }; return false }
            written += n
        }
        return true
    }
    guard ok, fsync(fd) == 0 else { close(fd); throw failure("write (\(written) of \(data.count) bytes)") }
    guard close(fd) == 0 else { throw failure("close") }
    guard rename(temporary.path, url.path) == 0 else { throw failure("rename the temporary file into place") }
    syncFolder(folder)
}

/// Flushes a folder's entries (a rename or a new file in it) to the disk; best effort.
public func syncFolder(_ folder: URL) {
    let fd = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
}

/// Bytes free for an unprivileged writer on the file system holding `url` (nil when unknown).
public func freeBytes(at url: URL) -> Int64? {
    var stats = statvfs()
    guard statvfs(url.path, &stats) == 0 else { return nil }
    return Int64(stats.f_bavail) * Int64(stats.f_frsize)
}

/// Checks, before any work, that `folder` can be created and written and that its disk has room for
/// `bytes` (one checkpoint, say); throws an error naming the folder otherwise.
public func checkWritableFolder(_ folder: URL, needs bytes: Int64, for purpose: String) throws {
    do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    } catch {
        throw DataFileError(file: folder.path, "cannot create the output folder: \(error.localizedDescription)")
    }
    let probe = folder.appendingPathComponent(".write-test-\(getpid())")
    let fd = open(probe.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw DataFileError(file: folder.path, "is not writable: \(String(cString: strerror(errno)))") }
    close(fd)
    unlink(probe.path)
    if let free = freeBytes(at: folder), free < bytes {
        throw DataFileError(file: folder.path, "has \(byteCount(free)) free; \(purpose) needs \(byteCount(bytes)). Free some space or choose another --out")
    }
}

/// A byte count for people: "1.5 GB", "320 MB", "12 kB".
public func byteCount(_ bytes: Int64) -> String {
    let b = Double(bytes)
    if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
    if b >= 1e6 { return String(format: "%.0f MB", b / 1e6) }
    if b >= 1e3 { return String(format: "%.0f kB", b / 1e3) }
    return "\(bytes) bytes"
}

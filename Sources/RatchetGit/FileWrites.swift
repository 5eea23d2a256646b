import Foundation

/// Writes all of `bytes` to `fd`, going on after short writes and EINTR. `path` names the
/// file in the error.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var offset = 0
    while offset < bytes.count {
        let written = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { throw GitError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        offset += written
    }
}

/// fsyncs a folder, so that files created or renamed in it survive a power cut.
func syncFolder(_ path: String) throws {
    let fd = Foundation.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw GitError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw GitError(message: "fsync \(path): \(String(cString: strerror(errno)))") }
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it, renamed over it.
/// fsynced (file and folder) only when `GitSettings.fsyncGitDir` is on, as libgit2 does for
/// the files it writes; Foundation's atomic write always fsyncs, a millisecond or more here.
public func replaceFile(_ path: String, with bytes: [UInt8]) throws {
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw GitError(message: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
    do {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: temporary) }
        if GitSettings.fsyncGitDir && fsync(fd) != 0 { throw GitError(message: "fsync \(temporary): \(String(cString: strerror(errno)))") }
        close(fd)
    } catch {
        close(fd)
        unlink(temporary)
        throw error
    }
    guard rename(temporary, path) == 0 else {
        unlink(temporary)
        throw GitError(message: "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
    }
    if GitSettings.fsyncGitDir { try syncFolder((path as NSString).deletingLastPathComponent) }
}


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

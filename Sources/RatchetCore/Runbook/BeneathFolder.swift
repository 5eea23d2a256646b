import CPosix
import Foundation
import RatchetGit

private let O_PATH = ratchet_o_path()

/// The files of one folder (an attempt's worktree) as Ratchet's own process reads and
/// writes them for the runbook agent: every path is opened beneath the folder only, with
/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a symbolic link committed on main
/// (`config -> /etc`) can never lead a file action out of the worktree (docs/security.md).
struct BeneathFolder {
    /// The folder's path, for messages.
    let path: String
    /// The largest file read or written, bytes.
    let fileLimit: Int

    init(path: String, fileLimit: Int = 16 << 20) {
        self.path = path
        self.fileLimit = fileLimit
    }

    /// Checks a repository-relative path: not empty, not absolute, no `.` or `..` parts, not in `.git`.
    static func check(_ relative: String) throws -> [String] {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !relative.isEmpty, !relative.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
              parts.first != ".git", !relative.contains("\0") else {
            throw RatchetError("'\(Names.printable(relative))' is not a relative path inside the worktree")
        }
        return parts
    }

    /// Whether `relative` names an existing regular file (reached without links).
    func exists(_ relative: String) -> Bool {
        guard let fd = try? open(relative, flags: O_RDONLY) else { return false }
        close(fd)
        return true
    }

    /// The bytes of the regular file `relative`, nil when there is no such file (a link
    /// or an escape still fails).
    func readIfPresent(_ relative: String) throws -> [UInt8]? {
        _ = try Self.check(relative)
        let root = try rootDescriptor()
        let fd = ratchet_open_beneath(root, relative, O_RDONLY | O_NONBLOCK, 0)
        let code = errno
        close(root)
        if fd < 0 && code == ENOENT { return nil }
        guard fd >= 0 else { throw Self.failure(code, relative) }
        close(fd)
        return try read(relative)
    }

    /// The bytes of the regular file `relative`.
    func read(_ relative: String) throws -> [UInt8] {
        let fd = try open(relative, flags: O_RDONLY)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw RatchetError("\(relative) is not a regular file") }
        guard Int(info.st_size) <= fileLimit else { throw RatchetError("\(relative) is larger than \(fileLimit) bytes") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw RatchetError("cannot read \(relative): \(String(cString: strerror(errno)))") }
            done += count
        }
        return bytes
    }

    /// Replaces (or creates) the regular file `relative` with `bytes`: a new file beside it,
    /// renamed over it, keeping its mode. Missing parent folders are created beneath.
    func write(_ relative: String, _ bytes: [UInt8], mode newMode: mode_t = 0o644) throws {
        guard bytes.count <= fileLimit else { throw RatchetError("\(relative) would be larger than \(fileLimit) bytes") }
        let parts = try Self.check(relative)
        let parent = try folder(parts.dropLast(), create: true)
        defer { close(parent) }
        let name = parts.last!
        var info = stat()
        var mode = newMode
        if fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFREG else { throw RatchetError("\(relative) is not a regular file (a link or a folder); the runbook agent does not follow links") }
            mode = info.st_mode & 0o777
        }
        let temporary = ".ratchet-runbook-\(UUIDv7.make().suffix(12))"
        let fd = openat(parent, temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw RatchetError("cannot create a file beside \(relative): \(String(cString: strerror(errno)))") }
        do {
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: relative) }
            _ = fchmod(fd, mode)
            close(fd)
        } catch {
            close(fd)
            unlinkat(parent, temporary, 0)
            throw error
        }
        guard renameat(parent, temporary, parent, name) == 0 else {
            let message = String(cString: strerror(errno))
            unlinkat(parent, temporary, 0)
            throw RatchetError("cannot replace \(relative): \(message)")
        }
    }

    /// Deletes the regular file `relative`.
    func remove(_ relative: String) throws {
        let parts = try Self.check(relative)
        let parent = try folder(parts.dropLast(), create: false)
        defer { close(parent) }
        var info = stat()
        guard fstatat(parent, parts.last!, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw RatchetError("no file \(relative) in the worktree") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw RatchetError("\(relative) is not a regular file") }
        guard unlinkat(parent, parts.last!, 0) == 0 else { throw RatchetError("cannot delete \(relative): \(String(cString: strerror(errno)))") }
    }

    /// Opens `relative` beneath the folder with `flags`.
    private func open(_ relative: String, flags: Int32) throws -> Int32 {
        _ = try Self.check(relative)
        let root = try rootDescriptor()
        defer { close(root) }
        // Never blocking: a FIFO planted in the worktree opens at once (and is then refused as
        // not a regular file) instead of waiting forever for a writer.
        let fd = ratchet_open_beneath(root, relative, flags | O_NONBLOCK, 0)
        guard fd >= 0 else { throw Self.failure(errno, relative) }
        return fd
    }

    /// The folder `parts` beneath the root, as an `O_PATH` descriptor; with `create`, missing
    /// folders are made one by one, each reached beneath the one before.
    private func folder(_ parts: ArraySlice<String>, create: Bool) throws -> Int32 {
        var current = try rootDescriptor()
        for part in parts {
            var next = ratchet_open_beneath(current, part, O_PATH | O_DIRECTORY, 0)
            if next < 0 && errno == ENOENT && create {
                _ = mkdirat(current, part, 0o755)
                next = ratchet_open_beneath(current, part, O_PATH | O_DIRECTORY, 0)
            }
            let error = errno
            close(current)
            guard next >= 0 else { throw Self.failure(error, parts.joined(separator: "/")) }
            current = next
        }
        return current
    }

    private func rootDescriptor() throws -> Int32 {
        let fd = Glibc.open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw RatchetError("cannot open the worktree \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// A clear message for an `openat2` failure.
    static func failure(_ code: Int32, _ relative: String) -> RatchetError {
        switch code {
        case ENOENT: return RatchetError("no file \(relative) in the worktree")
        case ELOOP: return RatchetError("\(relative) is or passes through a symbolic link; the runbook agent does not follow links")
        case EXDEV: return RatchetError("\(relative) leads outside the worktree")
        case ENOTDIR: return RatchetError("a part of \(relative) is not a folder")
        case ENOSYS: return RatchetError("this kernel has no openat2 (Linux 5.6+); file actions are refused rather than run unguarded")
        default: return RatchetError("cannot open \(relative): \(String(cString: strerror(code)))")
        }
    }
}

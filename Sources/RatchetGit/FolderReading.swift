import Clibgit2
import Foundation

/// One path of a working folder that differs from a tree, as Ratchet reads it itself: the
/// raw bytes' blob and the mode from `lstat`, never through attributes, filters, hooks or
/// configuration (docs/security.md).
public struct FolderChange: Sendable, Equatable {
    /// How the path changed against the tree.
    public enum Kind: String, Sendable { case added, modified, deleted }
    /// The path from the folder's root; a deleted folder is one change at its path.
    public var path: String
    public var kind: Kind
    /// The new blob (written to the repository), nil when deleted.
    public var id: ObjectID?
    /// `0o100644`, `0o100755` or `0o120000`; 0 when deleted.
    public var mode: UInt32
    /// Bytes of the new content (0 when deleted).
    public var size: Int

    /// The tree update this change makes.
    public var treeChange: TreeChange { id.map { .upsert(path, $0, mode: mode) } ?? .remove(path) }
}

/// Bounds on what a folder reading accepts; past any of them it throws at once, before
/// reading more (a file cut off by a size limit ends exactly at it, so `fileBytes` itself fails).
public struct FolderLimits: Sendable {
    /// A changed file of this many bytes or more is refused.
    public var fileBytes: Int
    /// The added and changed bytes of all changes together.
    public var changeBytes: Int
    /// The number of changed paths.
    public var changeCount: Int
    /// Seconds the whole reading may take (nil: no bound). What a reading costs is not only
    /// what changed: every untracked path is asked about every ignore rule above it, so
    /// 20,000 ignored files under 120,000 rules took 68 s in Ratchet's own process.
    public var seconds: Double?
    public init(fileBytes: Int, changeBytes: Int, changeCount: Int, seconds: Double? = nil) {
        self.fileBytes = fileBytes
        self.changeBytes = changeBytes
        self.changeCount = changeCount
        self.seconds = seconds
    }
}

extension Repository {
    /// Reads `folder` against `tree` and writes the blobs of what changed to this repository.
    ///
    /// `cache` (the worktree's index, written only by Ratchet) saves hashing files whose
    /// inode, size and both times are unchanged; `isIgnored(path, isFolder)` is asked about
    /// untracked paths only. A `.git` anywhere but the root, a special file, folders nested deeper than `folderDepthLimit`, a name that is not UTF-8, or any bound of
    /// `limits` throws with the path. Submodule entries are left as they are.
    ///
    /// A folder's `.gitignore` is read by Ratchet itself (no link, regular file only, never a
    /// blocking open, at most `ignoreFileBytes`) and handed to `ignoreRules(folder, bytes)`
    /// before `isIgnored` is asked about anything in that folder, so that the caller can
    /// answer from a copy: nothing the agent left in the folder is opened by libgit2.
    public func readFolder(_ folder: String, against tree: ObjectID, cache: IndexStatCache?, limits: FolderLimits,
                           ignoreRules: (String, Data) throws -> Void = { _, _ in },
                           isIgnored: (String, Bool) -> Bool) throws -> [FolderChange] {
        try withoutActuallyEscaping(isIgnored) { isIgnored in
            try withoutActuallyEscaping(ignoreRules) { ignoreRules in
                var reader = FolderReader(repository: self, root: folder, cache: cache, limits: limits, isIgnored: isIgnored,
                                          ignoreRules: ignoreRules)
                try reader.walkRoot(tree: tree)
                return reader.changes
            }
        }
    }

    /// Whether `folder` holds exactly `tree`: no changed, untracked or ignored path, read as
    /// `readFolder` reads (nothing opened blocking, no link followed, nothing written to the
    /// repository). False at the first difference, and for anything `readFolder` refuses.
    public func folderMatches(_ folder: String, tree: ObjectID, cache: IndexStatCache?) -> Bool {
        var reader = FolderReader(repository: self, root: folder, cache: cache,
                                  limits: FolderLimits(fileBytes: Int.max, changeBytes: Int.max, changeCount: 0),
                                  isIgnored: { _, _ in false }, ignoreRules: { _, _ in })
        reader.writesBlobs = false
        return (try? reader.walkRoot(tree: tree)) != nil && reader.changes.isEmpty
    }

    /// The most bytes of a `.gitignore` Ratchet reads.
    public static let ignoreFileBytes = 1 << 20
    /// The deepest folder nesting Ratchet reads: deeper is refused, never recursed into (a
    /// 30,000-deep chain overflowed the walk's stack; git itself handles about 4,096 bytes of path).
    public static let folderDepthLimit = 256
}

/// The walk behind `readFolder`: one folder level at a time against the matching subtree.
private struct FolderReader {
    let repository: Repository
    let root: String
    let cache: IndexStatCache?
    let limits: FolderLimits
    let isIgnored: (String, Bool) -> Bool
    let ignoreRules: (String, Data) throws -> Void
    /// Whether new content is written to the repository as blobs (else only hashed).
    var writesBlobs = true
    var changes: [FolderChange] = []
    var changedBytes = 0
    /// Paths looked at so far, and when the reading must have ended (`limits.seconds`).
    var seen = 0
    let deadline: UInt64?

    init(repository: Repository, root: String, cache: IndexStatCache?, limits: FolderLimits, isIgnored: @escaping (String, Bool) -> Bool,
         ignoreRules: @escaping (String, Data) throws -> Void) {
        self.repository = repository
        self.root = root
        self.cache = cache
        self.limits = limits
        self.isIgnored = isIgnored
        self.ignoreRules = ignoreRules
        deadline = limits.seconds.map { DispatchTime.now().uptimeNanoseconds + UInt64(max(0, $0) * 1e9) }
    }

    /// Reads the whole folder: the walk holds each folder open and reaches everything in it
    /// relative to that descriptor, never by a path, so a live agent that swaps a folder for
    /// a link while it is read cannot turn the reading to anything outside (a swapped folder
    /// fails to open: `O_NOFOLLOW | O_DIRECTORY`).
    mutating func walkRoot(tree: ObjectID) throws {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw GitError(message: "cannot open \(root): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try walk("", folder: fd, tree: tree)
    }

    /// One folder level (`folder`, open) against the matching subtree.
    mutating func walk(_ prefix: String, folder: Int32, tree: ObjectID?, depth: Int = 0) throws {
        guard depth < Repository.folderDepthLimit else {
            throw GitError(message: "\(prefix.prefix(200))…: folders nest more than \(Repository.folderDepthLimit) deep; refused")
        }
        var tracked = try repository.treeEntries(tree)
        let names = try folderNames(folder, prefix)
        if prefix.isEmpty { try readIgnoreFile(prefix, folder: folder) }
        for name in names where !(prefix.isEmpty && name == ".git") {
            let path = prefix + name
            try checkDeadline()
            let entry = tracked.removeValue(forKey: FileName.Key(name))?.info
            if name.lowercased() == ".git" {
                throw GitError(message: "\(path): a nested repository (.git) inside the worktree is refused")
            }
            var info = stat()
            guard fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw GitError(message: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                if entry?.isSubmodule == true { continue }
                if let entry, !entry.isTree { try record(FolderChange(path: path, kind: .deleted, id: nil, mode: 0, size: 0)) }
                let child = try openFolder(name, in: folder, path: path)
                defer { close(child) }
                // Its rules are handed over before anything about it is asked (libgit2 keeps what it found missing).
                try readIgnoreFile(path + "/", folder: child)
                if entry?.isTree != true && isIgnored(path + "/", true) { continue }
                try walk(path + "/", folder: child, tree: entry?.isTree == true ? entry!.id : nil, depth: depth + 1)
            case S_IFREG, S_IFLNK:
                if entry == nil && isIgnored(path, false) { continue }
                try readFile(path, name: name, in: folder, info: info, tracked: entry)
            default:
                throw GitError(message: "\(path) is not a regular file, folder or symbolic link; only those are committed")
            }
        }
        for (name, entry) in tracked.values.sorted(by: { FileName.precedes($0.name, $1.name) }) where !entry.isSubmodule {
            try record(FolderChange(path: prefix + name, kind: .deleted, id: nil, mode: 0, size: 0))
        }
    }

    /// Throws once the reading has run past `limits.seconds`.
    private mutating func checkDeadline() throws {
        seen += 1
        guard let deadline, DispatchTime.now().uptimeNanoseconds > deadline else { return }
        throw GitError(message: "reading the worktree took more than \(Int(limits.seconds ?? 0)) s (\(seen) paths looked at, ignored ones "
                       + "included; each is matched against every ignore rule above it): keep fewer files or fewer .gitignore rules")
    }

    /// Opens subfolder `name` of `folder`: a link or anything but a folder put in its place
    /// since it was looked at is refused with its path.
    private func openFolder(_ name: String, in folder: Int32, path: String) throws -> Int32 {
        let fd = openat(folder, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = errno == ELOOP || errno == ENOTDIR ? "it was replaced while it was read" : String(cString: strerror(errno))
            throw GitError(message: "cannot read folder \(path): \(reason)")
        }
        return fd
    }

    /// Hands the folder's `.gitignore` to `ignoreRules`, read as untrusted: a link, a FIFO or
    /// anything but a regular file is refused with its path.
    private func readIgnoreFile(_ prefix: String, folder: Int32) throws {
        var info = stat()
        guard fstatat(folder, ".gitignore", &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return }
            throw GitError(message: "cannot read \(prefix).gitignore: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw GitError(message: "\(prefix).gitignore is not a regular file; ignore rules are read from regular files only")
        }
        try ignoreRules(prefix, try workingFileContent(".gitignore", in: folder, shown: prefix + ".gitignore", isLink: false,
                                                       limit: Repository.ignoreFileBytes))
    }

    private mutating func readFile(_ path: String, name: String, in folder: Int32, info: stat, tracked: TreeEntryInfo?) throws {
        var tracked = tracked
        if tracked?.isTree == true {
            // A file where a folder was: the folder goes, the file is new.
            try record(FolderChange(path: path, kind: .deleted, id: nil, mode: 0, size: 0))
            tracked = nil
        }
        let isLink = info.st_mode & S_IFMT == S_IFLNK
        let mode: UInt32 = isLink ? 0o120000 : (info.st_mode & 0o111 != 0 ? 0o100755 : 0o100644)
        let size = Int(info.st_size)
        if let tracked, tracked.mode == mode, let cached = cache?.id(for: path, info: info), cached == tracked.id { return }
        if size >= limits.fileBytes {
            if let tracked, tracked.mode == mode, try repository.blobSize(tracked.id) == size,
               try blobID(of: workingFileContent(name, in: folder, shown: path, isLink: isLink)) == tracked.id { return }
            throw GitError(message: "\(path) is \(size) bytes; a changed file must stay under \(limits.fileBytes) bytes (limits.agent_file_bytes)")
        }
        let content = try workingFileContent(name, in: folder, shown: path, isLink: isLink, limit: limits.fileBytes)
        if let tracked, tracked.mode == mode, tracked.id == (try blobID(of: content)) { return }
        if let refusal = GitControlFiles.refusal(path, content: content, isLink: isLink) { throw GitError(message: refusal) }
        let id: ObjectID
        if writesBlobs {
            var oid = git_oid()
            try GitError.check(content.withUnsafeBytes { git_blob_create_from_buffer(&oid, repository.pointer, $0.baseAddress, $0.count) }, "blob \(path)")
            id = ObjectID(oid)
        } else {
            id = try blobID(of: content)
        }
        try record(FolderChange(path: path, kind: tracked == nil ? .added : .modified, id: id, mode: mode, size: size))
    }

    private mutating func record(_ change: FolderChange) throws {
        changes.append(change)
        changedBytes += change.size
        if changes.count > limits.changeCount {
            throw GitError(message: "the change touches more than \(limits.changeCount) paths (limits.agent_change_files)")
        }
        if changedBytes > limits.changeBytes {
            throw GitError(message: "the change adds or rewrites more than \(limits.changeBytes) bytes (limits.agent_change_bytes)")
        }
    }

    /// The names in the open folder `folder` (shown as `prefix`), sorted as git sorts them.
    private func folderNames(_ folder: Int32, _ prefix: String) throws -> [String] {
        let listing = dup(folder)
        guard listing >= 0, let stream = fdopendir(listing) else {
            if listing >= 0 { close(listing) }
            throw GitError(message: "cannot list \(root)/\(prefix): \(String(cString: strerror(errno)))")
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = try withUnsafeBytes(of: entry.pointee.d_name) { try FileName.decode($0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted(by: FileName.precedes)
    }
}

/// The blob id of `data`: what `git hash-object` gives for a file with these bytes.
func blobID(of data: Data) throws -> ObjectID {
    var id = git_oid()
    try GitError.check(data.withUnsafeBytes { git_odb_hash(&id, $0.baseAddress, $0.count, GIT_OBJECT_BLOB) }, "hash")
    return ObjectID(id)
}

/// A working file's raw bytes, or a symbolic link's target, read without following links.
/// With `limit`, a file that reaches it while being read throws (it grew past a bound).
func workingFileContent(_ path: String, isLink: Bool, limit: Int? = nil) throws -> Data {
    try workingFileContent(path, in: AT_FDCWD, shown: path, isLink: isLink, limit: limit)
}

/// `name` in the open folder `folder` (`AT_FDCWD`: a path), read as `workingFileContent`
/// reads; errors name it `shown`.
func workingFileContent(_ name: String, in folder: Int32, shown: String, isLink: Bool, limit: Int? = nil) throws -> Data {
    if isLink {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(folder, name, &buffer, buffer.count - 1)
        guard count >= 0 else { throw GitError(message: "cannot read link \(shown): \(String(cString: strerror(errno)))") }
        return Data(buffer[0..<count].map { UInt8(bitPattern: $0) })
    }
    // Non-blocking and checked after the open: a live agent may swap a FIFO in after the lstat.
    let fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw GitError(message: "cannot read \(shown): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
        throw GitError(message: "\(shown) is not a regular file, folder or symbolic link; only those are committed")
    }
    var data = Data()
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = read(fd, &chunk, chunk.count)
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw GitError(message: "cannot read \(shown): \(String(cString: strerror(errno)))") }
        if count == 0 { return data }
        data.append(contentsOf: chunk[0..<count])
        if let limit, data.count >= limit {
            throw GitError(message: "\(shown) grew to \(limit) bytes or more while it was read (limits.agent_file_bytes)")
        }
    }
}

/// `lstat` of `path` inside `folder`, reaching it folder by folder without following a link
/// (a live agent may swap a folder for a link meanwhile); false with `errno` set otherwise.
func lstatBeneath(_ folder: String, _ path: String, _ info: inout stat) -> Bool {
    var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    guard let last = parts.popLast() else { return lstat(folder, &info) == 0 }
    var current = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    for part in parts where current >= 0 {
        let next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        close(current)
        current = next
    }
    guard current >= 0 else { return false }
    defer { close(current) }
    return fstatat(current, last, &info, AT_SYMLINK_NOFOLLOW) == 0
}

/// A worktree's index used as a cache of file stats: a file whose inode, size, mode and
/// both times match its entry (and is not "racily" newer than the index) has the entry's
/// blob. The ctime cannot be set by a process, so a rewritten file never matches. The index
/// is opened by path, without a repository: no attributes or filters apply.
public final class IndexStatCache {
    private let index: OpaquePointer
    private let path: String
    private let written: timespec

    /// Opens the index file at `path`; nil when it cannot be read.
    public init?(path: String) {
        var index: OpaquePointer?
        var info = stat()
        guard stat(path, &info) == 0, git_index_open(&index, path) == 0, let index else { return nil }
        self.index = index
        self.path = path
        self.written = info.st_mtim
    }

    deinit { git_index_free(index) }

    /// The id and mode the index records for `path`, if any.
    public func entry(_ path: String) -> (id: ObjectID, mode: UInt32)? {
        guard let entry = git_index_get_bypath(index, path, 0)?.pointee else { return nil }
        return (ObjectID(entry.id), entry.mode)
    }

    /// The cached blob of `path` when `info` matches its entry.
    public func id(for path: String, info: stat) -> ObjectID? {
        guard let entry = git_index_get_bypath(index, path, 0)?.pointee else { return nil }
        let racy = (Int(entry.mtime.seconds), Int(entry.mtime.nanoseconds)) >= (written.tv_sec, written.tv_nsec)
        guard !racy, entry.ino == UInt32(truncatingIfNeeded: info.st_ino), entry.file_size == UInt32(truncatingIfNeeded: info.st_size),
              entry.mtime.seconds == Int32(truncatingIfNeeded: info.st_mtim.tv_sec), entry.mtime.nanoseconds == UInt32(info.st_mtim.tv_nsec),
              entry.ctime.seconds == Int32(truncatingIfNeeded: info.st_ctim.tv_sec), entry.ctime.nanoseconds == UInt32(info.st_ctim.tv_nsec)
        else { return nil }
        return ObjectID(entry.id)
    }

    /// Records `changes` (read from `folder`) in the index and writes it, so that the next
    /// reading hashes only what changed after them.
    public func record(_ changes: [FolderChange], folder: String) throws {
        for change in changes {
            guard let id = change.id else {
                if git_index_get_bypath(index, change.path, 0) != nil {
                    try GitError.check(git_index_remove_bypath(index, change.path), "index remove \(change.path)")
                } else {
                    try GitError.check(git_index_remove_directory(index, change.path, 0), "index remove \(change.path)/")
                }
                continue
            }
            try GitError.check(git_index_remove_directory(index, change.path, 0), "index remove \(change.path)/")
            try Self.add(change.path, id: id, mode: change.mode, folder: folder, to: index, beneath: true)
        }
        try GitError.check(git_index_write(index), "write index \(path)")
    }

    /// Adds `path`'s entry with blob `id` and the file's current stat to `index`.
    /// `beneath`: `folder` is an agent's worktree, perhaps still changing (`lstatBeneath`);
    /// Ratchet's own checkouts (main, pooled switches) take the one `lstat`.
    static func add(_ path: String, id: ObjectID, mode: UInt32, folder: String, to index: OpaquePointer?, beneath: Bool = false) throws {
        var info = stat()
        guard beneath ? lstatBeneath(folder, path, &info) : lstat(folder + "/" + path, &info) == 0 else { throw GitError(message: "cannot stat \(path): \(String(cString: strerror(errno)))") }
        try path.withCString { cPath in
            var entry = git_index_entry()
            entry.ctime = git_index_time(seconds: Int32(truncatingIfNeeded: info.st_ctim.tv_sec), nanoseconds: UInt32(info.st_ctim.tv_nsec))
            entry.mtime = git_index_time(seconds: Int32(truncatingIfNeeded: info.st_mtim.tv_sec), nanoseconds: UInt32(info.st_mtim.tv_nsec))
            entry.dev = UInt32(truncatingIfNeeded: info.st_dev)
            entry.ino = UInt32(truncatingIfNeeded: info.st_ino)
            entry.mode = mode
            entry.uid = info.st_uid
            entry.gid = info.st_gid
            entry.file_size = UInt32(truncatingIfNeeded: info.st_size)
            entry.id = id.raw
            entry.path = cPath
            try GitError.check(git_index_add(index, &entry), "index \(path)")
        }
    }
}

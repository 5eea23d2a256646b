import Clibgit2
import Foundation

/// One changed path of a working tree, as `git status` sees it.
public struct StatusEntry: Sendable, Equatable {
    /// The path relative to the working tree.
    public var path: String
    /// Whether the path is untracked (new, not ignored).
    public var isUntracked: Bool
    /// Whether the path was deleted.
    public var isDeleted: Bool
}

extension Repository {
    /// Changes in the index or working tree against HEAD, including untracked files that
    /// are not ignored. Empty means clean.
    public func status() throws -> [StatusEntry] {
        var options = git_status_options()
        try GitError.check(git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION)))
        options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
        options.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_STATUS_OPT_EXCLUDE_SUBMODULES.rawValue
        var list: OpaquePointer?
        try GitError.check(git_status_list_new(&list, pointer, &options), "status")
        defer { git_status_list_free(list) }
        var entries: [StatusEntry] = []
        for index in 0..<git_status_list_entrycount(list) {
            guard let entry = git_status_byindex(list, index) else { continue }
            let flags = entry.pointee.status.rawValue
            if flags == GIT_STATUS_CURRENT.rawValue || flags & GIT_STATUS_IGNORED.rawValue != 0 { continue }
            let delta = entry.pointee.index_to_workdir ?? entry.pointee.head_to_index
            guard let delta else { continue }
            let file = delta.pointee.new_file.path ?? delta.pointee.old_file.path
            guard let file else { continue }
            entries.append(StatusEntry(
                path: String(cString: file),
                isUntracked: flags & GIT_STATUS_WT_NEW.rawValue != 0,
                isDeleted: flags & (GIT_STATUS_WT_DELETED.rawValue | GIT_STATUS_INDEX_DELETED.rawValue) != 0))
        }
        return entries.sorted { $0.path < $1.path }
    }

    /// Stages every change of this repository's working tree (additions, modifications,
    /// deletions; `.gitignore` honoured) into its own index and commits it on HEAD's branch.
    ///
    /// Returns nil, committing nothing, when the tree would equal HEAD's. On an unborn
    /// branch this makes the root commit. The branch moves
    /// by compare-and-swap from the HEAD commit read at the start. Only use this on a
    /// working tree Ratchet owns (an attempt's worktree): it rewrites that tree's index.
    public func commitWorkingTree(author: Signature, committer: Signature, message: String) throws -> ObjectID? {
        guard let branch = try headReferenceName() else {
            throw GitError(code: .unbornBranch, message: "working tree has a detached HEAD; a branch must be checked out")
        }
        let head = try headCommit()
        var index: OpaquePointer?
        try GitError.check(git_repository_index(&index, pointer), "index")
        defer { git_index_free(index) }
        try GitError.check(git_index_read(index, 1), "read index")
        var pathspec = git_strarray()
        try withStrarray(["*"]) { array in
            pathspec = array
            try GitError.check(git_index_add_all(index, &pathspec, GIT_INDEX_ADD_DEFAULT.rawValue, nil, nil), "add")
            try GitError.check(git_index_update_all(index, &pathspec, nil, nil), "update")
        }
        var tree = git_oid()
        try GitError.check(git_index_write_tree(&tree, index), "write tree")
        if let head, ObjectID(tree) == (try commit(head).tree) {
            try GitError.check(git_index_write(index), "write index")
            return nil
        }
        let id = try createCommit(tree: ObjectID(tree), parents: head.map { [$0] } ?? [], author: author, committer: committer, message: message)
        try updateReference(branch, to: id, expected: head, message: "commit: \(message.prefix { $0 != "\n" })")
        try GitError.check(git_index_write(index), "write index")
        return id
    }

    /// Checkout options with `strategy` that write every blob's raw bytes, whatever a
    /// `.gitattributes` asks (eol, ident, working-tree-encoding, filters): every checkout
    /// Ratchet makes (worktrees, clones, the service's main) holds exactly what was verified,
    /// as its own pooled switches do.
    static func rawCheckoutOptions(_ strategy: UInt32) throws -> git_checkout_options {
        var options = git_checkout_options()
        try GitError.check(git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)))
        options.checkout_strategy = strategy
        options.disable_filters = 1
        return options
    }

    /// Updates the checked-out files and index to HEAD's tree after Ratchet moved the
    /// checked-out branch, refusing (`.conflict`) if that would overwrite any local change.
    ///
    /// The baseline is the repository's index: it records what was last checked out, so a
    /// file that differs from it is a person's change and is never overwritten.
    public func safeCheckoutHead() throws {
        var options = try Self.rawCheckoutOptions(GIT_CHECKOUT_SAFE.rawValue)
        var index: OpaquePointer?
        try GitError.check(git_repository_index(&index, pointer), "index")
        defer { git_index_free(index) }
        try GitError.check(git_index_read(index, 1), "read index")
        var baseline: OpaquePointer?
        var baselineTree = git_oid()
        try GitError.check(git_index_write_tree(&baselineTree, index), "index tree")
        try GitError.check(git_tree_lookup(&baseline, pointer, &baselineTree), "baseline tree")
        defer { git_tree_free(baseline) }
        options.baseline = baseline
        try GitError.check(git_checkout_head(pointer, &options), "checkout")
    }

    /// Writes the files of `commit`'s tree into `directory` (created if missing), without
    /// touching any index or working tree of the repository. Executable bits and symlinks
    /// are kept; submodules are skipped.
    public func materialize(_ commit: ObjectID, into directory: String) throws {
        let treeID = try self.commit(commit).tree
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var oid = treeID.raw
        var tree: OpaquePointer?
        try GitError.check(git_tree_lookup(&tree, pointer, &oid), "tree")
        defer { git_tree_free(tree) }
        try materialize(tree: tree!, into: directory)
    }

    private func materialize(tree: OpaquePointer, into directory: String) throws {
        for index in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, index) else { continue }
            let name = String(cString: git_tree_entry_name(entry))
            let path = directory + "/" + name
            let mode = git_tree_entry_filemode(entry)
            switch mode {
            case GIT_FILEMODE_TREE:
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                var subtree: OpaquePointer?
                try GitError.check(git_tree_lookup(&subtree, pointer, git_tree_entry_id(entry)), "tree \(name)")
                defer { git_tree_free(subtree) }
                try materialize(tree: subtree!, into: path)
            case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE, GIT_FILEMODE_LINK:
                var blob: OpaquePointer?
                try GitError.check(git_blob_lookup(&blob, pointer, git_tree_entry_id(entry)), "blob \(name)")
                defer { git_blob_free(blob) }
                try writeFile(path, blob: blob!, mode: mode)
            default:
                continue
            }
        }
    }
}

/// Calls `body` with a `git_strarray` whose strings live for the call only.
func withStrarray<T>(_ strings: [String], _ body: (git_strarray) throws -> T) rethrows -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return try pointers.withUnsafeMutableBufferPointer { buffer in
        try body(git_strarray(strings: buffer.baseAddress, count: strings.count))
    }
}

extension Repository {
    /// Commits the paths `status()` reported on HEAD's branch, building the tree along those
    /// paths only (`git_tree_create_updated`) and refreshing just their index entries.
    ///
    /// Falls back to `commitWorkingTree` (a whole-index commit) for shapes the tree update
    /// cannot express, such as a file that became a folder. Returns nil when nothing changed.
    /// `beforeUpdatingBranch` runs with the new commit before the branch moves to it: an
    /// `ObjectBatch` flushes there, so that the branch never points to an object in memory.
    public func commitChanges(_ entries: [StatusEntry], author: Signature, committer: Signature, message: String,
                              beforeUpdatingBranch: ((ObjectID) throws -> Void)? = nil) throws -> ObjectID? {
        guard let branch = try headReferenceName(), let head = try headCommit(), let workdir = workingDirectory else {
            return try commitWorkingTree(author: author, committer: committer, message: message)
        }
        var changes: [TreeChange] = []
        for entry in entries {
            let full = workdir + entry.path
            var info = stat()
            if entry.isDeleted || lstat(full, &info) != 0 {
                changes.append(.remove(entry.path))
                continue
            }
            var blob = git_oid()
            let mode: UInt32
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                let target = try FileManager.default.destinationOfSymbolicLink(atPath: full)
                try GitError.check(target.withCString { git_blob_create_from_buffer(&blob, pointer, $0, strlen($0)) }, "blob \(entry.path)")
                mode = GIT_FILEMODE_LINK.rawValue
            case S_IFREG:
                try GitError.check(git_blob_create_from_workdir(&blob, pointer, entry.path), "blob \(entry.path)")
                mode = info.st_mode & 0o111 != 0 ? GIT_FILEMODE_BLOB_EXECUTABLE.rawValue : GIT_FILEMODE_BLOB.rawValue
            default:
                return try commitWorkingTree(author: author, committer: committer, message: message)
            }
            changes.append(.upsert(entry.path, ObjectID(blob), mode: mode))
        }
        let headTree = try commit(head).tree
        let tree: ObjectID
        do { tree = try makeTree(from: headTree, applying: changes) } catch {
            return try commitWorkingTree(author: author, committer: committer, message: message)
        }
        if tree == headTree { return nil }
        let id = try createCommit(tree: tree, parents: [head], author: author, committer: committer, message: message)
        try beforeUpdatingBranch?(id)
        try updateReference(branch, to: id, expected: head, message: "commit: \(message.prefix { $0 != "\n" })")
        // Keep this worktree's index in step with the new HEAD for the paths that changed.
        var index: OpaquePointer?
        try GitError.check(git_repository_index(&index, pointer), "index")
        defer { git_index_free(index) }
        try GitError.check(git_index_read(index, 0), "read index")
        for change in changes {
            if change.id == nil { try GitError.check(git_index_remove_bypath(index, change.path), "index remove \(change.path)") }
            else { try GitError.check(git_index_add_bypath(index, change.path), "index \(change.path)") }
        }
        try GitError.check(git_index_write(index), "write index")
        return id
    }
}

/// Writes a blob's content to `path` as a file (mode 0644 or 0755) or a symbolic link,
/// replacing what was there, with plain POSIX calls (Foundation's atomic writes cost a
/// rename and extra syscalls per file).
func writeFile(_ path: String, blob: OpaquePointer, mode: git_filemode_t) throws {
    let size = Int(git_blob_rawsize(blob))
    let content = git_blob_rawcontent(blob)
    unlink(path)
    if mode == GIT_FILEMODE_LINK {
        let target = String(decoding: UnsafeRawBufferPointer(start: content, count: size), as: UTF8.self)
        guard symlink(target, path) == 0 else { throw GitError(message: "cannot link \(path): \(String(cString: strerror(errno)))") }
        return
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0o755 : 0o644)
    guard fd >= 0 else { throw GitError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    try writeAll(fd, UnsafeRawBufferPointer(start: content, count: size), path: path)
}

extension Repository {
    /// The tree the index describes (written to the object database).
    public func indexTree() throws -> ObjectID {
        var index: OpaquePointer?
        try GitError.check(git_repository_index(&index, pointer), "index")
        defer { git_index_free(index) }
        try GitError.check(git_index_read(index, 0), "read index")
        var tree = git_oid()
        try GitError.check(git_index_write_tree(&tree, index), "index tree")
        return ObjectID(tree)
    }

    /// Whether the working tree matches the index: no unstaged change and no untracked file.
    public func workingTreeMatchesIndex() throws -> Bool {
        try statusCount(show: GIT_STATUS_SHOW_WORKDIR_ONLY,
                        flags: GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue) == 0
    }

    /// Whether this working tree has no changes at all, counting ignored files too.
    public func isPristine() throws -> Bool {
        try statusCount(show: GIT_STATUS_SHOW_INDEX_AND_WORKDIR,
                        flags: GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_INCLUDE_IGNORED.rawValue) == 0
    }

    /// How many entries `git status` with these options lists.
    private func statusCount(show: git_status_show_t, flags: UInt32) throws -> Int {
        var options = git_status_options()
        try GitError.check(git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION)))
        options.show = show
        options.flags = flags
        var list: OpaquePointer?
        try GitError.check(git_status_list_new(&list, pointer, &options), "status")
        defer { git_status_list_free(list) }
        return git_status_list_entrycount(list)
    }
}

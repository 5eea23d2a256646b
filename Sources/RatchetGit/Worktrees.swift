import Clibgit2
import Foundation

extension Repository {
    /// Adds a linked worktree `name` at `path`, with `branch` (without `refs/heads/`) checked out.
    public func addWorktree(name: String, path: String, branch: String) throws {
        var ref: OpaquePointer?
        try GitError.check(git_reference_lookup(&ref, pointer, "refs/heads/\(branch)"), "branch \(branch)")
        defer { git_reference_free(ref) }
        var options = git_worktree_add_options()
        try GitError.check(git_worktree_add_options_init(&options, UInt32(GIT_WORKTREE_ADD_OPTIONS_VERSION)))
        options.ref = ref
        options.checkout_options = try Self.rawCheckoutOptions(GIT_CHECKOUT_SAFE.rawValue)
        // libgit2 1.5 creates `worktrees/` itself and fails the loser of a race to create it
        // ("directory exists"): two attempts starting at once on a new repository. Made first.
        if mkdir(commonDirectory + "worktrees", 0o755) != 0 && errno != EEXIST {
            throw GitError(message: "cannot create \(commonDirectory)worktrees: \(String(cString: strerror(errno)))")
        }
        var worktree: OpaquePointer?
        try GitError.check(git_worktree_add(&worktree, pointer, name, path, &options), "worktree add \(name)")
        git_worktree_free(worktree)
    }

    /// The names of the linked worktrees.
    public func worktrees() throws -> [String] {
        var array = git_strarray()
        try GitError.check(git_worktree_list(&array, pointer), "worktree list")
        defer { git_strarray_dispose(&array) }
        return (0..<array.count).map { String(cString: array.strings[$0]!) }.sorted()
    }

    /// The working folder of worktree `name`; nil when there is no such worktree.
    public func worktreePath(_ name: String) throws -> String? {
        var worktree: OpaquePointer?
        let rc = git_worktree_lookup(&worktree, pointer, name)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "worktree \(name)")
        defer { git_worktree_free(worktree) }
        return String(cString: git_worktree_path(worktree))
    }

    /// Removes worktree `name`: its working folder and its admin folder. The branch stays.
    /// A missing worktree is not an error.
    public func removeWorktree(_ name: String) throws {
        var worktree: OpaquePointer?
        let rc = git_worktree_lookup(&worktree, pointer, name)
        if rc == GIT_ENOTFOUND.rawValue { return }
        try GitError.check(rc, "worktree \(name)")
        defer { git_worktree_free(worktree) }
        var options = git_worktree_prune_options()
        try GitError.check(git_worktree_prune_options_init(&options, UInt32(GIT_WORKTREE_PRUNE_OPTIONS_VERSION)))
        options.flags = GIT_WORKTREE_PRUNE_VALID.rawValue | GIT_WORKTREE_PRUNE_LOCKED.rawValue
            | GIT_WORKTREE_PRUNE_WORKING_TREE.rawValue
        try GitError.check(git_worktree_prune(worktree, &options), "worktree prune \(name)")
    }

    /// Prunes worktrees whose working folder is gone (`git worktree prune`). Returns their names.
    @discardableResult
    public func pruneStaleWorktrees() throws -> [String] {
        var pruned: [String] = []
        for name in try worktrees() {
            var worktree: OpaquePointer?
            guard git_worktree_lookup(&worktree, pointer, name) == 0 else { continue }
            defer { git_worktree_free(worktree) }
            if git_worktree_validate(worktree) != 0 {
                var options = git_worktree_prune_options()
                try GitError.check(git_worktree_prune_options_init(&options, UInt32(GIT_WORKTREE_PRUNE_OPTIONS_VERSION)))
                try GitError.check(git_worktree_prune(worktree, &options), "worktree prune \(name)")
                pruned.append(name)
            }
        }
        return pruned
    }
}

extension Repository {
    /// The worktree admin name of the linked worktree checked out at `path` (from its `.git` file).
    public static func worktreeName(at path: String) -> String? {
        guard let text = try? String(contentsOfFile: path + "/.git", encoding: .utf8),
              let line = text.split(separator: "\n").first, line.hasPrefix("gitdir: ") else { return nil }
        let gitdir = line.dropFirst("gitdir: ".count)
        guard gitdir.contains("/worktrees/") else { return nil }
        return String(gitdir.split(separator: "/").last ?? "")
    }

    /// Moves linked worktree `name`'s folder to `newPath` (`git worktree move`). The rename is
    /// atomic: when two processes race for one folder, one of them gets `.notFound`.
    public func moveWorktree(_ name: String, from oldPath: String, to newPath: String) throws {
        guard rename(oldPath, newPath) == 0 else {
            let code: GitError.Code = errno == ENOENT ? .notFound : .generic
            throw GitError(code: code, message: "cannot move worktree \(oldPath) to \(newPath): \(String(cString: strerror(errno)))")
        }
        let gitdir = commonDirectory + "worktrees/\(name)/gitdir"
        do {
            try replaceFile(gitdir, with: Array((newPath + "/.git\n").utf8))
        } catch {
            _ = rename(newPath, oldPath)
            throw GitError(message: "cannot update \(gitdir): \(error.localizedDescription)")
        }
    }

    /// Detaches this (worktree's) HEAD at its current commit, so that its branch is free.
    public func detachHead() throws {
        try GitError.check(git_repository_detach_head(pointer), "detach HEAD")
    }

    /// Switches this clean working tree to `branch` by rewriting only the files that differ
    /// between its current HEAD and the branch's commit, and their index entries.
    ///
    /// Use only on a worktree Ratchet owns and has checked to be clean: files are
    /// overwritten without a safety check.
    public func switchCleanWorktree(toBranch branch: String) throws {
        guard let workdir = workingDirectory, let old = try headCommit() else {
            throw GitError(code: .unbornBranch, message: "worktree has no HEAD commit")
        }
        guard let target = try resolveReference("refs/heads/\(branch)") else {
            throw GitError(code: .notFound, message: "no branch \(branch)")
        }
        let differences = try switchFolder(workdir, from: try commit(old).tree, to: try commit(target).tree)
        var index: OpaquePointer?
        try GitError.check(git_repository_index(&index, pointer), "index")
        defer { git_index_free(index) }
        try GitError.check(git_index_read(index, 0), "read index")
        for difference in differences where difference.old != nil && difference.new?.mode != difference.old?.mode {
            try GitError.check(git_index_remove_bypath(index, difference.path), "index remove \(difference.path)")
        }
        for difference in differences {
            guard let after = difference.new, !after.isSubmodule else { continue }
            try IndexStatCache.add(difference.path, id: after.id, mode: after.mode, folder: String(workdir.dropLast()), to: index)
        }
        try GitError.check(git_repository_set_head(pointer, "refs/heads/\(branch)"), "set HEAD")
        try GitError.check(git_index_write(index), "write index")
    }

    /// Rewrites the files of `folder` from tree `old` (nil: an empty folder) to tree `new`,
    /// touching only what differs (only the subtrees whose ids differ are read: a full tree
    /// diff reads all 20k entries). Removals come first, so that a file can become a folder
    /// and the other way round. With `fixedTime`, every written file and every folder the
    /// difference touches gets it as its times.
    /// Returns the differences applied. The folder must hold exactly `old`'s files.
    @discardableResult
    public func switchFolder(_ folder: String, from old: ObjectID?, to new: ObjectID, fixedTime: timespec? = nil) throws -> [TreeDifference] {
        let root = folder.hasSuffix("/") ? folder : folder + "/"
        let differences = try treeDifferences(from: old, to: new)
        let fm = FileManager.default
        for difference in differences {
            guard let before = difference.old, difference.new?.mode != before.mode else { continue }
            if !before.isSubmodule { try? fm.removeItem(atPath: root + difference.path) }
            removeEmptyParents(of: root + difference.path, below: root)
        }
        var folders: Set<FileName.Key> = []
        for difference in differences {
            guard let after = difference.new, !after.isSubmodule else { continue }
            let file = root + difference.path
            var blob: OpaquePointer?
            var blobID = after.id.raw
            try GitError.check(git_blob_lookup(&blob, pointer, &blobID), "blob \(difference.path)")
            defer { git_blob_free(blob) }
            try makeRealFolders(of: difference.path, below: root, known: &folders)
            try writeFile(file, blob: blob!, mode: git_filemode_t(rawValue: after.mode))
            if let time = fixedTime {
                var times = [time, time]
                guard utimensat(AT_FDCWD, file, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
                    throw GitError(message: "cannot set the times of \(file): \(String(cString: strerror(errno)))")
                }
            }
        }
        if let time = fixedTime { try setTimes(time, onFoldersOf: differences.map(\.path), below: root) }
        return differences
    }

    /// Sets `time` on the folders holding `paths` (that still exist), up to `root`.
    private func setTimes(_ time: timespec, onFoldersOf paths: [String], below root: String) throws {
        var folders: Set<String> = [""]
        for path in paths {
            let parts = path.split(separator: "/").dropLast()
            for count in stride(from: parts.count, to: 0, by: -1) where !folders.insert(parts.prefix(count).joined(separator: "/")).inserted { break }
        }
        for folder in folders {
            var times = [time, time]
            if utimensat(AT_FDCWD, root + folder, &times, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT && errno != ENOTDIR {
                throw GitError(message: "cannot set the times of \(root + folder): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Makes the folders above `path` (relative to `root`), refusing any that exists as
    /// something else: a file is never written through a link a tree left where a folder
    /// should be (adr/0071). `known` holds the folders already checked in this switch.
    private func makeRealFolders(of path: String, below root: String, known: inout Set<FileName.Key>) throws {
        let parts = path.split(separator: "/").dropLast()
        for count in stride(from: 1, through: parts.count, by: 1) {
            let folder = parts.prefix(count).joined(separator: "/")
            guard known.insert(FileName.Key(folder)).inserted else { continue }
            var info = stat()
            if lstat(root + folder, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else {
                    throw GitError(message: "cannot write \(path): \(folder) is not a folder in the checkout; refused")
                }
            } else if mkdir(root + folder, 0o755) != 0 && errno != EEXIST {
                throw GitError(message: "cannot make \(root + folder): \(String(cString: strerror(errno)))")
            }
        }
    }

    private func removeEmptyParents(of path: String, below root: String) {
        var folder = (path as NSString).deletingLastPathComponent
        while folder.count > root.count - 1, folder.hasPrefix(root), rmdir(folder) == 0 {
            folder = (folder as NSString).deletingLastPathComponent
        }
    }
}

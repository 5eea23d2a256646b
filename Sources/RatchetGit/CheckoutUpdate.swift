import Clibgit2
import Foundation

extension Repository {
    /// Moves this repository's checked-out files and index from tree `old` to tree `new` by
    /// applying only their difference, when that is provably safe: every path the difference
    /// touches is, in the index and on disk, exactly `old`'s (or absent where `old` has
    /// nothing), and no attributes or `core.autocrlf` could make a checkout differ from the
    /// raw blobs. Returns false, touching nothing, when it cannot prove that; the caller then
    /// uses `safeCheckoutHead()`, which also refuses to overwrite a person's change.
    /// `afterFiles` runs between the files and the index (the crash suite's failpoint; a kill
    /// there is finished by `finishCheckoutDifference`).
    public func applyCheckoutDifference(from old: ObjectID, to new: ObjectID, afterFiles: () throws -> Void = {}) throws -> Bool {
        guard let workdir = workingDirectory, !(try usesCheckoutFilters(old) || usesCheckoutFilters(new)) else { return false }
        let root = String(workdir.dropLast())
        let differences = try treeDifferences(from: old, to: new)
        guard !differences.isEmpty else { return true }
        guard !differences.contains(where: { $0.path.hasSuffix(".gitattributes") }) else { return false }
        guard let cache = IndexStatCache(path: gitDirectory + "index") else { return false }
        for difference in differences where !(try isCheckedOutAsBefore(difference, root: root, cache: cache)) { return false }
        var index: OpaquePointer?
        try GitError.check(git_repository_index(&index, pointer), "index")
        defer { git_index_free(index) }
        try GitError.check(git_index_read(index, 0), "read index")
        try switchFolder(root, from: old, to: new)
        try afterFiles()
        for difference in differences where difference.old != nil && difference.new?.mode != difference.old?.mode {
            try GitError.check(git_index_remove_bypath(index, difference.path), "index remove \(difference.path)")
        }
        for difference in differences {
            guard let after = difference.new, !after.isSubmodule else { continue }
            try IndexStatCache.add(difference.path, id: after.id, mode: after.mode, folder: root, to: index)
        }
        try GitError.check(git_index_write(index), "write index")
        return true
    }

    /// Whether `difference.path` is on disk and in the index exactly as `difference.old` has it.
    private func isCheckedOutAsBefore(_ difference: TreeDifference, root: String, cache: IndexStatCache) throws -> Bool {
        var info = stat()
        let exists = lstat(root + "/" + difference.path, &info) == 0
        guard let before = difference.old, !before.isSubmodule else { return !exists && cache.entry(difference.path) == nil }
        guard exists, let entry = cache.entry(difference.path), entry.id == before.id, entry.mode == before.mode else { return false }
        let mode: UInt32 = info.st_mode & S_IFMT == S_IFLNK ? 0o120000 : (info.st_mode & 0o111 != 0 ? 0o100755 : 0o100644)
        guard mode == before.mode else { return false }
        if cache.id(for: difference.path, info: info) == before.id { return true }
        return try blobID(of: workingFileContent(root + "/" + difference.path, isLink: mode == 0o120000)) == before.id
    }

    /// Whether a checkout of `tree` could differ from its raw blobs: a `.gitattributes`
    /// anywhere at its top, or `core.autocrlf` set.
    private func usesCheckoutFilters(_ tree: ObjectID) throws -> Bool {
        if try treeEntries(tree)[FileName.Key(".gitattributes")] != nil { return true }
        var config: OpaquePointer?
        guard git_repository_config_snapshot(&config, pointer) == 0 else { return true }
        defer { git_config_free(config) }
        var value: Int32 = 0
        let rc = git_config_get_bool(&value, config, "core.autocrlf")
        return rc == 0 ? value != 0 : (rc != GIT_ENOTFOUND.rawValue)
    }
}

extension Repository {
    /// Finishes moving the checked-out files and index from tree `old` (the index's) to `new`
    /// (HEAD's) after a kill stopped `applyCheckoutDifference` between the files and the
    /// index. Only when nothing on disk can be a person's: every status path is one the
    /// difference touches, and each such path holds exactly `old`'s or `new`'s content (or is
    /// absent where one of them has nothing). Those paths are then checked out from HEAD by
    /// force, with the index (unless `apply` is false: a check only). Returns false,
    /// touching nothing, otherwise.
    public func finishCheckoutDifference(from old: ObjectID, to new: ObjectID, apply: Bool = true) throws -> Bool {
        guard let workdir = workingDirectory else { return false }
        let root = String(workdir.dropLast())
        let differences = try treeDifferences(from: old, to: new)
        let touched = Set(differences.map(\.path))
        let folders = Set(differences.flatMap { difference in
            difference.path.split(separator: "/").dropLast().indices.map { difference.path.split(separator: "/")[...$0].joined(separator: "/") + "/" }
        })
        for entry in try status() where !touched.contains(entry.path) && !folders.contains(entry.path) { return false }
        for difference in differences where !(try holdsEither(difference, root: root)) { return false }
        if apply { try forceCheckoutHead(paths: differences.map(\.path), baseline: old) }
        return true
    }

    /// Whether `difference.path` is on disk as `old` or as `new` has it (a folder there counts
    /// as no file).
    private func holdsEither(_ difference: TreeDifference, root: String) throws -> Bool {
        var info = stat()
        let path = root + "/" + difference.path
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT != S_IFDIR else { return difference.old == nil || difference.new == nil }
        let isLink = info.st_mode & S_IFMT == S_IFLNK
        let mode: UInt32 = isLink ? 0o120000 : (info.st_mode & 0o111 != 0 ? 0o100755 : 0o100644)
        let id = try blobID(of: workingFileContent(path, isLink: isLink))
        return [difference.old, difference.new].contains { $0?.id == id && $0?.mode == mode }
    }

    /// Checks out `paths` from HEAD by force against `baseline` (the tree the index holds),
    /// updating the index for them.
    private func forceCheckoutHead(paths: [String], baseline: ObjectID) throws {
        var options = try Self.rawCheckoutOptions(GIT_CHECKOUT_FORCE.rawValue | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH.rawValue)
        var tree: OpaquePointer?
        var raw = baseline.raw
        try GitError.check(git_tree_lookup(&tree, pointer, &raw), "baseline tree")
        defer { git_tree_free(tree) }
        options.baseline = tree
        var pointers = paths.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        try pointers.withUnsafeMutableBufferPointer { buffer in
            options.paths = git_strarray(strings: buffer.baseAddress, count: buffer.count)
            try GitError.check(git_checkout_head(pointer, &options), "checkout")
        }
    }
}

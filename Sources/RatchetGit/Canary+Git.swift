import Clibgit2

extension Repository {
    /// The commit a revision names (`main`, `ticket/T-1/1`, `refs/heads/x`, a full or
    /// abbreviated sha, `main~2`), peeled to a commit; nil when it names nothing.
    /// Throws when it names something that is not a commit (a blob or a tree).
    public func resolveCommit(_ revision: String) throws -> ObjectID? {
        var object: OpaquePointer?
        let rc = git_revparse_single(&object, pointer, revision)
        if rc == GIT_ENOTFOUND.rawValue || rc == GIT_EAMBIGUOUS.rawValue || rc == GIT_EINVALIDSPEC.rawValue { return nil }
        try GitError.check(rc, "revision \(revision)")
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        try GitError.check(git_object_peel(&commit, object, GIT_OBJECT_COMMIT), "\(revision) is not a commit")
        defer { git_object_free(commit) }
        return ObjectID(git_object_id(commit))
    }
}

extension Repository {
    /// Whether `path` (a file or a folder) exists in the tree of `commit`.
    public func hasEntry(_ path: String, in commit: ObjectID) throws -> Bool {
        try withTreeEntry(path, in: commit) { _ in true } ?? false
    }
}

extension Repository {
    /// The object id of `path` (a blob or a tree) in the tree of `commit`; nil when absent.
    public func entryID(_ path: String, in commit: ObjectID) throws -> ObjectID? {
        try withTreeEntry(path, in: commit) { entry in ObjectID(git_tree_entry_id(entry)) }
    }
}

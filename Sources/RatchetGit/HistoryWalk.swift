import Clibgit2

extension Repository {
    /// Walks the commits reachable from `start` through first parents only, newest first,
    /// reading each commit only when `body` asks for more (it returns false to stop).
    public func walkFirstParents(from start: ObjectID, _ body: (CommitInfo) throws -> Bool) throws {
        var walker: OpaquePointer?
        try GitError.check(git_revwalk_new(&walker, pointer), "revwalk")
        defer { git_revwalk_free(walker) }
        try GitError.check(git_revwalk_simplify_first_parent(walker), "revwalk")
        var oid = start.raw
        try GitError.check(git_revwalk_push(walker, &oid), "revwalk")
        var next = git_oid()
        while true {
            let rc = git_revwalk_next(&next, walker)
            if rc == GIT_ITEROVER.rawValue { return }
            try GitError.check(rc, "revwalk")
            guard try body(try commit(ObjectID(next))) else { return }
        }
    }
}

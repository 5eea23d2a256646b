import Clibgit2

/// The result of merging or reverting in memory.
public enum MergeOutcome: Sendable, Equatable {
    /// A clean result: the tree to commit.
    case clean(tree: ObjectID)
    /// Content conflicts: the paths that conflict, sorted.
    case conflicts([String])
}

/// An in-memory index produced by a merge or revert; freed in `deinit`.
final class InMemoryIndex {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { git_index_free(pointer) }

    /// Writes the index as a tree into `repository`, or lists its conflicting paths.
    func outcome(in repository: Repository) throws -> MergeOutcome {
        if git_index_has_conflicts(pointer) == 1 {
            var iterator: OpaquePointer?
            try GitError.check(git_index_conflict_iterator_new(&iterator, pointer), "conflicts")
            defer { git_index_conflict_iterator_free(iterator) }
            var paths = Set<String>()
            while true {
                var ancestor: UnsafePointer<git_index_entry>?
                var ours: UnsafePointer<git_index_entry>?
                var theirs: UnsafePointer<git_index_entry>?
                let rc = git_index_conflict_next(&ancestor, &ours, &theirs, iterator)
                if rc == GIT_ITEROVER.rawValue { break }
                try GitError.check(rc, "conflicts")
                for entry in [ancestor, ours, theirs] {
                    if let entry, let path = entry.pointee.path { paths.insert(String(cString: path)) }
                }
            }
            return .conflicts(paths.sorted())
        }
        var tree = git_oid()
        try GitError.check(git_index_write_tree_to(&tree, pointer, repository.pointer), "write tree")
        return .clean(tree: ObjectID(tree))
    }
}

extension Repository {
    private func withCommit<T>(_ id: ObjectID, _ body: (OpaquePointer) throws -> T) throws -> T {
        var oid = id.raw
        var commit: OpaquePointer?
        try GitError.check(git_commit_lookup(&commit, pointer, &oid), "commit \(id.short)")
        defer { git_commit_free(commit) }
        return try body(commit!)
    }

    private static func mergeOptions() throws -> git_merge_options {
        var options = git_merge_options()
        try GitError.check(git_merge_options_init(&options, UInt32(GIT_MERGE_OPTIONS_VERSION)))
        // No rename detection: a rename is a delete plus an add (docs/git-conventions.md).
        options.flags = 0
        return options
    }

    /// Merges `theirs` into `ours` in memory, touching no working tree or index.
    ///
    /// When `ours` is an ancestor of `theirs` the result is `theirs`' tree without any
    /// merge computation.
    public func merge(ours: ObjectID, theirs: ObjectID) throws -> MergeOutcome {
        if try isAncestor(ours, of: theirs) { return .clean(tree: try commit(theirs).tree) }
        if try isAncestor(theirs, of: ours) { return .clean(tree: try commit(ours).tree) }
        let base = try mergeBase(ours, theirs).map { try commit($0).tree }
        if let outcome = try mergeTrees(base: base, ours: try commit(ours).tree, theirs: try commit(theirs).tree) {
            return outcome
        }
        var options = try Self.mergeOptions()
        return try withCommit(ours) { oursCommit in
            try withCommit(theirs) { theirsCommit in
                var index: OpaquePointer?
                try GitError.check(git_merge_commits(&index, pointer, oursCommit, theirsCommit, &options), "merge")
                return try InMemoryIndex(index!).outcome(in: self)
            }
        }
    }

    /// The tree that undoes `commit` on top of `onto` (`git revert -m mainline` semantics), in memory.
    public func revert(_ commit: ObjectID, onto: ObjectID, mainline: UInt32 = 1) throws -> MergeOutcome {
        let reverted = try self.commit(commit)
        let parents = reverted.parents.count
        if parents > 1 && !(1...UInt32(parents)).contains(mainline) {
            throw GitError(message: "mainline \(mainline) is out of range: \(commit.short) has \(parents) parents")
        }
        if parents > 0 {
            // Undoing `commit` is merging its parent's tree into `onto` with `commit` as the base.
            let parent = try self.commit(reverted.parents[parents > 1 ? Int(mainline) - 1 : 0]).tree
            if let outcome = try mergeTrees(base: reverted.tree, ours: try self.commit(onto).tree, theirs: parent) {
                return outcome
            }
        }
        var options = try Self.mergeOptions()
        return try withCommit(commit) { revertCommit in
            try withCommit(onto) { ourCommit in
                var index: OpaquePointer?
                try GitError.check(git_revert_commit(&index, pointer, revertCommit, ourCommit, parents > 1 ? mainline : 0, &options), "revert")
                return try InMemoryIndex(index!).outcome(in: self)
            }
        }
    }
}

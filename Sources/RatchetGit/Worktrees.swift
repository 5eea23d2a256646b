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

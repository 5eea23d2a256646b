import Clibgit2
import Foundation

/// One change to a tree: a blob (or other entry) written at `path`, or the path removed.
public struct TreeChange: Sendable, Equatable {
    /// The full path from the root tree.
    public var path: String
    /// The new entry's id; nil removes the path.
    public var id: ObjectID?
    /// The new entry's mode (`0o100644`, `0o100755`, `0o120000`).
    public var mode: UInt32

    /// Writes `id` at `path` with `mode`.
    public static func upsert(_ path: String, _ id: ObjectID, mode: UInt32 = 0o100644) -> TreeChange {
        TreeChange(path: path, id: id, mode: mode)
    }

    /// Removes `path`.
    public static func remove(_ path: String) -> TreeChange { TreeChange(path: path, id: nil, mode: 0) }
}

extension Repository {
    /// A new tree: `base` with `changes` applied, rewriting only the trees along the changed
    /// paths (`git_tree_create_updated`), never reading the rest.
    /// Removals are applied before upserts, so that a file can replace a folder and the
    /// other way round (one update with both is a D/F conflict for libgit2).
    public func makeTree(from base: ObjectID, applying changes: [TreeChange]) throws -> ObjectID {
        if changes.isEmpty { return base }
        let removals = changes.filter { $0.id == nil }
        if !removals.isEmpty && removals.count < changes.count {
            return try updateTree(try updateTree(base, removals), changes.filter { $0.id != nil })
        }
        return try updateTree(base, changes)
    }

    private func updateTree(_ base: ObjectID, _ changes: [TreeChange]) throws -> ObjectID {
        var baseID = base.raw
        var tree: OpaquePointer?
        try GitError.check(git_tree_lookup(&tree, pointer, &baseID), "tree \(base.short)")
        defer { git_tree_free(tree) }
        let paths: [UnsafeMutablePointer<CChar>?] = changes.map { strdup($0.path) }
        defer { paths.forEach { free($0) } }
        var updates = changes.enumerated().map { index, change -> git_tree_update in
            var update = git_tree_update()
            if let id = change.id {
                update.action = GIT_TREE_UPDATE_UPSERT
                update.id = id.raw
                update.filemode = git_filemode_t(rawValue: change.mode)
            } else {
                update.action = GIT_TREE_UPDATE_REMOVE
            }
            update.path = UnsafePointer(paths[index])
            return update
        }
        var out = git_oid()
        try GitError.check(git_tree_create_updated(&out, pointer, tree, updates.count, &updates), "update tree")
        return ObjectID(out)
    }

    /// Writes a commit on top of `parent` whose tree is `parent`'s with `changes` applied.
    /// No reference moves.
    public func commit(on parent: ObjectID, applying changes: [TreeChange], author: Signature, committer: Signature,
                       message: String) throws -> ObjectID {
        let tree = try makeTree(from: try commit(parent).tree, applying: changes)
        return try createCommit(tree: tree, parents: [parent], author: author, committer: committer, message: message)
    }
}

extension Repository {
    /// The empty tree (written if missing): the base of a first commit built from changes.
    public func emptyTree() throws -> ObjectID {
        var builder: OpaquePointer?
        try GitError.check(git_treebuilder_new(&builder, pointer, nil), "treebuilder")
        defer { git_treebuilder_free(builder) }
        var out = git_oid()
        try GitError.check(git_treebuilder_write(&out, builder), "empty tree")
        return ObjectID(out)
    }
}

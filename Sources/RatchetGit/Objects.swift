import Clibgit2
import Foundation

/// A commit's contents, copied out of libgit2.
public struct CommitInfo: Sendable, Equatable {
    /// The commit id.
    public var id: ObjectID
    /// The root tree.
    public var tree: ObjectID
    /// The parents, first parent first.
    public var parents: [ObjectID]
    /// The full message.
    public var message: String
    /// The first line of the message.
    public var subject: String { String(message.prefix { $0 != "\n" }) }
    /// The author.
    public var author: Signature
    /// The committer.
    public var committer: Signature
}

extension Repository {
    /// Reads a commit.
    public func commit(_ id: ObjectID) throws -> CommitInfo {
        var oid = id.raw
        var commit: OpaquePointer?
        try GitError.check(git_commit_lookup(&commit, pointer, &oid), "commit \(id.short)")
        defer { git_commit_free(commit) }
        var parents: [ObjectID] = []
        for index in 0..<git_commit_parentcount(commit) {
            parents.append(ObjectID(git_commit_parent_id(commit, index)))
        }
        return CommitInfo(
            id: id,
            tree: ObjectID(git_commit_tree_id(commit)),
            parents: parents,
            message: String(cString: git_commit_message_raw(commit)),
            author: Signature(git_commit_author(commit)),
            committer: Signature(git_commit_committer(commit))
        )
    }

    /// Writes a commit object without moving any reference.
    public func createCommit(tree: ObjectID, parents: [ObjectID], author: Signature, committer: Signature, message: String) throws -> ObjectID {
        var treeID = tree.raw
        var treeObject: OpaquePointer?
        try GitError.check(git_tree_lookup(&treeObject, pointer, &treeID), "tree \(tree.short)")
        defer { git_tree_free(treeObject) }
        var parentObjects: [OpaquePointer?] = []
        defer { parentObjects.forEach { git_commit_free($0) } }
        for parent in parents {
            var parentID = parent.raw
            var object: OpaquePointer?
            try GitError.check(git_commit_lookup(&object, pointer, &parentID), "parent \(parent.short)")
            parentObjects.append(object)
        }
        var out = git_oid()
        try author.withGitSignature { authorSignature in
            try committer.withGitSignature { committerSignature in
                try parentObjects.withUnsafeMutableBufferPointer { buffer in
                    try GitError.check(git_commit_create(
                        &out, pointer, nil, authorSignature, committerSignature, "UTF-8", message,
                        treeObject, parents.count, buffer.baseAddress), "commit")
                }
            }
        }
        return ObjectID(out)
    }

    /// Writes a blob.
    public func writeBlob(_ data: Data) throws -> ObjectID {
        var out = git_oid()
        try data.withUnsafeBytes { bytes in
            try GitError.check(git_blob_create_from_buffer(&out, pointer, bytes.baseAddress, bytes.count), "blob")
        }
        return ObjectID(out)
    }

    /// Calls `body` with the tree entry at `path` in the tree of `commit`; nil when there is none.
    func withTreeEntry<T>(_ path: String, in commit: ObjectID, _ body: (OpaquePointer) throws -> T) throws -> T? {
        var oid = try self.commit(commit).tree.raw
        var tree: OpaquePointer?
        try GitError.check(git_tree_lookup(&tree, pointer, &oid), "tree")
        defer { git_tree_free(tree) }
        var entry: OpaquePointer?
        let rc = git_tree_entry_bypath(&entry, tree, path)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "path \(path)")
        defer { git_tree_entry_free(entry) }
        return try body(entry!)
    }

    /// The contents of the file at `path` in the tree of `commit`; nil when there is none.
    public func fileContents(_ path: String, in commit: ObjectID) throws -> Data? {
        try withTreeEntry(path, in: commit) { entry in try blobData(of: entry) } ?? nil
    }

    private func blobData(of entry: OpaquePointer) throws -> Data? {
        guard git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return nil }
        var blob: OpaquePointer?
        try GitError.check(git_blob_lookup(&blob, pointer, git_tree_entry_id(entry)), "blob")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        return Data(bytes: git_blob_rawcontent(blob), count: size)
    }

    /// The merge base of two commits; nil when they share no history.
    public func mergeBase(_ a: ObjectID, _ b: ObjectID) throws -> ObjectID? {
        var out = git_oid()
        var one = a.raw, two = b.raw
        let rc = git_merge_base(&out, pointer, &one, &two)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "merge base")
        return ObjectID(out)
    }

    /// Whether `ancestor` is reachable from `commit` (a commit is its own ancestor).
    public func isAncestor(_ ancestor: ObjectID, of commit: ObjectID) throws -> Bool {
        if ancestor == commit { return true }
        var one = commit.raw, two = ancestor.raw
        let rc = git_graph_descendant_of(pointer, &one, &two)
        try GitError.check(rc, "descendant")
        return rc == 1
    }

    /// Paths (files) that differ between two trees, sorted. Either tree may be nil (empty).
    public func changedPaths(from old: ObjectID?, to new: ObjectID?) throws -> [String] {
        var oldTree: OpaquePointer?, newTree: OpaquePointer?
        defer { git_tree_free(oldTree); git_tree_free(newTree) }
        if var id = old?.raw { try GitError.check(git_tree_lookup(&oldTree, pointer, &id), "tree") }
        if var id = new?.raw { try GitError.check(git_tree_lookup(&newTree, pointer, &id), "tree") }
        var diff: OpaquePointer?
        try GitError.check(git_diff_tree_to_tree(&diff, pointer, oldTree, newTree, nil), "diff")
        defer { git_diff_free(diff) }
        var paths = Set<String>()
        for index in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, index) else { continue }
            if let path = delta.pointee.old_file.path { paths.insert(String(cString: path)) }
            if let path = delta.pointee.new_file.path { paths.insert(String(cString: path)) }
        }
        return paths.sorted()
    }
}

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

    /// Whether `id` names a tree in this repository.
    public func isTree(_ id: ObjectID) -> Bool {
        var raw = id.raw
        var tree: OpaquePointer?
        guard git_tree_lookup(&tree, pointer, &raw) == 0 else { return false }
        git_tree_free(tree)
        return true
    }

    /// The bytes of blob `id`; nil when it is not a blob.
    public func blobContent(_ id: ObjectID) throws -> Data? {
        var raw = id.raw
        var blob: OpaquePointer?
        guard git_blob_lookup(&blob, pointer, &raw) == 0 else { return nil }
        defer { git_blob_free(blob) }
        return Data(bytes: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob)))
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
        Array(Set(try treeDifferences(from: old, to: new).map(\.path))).sorted()
    }

    /// The non-tree entries (files, links, submodules) that differ between two trees, reading
    /// only the subtrees whose ids differ. A path whose kind changes between file and folder
    /// appears once for the file and once for each file of the folder. No rename detection.
    public func treeDifferences(from old: ObjectID?, to new: ObjectID?) throws -> [TreeDifference] {
        var out: [TreeDifference] = []
        try diffTrees(old, new, prefix: "", into: &out)
        return out
    }

    private func diffTrees(_ old: ObjectID?, _ new: ObjectID?, prefix: String, into out: inout [TreeDifference]) throws {
        if old == new { return }
        // Only the entries that differ get names as Swift strings (a busy folder of a
        // thousand files changes by one or two per landing); they are then paired by their
        // bytes (`FileName`), so a file that became a folder is one name, as before, and two
        // names Swift calls equal ("e\u{301}", "\u{e9}") stay two.
        let (before, after) = try differingEntries(old, new)
        var i = 0, j = 0
        while i < before.count || j < after.count {
            var x: TreeEntryInfo?, y: TreeEntryInfo?
            let name: String
            if j == after.count || (i < before.count && FileName.precedes(before[i].name, after[j].name)) {
                (name, x) = (before[i].name, before[i].info)
                i += 1
            } else if i == before.count || FileName.precedes(after[j].name, before[i].name) {
                (name, y) = (after[j].name, after[j].info)
                j += 1
            } else {
                (name, x, y) = (before[i].name, before[i].info, after[j].info)
                i += 1
                j += 1
            }
            if x == y { continue }
            let path = prefix + name
            let xTree = x?.isTree ?? false, yTree = y?.isTree ?? false
            if xTree || yTree {
                if let x, !xTree { out.append(TreeDifference(path: path, old: x, new: nil)) }
                try diffTrees(xTree ? x?.id : nil, yTree ? y?.id : nil, prefix: path + "/", into: &out)
                if let y, !yTree { out.append(TreeDifference(path: path, old: nil, new: y)) }
            } else {
                out.append(TreeDifference(path: path, old: x, new: y))
            }
        }
    }

    private typealias NamedEntry = (name: String, info: TreeEntryInfo)

    /// The entries of two tree levels that are not in the other level with the same name,
    /// id and mode, each side sorted by the names' bytes. A merge walk in git's
    /// own entry order (`git_tree_entry_cmp`) skips the equal ones without reading names.
    private func differingEntries(_ old: ObjectID?, _ new: ObjectID?) throws -> (before: [NamedEntry], after: [NamedEntry]) {
        let one = try lookupTree(old)
        defer { git_tree_free(one) }
        let two = try lookupTree(new)
        defer { git_tree_free(two) }
        let countOne = one.map { git_tree_entrycount($0) } ?? 0, countTwo = two.map { git_tree_entrycount($0) } ?? 0
        var before: [NamedEntry] = [], after: [NamedEntry] = []
        func named(_ entry: OpaquePointer) throws -> NamedEntry {
            (try FileName.decode(git_tree_entry_name(entry)), TreeEntryInfo(id: ObjectID(git_tree_entry_id(entry)), mode: git_tree_entry_filemode(entry).rawValue))
        }
        var i = 0, j = 0
        while i < countOne || j < countTwo {
            let x = i < countOne ? git_tree_entry_byindex(one, i) : nil, y = j < countTwo ? git_tree_entry_byindex(two, j) : nil
            let order = x == nil ? 1 : y == nil ? -1 : git_tree_entry_cmp(x, y)
            if order < 0 { before.append(try named(x!)); i += 1; continue }
            if order > 0 { after.append(try named(y!)); j += 1; continue }
            if git_tree_entry_filemode(x) != git_tree_entry_filemode(y) || git_oid_equal(git_tree_entry_id(x), git_tree_entry_id(y)) == 0 {
                before.append(try named(x!))
                after.append(try named(y!))
            }
            i += 1
            j += 1
        }
        // Git's order puts a folder as if its name ended in `/`; the byte order here is plain.
        if !before.indices.dropFirst().allSatisfy({ FileName.precedes(before[$0 - 1].name, before[$0].name) }) {
            before.sort { FileName.precedes($0.name, $1.name) }
        }
        if !after.indices.dropFirst().allSatisfy({ FileName.precedes(after[$0 - 1].name, after[$0].name) }) {
            after.sort { FileName.precedes($0.name, $1.name) }
        }
        return (before, after)
    }

    /// The tree `id` looked up (free it with `git_tree_free`), or nil for nil.
    private func lookupTree(_ id: ObjectID?) throws -> OpaquePointer? {
        guard var raw = id?.raw else { return nil }
        var object: OpaquePointer?
        try GitError.check(git_tree_lookup(&object, pointer, &raw), "tree \(ObjectID(raw).short)")
        return object
    }

    /// The entries of one tree level by the bytes of their names (nil: the empty tree).
    func treeEntries(_ tree: ObjectID?) throws -> [FileName.Key: (name: String, info: TreeEntryInfo)] {
        guard var id = tree?.raw else { return [:] }
        var object: OpaquePointer?
        try GitError.check(git_tree_lookup(&object, pointer, &id), "tree \(ObjectID(id).short)")
        defer { git_tree_free(object) }
        let count = git_tree_entrycount(object)
        var result: [FileName.Key: (name: String, info: TreeEntryInfo)] = [:]
        result.reserveCapacity(count)
        for index in 0..<count {
            guard let entry = git_tree_entry_byindex(object, index) else { continue }
            let name = try FileName.decode(git_tree_entry_name(entry))
            result[FileName.Key(name)] = (name, TreeEntryInfo(id: ObjectID(git_tree_entry_id(entry)), mode: git_tree_entry_filemode(entry).rawValue))
        }
        return result
    }
}

/// File names as git trees and Linux folders hold them: bytes. Swift's `String` compares and
/// hashes by canonical equivalence ("e\u{301}" == "\u{e9}"), which would pair two different
/// files as one: a folder in one tree and a link of the "same" name in the next, switched as
/// one entry, left the link where the folder's files were then written (adr/0071). Every
/// pairing, ordering and lookup of names from a tree or a folder goes through here.
public enum FileName {
    /// A name as a dictionary key: equal only when the bytes are.
    public struct Key: Hashable, Comparable, Sendable {
        let bytes: [UInt8]
        public init(_ name: String) { bytes = Array(name.utf8) }
        public static func < (a: Key, b: Key) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
    }

    /// Whether `a` sorts before `b` by their UTF-8 bytes.
    public static func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// A C name as a String with exactly its bytes; a name that is not UTF-8 is refused (a
    /// repaired String would name another file).
    public static func decode(_ name: UnsafePointer<CChar>) throws -> String {
        guard let text = String(validatingUTF8: name) else {
            throw GitError(message: "a file name is not UTF-8 (\(String(decoding: Data(bytes: name, count: strlen(name)), as: UTF8.self))); only UTF-8 names are handled")
        }
        return text
    }
}

/// One entry of a tree: its object and mode (`0o100644`, `0o40000`, ...).
public struct TreeEntryInfo: Equatable, Sendable {
    public var id: ObjectID
    public var mode: UInt32
    public var isTree: Bool { mode == GIT_FILEMODE_TREE.rawValue }
    public var isFile: Bool { mode == GIT_FILEMODE_BLOB.rawValue || mode == GIT_FILEMODE_BLOB_EXECUTABLE.rawValue }
    public var isSubmodule: Bool { mode == GIT_FILEMODE_COMMIT.rawValue }
}

/// A file, link or submodule entry that differs between two trees (nil: absent on that side).
public struct TreeDifference: Equatable, Sendable {
    public var path: String
    public var old: TreeEntryInfo?
    public var new: TreeEntryInfo?
}

import Clibgit2
import Foundation

/// A three-way merge of trees that only reads the subtrees whose ids differ.
///
/// Entries equal on both sides, or changed on one side only, are decided from their ids
/// alone; only paths changed on both sides are merged by content (`git_merge_file`). The
/// result is written with `git_tree_create_updated` on top of `ours`. There is no rename
/// detection: a rename is a deletion plus an addition. Where an entry changes between a
/// folder and a file the merge falls back to libgit2's full `git_merge_trees`.
struct TreeMerge {
    let repository: Repository
    var changes: [TreeChange] = []
    var conflicts: [String] = []
    var needsFullMerge = false

    init(repository: Repository) { self.repository = repository }

    /// One tree level by the bytes of its names (`FileName`: never Swift's equivalence).
    private func entries(_ tree: ObjectID?) throws -> [FileName.Key: (name: String, info: TreeEntryInfo)] { try repository.treeEntries(tree) }

    mutating func merge(base: ObjectID?, ours: ObjectID?, theirs: ObjectID?, prefix: String) throws {
        let b = try entries(base), o = try entries(ours), t = try entries(theirs)
        for key in Set(b.keys).union(o.keys).union(t.keys).sorted() {
            let path = prefix + (b[key] ?? o[key] ?? t[key])!.name
            let (be, oe, te) = (b[key]?.info, o[key]?.info, t[key]?.info)
            if oe == te || be == te { continue }
            if be == oe {
                try take(te, replacing: oe, base: be, at: path)
                continue
            }
            // Changed on both sides, differently.
            if let oe, let te, oe.isTree, te.isTree, be?.isTree ?? true {
                try merge(base: be?.id, ours: oe.id, theirs: te.id, prefix: path + "/")
            } else if let oe, let te, oe.isFile, te.isFile, be?.isFile ?? true {
                try mergeFile(base: be, ours: oe, theirs: te, at: path)
            } else if oe?.isTree == true || te?.isTree == true || be?.isTree == true {
                if oe == nil || te == nil, let present = oe ?? te, present.isTree {
                    // A folder deleted on one side and changed on the other: every changed file conflicts.
                    try collectConflicts(base: be?.isTree == true ? be?.id : nil, tree: present.id, prefix: path + "/")
                } else {
                    needsFullMerge = true
                }
            } else {
                conflicts.append(path)
            }
        }
    }

    /// Takes `theirs` at `path` where ours did not change it.
    private mutating func take(_ theirs: TreeEntryInfo?, replacing ours: TreeEntryInfo?, base: TreeEntryInfo?, at path: String) throws {
        guard let theirs else {
            changes.append(.remove(path))
            return
        }
        if let ours, ours.isTree != theirs.isTree { needsFullMerge = true; return }
        if theirs.isTree {
            // Add or update every entry below: recurse against ours.
            try merge(base: ours?.id, ours: ours?.id, theirs: theirs.id, prefix: path + "/")
        } else {
            changes.append(.upsert(path, theirs.id, mode: theirs.mode))
        }
    }

    private mutating func collectConflicts(base: ObjectID?, tree: ObjectID, prefix: String) throws {
        let b = try entries(base), t = try entries(tree)
        for key in t.keys.sorted() {
            let (name, entry) = t[key]!, before = b[key]?.info
            guard before != entry else { continue }
            if entry.isTree { try collectConflicts(base: before?.isTree == true ? before?.id : nil, tree: entry.id, prefix: prefix + name + "/") }
            else { conflicts.append(prefix + name) }
        }
    }

    private mutating func mergeFile(base: TreeEntryInfo?, ours: TreeEntryInfo, theirs: TreeEntryInfo, at path: String) throws {
        // The mode merges on its own: one side's change wins, both changing it differently conflicts.
        let baseMode = base?.mode ?? ours.mode
        let mode: UInt32
        if ours.mode == theirs.mode || theirs.mode == baseMode { mode = ours.mode }
        else if ours.mode == baseMode { mode = theirs.mode }
        else { conflicts.append(path); return }
        if ours.id == theirs.id { changes.append(.upsert(path, ours.id, mode: mode)); return }
        if let base, base.id == ours.id { changes.append(.upsert(path, theirs.id, mode: mode)); return }
        if let base, base.id == theirs.id { if mode != ours.mode { changes.append(.upsert(path, ours.id, mode: mode)) }; return }
        let merged = try repository.mergeBlobs(base: base?.id, ours: ours.id, theirs: theirs.id, path: path)
        if let merged { changes.append(.upsert(path, merged, mode: mode)) } else { conflicts.append(path) }
    }
}

extension Repository {
    /// Merges blob contents (`git_merge_file`); nil when they conflict.
    fileprivate func mergeBlobs(base: ObjectID?, ours: ObjectID, theirs: ObjectID, path: String) throws -> ObjectID? {
        func withBlob<T>(_ id: ObjectID?, _ body: (git_merge_file_input) throws -> T) throws -> T {
            var input = git_merge_file_input()
            try GitError.check(git_merge_file_input_init(&input, UInt32(GIT_MERGE_FILE_INPUT_VERSION)))
            guard var oid = id?.raw else { return try body(input) }
            var blob: OpaquePointer?
            try GitError.check(git_blob_lookup(&blob, pointer, &oid), "blob")
            defer { git_blob_free(blob) }
            if git_blob_is_binary(blob) == 1 { throw BinaryBlob() }
            input.ptr = git_blob_rawcontent(blob).assumingMemoryBound(to: CChar.self)
            input.size = Int(git_blob_rawsize(blob))
            return try body(input)
        }
        do {
            return try withBlob(base) { ancestor in
                try withBlob(ours) { oursInput in
                    try withBlob(theirs) { theirsInput in
                        var a = ancestor, o = oursInput, t = theirsInput
                        var result = git_merge_file_result()
                        try GitError.check(git_merge_file(&result, &a, &o, &t, nil), "merge \(path)")
                        defer { git_merge_file_result_free(&result) }
                        guard result.automergeable == 1 else { return nil }
                        var out = git_oid()
                        try GitError.check(git_blob_create_from_buffer(&out, pointer, result.ptr, result.len), "blob")
                        return ObjectID(out)
                    }
                }
            }
        } catch is BinaryBlob {
            return nil
        }
    }

    /// Three-way merges trees, reading only the subtrees that differ; see `TreeMerge`.
    /// Returns nil when the shapes need libgit2's full merge (a folder became a file).
    func mergeTrees(base: ObjectID?, ours: ObjectID, theirs: ObjectID) throws -> MergeOutcome? {
        if ours == theirs || base == theirs { return .clean(tree: ours) }
        if base == ours { return .clean(tree: theirs) }
        var merge = TreeMerge(repository: self)
        try merge.merge(base: base, ours: ours, theirs: theirs, prefix: "")
        if merge.needsFullMerge { return nil }
        if !merge.conflicts.isEmpty { return .conflicts(merge.conflicts.sorted()) }
        return .clean(tree: try makeTree(from: ours, applying: merge.changes))
    }
}

private struct BinaryBlob: Error {}

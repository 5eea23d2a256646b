import Clibgit2
import Foundation

extension Repository {
    /// Whether `name` is a valid full reference name (`refs/heads/ticket/T-1/1`).
    public static func isValidReferenceName(_ name: String) -> Bool {
        Library.ensure()
        var valid: Int32 = 0
        guard git_reference_name_is_valid(&valid, name) == 0 else { return false }
        return valid == 1
    }

    /// The commit a reference points to, following symbolic references; nil when it does not exist.
    public func resolveReference(_ name: String) throws -> ObjectID? {
        var oid = git_oid()
        let rc = git_reference_name_to_id(&oid, pointer, name)
        if rc == GIT_ENOTFOUND.rawValue || rc == GIT_EUNBORNBRANCH.rawValue { return nil }
        try GitError.check(rc, "resolve \(name)")
        return ObjectID(oid)
    }

    /// Moves `name` to `target` only if it still points to `expected` (compare-and-swap).
    ///
    /// `expected` nil means the reference must not exist yet. Throws `.modified` (or
    /// `.exists`) when another writer got there first; the reference is then unchanged.
    public func updateReference(_ name: String, to target: ObjectID, expected: ObjectID?, message: String) throws {
        if let isOnlyInMemory, isOnlyInMemory(target) {
            throw GitError(message: "refusing to move \(name) to \(target.short): the object is only in memory (flush its batch first)")
        }
        try willWriteReference?(name, target)
        try accessingReferences {
            if GitSettings.unlogged(name) { return try updateUnloggedReference(name, to: target, expected: expected) }
            var ref: OpaquePointer?
            var newID = target.raw
            if var old = expected?.raw {
                let rc = git_reference_create_matching(&ref, pointer, name, &newID, 1, &old, message)
                if rc == GIT_ENOTFOUND.rawValue {
                    throw GitError(code: .modified, message: "\(name) no longer points to \(expected!.short)")
                }
                try GitError.check(rc, "update \(name)")
            } else {
                try GitError.check(git_reference_create(&ref, pointer, name, &newID, 0, message), "create \(name)")
            }
            git_reference_free(ref)
        }
    }

    /// Deletes `name` if it points to `expected` (nil: whatever it points to). A missing reference is not an error.
    public func deleteReference(_ name: String, expected: ObjectID? = nil) throws {
        var ref: OpaquePointer?
        let rc = git_reference_lookup(&ref, pointer, name)
        if rc == GIT_ENOTFOUND.rawValue { return }
        try GitError.check(rc, "lookup \(name)")
        defer { git_reference_free(ref) }
        if let expected, let target = git_reference_target(ref), ObjectID(target) != expected {
            throw GitError(code: .modified, message: "\(name) no longer points to \(expected.short)")
        }
        try willWriteReference?(name, nil)
        try accessingReferences { try GitError.check(git_reference_delete(ref), "delete \(name)") }
    }

    /// Every reference whose full name matches the glob (`refs/ratchet/*`), with its target, sorted by name.
    public func references(matching glob: String) throws -> [(name: String, target: ObjectID)] {
        var result: [(String, ObjectID)] = []
        try forEachReference(matching: glob) { result.append(($0, $1)) }
        return result.sorted { $0.0 < $1.0 }
    }

    /// Calls `body` with every direct reference (name, target) matching the glob, or every
    /// reference without one, in no particular order: a listing of thousands of references
    /// (the reference guard's snapshot) without sorting them or matching a glob on each.
    public func forEachReference(matching glob: String? = nil, _ body: (String, ObjectID) throws -> Void) throws {
        try accessingReferences { try listReferences(matching: glob, body) }
    }

    private func listReferences(matching glob: String?, _ body: (String, ObjectID) throws -> Void) throws {
        var iterator: OpaquePointer?
        if let glob {
            try GitError.check(git_reference_iterator_glob_new(&iterator, pointer, glob), "references \(glob)")
        } else {
            try GitError.check(git_reference_iterator_new(&iterator, pointer), "references")
        }
        defer { git_reference_iterator_free(iterator) }
        while true {
            var ref: OpaquePointer?
            let rc = git_reference_next(&ref, iterator)
            if rc == GIT_ITEROVER.rawValue { break }
            try GitError.check(rc, "references \(glob ?? "")")
            defer { git_reference_free(ref) }
            if let target = git_reference_target(ref) { try body(String(cString: git_reference_name(ref)), ObjectID(target)) }
        }
    }

    /// Creates branch `name` (without `refs/heads/`) at `commit`; fails if it exists.
    public func createBranch(_ name: String, at commit: ObjectID) throws {
        try updateReference("refs/heads/\(name)", to: commit, expected: nil, message: "branch: Created from \(commit.short)")
    }

    /// The local branch names (without `refs/heads/`), sorted.
    public func branches() throws -> [String] {
        try references(matching: "refs/heads/*").map { String($0.name.dropFirst("refs/heads/".count)) }
    }

    /// Deletes a local branch. A missing branch is not an error.
    public func deleteBranch(_ name: String) throws {
        try deleteReference("refs/heads/\(name)")
    }
}

extension Repository {
    /// Compare-and-swap of a loose reference without a reflog entry, by git's own lock-file
    /// protocol (`NAME.lock` created exclusively, the value checked under the lock, then
    /// renamed over the reference), so that git and libgit2 writers exclude each other as
    /// usual. For references whose history is their commits (attempt branches, adr/0012):
    /// libgit2 would create a log file and its folders for each of them.
    func updateUnloggedReference(_ name: String, to target: ObjectID, expected: ObjectID?) throws {
        guard Repository.isValidReferenceName(name) else { throw GitError(code: .invalidSpec, message: "invalid reference name \(name)") }
        var odb: OpaquePointer?
        try GitError.check(git_repository_odb(&odb, pointer), "odb")
        defer { git_odb_free(odb) }
        var oid = target.raw
        guard git_odb_exists(odb, &oid) == 1 else {
            throw GitError(code: .notFound, message: "cannot move \(name) to \(target.short): no such object")
        }
        let path = commonDirectory + name
        let lock = path + ".lock"
        var fd = Foundation.open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        // The folder may be missing (a person's git can remove empty ones meanwhile: retried).
        for _ in 0..<3 where fd < 0 && errno == ENOENT {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            fd = Foundation.open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else {
            if errno == EEXIST { throw GitError(code: .locked, message: "\(name) is locked (\(lock) exists)") }
            throw GitError(message: "cannot lock \(name): \(String(cString: strerror(errno)))")
        }
        var renamed = false
        defer {
            if fd >= 0 { close(fd) }
            if !renamed { unlink(lock) }
        }
        // Under the lock no other git writer can move it: compare.
        let current = try resolveReference(name)
        if current != expected {
            if expected == nil { throw GitError(code: .exists, message: "\(name) already exists") }
            throw GitError(code: .modified, message: "\(name) no longer points to \(expected!.short)")
        }
        let sync = GitSettings.fsyncGitDir
        try Array((target.hex + "\n").utf8).withUnsafeBytes { try writeAll(fd, $0, path: lock) }
        guard !sync || fsync(fd) == 0 else { throw GitError(message: "fsync \(lock): \(String(cString: strerror(errno)))") }
        close(fd)
        fd = -1
        guard rename(lock, path) == 0 else { throw GitError(message: "cannot update \(name): \(String(cString: strerror(errno)))") }
        renamed = true
        if sync { try syncFolder((path as NSString).deletingLastPathComponent) }
    }
}


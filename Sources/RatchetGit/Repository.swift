import Clibgit2
import Foundation

/// An open git repository. Owns its libgit2 handle and frees it in `deinit`.
///
/// libgit2 handles are not safe to share between threads: confine a `Repository` to one
/// task at a time (open one per operation; opening is cheap).
public final class Repository {
    let pointer: OpaquePointer
    /// Set by an `ObjectBatch` on its handle: whether an object is still only in memory.
    /// Reference updates through the handle refuse such targets.
    var isOnlyInMemory: ((ObjectID) -> Bool)?
    /// Called before this handle moves or deletes a reference (name, new target or nil for a
    /// deletion): the workspace's record of its own reference writes (docs/security.md).
    public var willWriteReference: ((String, ObjectID?) throws -> Void)?
    /// Runs around each reference write (move, creation or deletion) and each listing of
    /// references of this handle: the workspace holds its service's reference lock shared
    /// meanwhile, so that a packing of the references (which holds it exclusively) never writes
    /// back a reference deleted while it ran, never removes a folder a writer has just made for
    /// a new reference, and never moves a reference from its loose file into `packed-refs`
    /// while a listing is between the two (libgit2's iterator lists the loose names, loads
    /// `packed-refs`, then reads each loose file, and skips one that is gone): `packReferences`.
    public var aroundReferenceAccess: ((() throws -> Void) throws -> Void)?

    /// Runs `body` inside `aroundReferenceAccess`, when there is one.
    func accessingReferences(_ body: () throws -> Void) throws {
        guard let aroundReferenceAccess else { return try body() }
        try withoutActuallyEscaping(body) { try aroundReferenceAccess($0) }
    }

    private init(pointer: OpaquePointer) { self.pointer = pointer }

    deinit { git_repository_free(pointer) }

    /// Creates a new non-bare repository at `path` whose unborn HEAD points to `initialBranch`.
    public static func create(at path: String, initialBranch: String = "main") throws -> Repository {
        Library.ensure()
        var options = git_repository_init_options()
        try GitError.check(git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)))
        options.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue | GIT_REPOSITORY_INIT_NO_REINIT.rawValue
        var out: OpaquePointer?
        try initialBranch.withCString { head in
            options.initial_head = head
            try GitError.check(git_repository_init_ext(&out, path, &options), "init \(path)")
        }
        return Repository(pointer: out!)
    }

    /// Opens the repository at `path` exactly (a work tree, a linked worktree or a `.git` folder).
    public static func open(_ path: String) throws -> Repository {
        Library.ensure()
        var out: OpaquePointer?
        try GitError.check(git_repository_open_ext(&out, path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil), "open \(path)")
        return Repository(pointer: out!)
    }

    /// The `.git` folder (for a linked worktree, its private admin folder).
    public var gitDirectory: String { String(cString: git_repository_path(pointer)) }

    /// The shared `.git` folder (the same for every worktree of one repository).
    public var commonDirectory: String { String(cString: git_repository_commondir(pointer)) }

    /// The working directory, nil for a bare repository.
    public var workingDirectory: String? {
        guard let dir = git_repository_workdir(pointer) else { return nil }
        return String(cString: dir)
    }

    /// Whether HEAD points to a branch without commits.
    public var isHeadUnborn: Bool { git_repository_head_unborn(pointer) == 1 }

    /// The name of the branch HEAD points to (`refs/heads/main`), nil when detached.
    public func headReferenceName() throws -> String? {
        var ref: OpaquePointer?
        let rc = git_reference_lookup(&ref, pointer, "HEAD")
        try GitError.check(rc, "HEAD")
        defer { git_reference_free(ref) }
        guard git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC else { return nil }
        return String(cString: git_reference_symbolic_target(ref))
    }

    /// The commit HEAD resolves to, nil when unborn.
    public func headCommit() throws -> ObjectID? {
        var oid = git_oid()
        let rc = git_reference_name_to_id(&oid, pointer, "HEAD")
        if rc == GIT_ENOTFOUND.rawValue || rc == GIT_EUNBORNBRANCH.rawValue { return nil }
        try GitError.check(rc, "HEAD")
        return ObjectID(oid)
    }
}

extension Repository {
    /// Clones the repository at `source` (a local path) into `path`, checking out `branch`.
    public static func clone(from source: String, to path: String, branch: String) throws -> Repository {
        Library.ensure()
        var options = git_clone_options()
        try GitError.check(git_clone_options_init(&options, UInt32(GIT_CLONE_OPTIONS_VERSION)))
        options.checkout_opts = try rawCheckoutOptions(GIT_CHECKOUT_SAFE.rawValue)
        var out: OpaquePointer?
        try branch.withCString { name in
            options.checkout_branch = name
            try GitError.check(git_clone(&out, source, path, &options), "clone \(source)")
        }
        return Repository(pointer: out!)
    }
}

extension Repository {
    /// Points this handle (not the repository on disk) at `folder` as its working directory,
    /// so that ignore rules are read from there while everything else comes from this
    /// repository's own path. Nothing is written.
    public func useWorkingDirectory(_ folder: String) throws {
        try GitError.check(git_repository_set_workdir(pointer, folder, 0), "workdir \(folder)")
    }

    /// Whether `path` (relative to the working directory; a trailing `/` for a folder) is ignored.
    public func isIgnored(_ path: String) -> Bool {
        var ignored: Int32 = 0
        return git_ignore_path_is_ignored(&ignored, pointer, path) == 0 && ignored == 1
    }

    /// The size of blob `id` from its header.
    public func blobSize(_ id: ObjectID) throws -> Int {
        var odb: OpaquePointer?
        try GitError.check(git_repository_odb(&odb, pointer), "odb")
        defer { git_odb_free(odb) }
        var size = 0
        var type = GIT_OBJECT_ANY
        var raw = id.raw
        try GitError.check(git_odb_read_header(&size, &type, odb, &raw), "header \(id.short)")
        return size
    }
}


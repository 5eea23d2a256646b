import Clibgit2
import Czlib
import Foundation

/// A repository handle whose new objects stay in memory (libgit2's mempack backend) until
/// `flush(roots:)` writes them to disk together as one pack.
///
/// On this kind of machine a new file is the dominant cost of a lifecycle (docs/performance.md),
/// and a loose object is a new file. A pack of a step's objects is two files, whatever the
/// number of objects. Flush before any reference is moved to an object of the batch: a
/// reference must never point to an object that is only in memory. Confined to one task.
public final class ObjectBatch {
    /// The handle to write through: blobs, trees, commits, merges.
    public let repository: Repository
    /// Owned by the handle's object database once added; freed with it.
    private let backend: UnsafeMutablePointer<git_odb_backend>

    /// Opens `path` with an in-memory object backend in front of its object database.
    public init(path: String) throws {
        repository = try Repository.open(path)
        var backend: UnsafeMutablePointer<git_odb_backend>?
        try GitError.check(git_mempack_new(&backend), "mempack")
        var odb: OpaquePointer?
        try GitError.check(git_repository_odb(&odb, repository.pointer), "odb")
        defer { git_odb_free(odb) }
        try GitError.check(git_odb_add_backend(odb, backend, 1000), "add mempack")
        self.backend = backend!
    }

    private func inMemory(_ id: ObjectID) -> Bool {
        var oid = id.raw
        return backend.pointee.exists(backend, &oid) != 0
    }

    /// Writes every in-memory object reachable from `roots` as one pack (no deltas: the
    /// objects are few and new), indexed by `git_indexer`, then forgets them. Returns how
    /// many objects it wrote.
    @discardableResult
    public func flush(roots: [ObjectID]) throws -> Int {
        var objects: [(ObjectID, git_object_t, Data)] = []
        var seen = Set<ObjectID>()
        var queue = roots.filter(inMemory)
        var odb: OpaquePointer?
        try GitError.check(git_repository_odb(&odb, repository.pointer), "odb")
        defer { git_odb_free(odb) }
        while let id = queue.popLast() {
            guard seen.insert(id).inserted else { continue }
            var oid = id.raw
            var object: OpaquePointer?
            try GitError.check(git_odb_read(&object, odb, &oid), "read \(id.short)")
            defer { git_odb_object_free(object) }
            let type = git_odb_object_type(object)
            objects.append((id, type, Data(bytes: git_odb_object_data(object), count: git_odb_object_size(object))))
            switch type {
            case GIT_OBJECT_COMMIT:
                let info = try repository.commit(id)
                queue += ([info.tree] + info.parents).filter { !seen.contains($0) && inMemory($0) }
            case GIT_OBJECT_TREE:
                var tree: OpaquePointer?
                try GitError.check(git_tree_lookup(&tree, repository.pointer, &oid), "tree \(id.short)")
                defer { git_tree_free(tree) }
                for index in 0..<git_tree_entrycount(tree) {
                    guard let entry = git_tree_entry_byindex(tree, index) else { continue }
                    let child = ObjectID(git_tree_entry_id(entry))
                    if !seen.contains(child) && git_tree_entry_filemode(entry) != GIT_FILEMODE_COMMIT && inMemory(child) { queue.append(child) }
                }
            default:
                break
            }
        }
        guard !objects.isEmpty else { return 0 }
        let pack = try Self.pack(objects)
        var indexer: OpaquePointer?
        var options = git_indexer_options()
        try GitError.check(git_indexer_options_init(&options, UInt32(GIT_INDEXER_OPTIONS_VERSION)))
        try GitError.check(git_indexer_new(&indexer, repository.commonDirectory + "objects/pack", 0, odb, &options), "indexer")
        defer { git_indexer_free(indexer) }
        var stats = git_indexer_progress()
        try pack.withUnsafeBytes { bytes in
            try GitError.check(git_indexer_append(indexer, bytes.baseAddress, bytes.count, &stats), "index pack")
        }
        try GitError.check(git_indexer_commit(indexer, &stats), "commit pack")
        try GitError.check(git_mempack_reset(backend), "reset mempack")
        // No explicit refresh: libgit2 re-reads the pack folder when an object is not found.
        return objects.count
    }

    /// A version-2 pack of whole (undeltified) objects with its SHA-1 trailer.
    static func pack(_ objects: [(ObjectID, git_object_t, Data)]) throws -> [UInt8] {
        var out: [UInt8] = Array("PACK".utf8) + [0, 0, 0, 2]
        let count = UInt32(objects.count)
        out += [UInt8(count >> 24), UInt8((count >> 16) & 0xff), UInt8((count >> 8) & 0xff), UInt8(count & 0xff)]
        for (_, type, data) in objects {
            var size = data.count
            var byte = UInt8(truncatingIfNeeded: (Int(type.rawValue) << 4) | (size & 0x0f))
            size >>= 4
            while size > 0 {
                out.append(byte | 0x80)
                byte = UInt8(size & 0x7f)
                size >>= 7
            }
            out.append(byte)
            var bound = compressBound(uLong(data.count))
            var compressed = [UInt8](repeating: 0, count: Int(bound))
            let rc = data.withUnsafeBytes { source in
                compress2(&compressed, &bound, source.bindMemory(to: Bytef.self).baseAddress, uLong(data.count), 1)
            }
            guard rc == Z_OK else { throw GitError(message: "deflate failed (\(rc))") }
            out += compressed.prefix(Int(bound))
        }
        var hash = SHA1()
        hash.update(out)
        out += hash.finish()
        return out
    }
}

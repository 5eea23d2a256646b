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
    /// The in-memory objects, shared with the handle's reference guard.
    private let memory: Memory

    /// The mempack backend (owned by the handle's object database, freed with it) and which
    /// of its objects are already in a pack on disk.
    private final class Memory {
        let backend: UnsafeMutablePointer<git_odb_backend>
        /// Objects already written to a pack that stay in memory too, so that reading them
        /// back (moving a ref to them, the next merge) does not make libgit2 rescan the pack
        /// folder.
        var flushed = Set<ObjectID>()
        init(_ backend: UnsafeMutablePointer<git_odb_backend>) { self.backend = backend }

        /// Whether `id` is in memory and not yet on disk.
        func holdsOnly(_ id: ObjectID) -> Bool {
            guard !flushed.contains(id) else { return false }
            var oid = id.raw
            return backend.pointee.exists(backend, &oid) != 0
        }
    }

    /// Opens `path` with an in-memory object backend in front of its object database.
    public init(path: String) throws {
        repository = try Repository.open(path)
        var backend: UnsafeMutablePointer<git_odb_backend>?
        try GitError.check(git_mempack_new(&backend), "mempack")
        var odb: OpaquePointer?
        try GitError.check(git_odb_new(&odb), "odb")
        defer { git_odb_free(odb) }
        try GitError.check(git_odb_add_backend(odb, backend, 1000), "add mempack")
        let memory = Memory(backend!)
        self.memory = memory
        // The disk backends git_odb_open would add (packs before loose objects), each behind
        // a gate that keeps a new object's existence check from scanning the disk
        // (shim.h: ratchet_gated_backend).
        let objects = repository.commonDirectory + "objects"
        var pack: UnsafeMutablePointer<git_odb_backend>?
        try GitError.check(git_odb_backend_pack(&pack, objects), "pack backend")
        try Self.add(pack!, skipFreshen: false, priority: 2, to: odb)
        var loose: UnsafeMutablePointer<git_odb_backend>?
        try GitError.check(git_odb_backend_loose(&loose, objects, -1, 0, 0, 0), "loose backend")
        try Self.add(loose!, skipFreshen: true, priority: 1, to: odb)
        if let alternates = try? String(contentsOfFile: objects + "/info/alternates", encoding: .utf8) {
            for line in alternates.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
                let folder = line.hasPrefix("/") ? String(line) : objects + "/" + line
                try GitError.check(git_odb_add_disk_alternate(odb, folder), "alternate \(folder)")
            }
        }
        try GitError.check(git_repository_set_odb(repository.pointer, odb), "set odb")
        // A reference must never point to an object that is only in memory.
        repository.isOnlyInMemory = { memory.holdsOnly($0) }
    }

    private static func add(_ inner: UnsafeMutablePointer<git_odb_backend>, skipFreshen: Bool, priority: Int32, to odb: OpaquePointer?) throws {
        guard let gated = ratchet_gated_backend_new(inner, skipFreshen ? 1 : 0) else {
            inner.pointee.free(inner)
            throw GitError(message: "out of memory")
        }
        try GitError.check(git_odb_add_backend(odb, gated, priority), "add object backend")
    }

    /// Beyond this many objects the in-memory copies are dropped (memory stays bounded).
    static let retainedObjects = 4096

    private func inMemory(_ id: ObjectID) -> Bool { memory.holdsOnly(id) }

    /// Writes every in-memory object reachable from `roots` as one pack (no deltas: the
    /// objects are few and new) with its index, written by us. The objects stay readable from
    /// memory until `retainedObjects` pile up. Returns how many objects it wrote.
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
        let (pack, entries) = try Self.pack(objects)
        try Self.write(pack: pack, index: Self.index(entries, packChecksum: Array(pack.suffix(20))),
                       into: repository.commonDirectory + "objects/pack")
        memory.flushed.formUnion(objects.map(\.0))
        if memory.flushed.count > Self.retainedObjects {
            // No explicit refresh: libgit2 re-reads the pack folder when an object is not found.
            try GitError.check(git_mempack_reset(memory.backend), "reset mempack")
            memory.flushed.removeAll()
        }
        return objects.count
    }

    /// Publishes a note on `object`: `pending` first when given (made and flushed before),
    /// and after each lost race on the notes ref a note made again on top of the winner's,
    /// flushed before the ref moves. Each lost race is another writer's win, so many writers
    /// at once can lose dozens of times in a row: the bound is generous.
    public func publishNote(_ text: String, on object: ObjectID, author: Signature, pending: Repository.PendingNote? = nil) throws {
        var note = pending
        for _ in 0..<1000 {
            let current: Repository.PendingNote
            if let note { current = note } else {
                current = try repository.makeNote(text, on: object, author: author)
                try flush(roots: [current.commit])
            }
            do {
                return try repository.publish(current)
            } catch let error as GitError where error.code == .modified || error.code == .exists || error.code == .locked {
                note = nil
            }
        }
        throw GitError(code: .modified, message: "\(Repository.ratchetNotesRef) kept moving; the note on \(object.short) was not written")
    }

    /// A version-2 pack of whole (undeltified) objects with its SHA-1 trailer, and where each
    /// object starts in it with the CRC-32 of its entry (for the index).
    static func pack(_ objects: [(ObjectID, git_object_t, Data)]) throws -> (pack: [UInt8], entries: [(id: ObjectID, offset: Int, crc: UInt32)]) {
        var out: [UInt8] = Array("PACK".utf8) + [0, 0, 0, 2]
        appendBigEndian(UInt32(objects.count), to: &out)
        var entries: [(id: ObjectID, offset: Int, crc: UInt32)] = []
        entries.reserveCapacity(objects.count)
        // Deflate streams reused across objects (deflateReset). Objects under 64 KiB (commits,
        // trees, most edited files) are stored uncompressed inside their zlib stream: even
        // zlib's fastest level costs 20-40 µs for a 4 KiB tree, several times the rest of the
        // flush, and packs are combined and delta-compressed later (`ratchet service pack`). The
        // stored stream uses the smallest hash table, which deflateReset clears every time.
        let small = try DeflateStream(level: Z_NO_COMPRESSION, memoryLevel: 1)
        var large: DeflateStream?
        var compressed: [UInt8] = []
        for (id, type, data) in objects {
            let start = out.count
            var size = data.count
            var byte = UInt8(truncatingIfNeeded: (Int(type.rawValue) << 4) | (size & 0x0f))
            size >>= 4
            while size > 0 {
                out.append(byte | 0x80)
                byte = UInt8(size & 0x7f)
                size >>= 7
            }
            out.append(byte)
            if data.count >= Self.storedLimit && large == nil { large = try DeflateStream(level: 1, memoryLevel: 8) }
            let length = try (data.count < Self.storedLimit ? small : large!).deflate(data, into: &compressed)
            out += compressed.prefix(length)
            let crc = out[start...].withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            entries.append((id, start, crc))
        }
        var hash = SHA1()
        hash.update(out)
        out += hash.finish()
        return (out, entries)
    }

    /// Objects below this size are stored without compression in a step's pack.
    static let storedLimit = 64 << 10


    /// The version-2 index of a pack: fan-out table, sorted ids, CRC-32s, 32-bit offsets, the
    /// pack's checksum and the index's own (gitformat-pack(5)).
    static func index(_ entries: [(id: ObjectID, offset: Int, crc: UInt32)], packChecksum: [UInt8]) throws -> [UInt8] {
        // Lowercase hex sorts like the raw bytes.
        let sorted = entries.map { ($0, $0.id.hex) }.sorted { $0.1 < $1.1 }.map(\.0)
        var out: [UInt8] = [0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]
        var fanout = [UInt32](repeating: 0, count: 256)
        for entry in sorted { fanout[Int(entry.id.raw.id.0)] += 1 }
        var running: UInt32 = 0
        for bucket in 0..<256 {
            running += fanout[bucket]
            appendBigEndian(running, to: &out)
        }
        for entry in sorted { withUnsafeBytes(of: entry.id.raw.id) { out += $0 } }
        for entry in sorted { appendBigEndian(entry.crc, to: &out) }
        for entry in sorted {
            guard entry.offset < 0x8000_0000 else { throw GitError(message: "pack too large for 32-bit offsets") }
            appendBigEndian(UInt32(entry.offset), to: &out)
        }
        out += packChecksum
        var hash = SHA1()
        hash.update(out)
        out += hash.finish()
        return out
    }

    /// Publishes a pack and its index in `folder`: the pack first, under its final name (git
    /// and libgit2 ignore a pack without an index), then the index through a temporary file
    /// and a rename, so that a reader never sees a partial index. With fsync on
    /// (`GitSettings.fsyncGitDir`), both files and the folder reach the disk first.
    static func write(pack: [UInt8], index: [UInt8], into folder: String) throws {
        let name = folder + "/pack-" + pack.suffix(20).map { String(format: "%02x", $0) }.joined()
        let sync = GitSettings.fsyncGitDir
        if !(try existingPackMatches(name + ".pack", pack)) {
            // A leftover of a crashed writer, or a new pack: write it whole, then rename it in.
            try writeFile(folder + "/tmp_pack_\(getpid())_\(UInt64.random(in: 0...UInt64.max))", pack, sync: sync, renameTo: name + ".pack",
                          exclusiveTarget: true)
        }
        try writeFile(folder + "/tmp_idx_\(getpid())_\(UInt64.random(in: 0...UInt64.max))", index, sync: sync, renameTo: name + ".idx",
                      exclusiveTarget: false)
        if sync { try syncFolder(folder) }
    }

    /// Whether `path` already holds exactly `pack` (a concurrent writer of the same objects).
    private static func existingPackMatches(_ path: String, _ pack: [UInt8]) throws -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        guard info.st_size == off_t(pack.count) else { return false }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(pack.count - 20))
        return try handle.read(upToCount: 20).map(Array.init) == Array(pack.suffix(20))
    }

    /// Writes `bytes` to a new file at `temporary` (0444, like git's packs), then renames it to
    /// `target`. With `exclusiveTarget`, the pack is written straight to `target` when it
    /// does not exist yet (one file creation instead of two), since git ignores a pack
    /// without its index.
    private static func writeFile(_ temporary: String, _ bytes: [UInt8], sync: Bool, renameTo target: String, exclusiveTarget: Bool) throws {
        var path = temporary
        var fd: Int32 = -1
        if exclusiveTarget {
            fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
            if fd >= 0 { path = target }
        }
        if fd < 0 { fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444) }
        guard fd >= 0 else { throw GitError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
        do {
            defer { close(fd) }
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
            if sync, fsync(fd) != 0 { throw GitError(message: "fsync \(path): \(String(cString: strerror(errno)))") }
        } catch {
            unlink(path)
            throw error
        }
        if path != target, rename(path, target) != 0 {
            let message = "rename \(path): \(String(cString: strerror(errno)))"
            unlink(path)
            throw GitError(message: message)
        }
    }
}

private func appendBigEndian(_ value: UInt32, to out: inout [UInt8]) {
    out += [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
}

/// One zlib deflate stream at a stable heap address: zlib keeps a pointer back to its
/// `z_stream` and refuses a stream that moved, which a Swift `var` passed `inout` may do.
final class DeflateStream {
    private let stream: UnsafeMutablePointer<z_stream>

    init(level: Int32, memoryLevel: Int32) throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard deflateInit2_(stream, level, Z_DEFLATED, 15, memoryLevel, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            stream.deallocate()
            throw GitError(message: "deflate init failed")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Compresses `data` as one zlib stream into `buffer` (grown as needed); returns its length.
    func deflate(_ data: Data, into buffer: inout [UInt8]) throws -> Int {
        guard deflateReset(stream) == Z_OK else { throw GitError(message: "deflate reset failed") }
        let bound = Int(deflateBound(stream, uLong(data.count)))
        if buffer.count < bound { buffer = [UInt8](repeating: 0, count: bound) }
        let rc = data.withUnsafeBytes { source in
            buffer.withUnsafeMutableBufferPointer { target in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: source.bindMemory(to: Bytef.self).baseAddress)
                stream.pointee.avail_in = uInt(source.count)
                stream.pointee.next_out = target.baseAddress
                stream.pointee.avail_out = uInt(target.count)
                return Czlib.deflate(stream, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { throw GitError(message: "deflate failed (\(rc))") }
        return Int(stream.pointee.total_out)
    }
}

import Clibgit2
import Foundation

extension Repository {
    private var objectsDirectory: String { commonDirectory + "objects" }

    /// Creates the 256 `objects/xx` fan-out folders, so that writing a loose object never
    /// pays for a `mkdir` (about half a millisecond each here).
    public func prepareObjectFolders() throws {
        for byte in 0..<256 {
            let folder = objectsDirectory + String(format: "/%02x", byte)
            if mkdir(folder, 0o755) != 0 && errno != EEXIST {
                throw GitError(message: "cannot create \(folder): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The ids of the loose objects, read from the `objects/xx` folders.
    public func looseObjects() throws -> [ObjectID] {
        var result: [ObjectID] = []
        for byte in 0..<256 {
            let prefix = String(format: "%02x", byte)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: objectsDirectory + "/" + prefix) else { continue }
            for name in names where name.utf8.count == 38 {
                if let id = ObjectID(hex: prefix + name) { result.append(id) }
            }
        }
        return result
    }

    /// An estimate of the loose objects from four of the 256 fan-out folders: cheap enough
    /// to call after every landing.
    public func estimatedLooseObjects() -> Int {
        var count = 0
        for byte in 0..<4 {
            let folder = objectsDirectory + String(format: "/%02x", byte)
            count += ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).count
        }
        return count * 64
    }

    /// Packs every loose object into one new pack (libgit2's packbuilder), then deletes the
    /// loose copies it packed. The fan-out folders stay. Returns how many objects it packed.
    ///
    /// Safe beside concurrent writers: an object written meanwhile is not in the list and
    /// stays loose; a loose file is deleted only after the pack holding it is complete.
    ///
    /// `written` runs once the new pack is complete, before any loose copy is deleted.
    @discardableResult
    public func packLooseObjects(written: () throws -> Void = {}) throws -> Int {
        let loose = try looseObjects()
        guard !loose.isEmpty else { return 0 }
        var builder: OpaquePointer?
        try GitError.check(git_packbuilder_new(&builder, pointer), "packbuilder")
        defer { git_packbuilder_free(builder) }
        for id in loose {
            var oid = id.raw
            try GitError.check(git_packbuilder_insert(builder, &oid, nil), "pack \(id.short)")
        }
        try GitError.check(git_packbuilder_write(builder, nil, 0, nil, nil), "write pack")
        try written()
        for id in loose {
            let hex = id.hex
            unlink(objectsDirectory + "/" + hex.prefix(2) + "/" + hex.dropFirst(2))
        }
        return loose.count
    }

    /// The object ids a version-2 pack index (`.idx`) lists.
    static func objectIDs(inIndex path: String) throws -> [ObjectID] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count >= 8 + 1024, data.prefix(8) == Data([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]) else {
            throw GitError(message: "\(path) is not a version-2 pack index")
        }
        let bytes = [UInt8](data)
        let count = (0..<4).reduce(0) { (total: Int, offset: Int) in total << 8 | Int(bytes[8 + 255 * 4 + offset]) }
        guard data.count >= 8 + 1024 + count * 20 else { throw GitError(message: "\(path) is truncated") }
        return (0..<count).map { index in
            var oid = git_oid()
            let start = 8 + 1024 + index * 20
            withUnsafeMutableBytes(of: &oid.id) { target in
                bytes[start..<(start + 20)].withUnsafeBytes { target.copyMemory(from: $0) }
            }
            return ObjectID(oid)
        }
    }

    /// Combines the packs smaller than `smallerThan` bytes, except the largest of them, into one (packbuilder), then
    /// deletes them: batched steps leave small packs, and lookups slow down with their
    /// number. Returns how many packs it combined (0 when fewer than two were small).
    /// Only packs with an index count (a pack is published by its index); `written` runs
    /// once the combined pack is complete, before any small one is deleted.
    @discardableResult
    public func consolidatePacks(smallerThan limit: Int = 1 << 20, written: () throws -> Void = {}) throws -> Int {
        let folder = objectsDirectory + "/pack"
        let fm = FileManager.default
        let candidates = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".idx") && $0.hasPrefix("pack-") }
            .map { String($0.dropLast(".idx".count)) + ".pack" }.filter { name in
            ((try? fm.attributesOfItem(atPath: folder + "/" + name))?[.size] as? Int ?? .max) < limit
                && !fm.fileExists(atPath: folder + "/" + name.replacingOccurrences(of: ".pack", with: ".keep"))
        }
        // The largest pack (a repo's history) stays as it is: combining only the small ones
        // keeps the cost proportional to what was written since (a small repo's whole
        // history is under the limit too).
        var small = candidates
        let sizes = small.map { ((try? fm.attributesOfItem(atPath: folder + "/" + $0))?[.size] as? Int) ?? 0 }
        if let largest = sizes.indices.max(by: { sizes[$0] < sizes[$1] }), small.count > 2 { small.remove(at: largest) }
        guard small.count >= 2 else { return 0 }
        var builder: OpaquePointer?
        try GitError.check(git_packbuilder_new(&builder, pointer), "packbuilder")
        defer { git_packbuilder_free(builder) }
        var seen = Set<ObjectID>()
        for name in small {
            for id in try Self.objectIDs(inIndex: folder + "/" + name.replacingOccurrences(of: ".pack", with: ".idx")) where seen.insert(id).inserted {
                var oid = id.raw
                try GitError.check(git_packbuilder_insert(builder, &oid, nil), "pack \(id.short)")
            }
        }
        try GitError.check(git_packbuilder_write(builder, nil, 0, nil, nil), "write pack")
        try written()
        // The combined pack is complete: the small ones can go (index first, as git does).
        for name in small {
            let stem = folder + "/" + name.dropLast(".pack".count)
            unlink(stem + ".idx")
            unlink(stem + ".rev")
            unlink(stem + ".pack")
        }
        return small.count
    }

    /// The loose references (files under `refs/`, lock files aside), counted up to `limit`:
    /// cheap enough to call after every landing while there are few.
    public func looseReferenceCount(upTo limit: Int = .max) -> Int {
        var count = 0
        var folders = [commonDirectory + "refs"]
        while count < limit, let folder = folders.popLast() {
            for (name, isFolder) in Self.folderEntries(folder) {
                if isFolder { folders.append(folder + "/" + name) } else if !name.hasSuffix(".lock") { count += 1 }
            }
        }
        return min(count, limit)
    }

    /// Packs every loose reference into `packed-refs` (`git pack-refs --all`, libgit2's
    /// compress): the file is written under `packed-refs.lock`, then each loose file is deleted
    /// under its own lock only if it still holds the packed value, so a reference moved
    /// meanwhile keeps its loose value. The folders that leaves empty below `refs/heads/`,
    /// `refs/notes/`, … are removed, as git's own packing does: every listing of references
    /// walks them. Returns how many loose references it packed.
    ///
    /// Every reference lookup and listing reads each loose reference's file, and each ticket
    /// leaves one: past a few hundred they cost more than the change itself (docs/performance.md).
    /// libgit2 does not lock `packed-refs` while it deletes a reference that is only loose, so a
    /// deletion that runs during the packing can be written back; a writer's new folder can be
    /// removed before its lock file is made; and a listing that loaded `packed-refs` before the
    /// packing misses each reference whose loose file goes before it reads it. The caller
    /// excludes writes and listings meanwhile (`aroundReferenceAccess`).
    ///
    /// A `packed-refs.lock` left by a writer killed mid-write would fail every packing until a
    /// person removed it: one older than `staleLockAge` seconds is removed first (the caller's
    /// exclusion means no writer of this process family holds it; git's own writers hold it for
    /// milliseconds). A younger one is someone's write in progress: nothing is packed, `deferred`.
    public func packReferences(staleLockAge: TimeInterval) throws -> ReferencePacking {
        var packing = ReferencePacking()
        switch Self.lockFileAge(commonDirectory + "packed-refs.lock") {
        case .some(let age) where age >= staleLockAge:
            guard unlink(commonDirectory + "packed-refs.lock") == 0 || errno == ENOENT else { packing.deferred = true; return packing }
            packing.staleLockRemoved = true
        case .some: packing.deferred = true; return packing
        case .none: break
        }
        let before = looseReferenceCount()
        var refdb: OpaquePointer?
        try GitError.check(git_repository_refdb(&refdb, pointer), "refdb")
        defer { git_refdb_free(refdb) }
        do {
            try GitError.check(git_refdb_compress(refdb), "pack references")
        } catch let error as GitError where error.code == .locked {
            packing.deferred = true // taken since the look above: a write in progress
            return packing
        }
        for (name, isFolder) in Self.folderEntries(commonDirectory + "refs") where isFolder {
            Self.removeEmptyFolders(below: commonDirectory + "refs/" + name)
        }
        packing.packed = max(0, before - looseReferenceCount())
        return packing
    }

    /// Seconds since the regular file at `path` was last written; nil when there is none.
    private static func lockFileAge(_ path: String) -> TimeInterval? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Date().timeIntervalSince1970 - TimeInterval(info.st_mtim.tv_sec)
    }

    /// The names in `folder` and whether each is a folder (not following links).
    private static func folderEntries(_ folder: String) -> [(name: String, isFolder: Bool)] {
        guard let stream = opendir(folder) else { return [] }
        defer { closedir(stream) }
        var entries: [(String, Bool)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            var isFolder = entry.pointee.d_type == UInt8(DT_DIR)
            if entry.pointee.d_type == UInt8(DT_UNKNOWN) {
                var info = stat()
                isFolder = lstat(folder + "/" + name, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
            }
            entries.append((name, isFolder))
        }
        return entries
    }

    /// Removes the folders below `folder` that hold no file, deepest first; whether `folder`
    /// itself is left empty (`rmdir` refuses a folder that is not empty).
    @discardableResult
    private static func removeEmptyFolders(below folder: String) -> Bool {
        var empty = true
        for (name, isFolder) in folderEntries(folder) {
            let path = folder + "/" + name
            if isFolder, removeEmptyFolders(below: path), rmdir(path) == 0 { continue }
            empty = false
        }
        return empty
    }

    /// The number of pack files.
    public func packCount() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: objectsDirectory + "/pack")) ?? []).filter { $0.hasSuffix(".pack") }.count
    }
}

/// What a packing of references did (`Repository.packReferences(staleLockAge:)`).
public struct ReferencePacking: Sendable, Equatable {
    /// Loose references moved into `packed-refs`.
    public var packed = 0
    /// A stale `packed-refs.lock` was removed before packing.
    public var staleLockRemoved = false
    /// Another writer held `packed-refs.lock`: nothing was packed; the next packing tries again.
    public var deferred = false

    public init() {}
}

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
    @discardableResult
    public func packLooseObjects() throws -> Int {
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
        for id in loose {
            let hex = id.hex
            unlink(objectsDirectory + "/" + hex.prefix(2) + "/" + hex.dropFirst(2))
        }
        return loose.count
    }

    /// The number of pack files.
    public func packCount() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: objectsDirectory + "/pack")) ?? []).filter { $0.hasSuffix(".pack") }.count
    }
}

import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetTestSupport
import Testing

/// Loose references into `packed-refs` (adr/0080): each ticket leaves a branch, and every
/// reference listing (the reference guard's two per attempt) reads each loose one.
@Suite("Reference packing")
struct ReferencePackingTests {
    @Test func aLandingPacksLooseReferencesOnceTheyPileUpAndEveryOneKeepsItsValue() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        try looseBranches(200, prefix: "refs/heads/bulk", in: path)
        let repository = try Repository.open(path)
        #expect(repository.looseReferenceCount() >= 200)
        let before = try git(["for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/bulk/"], in: path)
        let id = try file(workspace, "Land and pack the references")
        try workspace.work(ticket: id, agent: "command:echo x > x.txt")
        try workspace.merge(ticket: id)
        // Packed by the landing (inline here: the test process is not `ratchet`).
        #expect(repository.looseReferenceCount() < Workspace.looseReferencesToPack)
        let packed = try String(contentsOfFile: path + "/.git/packed-refs", encoding: .utf8)
        #expect(packed.contains(" refs/heads/bulk/199\n"))
        // The folders the loose files left empty are gone (every listing walks them), as git's packing does.
        #expect(!FileManager.default.fileExists(atPath: path + "/.git/refs/heads/bulk"))
        #expect(FileManager.default.fileExists(atPath: path + "/.git/refs/heads"))
        #expect(try git(["for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/bulk/"], in: path) == before)
        let event = try #require(try workspace.database.events().last { $0.kind == "service.packed" })
        guard case .number(let references)? = event.data["references"] else { Issue.record("no references in \(event.data)"); return }
        #expect(references >= 200)
        // The ticket's branch, packed, still moves by compare-and-swap on the next attempt.
        #expect(try git(["rev-parse", "ticket/T-1/1"], in: path).count == 40)
        let next = try file(workspace, "Work after the packing")
        try workspace.work(ticket: next, agent: "command:echo y > y.txt")
        try workspace.merge(ticket: next)
        try expectConsistent(workspace)
    }

    /// A `packed-refs.lock` left by a writer killed mid-write failed every packing (and recorded
    /// `service.pack_failed` at each landing) until a person removed it: one over ten minutes
    /// old is removed and the references packed; a younger one is someone's write in
    /// progress, left alone, and the references wait for the next packing, without a failure.
    @Test func aStalePackedRefsLockIsRemovedAndAFreshOneDefersThePacking() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        try looseBranches(200, prefix: "refs/heads/held", in: path)
        let lock = path + "/.git/packed-refs.lock"
        let before = try git(["for-each-ref", "--format=%(refname) %(objectname)"], in: path)
        // Fresh: a write in progress. Nothing packed, nothing failed, the lock and every loose file stay.
        try Data().write(to: URL(fileURLWithPath: lock))
        let deferred = try workspace.packService("svc", ifNeeded: true)
        #expect(deferred.referencesDeferred && !deferred.staleLockRemoved && deferred.references == 0)
        #expect(FileManager.default.fileExists(atPath: lock))
        #expect(try Repository.open(path).looseReferenceCount() >= 200)
        #expect(try workspace.database.events().allSatisfy { $0.kind != "service.pack_failed" })
        // Stale: written an hour ago. Removed, then everything packed with its value.
        var times = [timespec(tv_sec: time(nil) - 3600, tv_nsec: 0), timespec(tv_sec: time(nil) - 3600, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, lock, &times, 0) == 0)
        let packed = try workspace.packService("svc", ifNeeded: true)
        #expect(packed.staleLockRemoved && !packed.referencesDeferred && packed.references >= 200)
        #expect(!FileManager.default.fileExists(atPath: lock))
        #expect(try Repository.open(path).looseReferenceCount() < Workspace.looseReferencesToPack)
        #expect(try git(["for-each-ref", "--format=%(refname) %(objectname)"], in: path) == before)
        let event = try #require(try workspace.database.events().last { $0.kind == "service.packed" })
        #expect(event.data["stale_lock_removed"] == .bool(true), "\(event.data)")
        try expectConsistent(workspace)
    }

    @Test func aReferenceDeletedWhileTheReferencesArePackedStaysDeleted() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        for round in 0..<3 {
            try looseBranches(400, prefix: "refs/heads/gone\(round)", in: path)
            let deleter = try workspace.openService("svc")
            let packed = DispatchSemaphore(value: 0)
            Thread { _ = try? workspace.packService("svc", ifNeeded: false); packed.signal() }.start()
            for index in 0..<400 { try deleter.deleteReference("refs/heads/gone\(round)/\(index)") }
            packed.wait()
            // Neither a loose nor a packed copy came back.
            #expect(try git(["for-each-ref", "refs/heads/gone\(round)/"], in: path) == "", "round \(round)")
        }
        try expectConsistent(workspace)
    }

    @Test func aReferenceCreatedWhileThePackingRemovesEmptyFoldersIsWritten() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        let main = try #require(ObjectID(hex: try git(["rev-parse", "main"], in: path)))
        for round in 0..<3 {
            // Empty folders, as deleted references leave them (`refs/ratchet/candidates/ID`), for the packing to remove
            // while references are created in them.
            let names = (0..<400).map { "refs/heads/race/R\(round)-\($0)" }
            for name in names { try FileManager.default.createDirectory(atPath: path + "/.git/" + name, withIntermediateDirectories: true) }
            let writer = try workspace.openService("svc")
            let packed = DispatchSemaphore(value: 0)
            Thread { _ = try? workspace.packService("svc", ifNeeded: false); packed.signal() }.start()
            var failures: [String] = []
            for name in names {
                do { try writer.updateReference(name + "/1", to: main, expected: nil, message: "candidate") } catch { failures.append("\(error)") }
            }
            packed.wait()
            #expect(failures.isEmpty, "round \(round): \(failures.prefix(3))")
            let listed = try git(["for-each-ref", "--format=%(refname)", "refs/heads/race/"], in: path).split(separator: "\n")
            #expect(listed.count == 400 * (round + 1), "round \(round)")
        }
        try expectConsistent(workspace)
    }
}

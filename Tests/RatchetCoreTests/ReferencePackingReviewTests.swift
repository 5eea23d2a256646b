import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetTestSupport
import Testing

/// Review of adr/0080: what a reference listing sees while the packer packs references.
///
/// libgit2 1.5's iterator lists the loose reference names first, then loads `packed-refs`,
/// then reads each loose file as it goes (and silently skips one it cannot read). A packing
/// that commits `packed-refs` after the listing loaded it and removes loose files before the
/// listing reads them made those references vanish from the listing, and the reference guard
/// then took them for an agent's and deleted them. Listings through a workspace handle now hold
/// the reference lock shared, as writes do (written by the session's reviewer; adr/0080).
@Suite("Reference packing (review)")
struct ReferencePackingReviewTests {
    /// A listing through a workspace handle holds the reference lock, so no packing can start
    /// inside it. What that prevents: the same listing on a handle without the lock (a
    /// person's libgit2), paused after its first reference while a packing runs, loses every
    /// reference the packing moved from its loose file into `packed-refs`.
    @Test func aListingHoldsTheReferenceLockSoNoPackingRunsInsideIt() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        try looseBranches(300, prefix: "refs/heads/old", in: path)
        let reader = try workspace.openService("svc")
        let expected = try ReferenceGuard.snapshot(reader).count
        try FileManager.default.createDirectory(atPath: (workspace.referenceLockPath("svc") as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        var listed = 0
        var packingCouldStart = true
        try reader.forEachReference { _, _ in
            listed += 1
            guard listed == 1 else { return }
            let fd = open(workspace.referenceLockPath("svc"), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            packingCouldStart = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0
            close(fd)
        }
        #expect(!packingCouldStart, "a packing could take the reference lock during a listing")
        #expect(listed == expected, "listed \(listed) of \(expected) references")
        let unlocked = try Repository.open(path)
        var seen = 0
        try unlocked.forEachReference { _, _ in
            seen += 1
            if seen == 1 { _ = try workspace.packService("svc", ifNeeded: false) }
        }
        #expect(seen < expected, "a listing without the lock saw all \(expected) references")
    }

    /// Runs `read` on four threads, each with its own workspace handle on `svc`, while a packing
    /// of the service runs; returns when all are done. Several readers on a 2-core machine are
    /// descheduled as on a loaded one. Each `read` must be bounded: readers that never stop would
    /// keep the packing out for good (flock lets shared holders in ahead of a waiting exclusive one).
    private func whileThePackerRuns(_ workspace: Workspace, _ read: @escaping @Sendable (Int, Repository) -> Void) {
        let packed = DispatchSemaphore(value: 0)
        Thread { _ = try? workspace.packService("svc", ifNeeded: false); packed.signal() }.start()
        let group = DispatchGroup()
        for reader in 0..<4 {
            group.enter()
            Thread {
                defer { group.leave() }
                if let repository = try? workspace.openService("svc") { read(reader, repository) }
            }.start()
        }
        group.wait()
        packed.wait()
    }

    /// The guard's snapshot, taken while the packer packs, must list every reference.
    @Test func aSnapshotTakenDuringThePackingListsEveryReference() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        final class Reports: @unchecked Sendable { let lock = NSLock(); var lines: [String] = [] }
        let reports = Reports()
        for round in 0..<4 {
            try looseBranches(600, prefix: "refs/heads/old\(round)", in: path)
            let expected = try ReferenceGuard.snapshot(try Repository.open(path)).count
            whileThePackerRuns(workspace) { reader, repository in
                for snapshot in 1...20 {
                    let count = (try? ReferenceGuard.snapshot(repository).count) ?? -1
                    if count != expected { reports.lock.withLock { reports.lines.append("round \(round) reader \(reader) snapshot \(snapshot): \(count) of \(expected)") } }
                }
            }
        }
        #expect(reports.lines.isEmpty, "\(reports.lines.count) short snapshot(s): \(reports.lines.prefix(5))")
    }

    /// An attempt's guard taken while the packer runs (a landing of the same service started
    /// it: the pump runs a landing beside an attempt) must find no tampering by nobody, and its
    /// restore must never delete a reference that exists. Rounds until the race is hit (at most 4).
    @Test func aGuardAcrossAPackingFindsNoTamperingAndDeletesNothing() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        final class Guards: @unchecked Sendable { let lock = NSLock(); var all: [ReferenceGuard] = [] }
        var reports: [String] = []
        for round in 0..<4 where reports.isEmpty {
            // Earlier tickets' branches: written long ago (not in the journal's tail).
            try looseBranches(600, prefix: "refs/heads/ticket/OLD\(round)", in: path)
            let expected = try ReferenceGuard.snapshot(try Repository.open(path)).count
            let guards = Guards()
            whileThePackerRuns(workspace) { _, repository in
                for _ in 1...20 {
                    // What AttemptRun.runAgent does before the agent starts.
                    guard let referenceGuard = try? ReferenceGuard(journal: ReferenceJournal(workspace: workspace, service: "svc"),
                                                                   repository: repository, ownBranch: "refs/heads/ticket/T-0/1") else { continue }
                    guards.lock.withLock { guards.all.append(referenceGuard) }
                }
            }
            let repository = try workspace.openService("svc")
            for referenceGuard in guards.all {
                // What AttemptRun.checkTampering does after the agent (which did nothing) ends.
                let found = try referenceGuard.tamperings(in: repository)
                guard !found.isEmpty else { continue }
                reports.append("round \(round): \(found.count) false tampering(s), e.g. \(found[0].description)")
                try? referenceGuard.restore(found, in: repository)
                let left = try ReferenceGuard.snapshot(repository).count
                if left != expected { reports.append("round \(round): the restore deleted \(expected - left) existing reference(s)") }
                break
            }
        }
        #expect(reports.isEmpty, "\(reports)")
        try expectConsistent(workspace)
    }
}

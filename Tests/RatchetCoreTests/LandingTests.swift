import Foundation
import RatchetCore
import RatchetGit
import RatchetTestSupport
import Testing

@Suite("Landing path")
struct LandingTests {
    @Test func workMergeRevertLeaveTheHistoryAPersonExpects() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        let id = try file(workspace, "Raise capacity", accept: ["command:grep -q 2048 config/cache.json"])
        let before = try git(["rev-parse", "main"], in: path)
        let attempt = try workspace.work(ticket: id, agent: "command:sed -i s/1024/2048/ config/cache.json && echo edited")
        #expect(attempt.state.rawValue == "proposed")
        #expect(attempt.branch == "ticket/T-1/1")
        #expect(try workspace.ticket(id).state.rawValue == "proposed")

        // The step commit: author is the agent, committer Ratchet, trailers link ticket and trajectory.
        let step = try git(["log", "-1", "--format=%an <%ae>|%cn|%(trailers:only,unfold)", attempt.branch], in: path)
        #expect(step.hasPrefix("command <command@agents.ratchet.invalid>|Ratchet|Ticket: T-1\nTrajectory: \(attempt.trajectoryId)\nStep: "))
        #expect(UUIDv7.isValid(attempt.trajectoryId))

        let landing = try workspace.merge(ticket: id)
        #expect(landing.acceptance.map(\.status) == ["passed"])
        let firstParent = try git(["log", "--first-parent", "--format=%s", "main"], in: path).split(separator: "\n")
        #expect(firstParent == ["Merge T-1: Raise capacity", "Add service svc from template kv-cache"])
        #expect(try git(["rev-parse", "main^1", "main^2"], in: path) == "\(before)\n\(attempt.head!)")
        let trailers = try git(["log", "-1", "--format=%(trailers:only,unfold)", "main"], in: path)
        #expect(trailers == "Ticket: T-1\nTrajectory: \(attempt.trajectoryId)\nAgent: command\nCanary: none\nRisk: low")
        // The note holds the ticket and the complete trajectory.
        let note = try git(["notes", "--ref=ratchet", "show", "main"], in: path)
        let document = try JSONSerialization.jsonObject(with: Data(note.utf8)) as! [String: Any]
        #expect((document["ticket"] as? [String: Any])?["id"] as? String == "T-1")
        let trajectory = try #require(document["trajectory"] as? [String: Any])
        #expect(trajectory["id"] as? String == attempt.trajectoryId)
        #expect((trajectory["steps"] as? [Any])?.count == 2)
        // The branch survives; the worktree is gone; main's checkout follows.
        #expect(try git(["branch", "--list", "ticket/T-1/1"], in: path).contains("ticket/T-1/1"))
        #expect(!FileManager.default.fileExists(atPath: workspace.worktreePath(ticket: id, attempt: 1)))
        #expect(try String(contentsOfFile: path + "/config/cache.json", encoding: .utf8).contains("2048"))
        try expectConsistent(workspace)

        let revert = try workspace.revert(ticket: id, reason: "testing the undo")
        #expect(try git(["rev-parse", "main^{tree}"], in: path) == git(["rev-parse", "\(before)^{tree}"], in: path))
        #expect(try git(["log", "-1", "--format=%s%n%b", "main"], in: path)
            == "Revert T-1: Raise capacity\nThis reverts commit \(landing.landing.hex).\n\nTicket: T-1\nReverts: \(landing.landing.hex)\nReason: testing the undo")
        #expect(try git(["notes", "--ref=ratchet", "show", revert.hex], in: path).contains("\"kind\" : \"revert\""))
        let view = try workspace.ticketView(id)
        #expect(view.state == "reverted" && view.landing == landing.landing.hex && view.revert == revert.hex)
        #expect(try String(contentsOfFile: path + "/config/cache.json", encoding: .utf8).contains("1024"))
        try expectConsistent(workspace)
    }

    @Test func mainMovingDuringVerificationRebuildsAndVerifiesAgain() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        // A concurrent landing: main moves while the first candidate is being verified (the
        // acceptance command itself runs sandboxed and cannot reach the repository).
        let id = try file(workspace, "Race", accept: ["command:true"])
        try workspace.work(ticket: id, agent: "command:echo x > race.txt")
        let moved = Flag()
        let landing = try workspace.merge(ticket: id, progress: { line in
            guard line.hasPrefix("acceptance:"), moved.set() else { return }
            _ = try? git(["update-ref", "refs/heads/main", try git(["-c", "user.name=p", "-c", "user.email=p@x", "commit-tree", "main^{tree}", "-p", "main",
                                                                    "-m", "concurrent"], in: path)], in: path)
        })
        #expect(landing.rebuilds == 1)
        #expect(try git(["log", "-1", "--format=%s", "main^1"], in: path) == "concurrent")
        #expect(try git(["rev-parse", "main"], in: path) == landing.landing.hex)
        let kinds = try workspace.database.events().map(\.kind)
        #expect(kinds.filter { $0 == "landing.rebuilt" }.count == 1)
        try expectConsistent(workspace)
    }

    @Test func twoTicketsOnOneServiceBothLandAndAConflictReopensTheTicket() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        let one = try file(workspace, "One")
        let two = try file(workspace, "Two")
        let three = try file(workspace, "Three")
        try workspace.work(ticket: one, agent: "command:echo one > one.txt")
        try workspace.work(ticket: two, agent: "command:echo two > two.txt")
        try workspace.work(ticket: three, agent: "command:echo three > one.txt")
        try workspace.merge(ticket: one)
        try workspace.merge(ticket: two)
        #expect(try git(["log", "--first-parent", "--format=%s", "main"], in: path).split(separator: "\n").prefix(2) == ["Merge T-2: Two", "Merge T-1: One"])
        let error = message { try workspace.merge(ticket: three) }
        #expect(error?.contains("conflicts in 1 path(s): one.txt") == true)
        #expect(try workspace.ticket(three).state.rawValue == "open")
        #expect(try workspace.ticketView(three).attempts.map(\.state) == ["failed"])
        #expect(message { try workspace.merge(ticket: one) }?.contains("already merged") == true)
        try expectConsistent(workspace)
    }

    @Test func failingAcceptanceRejectsAnAgentThatDeletesEverything() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        let id = try file(workspace, "Tidy up", accept: ["command:test -f service.yaml"])
        let attempt = try workspace.work(ticket: id, agent: "command:find . -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +")
        // Committed faithfully: the branch's tree is empty.
        #expect(try git(["ls-tree", "-r", "--name-only", attempt.head!], in: path) == "")
        let main = try git(["rev-parse", "main"], in: path)
        let error = message { try workspace.merge(ticket: id) }
        #expect(error?.contains("acceptance criterion 'command:test -f service.yaml' failed") == true)
        #expect(try git(["rev-parse", "main"], in: path) == main)
        #expect(try workspace.ticket(id).state.rawValue == "open")
        // The failed trajectory keeps the acceptance results.
        let outcome = try #require(try workspace.trajectoryDocument(attempt.trajectoryId).outcome)
        #expect(outcome["status"] == "failed")
        #expect(outcome["acceptance"] == [["criterion": "command:test -f service.yaml", "status": "failed",
                                           "detail": try #require(outcome["acceptance"]?.arrayValue?.first?["detail"])]])
        try expectConsistent(workspace)
    }

    @Test func theCheckedOutMainFollowsLandingsByDifferenceAndKeepsAPersonsWork() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        // A landing that edits, adds, deletes, makes a file executable and turns a file into a folder.
        let id = try file(workspace, "Shapes", accept: ["command:true"])
        try workspace.work(ticket: id, agent: "command:echo more >> README.md && chmod +x config/cache.json && mkdir -p new/deep && echo n > new/deep/n && rm kvcache/__init__.py && mkdir kvcache/__init__.py && echo i > kvcache/__init__.py/i && rm -r adr && echo a > adr")
        // A person edits an unrelated file while the candidate is verified: kept, and the landing's files arrive.
        let landing = try workspace.merge(ticket: id, progress: { line in
            if line.hasPrefix("acceptance:") { try? Data("person\n".utf8).write(to: URL(fileURLWithPath: path + "/slos.yaml")) }
        })
        #expect(landing.checkoutWarning == nil)
        #expect(try git(["status", "--porcelain"], in: path) == " M slos.yaml")
        try git(["checkout", "--", "slos.yaml"], in: path)
        #expect(try git(["status", "--porcelain", "--untracked-files=all", "--ignored"], in: path) == "")
        try git(["diff", "--quiet", "HEAD"], in: path)
        #expect(FileManager.default.isExecutableFile(atPath: path + "/config/cache.json"))
        #expect(try String(contentsOfFile: path + "/kvcache/__init__.py/i", encoding: .utf8) == "i\n")
        // A person edits a file the next landing changes: main moves, the checkout is left alone with a warning.
        let second = try file(workspace, "Touch README", accept: ["command:true"])
        try workspace.work(ticket: second, agent: "command:echo again >> README.md")
        let held = try workspace.merge(ticket: second, progress: { line in
            if line.hasPrefix("acceptance:") { try? Data("person's README\n".utf8).write(to: URL(fileURLWithPath: path + "/README.md")) }
        })
        #expect(held.checkoutWarning?.contains("was not updated to the new main") == true)
        #expect(try String(contentsOfFile: path + "/README.md", encoding: .utf8) == "person's README\n")
        #expect(try workspace.database.events().contains { $0.kind == "service.checkout_skipped" })
    }

    @Test func uncommittedChangesOnMainAreRefusedBeforeAnyCandidate() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        let id = try file(workspace, "Change")
        try workspace.work(ticket: id, agent: "command:echo x > x.txt")
        try Data("person's work\n".utf8).write(to: URL(fileURLWithPath: path + "/README.md"))
        let error = message { try workspace.merge(ticket: id) }
        #expect(error?.contains("uncommitted changes (README.md)") == true)
        #expect(try workspace.ticket(id).state.rawValue == "proposed")
        #expect(try String(contentsOfFile: path + "/README.md", encoding: .utf8) == "person's work\n")
        #expect(try git(["for-each-ref", "refs/ratchet/"], in: path) == "")
        try git(["checkout", "--", "README.md"], in: path)
        try workspace.merge(ticket: id)
        try expectConsistent(workspace)
    }
}

@Suite("Maintenance")
struct MaintenanceTests {
    @Test func aLandingPacksLooseObjectsOnceTheyPileUp() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        let repository = try Repository.open(path)
        // Unreferenced loose objects, as many landings leave them (about 25 each).
        for index in 0..<2_000 { _ = try repository.writeBlob(Data("loose \(index)\n".utf8)) }
        #expect(repository.estimatedLooseObjects() >= 1024)
        let id = try file(workspace, "Land and pack")
        try workspace.work(ticket: id, agent: "command:echo x > x.txt")
        try workspace.merge(ticket: id)
        #expect(try repository.looseObjects().isEmpty)
        #expect(try workspace.database.events().contains { $0.kind == "service.packed" })
        #expect(try git(["cat-file", "-t", try git(["rev-parse", "main"], in: path)], in: path) == "commit")
        try expectConsistent(workspace)
    }

    /// Every durable step writes a pack, landed or not: attempts that never land must not
    /// gather packs until the next landing (each command's first lookup scans them all).
    @Test func anAttemptThatDoesNotLandStillCombinesThePacksOnceTheyPileUp() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        let repository = try Repository.open(path)
        for index in 0..<Workspace.packsToConsolidate {
            let blob = try repository.writeBlob(Data("pack \(index)\n".utf8))
            _ = try run(["sh", "-c", "echo \(blob.hex) | git pack-objects -q .git/objects/pack/pack >/dev/null"], in: path)
        }
        #expect(repository.packCount() >= Workspace.packsToConsolidate)
        let id = try file(workspace, "Rejected, and packs combined")
        try workspace.work(ticket: id, agent: "command:echo x > x.txt")
        #expect(try Repository.open(path).packCount() < 3)
        #expect(try workspace.database.events().contains { $0.kind == "service.packed" })
        _ = try workspace.rejectTicket(id, reason: "not wanted", by: "test")
        #expect(try git(["cat-file", "-p", try git(["rev-parse", "ticket/\(id)/1"], in: path)], in: path).contains("\(id)"))
        try expectConsistent(workspace)
    }
}

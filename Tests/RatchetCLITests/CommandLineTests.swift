import Foundation
import RatchetTestSupport
import Testing

/// A workspace made through the binary, with service `svc` from the kv-cache template.
private func makeWorkspace(_ folder: ScratchFolder) throws -> String {
    let root = folder("ws")
    #expect(try ratchet(["init", root], in: folder.path).status == 0)
    let added = try ratchet(["service", "add", "svc", "--template", "kv-cache"], in: root)
    #expect(added.status == 0, "\(added.stderr)")
    try judgeCanaryWithoutTiming(service: root + "/services/svc")
    try git(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-qa", "--amend", "--no-edit"], in: root + "/services/svc")
    return root
}

/// Asserts one `error:` line on stderr and a non-zero exit.
private func expectError(_ output: Output, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(output.status != 0, sourceLocation: sourceLocation)
    let lines = output.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
    #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "stderr was: \(output.stderr)", sourceLocation: sourceLocation)
    #expect(output.stderr.contains(text), "stderr was: \(output.stderr)", sourceLocation: sourceLocation)
}

@Suite("Command line")
struct CommandLineTests {
    @Test func quickstartPrintsTheLoop() throws {
        let folder = ScratchFolder()
        // From an unrelated working directory: templates are found from the binary's location.
        let output = try ratchet(["quickstart", folder("qs")], in: "/")
        #expect(output.status == 0, "\(output.stderr)")
        // The loop: a misconfigured deploy, a breach observed and filed, the runbook agent's fix landed and deployed.
        for line in ["clients: 72 GETs, 0 hits", "invariant hit_ratio_floor: BREACH (value 0) -> T-1", "source invariant:hit_ratio_floor, restores true",
                     "set_key (risk low, write-worktree) commit ", "config/cache.json: capacity 16 -> 32", "Merge T-1: Invariant hit_ratio_floor",
                     "\"capacity\": 32,", "invariant hit_ratio_floor: ok", "T-1 is merged",
                     "(the deployed kv-cache was stopped: the quickstart leaves nothing running)"] {
            #expect(output.stdout.contains(line), "missing: \(line)")
        }
        for line in ["Merge T-2: Raise the cache capacity to 2048 entries", "Revert T-2: Raise the cache capacity to 2048 entries",
                     "Ticket: T-2", "Reverts: ", "passed: command:python3 -m unittest", "T-2 is reverted",
                     "verdict fail score=0", "T-3 is open; main is unchanged", "main is still", "no hook was planted",
                     "T-4 needs approval because", "it changes protected path(s) canary/canary.yaml", "T-4 is open; main is unchanged",
                     "ok: nothing to repair", "== 9. the weekly summary", "$ ratchet summary", "### Landed (2)",
                     "- **T-2** Raise the cache capacity to 2048 entries", "### Reverted (1)", "### Rejected (2)",
                     "  - metric changes: latency_ms ",
                     "== 10. reflection", "$ ratchet reflect", "drift kv-cache: skipped — main's history is shorter than a week"] {
            #expect(output.stdout.contains(line), "missing: \(line)")
        }
        #expect(output.stdout.split(separator: "\n").contains { $0.contains("latency_ms*") && $0.contains(" High ") })
        // The harmless change passes, or (on a machine too busy for its rounds) is marginal and approved.
        #expect((output.stdout.contains("Canary: pass score=") && output.stdout.contains("verdict pass score="))
                || (output.stdout.contains("Canary: marginal score=") && output.stdout.contains("Approved-By: quickstart")), "\(output.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder("qs/reports")).contains { $0.hasSuffix(".md") })
        let service = folder("qs/services/kv-cache")
        #expect(try git(["log", "--first-parent", "--format=%s", "main"], in: service).split(separator: "\n").count == 5)
        // Nothing the quickstart deployed is left running.
        let running = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int32($0) != nil && Int32($0) != getpid() }.filter {
            let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\($0)/cmdline"))) ?? Data()
            return String(decoding: cmdline, as: UTF8.self).contains(folder("qs") + "/.ratchet/deploy")
        } ?? []
        #expect(running.isEmpty, "deployed sandboxes left running: \(running)")
        #expect(!FileManager.default.fileExists(atPath: service + "/.git/hooks/post-checkout"))
        try git(["fsck", "--strict"], in: service)
    }

    /// Commands name themselves (adr/0038: the parser never derives a name from a type's):
    /// each documented path answers `--help` under exactly that name.
    @Test func everySubcommandAnswersToItsDocumentedName() throws {
        let paths = ["canary run", "canary show", "canary calibrate", "service add", "service list", "service show", "service check",
                     "service pause", "service resume", "service pack", "ticket new", "ticket list", "ticket show", "ticket cancel",
                     "ticket resolve", "work", "merge", "events", "doctor", "metrics import", "trajectory show", "tool", "pump"]
        for path in paths {
            let output = try ratchet(path.split(separator: " ").map(String.init) + ["--help"], in: "/")
            #expect(output.status == 0 && output.stdout.contains("USAGE: ratchet \(path)"), "\(path): \(output.stdout.prefix(200))\(output.stderr)")
        }
    }

    @Test func ticketShowJSONHasTheContractKeys() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Raise capacity", "--accept", "command:true"], in: root).stdout == "T-1\n")
        #expect(try ratchet(["work", "T-1", "--agent", "command:echo x > x.txt"], in: root).status == 0)
        #expect(try ratchet(["merge", "T-1"], in: root).status == 0)
        let output = try ratchet(["ticket", "show", "T-1", "--json"], in: root)
        let ticket = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        for key in ["id", "service", "title", "state", "risk", "attempts", "landing", "revert"] { #expect(ticket.keys.contains(key), "missing \(key)") }
        #expect(ticket["state"] as? String == "merged")
        #expect(ticket["revert"] is NSNull)
        let attempt = try #require((ticket["attempts"] as? [[String: Any]])?.first)
        for key in ["number", "branch", "trajectory", "state", "head", "landing", "revert"] { #expect(attempt.keys.contains(key), "missing attempts[].\(key)") }
        #expect(attempt["landing"] as? String == ticket["landing"] as? String)
        #expect(try git(["rev-parse", "main"], in: root + "/services/svc") == ticket["landing"] as? String)
        // Every read command takes --json and prints one JSON document.
        for command in [["ticket", "list"], ["service", "list"], ["service", "show", "svc"], ["service", "check", "svc"], ["events"]] {
            let read = try ratchet(command + ["--json"], in: root)
            #expect(read.status == 0)
            #expect((try? JSONSerialization.jsonObject(with: Data(read.stdout.utf8))) != nil, "\(command) --json")
        }
    }

    @Test func badInputGetsOneErrorLineAndChangesNothing() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        let service = root + "/services/svc"
        expectError(try ratchet(["ticket", "new", "--service", "svc", "--title", "Fix\nApproved-By: someone"], in: root), containing: "newline")
        expectError(try ratchet(["ticket", "new", "--service", "svc", "--title", String(repeating: "x", count: 10_240)], in: root), containing: "limit is 200")
        expectError(try ratchet(["ticket", "new", "--service", "svc", "--title", "bell\u{07}"], in: root), containing: "control character")
        for id in ["..", "T-1~^:?*[\\", "T-1@{0}", "T-1/../x"] {
            expectError(try ratchet(["ticket", "show", id], in: root), containing: "invalid ticket id")
            expectError(try ratchet(["work", id, "--agent", "command:true"], in: root), containing: "invalid ticket id")
        }
        expectError(try ratchet(["work", "-T-1"], in: root), containing: "Missing expected argument")
        expectError(try ratchet(["service", "add", "a/b", "--template", "kv-cache"], in: root), containing: "invalid service name")
        expectError(try ratchet(["service", "add", "..", "--template", "kv-cache"], in: root), containing: "invalid service name")
        expectError(try ratchet(["service", "add", "x", "--template", "nope"], in: root), containing: "unknown template 'nope'")
        expectError(try ratchet(["ticket", "list"], in: folder.path), containing: "not in a Ratchet workspace")
        expectError(try ratchet(["ticket", "list", "--workspace", folder.path], in: "/"), containing: "is not a Ratchet workspace")
        expectError(try ratchet(["ticket", "show", "T-9"], in: root), containing: "no ticket T-9")
        expectError(try ratchet(["merge", "T-1"], in: root), containing: "no ticket T-1")
        let list = try ratchet(["ticket", "list", "--json"], in: root)
        #expect(list.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || list.stdout.contains("[]"))
        #expect(try git(["for-each-ref", "--format=%(refname)"], in: service) == "refs/heads/main")
        try git(["fsck", "--strict"], in: service)
        #expect(!FileManager.default.fileExists(atPath: root + "/services/x"))
    }

    @Test func failingAgentsExitNonZeroWithOneErrorLine() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Fail"], in: root).status == 0)
        expectError(try ratchet(["work", "T-1", "--agent", "command:echo oops; exit 4"], in: root), containing: "agent exited with status 4")
        let show = try ratchet(["ticket", "show", "T-1", "--json"], in: root)
        #expect(show.stdout.contains("\"state\" : \"open\""))
        try Data("local\n".utf8).write(to: URL(fileURLWithPath: root + "/services/svc/README.md"))
        #expect(try ratchet(["work", "T-1", "--agent", "command:echo y > y.txt"], in: root).status == 0)
        expectError(try ratchet(["merge", "T-1"], in: root), containing: "uncommitted changes")
    }

    @Test func concurrentMergesOfDifferentTicketsBothLandAndOfOneTicketOnlyOnce() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        let service = root + "/services/svc"
        for (index, name) in ["a", "b", "c"].enumerated() {
            #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Ticket \(name)", "--accept", "command:test -f \(name).txt"], in: root).stdout == "T-\(index + 1)\n")
            #expect(try ratchet(["work", "T-\(index + 1)", "--agent", "command:echo \(name) > \(name).txt"], in: root).status == 0)
        }
        // Different tickets, at the same time: both land, one after the other.
        let results = try concurrently([["merge", "T-1"], ["merge", "T-2"]], in: root)
        #expect(results.map(\.status) == [0, 0], "\(results.map(\.stderr))")
        let subjects = try git(["log", "--first-parent", "--format=%s", "main"], in: service).split(separator: "\n")
        #expect(Set(subjects.prefix(2)) == ["Merge T-1: Ticket a", "Merge T-2: Ticket b"])
        #expect(try git(["ls-tree", "--name-only", "main", "a.txt", "b.txt"], in: service) == "a.txt\nb.txt")
        // The same ticket twice: one lands, the other gets an error.
        let same = try concurrently([["merge", "T-3"], ["merge", "T-3"]], in: root)
        #expect(same.map(\.status).sorted() == [0, 1], "\(same.map(\.stderr))")
        #expect(same.contains { $0.stderr.hasPrefix("error: ") })
        #expect(try git(["log", "--first-parent", "--format=%s", "main"], in: service).split(separator: "\n").filter { $0 == "Merge T-3: Ticket c" }.count == 1)
        #expect(try git(["status", "--porcelain"], in: service) == "")
        try git(["fsck", "--strict"], in: service)
    }

    @Test func eventsCanBeReadFromACursor() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        let all = try ratchet(["events", "--json"], in: root)
        let page = try #require(try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any])
        let events = try #require(page["events"] as? [[String: Any]])
        #expect(events.map { $0["kind"] as? String } == ["workspace.created", "service.added"])
        let cursor = try #require(events.first?["seq"] as? Int)
        let rest = try ratchet(["events", "--since", "\(cursor)"], in: root)
        #expect(rest.stdout.split(separator: "\n").count == 1 && rest.stdout.contains("service.added"))
    }
}

@Suite("Sandbox policy")
struct SandboxPolicyTests {
    @Test func agentsRunUnsandboxedOnlyWhenTheServiceAllowsItAndTheCommandAsks() throws {
        let folder = ScratchFolder()
        let root = folder("ws")
        #expect(try ratchet(["init", root], in: folder.path).status == 0)
        #expect(try ratchet(["service", "add", "svc", "--template", "kv-cache"], in: root).status == 0)
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Sandboxed only"], in: root).status == 0)
        let missing = ["RATCHET_BUBBLEWRAP": folder("no-bwrap")]
        let refused = try ratchet(["work", "T-1", "--agent", "command:echo x > x.txt"], in: root, environment: missing)
        #expect(refused.status != 0)
        #expect(refused.stderr.hasPrefix("error: bubblewrap is not installed"), "\(refused.stderr)")
        // The shipped template does not allow unsandboxed runs, flag or not.
        let notAllowed = try ratchet(["work", "T-1", "--unsandboxed", "--agent", "command:echo x > x.txt"], in: root)
        #expect(notAllowed.stderr.hasPrefix("error: service svc does not allow running unsandboxed"), "\(notAllowed.stderr)")
        // Nothing was claimed.
        #expect(try ratchet(["ticket", "show", "T-1", "--json"], in: root).stdout.contains("\"state\" : \"open\""))
        // A person allows it; the flag then runs the agent without bubblewrap, warned (not a
        // terminal here) and recorded.
        let service = root + "/services/svc"
        let yaml = try String(contentsOfFile: service + "/service.yaml", encoding: .utf8)
        try Data(yaml.replacingOccurrences(of: "allow_unsandboxed: false", with: "allow_unsandboxed: true").utf8)
            .write(to: URL(fileURLWithPath: service + "/service.yaml"))
        try git(["commit", "-qam", "Allow unsandboxed agents"], in: service)
        let unsandboxed = try ratchet(["work", "T-1", "--unsandboxed", "--agent", "command:echo x > x.txt"], in: root, environment: missing)
        #expect(unsandboxed.status == 0, "\(unsandboxed.stderr)")
        #expect(unsandboxed.stderr.contains("warning: agent command of T-1/1 runs UNSANDBOXED"), "\(unsandboxed.stderr)")
        #expect(try ratchet(["events", "--json"], in: root).stdout.contains("security.unsandboxed"))
    }
}

@Suite("Packing")
struct PackingCommandTests {
    @Test func aLandingPacksInTheBackgroundAndDoctorWaitsForIt() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        let path = root + "/services/svc"
        // Unreferenced loose objects, as many landings with loose objects would leave them.
        let script = "import hashlib, os, sys, zlib\nfor i in range(1500):\n    body = b'loose %d\\n' % i\n    raw = b'blob %d\\0' % len(body) + body\n    hexid = hashlib.sha1(raw).hexdigest()\n    folder = os.path.join(sys.argv[1], hexid[:2])\n    os.makedirs(folder, exist_ok=True)\n    open(os.path.join(folder, hexid[2:]), 'wb').write(zlib.compress(raw))\n"
        let written = try run(["python3", "-c", script, path + "/.git/objects"], in: path)
        #expect(written.status == 0, "\(written.stderr)")
        #expect(try git(["count-objects", "-v"], in: path).split(separator: "\n").first.map { Int($0.dropFirst("count: ".count)) ?? 0 } ?? 0 >= 1500)
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Pack", "--accept", "command:test -f x.txt"], in: root).status == 0)
        #expect(try ratchet(["work", "T-1", "--agent", "command:echo x > x.txt"], in: root).status == 0)
        let merged = try ratchet(["merge", "T-1"], in: root)
        #expect(merged.status == 0, "\(merged.stderr)")
        // The landing handed its pack lock to a packer before it returned: wait on the lock.
        #expect(try run(["flock", root + "/.ratchet/locks/pack-svc", "true"], in: root).status == 0)
        #expect(try git(["count-objects", "-v"], in: path).contains("count: 0\n"))
        func json(_ text: String) throws -> [String: Any] { try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) }
        let events = try #require(try json(try ratchet(["events", "--json"], in: root).stdout)["events"] as? [[String: Any]])
        let packed = try #require(events.first { $0["kind"] as? String == "service.packed" }?["data"] as? [String: Any])
        #expect(packed["background"] as? Bool == true)
        #expect((packed["objects"] as? Int ?? 0) >= 1500)
        try git(["fsck", "--strict", "--no-dangling"], in: path)
        // By hand: nothing left over the thresholds, then a full packing combines the small packs.
        let idle = try ratchet(["service", "pack", "svc", "--if-needed", "--json"], in: root)
        #expect(idle.status == 0)
        let idleResult = try json(idle.stdout)
        #expect(idleResult["objects"] as? Int == 0 && idleResult["packs_combined"] as? Int == 0, "\(idle.stdout)")
        let full = try ratchet(["service", "pack", "svc"], in: root)
        #expect(full.status == 0 && full.stdout.contains("combined"), "\(full.stdout)")
        #expect((try json(try ratchet(["doctor", "--json"], in: root).stdout)["findings"] as? [Any])?.isEmpty == true)
        try git(["fsck", "--strict", "--no-dangling"], in: path)
        expectError(try ratchet(["service", "pack", "nope"], in: root), containing: "nope")
        // A descriptor that is not the handed-over pack lock is refused (stdin here).
        expectError(try ratchet(["service", "pack", "svc", "--lock-fd", "0"], in: root), containing: "is not the pack lock of svc")
    }

    @Test func doctorRemovesWhatAKilledFlushLeftInThePackFolder() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        let packs = root + "/services/svc/.git/objects/pack"
        let before = try FileManager.default.contentsOfDirectory(atPath: packs).sorted()
        // A flush killed between its pack and its index, and one killed while writing the index.
        let orphan = packs + "/pack-" + String(repeating: "ab", count: 20) + ".pack"
        try Data("PACK".utf8).write(to: URL(fileURLWithPath: orphan))
        try Data("partial".utf8).write(to: URL(fileURLWithPath: packs + "/tmp_idx_1_2"))
        func json(_ text: String) throws -> [String: Any] { try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) }
        let found = try #require(try json(try ratchet(["doctor", "--json"], in: root).stdout)["findings"] as? [[String: Any]])
        #expect(found.filter { $0["kind"] as? String == "stale-lock" }.count == 2, "\(found)")
        #expect(FileManager.default.fileExists(atPath: orphan))
        #expect(try ratchet(["doctor", "--repair"], in: root).status == 0)
        #expect(!FileManager.default.fileExists(atPath: orphan))
        #expect(!FileManager.default.fileExists(atPath: packs + "/tmp_idx_1_2"))
        // Exactly what was there before stays, and the repo is whole.
        #expect(try FileManager.default.contentsOfDirectory(atPath: packs).sorted() == before)
        #expect((try json(try ratchet(["doctor", "--json"], in: root).stdout)["findings"] as? [Any])?.isEmpty == true)
        try git(["fsck", "--strict"], in: root + "/services/svc")
    }
}


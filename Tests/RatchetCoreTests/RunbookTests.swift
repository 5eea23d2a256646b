import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetTestSupport
import Testing

@Suite("Runbook format and file actions")
struct RunbookFormatTests {
    @Test func setKeyChangesOnlyTheValueInJSONYAMLAndTOML() throws {
        let json = "{\n  \"capacity\": 1024,\n  \"nested\": {\"port\": 8080, \"name\": \"a\"},\n  \"list\": [1, {\"x\": 2}]\n}\n"
        #expect(try ConfigEdit.set("capacity", to: .number(2048), in: json, format: .json, file: "c.json")
            == json.replacingOccurrences(of: "1024", with: "2048"))
        #expect(try ConfigEdit.set("nested.name", to: .string("b\"c"), in: json, format: .json, file: "c.json").contains(#""name": "b\"c""#))
        #expect(try ConfigEdit.locate("list.1.x", in: json, format: .json, file: "c.json").value == .number(2))
        let yaml = "# comment\nserver:\n  port: 8080   # the port\n  name: 'x'\nlimits:\n  port: 1\n"
        let edited = try ConfigEdit.set("server.port", to: .number(9090), in: yaml, format: .yaml, file: "c.yaml")
        #expect(edited == yaml.replacingOccurrences(of: "port: 8080", with: "port: 9090"))
        let toml = "title = \"t\" # c\n[server]\nport = 8_080\nenabled = false\n[limits]\nport = 1\n"
        #expect(try ConfigEdit.set("server.port", to: .number(9090), in: toml, format: .toml, file: "c.toml")
            == toml.replacingOccurrences(of: "8_080", with: "9090"))
        #expect(try ConfigEdit.set("server.enabled", to: .bool(true), in: toml, format: .toml, file: "c.toml").contains("enabled = true"))
    }

    @Test func aMissingKeyOrANonScalarIsAClearError() throws {
        #expect(message { _ = try ConfigEdit.locate("capacit", in: "{\"capacity\": 1}", format: .json, file: "config/cache.json") }
            == "config/cache.json: no key capacit")
        #expect(message { _ = try ConfigEdit.locate("a", in: "{\"a\": {\"b\": 1}}", format: .json, file: "c.json") }?.contains("not a scalar") == true)
        #expect(message { _ = try ConfigEdit.locate("server", in: "server:\n  port: 1\n", format: .yaml, file: "c.yaml") }?.contains("not a scalar") == true)
        #expect(message { _ = try ConfigEdit.locate("x.y", in: "[x]\nz = 1\n", format: .toml, file: "c.toml") } == "c.toml: no key x.y")
    }

    @Test func patchesApplyLikeGitApplyAllOrNothing() throws {
        let files = ["a.txt": "one\ntwo\nthree\nfour\n", "b.txt": "x\n"]
        let patch = """
            --- a/a.txt
            +++ b/a.txt
            @@ -1,3 +1,3 @@
             one
            -two
            +TWO
             three
            --- /dev/null
            +++ b/new/c.txt
            @@ -0,0 +1 @@
            +created
            --- a/b.txt
            +++ /dev/null
            @@ -1 +0,0 @@
            -x

            """
        let result = try UnifiedPatch.parse(patch).apply { files[$0].map { Array($0.utf8) } }
        let byPath = Dictionary(uniqueKeysWithValues: result.map { ($0.path, $0.content.map { String(decoding: $0, as: UTF8.self) }) })
        #expect(byPath["a.txt"] == "one\nTWO\nthree\nfour\n")
        #expect(byPath["new/c.txt"] == "created\n")
        #expect(byPath["b.txt"] == .some(nil))
        // The same hunk found lower in the file (git apply's offset), and a context that differs.
        let shifted = try UnifiedPatch.parse(patch.components(separatedBy: "--- /dev/null")[0]).apply { _ in Array("zero\none\ntwo\nthree\n".utf8) }
        #expect(shifted.first?.content.map { String(decoding: $0, as: UTF8.self) } == "zero\none\nTWO\nthree\n")
        #expect(message { _ = try UnifiedPatch.parse(patch).apply { _ in Array("other\n".utf8) } }?.contains("does not apply") == true)
        #expect(message { _ = try UnifiedPatch.parse("--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n") }?.contains("not a relative path") == true)
    }

    @Test func aRunbookIsValidatedWithFileAndKeyInEveryError() throws {
        let good = try Runbook.parse(Self.runbook(start: "a", steps: "  a: {action: note, args: {text: hi}, risk: none, effect: read, next: b}\n  b: {action: done, args: {summary: ok}, risk: none, effect: end}\n"), file: "runbooks/r.yaml")
        #expect(good.steps.count == 2 && good.maxSteps == Runbook.defaultMaxSteps)
        let cases: [(String, String)] = [
            ("  a: {action: set_key, args: {file: f.json, key: k, value: 1}, risk: low, effect: read, next: b}\n", "runbooks/r.yaml: steps.a.effect: action set_key has effect write-worktree"),
            ("  a: {action: note, args: {text: hi}, risk: none, effect: read, next: nowhere}\n", "runbooks/r.yaml: steps.a.next: names no step"),
            ("  a: {action: sudo, risk: none, effect: read, next: a}\n", "runbooks/r.yaml: steps.a.action: unknown action 'sudo'"),
            ("  a: {action: metrics, risk: none, effect: read, next: a}\n", "runbooks/r.yaml: steps.a.args.expr: is required"),
            ("  a: {action: metrics, args: {expr: up}, risk: none, effect: read, next: [{when: value >> 1, goto: a}, {goto: a}]}\n", "steps.a.next[0].when"),
            ("  a: {action: set_key, args: {file: f.json, key: k, value: 1, add: 2}, risk: low, effect: write-worktree, next: a}\n", "takes exactly one of value, multiply, add"),
        ]
        for (steps, expected) in cases {
            let error = message { _ = try Runbook.parse(Self.runbook(start: "a", steps: steps), file: "runbooks/r.yaml") }
            #expect(error?.contains(expected) == true, "got: \(error ?? "no error")")
        }
    }

    static func runbook(start: String, steps: String, triggers: String = "[invariant:broken]", extra: String = "") -> String {
        "name: test\ntriggers: \(triggers)\n\(extra)start: \(start)\nsteps:\n" + steps
    }
}

@Suite("The runbook agent")
struct RunbookAgentTests {
    /// A workspace whose service has `runbooks/test.yaml` on main, and a ticket from `source`.
    func setUp(_ folder: ScratchFolder, runbook: String, source: String = "invariant:broken",
               extraFiles: (String) throws -> Void = { _ in }) throws -> (Workspace, String) {
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        try Data(runbook.utf8).write(to: URL(fileURLWithPath: path + "/runbooks/test.yaml"))
        try extraFiles(path)
        try git(["add", "-A"], in: path)
        try git(["commit", "-qm", "Add a test runbook"], in: path)
        var draft = TicketDraft(service: "svc", title: "Fix the breach")
        draft.source = source
        return (workspace, try workspace.createTicket(draft).id)
    }

    @Test func theRunbookAgentWalksItsTreeWithOneStepCommitPerFileAction() throws {
        let folder = ScratchFolder()
        let steps = """
              read: {action: ticket, risk: none, effect: read, next: raise}
              raise:
                action: set_key
                args: {file: config/cache.json, key: capacity, multiply: 4, max: 3000}
                risk: low
                effect: write-worktree
                next: [{when: value >= 3000, goto: readme}, {goto: give_up}]
              readme:
                action: replace_text
                args: {file: README.md, find: "# kv-cache", replace: "# kv-cache (tuned)", expect: 1}
                risk: low
                effect: write-worktree
                next: patch
              patch:
                action: apply_patch
                args: {file: runbooks/notes.diff}
                risk: medium
                effect: write-worktree
                next: tests
              tests: {action: test, risk: none, effect: read, next: [{when: exit_code == 0, goto: finish}, {goto: give_up}]}
              finish: {action: done, args: {summary: tuned}, risk: none, effect: end}
              give_up: {action: escalate, args: {reason: no}, risk: none, effect: end}

            """
        let (workspace, id) = try setUp(folder, runbook: RunbookFormatTests.runbook(start: "read", steps: steps)) { path in
            try Data("--- /dev/null\n+++ b/docs/tuning.md\n@@ -0,0 +1 @@\n+Capacity was raised by the runbook.\n".utf8)
                .write(to: URL(fileURLWithPath: path + "/runbooks/notes.diff"))
        }
        let attempt = try workspace.work(ticket: id, agent: "runbook")
        #expect(attempt.state.rawValue == "proposed")
        let path = workspace.servicePath("svc")
        #expect(try git(["show", "\(attempt.branch):config/cache.json"], in: path).contains("\"capacity\": 3000,"))
        #expect(try git(["show", "\(attempt.branch):docs/tuning.md"], in: path) == "Capacity was raised by the runbook.")
        // Three file actions, three step commits by the runbook agent, with the trailers.
        let log = try git(["log", "--format=%an|%s|%(trailers:key=Step,valueonly)", "main..\(attempt.branch)"], in: path)
        let lines = log.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.hasPrefix("runbook|\(id): ") })
        #expect(lines.last?.contains("Set capacity in config/cache.json to 3000") == true)
        let trajectory = try workspace.trajectoryDocument(attempt.trajectoryId)
        #expect(trajectory.steps.map(\.action.tool) == ["ticket", "set_key", "replace_text", "apply_patch", "test", "done"])
        #expect(trajectory.steps.map(\.action.risk) == ["none", "low", "low", "medium", "none", "none"])
        #expect(trajectory.steps.filter { $0.commit != nil }.map(\.action.tool) == ["set_key", "replace_text", "apply_patch"])
        #expect(try run(["git", "fsck", "--strict"], in: path).status == 0)
    }

    @Test func aMissingKeyFailsTheStepClearly() throws {
        let folder = ScratchFolder()
        let steps = """
              raise: {action: set_key, args: {file: config/cache.json, key: capacty, value: 5}, risk: low, effect: write-worktree, next: finish}
              finish: {action: done, args: {summary: x}, risk: none, effect: end}

            """
        let (workspace, id) = try setUp(folder, runbook: RunbookFormatTests.runbook(start: "raise", steps: steps))
        let error = message { try workspace.work(ticket: id, agent: "runbook") }
        #expect(error?.contains("runbooks/test.yaml: step raise (set_key) failed: config/cache.json: no key capacty") == true, "got \(error ?? "-")")
        #expect(try workspace.ticket(id).state.rawValue == "open")
        let steps2 = try workspace.trajectoryDocument(try workspace.ticketView(id).attempts[0].trajectory).steps
        #expect(steps2.map(\.observation.ok) == [false])
        try expectConsistent(workspace)
    }

    /// Bad input of issue 14: a runbook that names a file the worktree does not have fails
    /// its step with the file named, for every file action, and leaves no commit behind.
    @Test func aMissingFileFailsTheStepClearly() throws {
        for (action, args) in [("set_key", "{file: config/absent.json, key: capacity, value: 5}"),
                               ("replace_text", "{file: config/absent.json, find: a, replace: b}")] {
            let folder = ScratchFolder()
            let steps = """
                  edit: {action: \(action), args: \(args), risk: low, effect: write-worktree, next: finish}
                  finish: {action: done, args: {summary: x}, risk: none, effect: end}

                """
            let (workspace, id) = try setUp(folder, runbook: RunbookFormatTests.runbook(start: "edit", steps: steps))
            let error = message { try workspace.work(ticket: id, agent: "runbook") }
            #expect(error?.contains("runbooks/test.yaml: step edit (\(action)) failed: no file config/absent.json in the worktree") == true, "got \(error ?? "-")")
            #expect(try workspace.ticket(id).state.rawValue == "open")
            let attempt = try workspace.ticketView(id).attempts[0]
            #expect(try workspace.trajectoryDocument(attempt.trajectory).steps.map(\.observation.ok) == [false])
            #expect(try git(["rev-list", "--count", "main..ticket/\(id)/1"], in: workspace.servicePath("svc")) == "0")
            try expectConsistent(workspace)
        }
    }

    @Test func aLoopWithoutAnExitIsBoundedByTheStepLimit() throws {
        let folder = ScratchFolder()
        let steps = "  spin: {action: note, args: {text: again}, risk: none, effect: read, next: spin}\n"
        let (workspace, id) = try setUp(folder, runbook: RunbookFormatTests.runbook(start: "spin", steps: steps, extra: "max_steps: 7\n"))
        let error = message { try workspace.work(ticket: id, agent: "runbook") }
        #expect(error?.contains("took 7 steps without reaching done or escalate") == true, "got \(error ?? "-")")
        #expect(try workspace.trajectoryDocument(try workspace.ticketView(id).attempts[0].trajectory).steps.count == 7)
        try expectConsistent(workspace)
    }

    @Test func escalateAndAnUnmatchedSourceEscalateAtOnce() throws {
        let folder = ScratchFolder()
        let steps = "  stop: {action: escalate, args: {reason: a person must look}, risk: none, effect: end}\n"
        let (workspace, id) = try setUp(folder, runbook: RunbookFormatTests.runbook(start: "stop", steps: steps))
        #expect(message { try workspace.work(ticket: id, agent: "runbook") }?.contains("escalated: runbook test: a person must look") == true)
        #expect(try workspace.ticket(id).state.rawValue == "escalated")
        var draft = TicketDraft(service: "svc", title: "Nobody has a runbook for this")
        draft.source = "invariant:unknown"
        let other = try workspace.createTicket(draft).id
        #expect(message { try workspace.work(ticket: other, agent: "runbook") }?.contains("no runbook in runbooks/ matches the ticket's source invariant:unknown") == true)
        #expect(try workspace.ticket(other).state.rawValue == "escalated")
        try expectConsistent(workspace)
    }

    /// A hostile main: a committed symbolic link leads out of the worktree. The file actions
    /// run in Ratchet's own process and must not follow it (openat2 RESOLVE_BENEATH|NO_SYMLINKS).
    @Test func fileActionsNeverFollowACommittedSymlinkOutOfTheWorktree() throws {
        let folder = ScratchFolder()
        let outside = folder("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let secret = "{\n  \"capacity\": 1\n}\n"
        try Data(secret.utf8).write(to: URL(fileURLWithPath: outside + "/cache.json"))
        for (file, expected) in [("linked/cache.json", "passes through a symbolic link"), ("config/outside.json", "symbolic link")] {
            let steps = """
                  raise: {action: set_key, args: {file: \(file), key: capacity, value: 99}, risk: low, effect: write-worktree, next: finish}
                  finish: {action: done, args: {summary: x}, risk: none, effect: end}

                """
            let scratch = ScratchFolder()
            let (workspace, id) = try setUp(scratch, runbook: RunbookFormatTests.runbook(start: "raise", steps: steps)) { path in
                try FileManager.default.createSymbolicLink(atPath: path + "/linked", withDestinationPath: outside)
                try FileManager.default.createSymbolicLink(atPath: path + "/config/outside.json", withDestinationPath: outside + "/cache.json")
            }
            let error = message { try workspace.work(ticket: id, agent: "runbook") }
            #expect(error?.contains(expected) == true, "got \(error ?? "-")")
            #expect(try String(contentsOfFile: outside + "/cache.json", encoding: .utf8) == secret)
            try expectConsistent(workspace)
        }
        // The patch action too: a patch naming a path through the link changes nothing outside.
        let steps = """
              patch: {action: apply_patch, args: {patch: "--- a/linked/cache.json\\n+++ b/linked/cache.json\\n@@ -1,3 +1,3 @@\\n {\\n-  \\"capacity\\": 1\\n+  \\"capacity\\": 2\\n }\\n"}, risk: medium, effect: write-worktree, next: finish}
              finish: {action: done, args: {summary: x}, risk: none, effect: end}

            """
        let scratch = ScratchFolder()
        let (workspace, id) = try setUp(scratch, runbook: RunbookFormatTests.runbook(start: "patch", steps: steps)) { path in
            try FileManager.default.createSymbolicLink(atPath: path + "/linked", withDestinationPath: outside)
        }
        #expect(message { try workspace.work(ticket: id, agent: "runbook") }?.contains("symbolic link") == true)
        #expect(try String(contentsOfFile: outside + "/cache.json", encoding: .utf8) == secret)
    }
}

import Foundation
import RatchetTestSupport
import Testing

/// The scripted MCP agent (Tests/ScriptedMCPAgent), built beside `ratchet`.
private let scriptedMCPAgent = (ratchetBinary as NSString).deletingLastPathComponent + "/ratchet-scripted-mcp-agent"

/// What makes the scripted agent visible inside the sandbox (read-only, at /run/ratchet/bin).
private let mcpAgentInTheSandbox = ["RATCHET_SANDBOX_BINARIES": scriptedMCPAgent]

/// Decodes the JSON on stdout.
private func object(_ output: Output) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] else {
        throw TestFailure("not a JSON object: \(output.stdout.prefix(300))")
    }
    return object
}

/// The steps of ticket T-1's latest trajectory: tool, ok, output, usage, commit.
private func steps(_ ws: HostileWorkspace, _ key: String = "T-1") throws -> [[String: Any]] {
    try object(ws.expectOK(["trajectory", "show", key, "--json"]))["steps"] as? [[String: Any]] ?? []
}

/// Runs the ATIF schema validator (scripts/validate-atif.py) on `files`.
private func validateATIF(_ files: [String]) throws -> Output {
    try run(["python3", repositoryRoot + "/scripts/validate-atif.py", repositoryRoot + "/docs/atif-schema.json"] + files)
}

@Suite("Tool surface and trajectories")
struct ToolSurfaceTests {
    @Test func aSandboxedAgentActsThroughTheToolsAndItsTrajectoryLandsInTheNote() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder)
        let agent = """
            ratchet tool ticket > /tmp/brief.txt; echo hi > notes.txt; \
            ratchet tool commit -m 'Add notes' --tokens-in 100 --tokens-out 20 --cost-usd 0.01; \
            ratchet tool note weighing the options; ratchet tool frobnicate 2> /tmp/frob.txt; ratchet tool commit 2> /tmp/nomsg.txt; \
            ratchet tool invariants > /tmp/invariants.txt; ratchet tool metrics 'sum(up)' > /tmp/metrics.txt; ratchet tool metrics 'sum(' 2> /tmp/bad.txt; \
            echo 'ratchet-usage: tokens_in=5 tokens_out=7 cost_usd=0.002'; grep -q '## How to finish' /tmp/brief.txt || exit 3; \
            ratchet tool done 'added notes'; ratchet tool note too late || true
            """
        let work = try ws.attack(agent)
        #expect(work.status == 0, "\(work.stderr)")
        let recorded = try steps(ws)
        #expect(recorded.map { $0["action"].flatMap { ($0 as? [String: Any])?["tool"] as? String } } ==
                ["ticket", "commit", "note", "frobnicate", "commit", "invariants", "metrics", "metrics", "done", "note", "command"])
        let oks = recorded.map { ($0["observation"] as? [String: Any])?["ok"] as? Bool }
        #expect(oks == [true, true, true, false, false, true, true, false, true, false, true])
        // The invariants tool reports the template's invariants through the observe seam; a bad expression is refused.
        #expect(((recorded[5]["observation"] as? [String: Any])?["output"] as? String)?.contains("invariant") == true)
        // The step commit is the branch's commit; usage is on the step; the printed usage on the command step.
        let commitSha = recorded[1]["commit"] as? String
        #expect(commitSha == (try ws.git(["rev-parse", "ticket/T-1/1"])))
        #expect((recorded[1]["usage"] as? [String: Any])?["cost_usd"] as? Double == 0.01)
        #expect((recorded[10]["usage"] as? [String: Any])?["tokens_out"] as? Int == 7)
        #expect(((recorded[9]["observation"] as? [String: Any])?["output"] as? String)?.contains("tools are closed") == true)
        // It lands; the landing's note holds the whole trajectory.
        try ws.expectOK(["merge", "T-1"])
        let note = try ws.git(["notes", "--ref", "ratchet", "show", "main"])
        let trajectory = try object(ws.expectOK(["trajectory", "show", "T-1/1", "--json"]))
        #expect(note.contains(trajectory["id"] as? String ?? "?") && note.contains("weighing the options") && note.contains("frobnicate"))
        #expect((trajectory["outcome"] as? [String: Any])?["status"] as? String == "landed")
        let initial = trajectory["initial_state"] as? [String: Any]
        #expect(initial?["main"] as? String != nil && initial?["invariants"] is [Any] && initial?["metrics"] != nil, "\(initial ?? [:])")
        // The timeline reads on a terminal; the ATIF export validates against the pinned schema.
        let timeline = try ws.expectOK(["trajectory", "show", "T-1"]).stdout
        #expect(timeline.contains("commit [low/commit]") && timeline.contains("outcome: landed"))
        let file = folder("export.atif.jsonl")
        try ws.expectOK(["trajectory", "export", "--format", "atif", "--output", file])
        let validation = try validateATIF([file])
        #expect(validation.status == 0, "\(validation.stdout)")
        #expect(validation.stdout.contains("1 document(s), 0 invalid"))
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any]
        #expect(document?["schema_version"] as? String == "ATIF-v1.6")
        let definitions = (document?["agent"] as? [String: Any])?["tool_definitions"] as? [[String: Any]] ?? []
        #expect(definitions.compactMap { ($0["function"] as? [String: Any])?["name"] as? String }
                == ["ticket", "metrics", "invariants", "test", "canary", "commit", "note", "escalate", "done"])
    }

    /// An MCP-driven attempt inside the sandbox, as root and as nobody: the scripted agent is
    /// bound read-only at /run/ratchet/bin (RATCHET_SANDBOX_BINARIES) and talks to `ratchet mcp`
    /// there (the thin client handing over to the full binary).
    @Test(arguments: Identity.all)
    func anAttemptDrivenByAnMCPClientLandsWithItsTrajectoryInTheNote(identity: Identity) throws {
        let folder = ScratchFolder()
        let ws = try identity.workspace(folder)
        let work = try ws.attack("ratchet-scripted-mcp-agent /run/ratchet/bin/ratchet land", environment: mcpAgentInTheSandbox)
        #expect(work.status == 0, "\(work.stderr)")
        let recorded = try steps(ws)
        let tools = recorded.compactMap { ($0["action"] as? [String: Any])?["tool"] as? String }
        #expect(tools == ["ticket", "commit", "commit", "done", "command"])
        #expect((recorded[2]["usage"] as? [String: Any])?["tokens_in"] as? Int == 1200)
        #expect(try ws.git(["show", "ticket/T-1/1:mcp.txt"]) == "written over MCP")
        try ws.expectOK(["merge", "T-1"])
        let note = try ws.git(["notes", "--ref", "ratchet", "show", "main"])
        #expect(note.contains("Write mcp.txt") && note.contains("\"landed\""))
    }

    @Test func anMCPClientThatDisconnectsMidCallLeavesTheCallRecordedAndTheAttemptWhole() throws {
        let folder = ScratchFolder()
        let fifo = folder("running.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let ws = try Identity.caller.workspace(folder, edits: [
            ("allow_unsandboxed: false", "allow_unsandboxed: true"),
            ("test: python3 -m unittest discover -s tests -q", "test: echo running > \(fifo)"),
        ])
        let work = try ws.attack("RATCHET_TEST_FIFO=\(fifo) \(scriptedMCPAgent) \(ratchetBinary) disconnect", flags: ["--unsandboxed"])
        #expect(work.status == 0, "\(work.stderr)")
        let recorded = try steps(ws)
        let test = recorded.first { ($0["action"] as? [String: Any])?["tool"] as? String == "test" }
        #expect((test?["observation"] as? [String: Any])?["ok"] as? Bool == true)
        #expect(try object(ws.expectOK(["ticket", "show", "T-1", "--json"]))["state"] as? String == "proposed")
    }

    /// The `canary` tool judges the branch's head against main with main's canary (the
    /// shipped kv-cache module, its timing allowances widened by judgeCanaryWithoutTiming):
    /// refused before anything is committed, `pass` for a harmless change, not `pass` for a
    /// cache whose GETs always miss (hit ratio).
    @Test func theCanaryToolJudgesTheBranchHeadAgainstMain() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder)
        let agent = """
            ratchet tool canary 2> /tmp/before.txt; echo notes > notes.txt; ratchet tool commit -m 'Add notes'; \
            ratchet tool canary > /tmp/pass.txt; \
            sed -i 's/^                    return value$/                    return None/' kvcache/cache.py; \
            ratchet tool commit -m 'Every GET misses'; ratchet tool canary; exit 0
            """
        let work = try ws.attack(agent)
        #expect(work.status == 0, "\(work.stderr)")
        let recorded = try steps(ws)
        let canaries = recorded.filter { ($0["action"] as? [String: Any])?["tool"] as? String == "canary" }
        let observations = canaries.compactMap { $0["observation"] as? [String: Any] }
        #expect(observations.count == 3)
        guard observations.count == 3 else { return }
        #expect(observations[0]["ok"] as? Bool == false && (observations[0]["output"] as? String)?.contains("call commit first") == true)
        let verdicts = observations.dropFirst().map { ($0["data"] as? [String: Any])?["verdict"] as? String }
        // With the test's 3–6 rounds the judge may call the miss-everything cache marginal rather than fail; never pass.
        #expect(verdicts.first == "pass" && ["fail", "marginal"].contains(verdicts.last ?? nil), "\(observations.dropFirst().map { $0["output"] ?? "" })")
        #expect(observations[1]["ok"] as? Bool == true && (observations[1]["output"] as? String)?.hasSuffix(": pass") == true)
        // Each judged the head of its moment: the step commit just before it.
        let commits = recorded.filter { ($0["action"] as? [String: Any])?["tool"] as? String == "commit" }.compactMap { $0["commit"] as? String }
        #expect(commits.count == 2 && (observations[2]["output"] as? String)?.contains(String(commits[1].prefix(7))) == true)
        let canaryRisk = (canaries[1]["action"] as? [String: Any])?["risk"] as? String
        #expect(canaryRisk != nil && canaryRisk != "none")
    }

    @Test func escalateEndsTheAttemptAndEscalatesTheTicketAtOnce() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder)
        let work = try ws.attack("echo x > x.txt; ratchet tool escalate 'the cache needs a person'; ratchet tool note after; exit 0")
        #expect(work.status != 0)
        #expect(work.stderr.contains("escalated by the agent: the cache needs a person"), "\(work.stderr)")
        let ticket = try object(ws.expectOK(["ticket", "show", "T-1", "--json"]))
        #expect(ticket["state"] as? String == "escalated")
        let trajectory = try object(ws.expectOK(["trajectory", "show", "T-1", "--json"]))
        #expect((trajectory["outcome"] as? [String: Any])?["status"] as? String == "escalated")
        let notes = (trajectory["steps"] as? [[String: Any]] ?? []).filter { ($0["action"] as? [String: Any])?["tool"] as? String == "note" }
        #expect(notes.count == 1 && (notes[0]["observation"] as? [String: Any])?["ok"] as? Bool == false)
    }

    @Test func toolCallsOutsideAnAttemptOrForAnotherTrajectoryAreRefused() throws {
        let folder = ScratchFolder()
        let outside = try run([ratchetBinary, "tool", "note", "hello"], in: folder.path)
        #expect(outside.status != 0 && outside.stderr.hasPrefix("error: no attempt to act for"), "\(outside.stderr)")
        let mcp = try run([ratchetBinary, "mcp"], in: folder.path)
        #expect(mcp.status != 0 && mcp.stderr.hasPrefix("error: no attempt to act for"))
        let forgedPath = try run([ratchetBinary, "tool", "note", "hello"], in: folder.path, environment: ["RATCHET_SOCKET": folder("nothing.sock")])
        #expect(forgedPath.status != 0 && forgedPath.stderr.contains("cannot reach the attempt's tool socket"), "\(forgedPath.stderr)")
        // Inside an attempt: a forged trajectory id, a socket path of the caller's choosing.
        let ws = try Identity.caller.workspace(folder)
        // Outside an attempt but in a workspace: refused, and recorded where an operator sees it.
        let inWorkspace = try ws.ratchet(["tool", "note", "hello"])
        #expect(inWorkspace.status != 0 && inWorkspace.stderr.contains("recorded as tool.refused"), "\(inWorkspace.stderr)")
        let events = try object(ws.expectOK(["events", "--json"]))["events"] as? [[String: Any]] ?? []
        let refusals = events.filter { $0["kind"] as? String == "tool.refused" }
        #expect(refusals.count == 1 && (refusals.first?["data"] as? [String: Any])?["tool"] as? String == "note", "\(refusals)")
        let agent = """
            RATCHET_TRAJECTORY=01a00000-0000-7000-8000-000000000000 ratchet tool note forged 2> forged.txt; \
            RATCHET_SOCKET=/tmp/elsewhere.sock ratchet tool note elsewhere 2> elsewhere.txt; echo x > x.txt
            """
        #expect(try ws.attack(agent).status == 0)
        #expect(ws.committed("forged.txt")?.contains("this socket serves trajectory") == true, "\(ws.committed("forged.txt") ?? "-")")
        #expect(ws.committed("elsewhere.txt")?.contains("cannot reach") == true)
        let recorded = try steps(ws)
        #expect((recorded.first?["observation"] as? [String: Any])?["ok"] as? Bool == false)
    }

    @Test func secretsAnAgentPrintsReachNeitherStoreNotesNorExportButShasAndUUIDsStay() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder)
        let secret = "sk-ant-" + String(repeating: "Q7x", count: 12)
        let agent = "echo 'token \(secret)'; ratchet tool note 'my key is \(secret)'; echo x > x.txt; ratchet tool commit -m 'Add x'"
        let work = try ws.attack(agent)
        #expect(work.status == 0, "\(work.stderr)")
        try ws.expectOK(["merge", "T-1"])
        let export = try ws.expectOK(["trajectory", "export"]).stdout
        let note = try ws.git(["notes", "--ref", "ratchet", "show", "main"])
        let dump = try run(["sqlite3", ws.root + "/ratchet.sqlite", ".dump"]).stdout
        for (name, text) in [("export", export), ("note", note), ("store", dump)] {
            #expect(!text.contains(secret), "\(name) holds the secret")
            #expect(text.contains("[REDACTED]"), "\(name) shows no redaction")
        }
        let trajectory = try object(ws.expectOK(["trajectory", "show", "T-1", "--json"]))
        let id = trajectory["id"] as? String ?? "?"
        let step = try ws.git(["rev-parse", "ticket/T-1/1"])
        #expect(export.contains(id) && note.contains(id) && export.contains(step))
    }

    @Test func anAgentThatMovesMainAndCallsCommitIsCaughtByThatCall() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder, edits: [("allow_unsandboxed: false", "allow_unsandboxed: true")])
        let main = try ws.git(["rev-parse", "main"])
        let agent = """
            ln -s /etc/passwd leak; ratchet tool commit -m 'A link' > link.txt; \
            git -C \(ws.service) update-ref refs/heads/main $(git -C \(ws.service) -c user.name=a -c user.email=a@x commit-tree main^{tree} -p main -m sneaky); \
            echo y > y.txt; ratchet tool commit -m 'After the move' 2> moved.txt; ratchet tool note still here 2>> moved.txt; exit 0
            """
        let work = try ws.attack(agent, flags: ["--unsandboxed"])
        #expect(work.status != 0 && work.stderr.contains("tampered: refs/heads/main moved"), "\(work.stderr)")
        try ws.expectIntact(main: main)
        let recorded = try steps(ws)
        let commits = recorded.filter { ($0["action"] as? [String: Any])?["tool"] as? String == "commit" }
        // The link is committed as a link (its target's bytes never read); the second commit's call reports the tampering.
        #expect(try ws.git(["cat-file", "-p", "\(commits.first?["commit"] as? String ?? "?"):leak"]) == "/etc/passwd")
        #expect(((commits.last?["observation"] as? [String: Any])?["output"] as? String)?.contains("tampered") == true)
        let closed = recorded.last { ($0["action"] as? [String: Any])?["tool"] as? String == "note" }
        #expect((closed?["observation"] as? [String: Any])?["ok"] as? Bool == false)
        #expect(try ws.expectOK(["events", "--json"]).stdout.contains("security.tamper"))
    }

    @Test func aFloodedOutputIsBoundedAndAKilledAgentClosesItsTrajectory() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder, edits: [("agent_output_bytes: 1048576", "agent_output_bytes: 4096   ")])
        let flood = try ws.attack("head -c 3000000 /dev/zero | tr '\\0' y; echo x > x.txt")
        #expect(flood.status == 0, "\(flood.stderr)")
        let command = try steps(ws).last { ($0["action"] as? [String: Any])?["tool"] as? String == "command" }
        let output = (command?["observation"] as? [String: Any])?["output"] as? String ?? ""
        #expect(output.utf8.count < 4096 + 100 && output.hasSuffix("[… output truncated by Ratchet …]"))
        try ws.expectOK(["ticket", "new", "--service", "svc", "--title", "Killed"])
        let killed = try ws.ratchet(["work", "T-2", "--agent", "command:ratchet tool note starting; echo x > x.txt; kill -9 $$"])
        #expect(killed.status != 0)
        let trajectory = try object(ws.expectOK(["trajectory", "show", "T-2", "--json"]))
        let outcome = trajectory["outcome"] as? [String: Any]
        let error = outcome?["error"] as? String ?? ""
        #expect(outcome?["status"] as? String == "failed" && (error.contains("signal 9") || error.contains("status 137")), "\(outcome ?? [:])")
        #expect((trajectory["steps"] as? [[String: Any]])?.first.flatMap { ($0["action"] as? [String: Any])?["tool"] as? String } == "note")
    }

    /// limits.trajectory_steps: the call that reaches it fails and ends the attempt; calls
    /// after it are answered but not recorded (adr/0043). limits.trajectory_bytes likewise.
    @Test func aTrajectoryAtItsLimitEndsTheAttemptAndGrowsNoFurther() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder, edits: [("agent_change_files: 2000 ", "agent_change_files: 2000\n  trajectory_steps: 10 ")])
        let work = try ws.attack("echo x > x.txt; for i in $(seq 30); do ratchet tool note n$i 2>> /tmp/notes.txt; done; exit 0")
        #expect(work.status != 0 && work.stderr.contains("trajectory limit reached"), "\(work.stderr)")
        let recorded = try steps(ws)
        let notes = recorded.filter { ($0["action"] as? [String: Any])?["tool"] as? String == "note" }
        #expect(notes.count == 10, "\(notes.count) notes recorded")
        let last = notes.last?["observation"] as? [String: Any]
        #expect(last?["ok"] as? Bool == false && (last?["output"] as? String)?.contains("limits.trajectory_steps") == true)
        // Only Ratchet's own closing steps follow (the agent's output, the final step commit).
        #expect(recorded.count <= 12, "\(recorded.count) steps")
        #expect(try object(ws.expectOK(["ticket", "show", "T-1", "--json"]))["state"] as? String != "proposed")

        let bytes = ScratchFolder()
        let big = try Identity.caller.workspace(bytes, edits: [("agent_change_files: 2000 ", "agent_change_files: 2000\n  trajectory_bytes: 65536 ")])
        let text = String(repeating: "b", count: 30_000)
        let flood = try big.attack("echo x > x.txt; for i in 1 2 3 4; do ratchet tool note \(text); done; exit 0")
        #expect(flood.status != 0 && flood.stderr.contains("limits.trajectory_bytes"), "\(flood.stderr)")
        #expect(try steps(big).filter { ($0["action"] as? [String: Any])?["tool"] as? String == "note" }.count == 3)
    }

    @Test func aSpendBudgetEndsTheAttempt() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder, edits: [("agent_change_files: 2000 ", "agent_change_files: 2000\n  ticket_spend_usd: 0.05 ")])
        let work = try ws.attack("echo x > x.txt; ratchet tool note step --cost-usd 0.04; ratchet tool note step --cost-usd 0.04; ratchet tool note more; exit 0")
        #expect(work.status != 0 && work.stderr.contains("spend budget exceeded"), "\(work.stderr)")
        let recorded = try steps(ws)
        #expect(recorded.map { ($0["observation"] as? [String: Any])?["ok"] as? Bool } == [true, false, false, true])
    }

    @Test func exportRefusesAnUnwritablePathAndTheSchemaRejectsABrokenDocument() throws {
        let folder = ScratchFolder()
        let ws = try Identity.caller.workspace(folder)
        let refused = try ws.ratchet(["trajectory", "export", "--output", "/proc/ratchet-export.jsonl"])
        #expect(refused.status != 0 && refused.stderr.hasPrefix("error: cannot write") && refused.stderr.split(separator: "\n").count == 1)
        let unknown = try ws.ratchet(["trajectory", "show", "T-9"])
        #expect(unknown.status != 0 && unknown.stderr.hasPrefix("error:"))
        // Harbor's own example validates; the same with its session id removed does not.
        let example = repositoryRoot + "/Tests/RatchetCLITests/Fixtures/harbor-rfc0001-example.json"
        #expect(try validateATIF([example]).status == 0)
        var broken = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: example))) as? [String: Any] ?? [:]
        broken["session_id"] = nil
        let file = folder("broken.json")
        try JSONSerialization.data(withJSONObject: broken).write(to: URL(fileURLWithPath: file))
        #expect(try validateATIF([file]).status == 1)
    }

    @Test func atifDocumentsWrittenByOthersValidateAndV1_7IsRefused() throws {
        let folder = ScratchFolder()
        let fixtures = repositoryRoot + "/Tests/RatchetCLITests/Fixtures/"
        // The RFC's own example (v1.5, with tool definitions) and two v1.6 exports of NVIDIA's NeMo Agent Toolkit.
        let accepted = ["harbor-rfc0001-v1.7-example.json", "atif/nvidia-nat-exmp01_atif.json", "atif/nvidia-nat-exmp02_atif.json"]
        let validation = try validateATIF(accepted.map { fixtures + $0 })
        #expect(validation.status == 0 && validation.stdout.contains("3 document(s), 0 invalid"), "\(validation.stdout)")
        // A v1.7 document is refused, and still refused when it claims v1.6 (llm_call_count is v1.7's).
        let newer = fixtures + "atif/nvidia-nat-exmp04_atif-v1.7.json"
        #expect(try validateATIF([newer]).stdout.contains("ATIF-v1.7"))
        let relabelled = folder("relabelled.json")
        try String(contentsOfFile: newer, encoding: .utf8).replacingOccurrences(of: "ATIF-v1.7", with: "ATIF-v1.6")
            .write(toFile: relabelled, atomically: true, encoding: .utf8)
        let refused = try validateATIF([relabelled])
        #expect(refused.status == 1 && refused.stdout.contains("llm_call_count"), "\(refused.stdout)")
        // Harbor's cross-reference rule: an observation names a tool call of its own step.
        var example = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixtures + accepted[0]))) as? [String: Any] ?? [:]
        var steps = example["steps"] as? [[String: Any]] ?? []
        steps[1]["observation"] = ["results": [["source_call_id": "call_nowhere", "content": "x"]]]
        example["steps"] = steps
        let dangling = folder("dangling.json")
        try JSONSerialization.data(withJSONObject: example).write(to: URL(fileURLWithPath: dangling))
        let crossRef = try validateATIF([dangling])
        #expect(crossRef.status == 1 && crossRef.stdout.contains("call_nowhere"), "\(crossRef.stdout)")
    }
}

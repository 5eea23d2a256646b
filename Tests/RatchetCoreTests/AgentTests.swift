import Foundation
import RatchetCore
import RatchetTestSupport
import Testing

@Suite("Command agents")
struct AgentTests {
    /// Runs a misbehaving agent and checks that the attempt failed cleanly.
    private func expectFailure(_ agent: String, limits: String? = nil, containing text: String) throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, limits: limits)
        let id = try file(workspace, "Misbehave")
        let error = message { try workspace.work(ticket: id, agent: agent) }
        #expect(error?.contains(text) == true, "got: \(error ?? "no error")")
        #expect(try workspace.ticket(id).state.rawValue == "open")
        #expect(try workspace.ticketView(id).attempts.map(\.state) == ["failed"])
        try expectConsistent(workspace)
    }

    @Test func nonZeroExitFailsTheAttempt() throws {
        try expectFailure("command:echo partial > p.txt; exit 3", containing: "agent exited with status 3")
    }

    @Test func hangingAgentIsKilledAtItsTimeLimit() throws {
        try expectFailure("command:sleep 30", limits: "  agent_timeout: 1s\n", containing: "timed out")
    }

    @Test func leftoverChildProcessesAreKilledAndFailTheAttempt() throws {
        let folder = ScratchFolder()
        let pidFile = folder("child.pid")
        try expectFailure("command:sleep 300 & echo $! > \(pidFile); echo done", containing: "left processes running")
        let pid = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // The child is gone (or a zombie awaiting its reaper): never still sleeping.
        let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: " ")[2]
        #expect(state == nil || state == "Z")
    }

    @Test func oversizedFileIsRefused() throws {
        try expectFailure("command:head -c 52428800 /dev/zero > big.bin", containing: "limit")
    }

    @Test func agentThatChangesNothingFails() throws {
        try expectFailure("command:true", containing: "agent made no changes")
    }

    @Test func agentGetsTheRatchetEnvironmentAndNothingElseLeaks() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let id = try file(workspace, "Env")
        setenv("RATCHET_TEST_SECRET", "leak", 1)
        let attempt = try workspace.work(ticket: id, agent: "command:env | sort > env.txt; test -f \"$RATCHET_TICKET_FILE\" && cp \"$RATCHET_TICKET_FILE\" brief.md")
        let env = try git(["show", "\(attempt.head!):env.txt"], in: workspace.servicePath("svc"))
        #expect(env.contains("RATCHET_TICKET=\(id)"))
        #expect(env.contains("RATCHET_TRAJECTORY=\(attempt.trajectoryId)"))
        #expect(env.contains("RATCHET_WORKTREE=\(workspace.worktreePath(ticket: id, attempt: 1))"))
        #expect(env.contains("RATCHET_WORKSPACE=\(workspace.root.path)"))
        #expect(!env.contains("RATCHET_TEST_SECRET"))
        #expect(try git(["show", "\(attempt.head!):brief.md"], in: workspace.servicePath("svc")).hasPrefix("# T-1: Env"))
    }

    @Test func agentThatCommitsOnItsBranchItselfIsProposed() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let id = try file(workspace, "Self-committing agent")
        let attempt = try workspace.work(ticket: id, agent: "command:echo x > x.txt && git add x.txt && git -c user.name=a -c user.email=a@x commit -qm 'agent commit'")
        #expect(try git(["log", "-1", "--format=%s", attempt.branch], in: workspace.servicePath("svc")) == "agent commit")
        #expect(try git(["rev-parse", attempt.branch], in: workspace.servicePath("svc")) == attempt.head)
        try workspace.merge(ticket: id)
        try expectConsistent(workspace)
    }

    @Test func attemptsRunOutIntoEscalation() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let id = try file(workspace, "Never works")
        for _ in 0..<3 { _ = message { try workspace.work(ticket: id, agent: "command:exit 1") } }
        #expect(try workspace.ticket(id).state.rawValue == "escalated")
        #expect(message { try workspace.work(ticket: id, agent: "command:exit 1") }?.contains("escalated") == true)
    }
}

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
        // A sleep with a unique duration is the child's fingerprint (dash has no exec -a).
        let marker = "sleep 300.\(Int.random(in: 100_000...999_999))"
        try expectFailure("command:\(marker) & echo done", containing: "left processes running")
        // The child is gone: nothing carries its marker any more.
        #expect(try run(["pgrep", "-f", marker], in: "/").stdout.isEmpty)
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

    @Test func anAgentCannotCommitItselfAndRatchetCommitsItsWork() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let id = try file(workspace, "Self-committing agent")
        // The sandbox mounts the repository read-only: the process running the attempt owns every write.
        let attempt = try workspace.work(ticket: id, agent: "command:echo x > x.txt; git -c user.name=a -c user.email=a@x commit -qam 'agent commit' || echo refused")
        let path = workspace.servicePath("svc")
        #expect(try git(["log", "-1", "--format=%an|%s", attempt.branch], in: path) == "command|T-1: Self-committing agent")
        #expect(try git(["rev-list", "--count", "main..\(attempt.branch)"], in: path) == "1")
        #expect(try git(["show", "\(attempt.head!):x.txt"], in: path) == "x")
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

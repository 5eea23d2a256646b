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

    /// Ignore rules are the worktree's .gitignore files (the root's and a nested one), read by
    /// Ratchet itself and answered from its private copy: the step commit holds exactly what
    /// `git status` calls untracked and not ignored. (libgit2 1.5, unlike git, does not let a
    /// nested `!pattern` re-include what a parent's rule ignores; Ratchet follows libgit2.)
    @Test func stepCommitsFollowTheWorktreesIgnoreRules() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let id = try file(workspace, "Build with logs")
        let agent = "command:printf '*.log\\nbuild/\\n' > .gitignore && mkdir -p build sub && echo x > build/out.bin && echo l > a.log"
            + " && printf '*.tmp\\n' > sub/.gitignore && echo t > sub/drop.tmp && echo t > top.tmp && echo d > sub/drop.log && echo n > sub/note.txt"
        let attempt = try workspace.work(ticket: id, agent: agent)
        let service = workspace.servicePath("svc")
        let files = try git(["diff", "--name-only", "main", try #require(attempt.head)], in: service).split(separator: "\n").map(String.init)
        #expect(files == [".gitignore", "sub/.gitignore", "sub/note.txt", "top.tmp"], "\(files)")
        let worktree = folder("git-view")
        try git(["worktree", "add", "-q", worktree, try #require(attempt.head)], in: service)
        for file in ["build/out.bin", "a.log", "sub/drop.tmp", "top.tmp", "sub/drop.log"] {
            try FileManager.default.createDirectory(atPath: (worktree + "/" + file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: URL(fileURLWithPath: worktree + "/" + file))
        }
        let status = try git(["status", "--porcelain", "--untracked-files=all"], in: worktree)
        #expect(status == " M top.tmp", "git ignores what Ratchet ignored: \(status)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.scratchPath).allSatisfy { !$0.hasPrefix("ignores-") },
                "the private copy of the ignore rules is removed")
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

import Foundation
import RatchetTestSupport
import Testing

/// Ratchet's own process never opens a file a sandbox could turn into a FIFO with a blocking
/// open (AGENTS.md: such reads are untrusted reads). Each case runs `ratchet work` under
/// `timeout 90`: before the fix all four cases (root, nobody) ended only by SIGKILL (a
/// hostile review's finding; SIGTERM does not end a blocked open).
@Suite("Hostile FIFOs")
struct HostileFIFOTests {
    func work(_ ws: HostileWorkspace, _ arguments: [String]) throws -> Output {
        let environment = ["HOME": ws.home, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"]
        return try run(["timeout", "-k", "10", "90"] + ws.identity.prefix + [ratchetBinary, "work"] + arguments, in: ws.root, environment: environment)
    }

    /// A command agent replaces `.gitignore` with a FIFO and adds a file that sorts before it:
    /// the step commit's ignore check (libgit2 loads the worktree's .gitignore with a blocking
    /// open) waits forever for a writer. The same happens through `ratchet tool commit`.
    @Test(arguments: Identity.all)
    func aFIFOGitignoreCannotHangTheStepCommit(identity: Identity) throws {
        let folder = ScratchFolder()
        let ws = try identity.workspace(folder)
        try ws.expectOK(["ticket", "new", "--service", "svc", "--title", "Fifo gitignore"])
        let main = try ws.git(["rev-parse", "main"])
        let worked = try work(ws, ["T-1", "--agent", "command:rm -f .gitignore && mkfifo .gitignore && echo x > ./-a"])
        #expect(![9, 124, 137].contains(worked.status), "ratchet work hung on the agent's .gitignore FIFO (status \(worked.status))")
        #expect(worked.status == 1 && worked.stderr.contains(".gitignore is not a regular file"), "\(worked.stderr)")
        #expect(try ws.git(["rev-parse", "main"]) == main)
        withExtendedLifetime(folder) {}
    }

    /// A test added on an earlier landing (adding tests needs no approval) leaves a FIFO where a
    /// runbook's file action reads: `BeneathFolder.read` opens it blocking, in Ratchet's process.
    @Test(arguments: Identity.all)
    func aFIFOCannotHangTheRunbookAgentsFileActions(identity: Identity) throws {
        let folder = ScratchFolder()
        let ws = try identity.workspace(folder)
        let runbook = """
            name: fifo
            triggers: [invariant:fifo]
            start: check
            steps:
              check: {action: test, risk: none, effect: read, next: raise}
              raise: {action: set_key, args: {file: config/cache.json, key: capacity, value: 999}, risk: low, effect: write-worktree, next: finish}
              finish: {action: done, args: {summary: x}, risk: none, effect: end}
            """
        try Data(runbook.utf8).write(to: URL(fileURLWithPath: ws.service + "/runbooks/fifo.yaml"))
        let added = """
            import os, unittest
            class Added(unittest.TestCase):
                def test_added(self):
                    if os.environ.get("RATCHET_WORKTREE"):  # only in an attempt's worktree, never under /srv/checkout
                        os.remove("config/cache.json"); os.mkfifo("config/cache.json")
            """
        try Data(added.utf8).write(to: URL(fileURLWithPath: ws.service + "/tests/test_zz_added.py"))
        if !identity.prefix.isEmpty { _ = try run(["chown", "-R", "65534:65534", ws.service]) }
        try ws.git(["add", "-A"])
        try ws.git(["commit", "-qm", "Person: a runbook that tests first; an added test"])
        let ticketFile = folder("ticket.yaml")
        try Data("service: svc\ntitle: Fifo\nsource: invariant:fifo\n".utf8).write(to: URL(fileURLWithPath: ticketFile))
        if !identity.prefix.isEmpty { _ = try run(["chown", "65534:65534", ticketFile]) }
        try ws.expectOK(["ticket", "new", "--file", ticketFile])
        let worked = try work(ws, ["T-1", "--agent", "runbook"])
        #expect(![9, 124, 137].contains(worked.status), "the runbook agent hung on a FIFO in its worktree (status \(worked.status))")
        #expect(worked.status != 0 && worked.stderr.contains("not a regular file"), "\(worked.stderr)")
        withExtendedLifetime(folder) {}
    }
}

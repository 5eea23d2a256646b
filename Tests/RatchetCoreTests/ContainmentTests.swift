import Foundation
import RatchetCore
import RatchetTestSupport
import Testing

@Suite("Containment")
struct ContainmentTests {
    @Test func anAgentCannotWriteOutsideItsWorktree() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        try workspace.addService(name: "other", template: "kv-cache")
        let store = workspace.root.path + "/ratchet.sqlite"
        let id = try file(workspace, "Try to escape")
        let agent = """
            command:ls -A "$RATCHET_WORKSPACE" > seen.txt; \
            echo evil > "$RATCHET_WORKSPACE/services/svc/.git/hooks/pre-commit"; \
            echo junk >> "$RATCHET_WORKSPACE/ratchet.sqlite"; \
            cat "$RATCHET_WORKSPACE/services/other/service.yaml" > stolen.txt; \
            echo x > "$RATCHET_WORKSPACE/services/other/planted.txt"; \
            echo done > done.txt
            """
        let attempt = try workspace.work(ticket: id, agent: agent)
        let path = workspace.servicePath("svc")
        #expect(!FileManager.default.fileExists(atPath: path + "/.git/hooks/pre-commit"))
        #expect(!FileManager.default.fileExists(atPath: workspace.servicePath("other") + "/planted.txt"))
        // Only the hidden, empty workspace and the paths bound into it were visible.
        #expect(try git(["show", "\(attempt.head!):stolen.txt"], in: path) == "")
        #expect(try git(["show", "\(attempt.head!):seen.txt"], in: path).split(separator: "\n").allSatisfy { ["services", "worktrees", ".ratchet"].contains(String($0)) })
        #expect(try git(["show", "\(attempt.head!):done.txt"], in: path) == "done")
        #expect(try workspace.database.integrityCheck() == "ok")
        #expect(!(try Data(contentsOf: URL(fileURLWithPath: store))).suffix(5).elementsEqual(Data("junk\n".utf8)))
        try expectConsistent(workspace)
    }

    @Test func aDaemonLeftAfterTheAgentEndsIsKilledAndFailsTheAttempt() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let id = try file(workspace, "Start a daemon")
        let marker = "sleep 300.\(Int.random(in: 100_000...999_999))"
        let error = message { try workspace.work(ticket: id, agent: "command:\(marker) & echo started > d.txt") }
        #expect(error?.contains("left processes running") == true, "got \(error ?? "no error")")
        let alive = try run(["pgrep", "-f", marker], in: folder.path)
        #expect(alive.stdout.isEmpty, "daemon still running: \(alive.stdout)")
        try expectConsistent(workspace)
    }
}

@Suite("Sandbox settings")
struct SandboxSettingsTests {
    @Test func networkNoneTurnsTheAgentsNetworkOff() throws {
        #expect(try ServiceConfig.parse("name: svc\nsandbox: {network: none}\n").sandboxNetwork == false)
        #expect(try ServiceConfig.parse("name: svc\nsandbox: {network: false}\n").sandboxNetwork == false)
        #expect(try ServiceConfig.parse("name: svc\nsandbox: {network: true}\n").sandboxNetwork == true)
        #expect(try ServiceConfig.parse("name: svc\nsandbox: {network: host}\n").sandboxNetwork == true)
        // The default is loopback only, for the agent and for verification.
        #expect(try ServiceConfig.parse("name: svc\n").sandboxNetwork == false)
        #expect(try ServiceConfig.parse("name: svc\n").verifyNetwork == false)
        #expect(try ServiceConfig.parse("name: svc\nsandbox: {verify_network: host}\n").verifyNetwork == true)
        #expect(throws: RatchetError.self) { try ServiceConfig.parse("name: svc\nsandbox: {network: maybe}\n") }
    }

    @Test func theTemplatesAgentSeesOnlyLoopback() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        #expect(try String(contentsOfFile: path + "/service.yaml", encoding: .utf8).contains("network: none"))
        let id = try file(workspace, "List interfaces")
        // /proc is mounted afresh inside the sandbox, so /proc/net/dev lists the sandbox's own interfaces.
        let attempt = try workspace.work(ticket: id, agent: "command:tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > interfaces.txt")
        #expect(try git(["show", "\(attempt.head!):interfaces.txt"], in: path) == "lo")
    }
}

import Foundation
import RatchetTestSupport
import Testing

/// Python appended to kv-cache's `kvcache/__init__.py` (imported when `deploy/restart.sh`
/// starts the instance; only under a deploy, where `DEPLOY_STATE` is set): for every process
/// of the deploy's sandbox it lists `/proc/N/fd` and writes `ratchet-sandbox-status STATUS`
/// into every pipe it can open there, tries the init's descriptors blindly as well, prints
/// what it reached and which processes refused (a folder it cannot list, or a descriptor it
/// cannot read: as root the init's folder is listable, its descriptors are not), then dies
/// at start when `dies`.
func deployForgery(status: Int, dies: Bool) -> String {
    """

    import os as _os, sys as _sys
    def _forge_deploy_status():
        line, reached, refused, pipes = b"ratchet-sandbox-status \(status)\\n", [], [], []
        def write(path):
            try:
                fd = _os.open(path, _os.O_WRONLY | _os.O_NONBLOCK)
            except OSError:
                return
            reached.append(path)
            try:
                _os.write(fd, line)
            except OSError:
                pass
            finally:
                _os.close(fd)
        for pid in sorted((p for p in _os.listdir("/proc") if p.isdigit()), key=int):
            try:
                fds = _os.listdir("/proc/%s/fd" % pid)
            except PermissionError:
                refused.append(pid)
                continue
            except OSError:
                continue
            for fd in fds:
                path = "/proc/%s/fd/%s" % (pid, fd)
                try:
                    target = _os.readlink(path)
                except PermissionError:
                    refused.append(pid) if pid not in refused else None
                    continue
                except OSError:
                    continue
                if target.startswith("pipe:"):
                    pipes.append(path + "=" + target)
                    write(path)
        for fd in range(10):
            if "/proc/1/fd/%d" % fd not in reached:
                write("/proc/1/fd/%d" % fd)
        print("forge-report reached=%s refused=%s pipes=%s" % (",".join(reached) or "none", ",".join(refused) or "none",
              ",".join(pipes) or "none"), file=_sys.stderr, flush=True)
    if _os.environ.get("DEPLOY_STATE"):
        _forge_deploy_status()
        if \(dies ? "True" : "False"):
            raise SystemExit("deployed instance dies at start")

    """
}

extension HostileWorkspace {
    /// An agent command that appends `code` to `kvcache/__init__.py`.
    func appending(_ code: String) -> String {
        "echo \(Data(code.utf8).base64EncodedString()) | base64 -d >> kvcache/__init__.py"
    }

    /// The `deploy.*` events, oldest first: kind and data.
    func deployEvents() throws -> [(kind: String, data: [String: Any])] {
        let page = try #require(try JSONSerialization.jsonObject(with: Data(try expectOK(["events", "--json"]).stdout.utf8)) as? [String: Any])
        let events = try #require(page["events"] as? [[String: Any]])
        return events.compactMap { event in
            guard let kind = event["kind"] as? String, kind.hasPrefix("deploy.") else { return nil }
            return (kind, event["data"] as? [String: Any] ?? [:])
        }
    }

    /// The outer bubblewrap process of the instance the last successful deploy left running.
    func deployedSandbox() -> pid_t? {
        guard let data = FileManager.default.contents(atPath: root + "/.ratchet/deploy/svc/instance.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let pid = object["pid"] as? Int else { return nil }
        // Only a process started for this workspace (the pid could have been reused).
        let command = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        return command.range(of: Data((root + "/.ratchet/deploy/svc/run-").utf8)) != nil ? pid_t(pid) : nil
    }

    /// The processes under `pid` whose command line contains `text`.
    func descendants(of pid: pid_t, running text: String) -> [pid_t] {
        var parents: [pid_t: pid_t] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { parents[child] = parent }
        }
        return parents.keys.filter { child in
            var next = parents[child]
            while let current = next, current > 1 { if current == pid { return true }; next = parents[current] }
            return false
        }.filter {
            let command = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\($0)/cmdline"))) ?? Data()
            return command.range(of: Data(text.utf8)) != nil
        }
    }

    /// Ends the sandbox the last deploy left running: SIGKILL to its init (the outer
    /// bubblewrap's child) ends its pid namespace; then to bubblewrap itself.
    func stopDeployedSandbox() {
        guard let sandbox = deployedSandbox() else { return }
        for child in descendants(of: sandbox, running: "sandbox-init") { kill(child, SIGKILL) }
        kill(sandbox, SIGKILL)
    }
}

extension HostileAgentTests {
    /// Landed code that writes `ratchet-sandbox-status` lines into every pipe it can reach
    /// through `/proc/N/fd` of its deploy's sandbox. bubblewrap's init and the wrapper shell
    /// held Ratchet's status pipe, so a failed deploy was recorded as succeeded (a hostile
    /// review's finding, H2-5). Now the sandbox's init (`ratchet sandbox-init`, pid 1,
    /// non-dumpable) alone holds it: a deploy that forges a failure and succeeds stays
    /// succeeded with its instance running; one that forges success and dies fails, and the
    /// pump reverts its landing.
    @Test(arguments: Identity.all)
    func landedCodeCannotForgeItsDeploysStatus(identity: Identity) throws {
        let folder = ScratchFolder()
        let ws = try identity.workspace(folder, edits: [("deploy: null ", "deploy: sh deploy/restart.sh "),
                                                        ("http://127.0.0.1:8080/metrics", "http://127.0.0.1:9/metrics")])
        defer { ws.stopDeployedSandbox() }
        let config = ws.root + "/ratchet.yaml"
        try Data(try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "watch_window: 10m", with: "watch_window: 0s").utf8)
            .write(to: URL(fileURLWithPath: config))
        let reachedNothing = "forge-report reached=none refused=1 "

        // The control: the deploy succeeds while its code forges a failure.
        try ws.expectOK(["ticket", "new", "--service", "svc", "--title", "Forge a failure"])
        try ws.expectOK(["work", "T-1", "--agent", "command:" + ws.appending(deployForgery(status: 9, dies: false))])
        let merged = try ws.ratchet(["merge", "T-1"])
        #expect(merged.status == 0, "\(merged.stderr)")
        let control = try ws.deployEvents()
        #expect(control.map(\.kind) == ["deploy.succeeded"], "\(control)")
        let serverLog = (try? String(contentsOfFile: ws.root + "/.ratchet/deploy/svc/state/server.log", encoding: .utf8)) ?? ""
        #expect(serverLog.contains(reachedNothing) && serverLog.contains("listening on"), "\(serverLog)")
        let first = try #require(ws.deployedSandbox(), "no instance recorded")
        #expect(ws.descendants(of: first, running: "kvcache.server").count == 1, "the deployed kv-cache does not run")

        // The attack: the code forges success and dies at start.
        try ws.expectOK(["ticket", "new", "--service", "svc", "--title", "Forge a success",
                         "--agent", "command:" + ws.appending(deployForgery(status: 0, dies: true))])
        let pumped = try ws.ratchet(["pump", "--once"])
        #expect(pumped.status == 0, "\(pumped.stderr)")
        let events = try ws.deployEvents()
        #expect(events.map(\.kind) == ["deploy.succeeded", "deploy.failed", "deploy.succeeded"], "\(events)")
        let failed = events.dropFirst().first?.data ?? [:]
        #expect(failed["trigger"] as? String == "landing T-2" && failed["exitStatus"] as? Int == 1, "\(failed)")
        let output = failed["output"] as? String ?? ""
        #expect(output.contains("kv-cache exited at start") && output.contains(reachedNothing), "\(output)")
        #expect(events.last?.data["trigger"] as? String == "revert T-2")
        #expect(try ws.git(["log", "-1", "--format=%s", "main"]) == "Revert T-2: Forge a success")
        #expect(try ws.git(["log", "-1", "--format=%(trailers:key=Reason,valueonly)", "main"]).hasPrefix("watch: deploy failed"))
        // The revert's deploy runs T-1's code again: it forged a failure too, and runs.
        let second = try #require(ws.deployedSandbox(), "no instance after the revert")
        #expect(second != first && DeployProbe.isGone(first))
        #expect(ws.descendants(of: second, running: "kvcache.server").count == 1, "the redeployed kv-cache does not run")
        try ws.expectIntact(main: try ws.git(["rev-parse", "main"]))
        #expect(ws.descendants(of: second, running: "kvcache.server").count == 1, "doctor stopped the deployed kv-cache")
    }
}

enum DeployProbe {
    /// Whether `pid` is gone (or a zombie nobody reaped yet).
    static func isGone(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }
}

@Suite("Sandbox init")
struct SandboxInitTests {
    /// `ratchet sandbox-init` is a sandbox's pid 1 or nothing: run anywhere else (by an agent
    /// through its `ratchet`), it refuses before it writes any status or starts anything.
    @Test func theInitRefusesToRunAsAnyPidButOne() throws {
        let thin = (ratchetBinary as NSString).deletingLastPathComponent + "/ratchet-tool"
        let folder = ScratchFolder()
        let marker = folder("started")
        let refused = try run([thin, "sandbox-init", "--", "/bin/sh", "-c", "echo ratchet-sandbox-status 0; touch \(marker)"])
        #expect(refused.status == 1 && refused.stderr.contains("pid 1"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty && !FileManager.default.fileExists(atPath: marker))
    }
}

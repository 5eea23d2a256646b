import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetStore
import RatchetTestSupport
import Testing

/// A TCP port nobody listens on right now.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// What GET http://127.0.0.1:PORT/PATH answers, or nil when nothing listens.
func httpGet(_ port: Int, _ path: String) -> String? {
    guard let result = try? run(["python3", "-c", "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())",
                                 "http://127.0.0.1:\(port)/\(path)"]), result.status == 0 else { return nil }
    return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Points `svc` at `deploy` (sandbox.deploy_network host, deploy_timeout) and kv-cache's port at `port`, as a commit on main.
func enableDeploy(_ workspace: Workspace, command: String = "sh deploy/restart.sh", port: Int, timeout: String = "30s") throws {
    let path = workspace.servicePath("svc")
    var yaml = try String(contentsOfFile: path + "/service.yaml", encoding: .utf8)
    yaml = yaml.replacingOccurrences(of: "deploy: null ", with: "deploy: \(command) ")
        .replacingOccurrences(of: "deploy_network: none", with: "deploy_network: host")
        .replacingOccurrences(of: "deploy_timeout: 60s", with: "deploy_timeout: \(timeout)")
        .replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(port)")
    try Data(yaml.utf8).write(to: URL(fileURLWithPath: path + "/service.yaml"))
    let config = try String(contentsOfFile: path + "/config/cache.json", encoding: .utf8)
    try Data(config.replacingOccurrences(of: "\"port\": 8080", with: "\"port\": \(port)").utf8).write(to: URL(fileURLWithPath: path + "/config/cache.json"))
    try git(["commit", "-qam", "Deploy on loopback port \(port)"], in: path)
}

func deployEvents(_ workspace: Workspace) throws -> [(kind: String, data: JSONValue)] {
    try workspace.database.events(since: 0, limit: 10_000).filter { $0.kind.hasPrefix("deploy.") }.map { ($0.kind, $0.data) }
}

@Suite("Deploy after landing and revert", .serialized)
struct DeployTests {
    @Test func deployStartsTheServiceFromMainAndRestartsItAfterARevert() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        defer { workspace.stopDeployment(service: "svc") }
        let port = freePort()
        try enableDeploy(workspace, port: port)
        let id = try file(workspace, "Raise the capacity")
        try workspace.work(ticket: id, agent: #"command:sed -i 's/"capacity": 1024/"capacity": 4096/' config/cache.json"#)
        let landing = try workspace.merge(ticket: id)
        #expect(landing.deploy?.status == "succeeded", "\(landing.deploy?.output ?? "no deploy")")
        #expect(landing.deploy?.commit == landing.landing.hex)
        let metrics = httpGet(port, "metrics") ?? ""
        #expect(metrics.contains("kvcache_capacity 4096"))
        // The instance carries no RATCHET_* variable, so recovery never takes it for a leftover.
        let first = try #require(try instancePID(workspace))
        let python = DeployLaunch.descendants(of: first).filter {
            (try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8))?.contains("kvcache.server") == true
        }
        #expect(python.count == 1)
        for pid in [first] + python {
            let environ = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data(), as: UTF8.self)
            #expect(!environ.contains("RATCHET_"), "pid \(pid) carries a RATCHET_ variable")
        }
        let doctor = try workspace.doctor(repair: true)
        #expect(doctor.findings.filter { $0.kind == "process-killed" }.isEmpty)
        #expect(httpGet(port, "healthz") == "ok")
        // A revert deploys again: the old instance is gone, the new one serves main's config.
        try workspace.revert(ticket: id, reason: "test the redeploy", by: "test")
        #expect(httpGet(port, "metrics")?.contains("kvcache_capacity 1024") == true)
        #expect(try instancePID(workspace) != first)
        #expect(DeployLaunch.startTime(of: first) == nil)
        #expect(try deployEvents(workspace).map(\.kind) == ["deploy.succeeded", "deploy.succeeded"])
        // The first instance was asked to stop (SIGTERM, which the server honours), not killed.
        let previous = try deployEvents(workspace).map { $0.data["previous"] }
        #expect((previous[0] ?? .null) == .null)
        #expect(previous[1]?["signal"]?.stringValue == "SIGTERM", "\(String(describing: previous[1]))")
        #expect(previous[1]?["grace"] == .number(10))
        #expect(workspace.stopDeployment(service: "svc")?.signal == "SIGTERM")
        #expect(httpGet(port, "healthz") == nil)
        try expectConsistent(workspace)
    }

    @Test func aFailingOrHangingDeployIsRecordedAndLeavesNothingRunning() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        defer { workspace.stopDeployment(service: "svc") }
        // What the sandbox shows deploy: the checkout read-only, no .git, no RATCHET_*, no workspace.
        let probe = #"ls -A .git | wc -l; env | grep -c RATCHET_; touch x || echo read-only; test -d $DEPLOY_STATE && echo state; exit 3"#
        try enableDeploy(workspace, command: probe, port: freePort())
        let id = try file(workspace, "Change the README")
        try workspace.work(ticket: id, agent: "command:echo more >> README.md")
        let landing = try workspace.merge(ticket: id)
        #expect(landing.deploy?.status == "failed")
        #expect(landing.deploy?.exitStatus == 3)
        let output = landing.deploy?.output ?? ""
        #expect(output.hasPrefix("0\n0\n"), "got: \(output)")
        #expect(output.contains("read-only") && output.contains("state"))
        #expect(try workspace.ticket(id).state.rawValue == "merged")
        #expect(try instancePID(workspace) == nil)

        let hanging = ScratchFolder()
        let other = try makeWorkspace(hanging)
        try enableDeploy(other, command: "sleep 600", port: freePort(), timeout: "1s")
        let second = try file(other, "Another change")
        try other.work(ticket: second, agent: "command:echo more >> README.md")
        let timed = try other.merge(ticket: second)
        #expect(timed.deploy?.status == "timed-out")
        let left = try run(["sh", "-c", "grep -l 'DEPLOY_SERVICE=svc' /proc/[0-9]*/environ 2>/dev/null | xargs -r grep -l '\(other.root.path)' 2>/dev/null | wc -l"])
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(try deployEvents(other).map(\.kind) == ["deploy.timed-out"])
    }

    /// An instance that ignores SIGTERM is killed with SIGKILL once its grace period
    /// (`limits.deploy_stop_grace`) is over, and the deploy event says so.
    @Test func anInstanceThatIgnoresSIGTERMIsKilledAfterItsGrace() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        defer { workspace.stopDeployment(service: "svc", grace: 0) }
        let stubborn = #"(trap '' TERM; exec sleep 600) </dev/null >/dev/null 2>&1 &"#
        try enableDeploy(workspace, command: stubborn, port: freePort())
        let path = workspace.servicePath("svc")
        let yaml = try String(contentsOfFile: path + "/service.yaml", encoding: .utf8)
        try Data(yaml.replacingOccurrences(of: "  deploy_timeout: 30s", with: "  deploy_timeout: 30s\n  deploy_stop_grace: 1s").utf8)
            .write(to: URL(fileURLWithPath: path + "/service.yaml"))
        try git(["commit", "-qam", "A short grace"], in: path)
        #expect(try workspace.serviceConfig("svc").deployStopGrace == 1)
        let first = try #require(try workspace.deploy(service: "svc", trigger: "operator"))
        #expect(first.succeeded && first.previous == nil, "\(first)")
        let sleeper = try #require(try instancePID(workspace))
        let second = try #require(try workspace.deploy(service: "svc", trigger: "operator"))
        #expect(second.previous?.signal == "SIGKILL" && second.previous?.grace == 1, "\(String(describing: second.previous))")
        #expect(DeployLaunch.startTime(of: sleeper) == nil)
        #expect(try deployEvents(workspace).last?.data["previous"]?["signal"]?.stringValue == "SIGKILL")
        #expect(message { _ = try ServiceConfig.parse("name: s\nlimits:\n  deploy_stop_grace: 2h\n") }?.contains("limits.deploy_stop_grace") == true)
    }

    /// The command runs under the sandbox's init (`ratchet sandbox-init`, adr/0077) with
    /// stdin, stdout and stderr only (never the status pipe, nor anything else inherited), and
    /// its status is the shell's `$?`, 128 + the signal that ended it.
    @Test func theCommandHoldsOnlyItsOwnStreamsAndItsStatusIsItsOwn() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        defer { workspace.stopDeployment(service: "svc") }
        try enableDeploy(workspace, command: #"ls /proc/self/fd | tr '\n' ' '; readlink /proc/1/fd/3 || echo refused; kill -KILL $$"#, port: freePort())
        let outcome = try #require(try workspace.deploy(service: "svc", trigger: "operator"))
        #expect(outcome.status == "failed" && outcome.exitStatus == 128 + Int(SIGKILL), "\(outcome)")
        // 3 is ls's own listing of the folder.
        #expect(outcome.output == "0 1 2 3 refused\n", "\(outcome.output)")
        #expect(try instancePID(workspace) == nil)
    }

    @Test func deployScriptsAreProtected() throws {
        let config = try ServiceConfig.parse("name: s\ndeploy: sh ./scripts/run.sh --port 1 && bin/restart\nprotected_paths: [canary/]\n")
        #expect(config.deployPaths == ["scripts/run.sh", "bin/restart"])
        #expect(config.isProtected("scripts/run.sh") && config.isProtected("bin/restart") && !config.isProtected("scripts/other.sh"))
        #expect(try ServiceConfig.parse("name: s\n").isProtected("deploy/restart.sh"))
        #expect(message { _ = try ServiceConfig.parse("name: s\ndeploy_env: [RATCHET_WORKSPACE]\n") }?.contains("deploy_env[0]") == true)
    }

    func instancePID(_ workspace: Workspace) throws -> pid_t? {
        guard let data = FileManager.default.contents(atPath: workspace.deployFolder("svc") + "/instance.json") else { return nil }
        return try RatchetJSON.decoder().decode(DeployedInstance.self, from: data).pid
    }
}

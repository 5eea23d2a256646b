import CPosix
import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// What one run of a service's `deploy` did (SPEC §3), as its `deploy.*` event records it.
public struct DeployOutcome: Codable, Sendable, Equatable {
    public var service: String
    /// The main commit deployed.
    public var commit: String
    /// Why it ran: `landing T-7`, `revert T-7`, `recovery`, `operator`.
    public var trigger: String
    /// `succeeded`, `failed` or `timed-out`.
    public var status: String
    public var exitStatus: Int?
    /// The command's output (its tail, redacted).
    public var output: String
    public var duration: Double
    /// Whether the deploy succeeded (the watch window starts then).
    public var succeeded: Bool { status == "succeeded" }
}

/// The instance a successful deploy left running: its sandbox's bubblewrap process.
struct DeployedInstance: Codable {
    var pid: Int32
    /// `/proc/PID/stat` field 22, so that a reused pid is never taken for it.
    var startTime: UInt64
    var commit: String
    var folder: String
}

/// `deploy` runs landed code after each landing and revert, so it is contained like branch
/// code (docs/security.md): bubblewrap, the main checkout read-only as its working
/// directory (its `.git` hidden), a state folder of its own (`$DEPLOY_STATE`), only the
/// network (`sandbox.deploy_network`) and variables (`deploy_env`) the service declares, a
/// time limit, and an environment without `RATCHET_*` so that what it starts never looks
/// like a leftover of a Ratchet process to recovery. What it starts keeps running in its
/// sandbox until the next deploy stops it (`stopDeployment`).
extension Workspace {
    /// `.ratchet/deploy/NAME`: the lock, the instance file, the state folder and run folders.
    func deployFolder(_ service: String) -> String { root.appendingPathComponent(".ratchet/deploy/\(service)").path }

    /// Runs `service`'s deploy in its updated main checkout and records the outcome as an
    /// event (`deploy.succeeded`, `deploy.failed`, `deploy.timed-out`); nil when the service
    /// has no deploy. Throws only when it cannot run at all (no bubblewrap, no main).
    @discardableResult
    public func deploy(service: String, trigger: String, ticket: String? = nil,
                       progress: @Sendable (String) -> Void = { _ in }) throws -> DeployOutcome? {
        let config = try serviceConfig(service)
        guard let command = config.deploy else { return nil }
        guard let bubblewrap = Sandbox.bubblewrap() else {
            throw RatchetError("bubblewrap is not installed (Debian package bubblewrap); deploy never runs outside a sandbox")
        }
        let folder = deployFolder(service)
        try FileManager.default.createDirectory(atPath: folder + "/state", withIntermediateDirectories: true)
        let lock = try DeployLock(path: folder + "/lock")
        defer { lock.release() }
        guard let main = try openService(service).resolveReference("refs/heads/main") else { throw RatchetError("service \(service) has no main") }
        stopDeployment(service: service)
        try Failpoints.hit("deploy.started")
        progress("deploy \(service) at \(main.short): \(command)")
        let run = folder + "/run-\(UUIDv7.make())"
        try FileManager.default.createDirectory(atPath: run + "/git", withIntermediateDirectories: true)
        var sandbox = try Sandbox(executable: bubblewrap, mounts: [
            Sandbox.Mount(servicePath(service), at: Sandbox.checkoutPath), Sandbox.Mount(run + "/git", at: Sandbox.checkoutPath + "/.git"),
            Sandbox.Mount(folder + "/state", at: "/srv/state", writable: true),
        ], network: config.deployNetwork, privateFolder: run, workingDirectory: Sandbox.checkoutPath)
        sandbox.isPersistent = true
        let launch = try DeployLaunch.start(sandbox.arguments(for: ["/bin/sh", "-c", command]), directory: run,
                                            environment: deployEnvironment(config, commit: main, trigger: trigger), timeout: config.deployTimeout)
        let outcome = DeployOutcome(service: service, commit: main.hex, trigger: trigger, status: launch.status, exitStatus: launch.exitStatus,
                                    output: redact(String(decoding: launch.log(in: run).suffix(4096), as: UTF8.self)), duration: launch.duration)
        if outcome.succeeded, let start = DeployLaunch.startTime(of: launch.pid) {
            // What the deploy started runs on in its sandbox until the next deploy stops it.
            let instance = DeployedInstance(pid: launch.pid, startTime: start, commit: main.hex, folder: run)
            try replaceFile(folder + "/instance.json", with: Array(try RatchetJSON.encoder(pretty: false).encode(instance)))
        } else {
            // A deploy that left nothing running (a manifest applied), or a failed one.
            DeployLaunch.stop(pid: launch.pid)
            try? FileManager.default.removeItem(atPath: run)
        }
        try database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "deploy.\(outcome.status)", service: service, ticket: ticket,
                                            data: try RatchetJSON.value(outcome))
        }
        try Failpoints.hit("deploy.recorded")
        progress("deploy \(service): \(outcome.status) after \(String(format: "%.2f", outcome.duration)) s")
        return outcome
    }

    /// Deploys after a landing or revert: what could not even start is recorded as a
    /// failed deploy (an event) rather than thrown, since main has already moved.
    @discardableResult
    func deployAfterChange(_ service: String, trigger: String, ticket: String?, progress: @Sendable (String) -> Void) -> DeployOutcome? {
        do {
            return try deploy(service: service, trigger: trigger, ticket: ticket, progress: progress)
        } catch {
            let main = (try? openService(service).resolveReference("refs/heads/main"))??.hex ?? ""
            let outcome = DeployOutcome(service: service, commit: main, trigger: trigger, status: "failed", exitStatus: nil,
                                        output: describe(error), duration: 0)
            _ = try? database.write { db in
                try RatchetDatabase.appendEvent(db, kind: "deploy.failed", service: service, ticket: ticket, data: try RatchetJSON.value(outcome))
            }
            progress("deploy \(service): failed: \(describe(error))")
            return outcome
        }
    }

    /// The deploy's environment: a minimal base, `DEPLOY_*`, the variables `deploy_env`
    /// names; never a `RATCHET_*` variable.
    func deployEnvironment(_ config: ServiceConfig, commit: ObjectID, trigger: String) -> [String: String] {
        var environment = childEnvironment(allowing: config.deployEnv, extra: [
            "DEPLOY_COMMIT": commit.hex, "DEPLOY_STATE": "/srv/state", "DEPLOY_SERVICE": config.name, "DEPLOY_TRIGGER": trigger])
        for key in environment.keys where key.hasPrefix("RATCHET_") { environment[key] = nil }
        return environment
    }

    /// Stops the instance the last successful deploy of `service` left running (its whole
    /// sandbox), waiting until it is gone; false when none was running.
    @discardableResult
    public func stopDeployment(service: String) -> Bool {
        let file = deployFolder(service) + "/instance.json"
        guard let data = FileManager.default.contents(atPath: file),
              let instance = try? RatchetJSON.decoder().decode(DeployedInstance.self, from: data) else { return false }
        defer {
            try? FileManager.default.removeItem(atPath: file)
            try? FileManager.default.removeItem(atPath: instance.folder)
        }
        guard DeployLaunch.startTime(of: instance.pid) == instance.startTime else { return false }
        DeployLaunch.stop(pid: instance.pid)
        return true
    }

    /// The status of the last deploy of `service` since event `seq` (nil: none since).
    func lastDeployStatus(_ service: String, after seq: Int64) throws -> String? {
        try database.read { db in
            try String.fetchOne(db, sql: "SELECT kind FROM event WHERE kind LIKE 'deploy.%' AND service = ? AND seq > ? ORDER BY seq DESC LIMIT 1",
                                arguments: [service, seq]).map { String($0.dropFirst("deploy.".count)) }
        }
    }

    /// The commit of the last successful deploy of `service`, from the event log.
    func lastDeployedCommit(_ service: String) throws -> String? {
        try database.read { db in
            try String.fetchOne(db, sql: "SELECT json_extract(data, '$.commit') FROM event WHERE kind = 'deploy.succeeded' AND service = ? ORDER BY seq DESC LIMIT 1",
                                arguments: [service])
        }
    }
}

/// A per-service lock: one deploy of a service at a time across processes (flock).
private struct DeployLock {
    let fd: Int32
    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RatchetError("cannot open \(path): \(String(cString: strerror(errno)))") }
        try Workspace.lock(fd, LOCK_EX, path: path)
    }
    func release() { close(fd) }
}

/// Starting a persistent sandbox and reading its command's status without waiting for it to end.
enum DeployLaunch {
    struct Started {
        var pid: pid_t
        var status: String
        var exitStatus: Int?
        var duration: Double
        /// The deploy's output: its sandbox's /tmp is the landed code's to write, so read as hostile.
        func log(in folder: String) -> Data { Sandbox.readUntrusted(folder + "/tmp/command.log", limit: 64 * 1024) ?? Data() }
    }

    /// Spawns `arguments` in a new session and reads its stdout until the wrapper's status
    /// line, the end of the output, or `timeout`.
    static func start(_ arguments: [String], directory: String, environment: [String: String], timeout: Double) throws -> Started {
        var fds: [Int32] = [0, 0]
        guard ratchet_pipe_cloexec(&fds) == 0 else { throw RatchetError("pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        ratchet_spawn_addchdir(&actions, directory)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | ratchet_spawn_setsid_flag())
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        sigdelset(&allSignals, SIGKILL)
        sigdelset(&allSignals, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        let cArguments = arguments.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArguments + cEnvironment).forEach { free($0) } }
        let begin = Date()
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, &attributes, cArguments, cEnvironment)
        close(fds[1])
        defer { close(fds[0]) }
        guard rc == 0 else { throw RatchetError("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
        let (line, timedOut) = readStatus(fds[0], deadline: begin.addingTimeInterval(timeout))
        let duration = Date().timeIntervalSince(begin)
        if timedOut { stop(pid: pid); return Started(pid: pid, status: "timed-out", exitStatus: nil, duration: duration) }
        guard let line, let code = Int(line.dropFirst(Sandbox.statusPrefix.count)) else {
            stop(pid: pid)
            return Started(pid: pid, status: "failed", exitStatus: nil, duration: duration)
        }
        return Started(pid: pid, status: code == 0 ? "succeeded" : "failed", exitStatus: code, duration: duration)
    }

    /// The status line from `fd`, or nil at the end of the output; `true` when the deadline passed.
    private static func readStatus(_ fd: Int32, deadline: Date) -> (String?, Bool) {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return (nil, true) }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining * 1000, 60_000)) + 1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return (nil, false) }
            buffer.append(contentsOf: chunk[0..<count])
            let text = String(decoding: buffer, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(Sandbox.statusPrefix) }) { return (String(line), false) }
            if buffer.count > 1 << 20 { buffer.removeFirst(buffer.count - 4096) }
        }
    }

    /// `/proc/PID/stat` field 22 (start time in clock ticks), nil when the process is gone.
    static func startTime(of pid: pid_t) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// Kills the sandbox `pid` and every process under it, and waits until they are gone.
    static func stop(pid: pid_t) {
        let tree = [pid] + descendants(of: pid)
        let handles = tree.map { ratchet_pidfd_open($0) }
        kill(-pid, SIGKILL)
        for member in tree { kill(member, SIGKILL) }
        for handle in handles where handle >= 0 {
            var poller = pollfd(fd: handle, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 10_000)
            close(handle)
        }
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    /// Every process whose chain of parents reaches `pid`.
    static func descendants(of pid: pid_t) -> [pid_t] {
        var parents: [pid_t: [pid_t]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = pid_t(name), let text = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = text.lastIndex(of: ")") else { continue }
            let fields = text[text.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { parents[parent, default: []].append(child) }
        }
        var result: [pid_t] = []
        var queue = [pid]
        while let next = queue.popLast() {
            for child in parents[next] ?? [] where !result.contains(child) { result.append(child); queue.append(child) }
        }
        return result
    }
}

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
    /// How the instance the previous deploy left running was stopped first (nil: none ran).
    public var previous: DeployStop? = nil
    /// Whether the deploy succeeded (the watch window starts then).
    public var succeeded: Bool { status == "succeeded" }
}

/// How a deployed instance was stopped: SIGTERM to its processes, then, if they had not all
/// exited within the grace period (`limits.deploy_stop_grace`), SIGKILL to its whole sandbox.
public struct DeployStop: Codable, Sendable, Equatable {
    /// `SIGTERM` (every process exited within the grace period) or `SIGKILL`.
    public var signal: String
    /// Seconds from SIGTERM until the instance was gone.
    public var seconds: Double
    public var grace: Double
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
        guard Sandbox.hasInit else {
            throw RatchetError("ratchet-tool is not installed beside ratchet; deploy needs it as its sandbox's init (adr/0077)")
        }
        let folder = deployFolder(service)
        try FileManager.default.createDirectory(atPath: folder + "/state", withIntermediateDirectories: true)
        let lock = try FileLock(path: folder + "/lock")  // one deploy of a service at a time, across processes
        defer { lock.release() }
        guard let main = try openService(service).resolveReference("refs/heads/main") else { throw RatchetError("service \(service) has no main") }
        let previous = stopDeployment(service: service, grace: config.deployStopGrace)
        if let previous { progress("deploy \(service): the previous instance stopped on \(previous.signal) after \(String(format: "%.2f", previous.seconds)) s") }
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
                                    output: redact(String(decoding: launch.log(in: run).suffix(4096), as: UTF8.self)), duration: launch.duration,
                                    previous: previous)
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
    /// sandbox): SIGTERM to its processes, SIGKILL after `grace` seconds (default: the
    /// service's `limits.deploy_stop_grace`), waiting until it is gone; nil when none was running.
    @discardableResult
    public func stopDeployment(service: String, grace: Double? = nil) -> DeployStop? {
        let file = deployFolder(service) + "/instance.json"
        guard let data = FileManager.default.contents(atPath: file),
              let instance = try? RatchetJSON.decoder().decode(DeployedInstance.self, from: data) else { return nil }
        defer {
            try? FileManager.default.removeItem(atPath: file)
            try? FileManager.default.removeItem(atPath: instance.folder)
        }
        guard DeployLaunch.startTime(of: instance.pid) == instance.startTime else { return nil }
        let grace = grace ?? (try? serviceConfig(service))?.deployStopGrace ?? ServiceConfig.defaultDeployStopGrace
        return DeployLaunch.stopGracefully(pid: instance.pid, grace: grace)
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

    /// Spawns `arguments` in a new session and reads its stdout until the init's status
    /// line, the end of the output, or `timeout`. Only the sandbox's init (`sandbox-init`,
    /// non-dumpable, adr/0077) and bubblewrap's own process outside the namespace hold the
    /// pipe; the command and what it starts never do and cannot open it.
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
        ProcessRunner.clearSignals(&attributes, flags: ratchet_spawn_setsid_flag())
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

    /// Stops the sandbox `pid` gracefully: SIGTERM to every process the deployed command
    /// left (not the sandbox's init, namespace pid 1, whose exit would end the namespace and
    /// SIGKILL the rest at once; it exits by itself once they are gone), up to `grace` seconds
    /// for them to exit, then `stop` (SIGKILL to whatever is left, the init among them).
    static func stopGracefully(pid: pid_t, grace: Double) -> DeployStop {
        let begin = Date()
        let members = descendants(of: pid).filter { (namespacePID(of: $0) ?? 0) > 1 }
        let handles = members.map { ratchet_pidfd_open($0) }.filter { $0 >= 0 }
        defer { handles.forEach { close($0) } }
        for member in members { kill(member, SIGTERM) }
        var exited = true
        for handle in handles {
            var poller = pollfd(fd: handle, events: Int16(POLLIN), revents: 0)
            var ready: Int32 = 0
            repeat {
                let remaining = grace - Date().timeIntervalSince(begin)
                ready = remaining > 0 ? poll(&poller, 1, Int32(remaining * 1000) + 1) : 0
            } while ready < 0 && errno == EINTR
            if ready <= 0 { exited = false; break }
        }
        stop(pid: pid)
        return DeployStop(signal: exited ? "SIGTERM" : "SIGKILL", seconds: Date().timeIntervalSince(begin), grace: grace)
    }

    /// The pid of `pid` in its innermost pid namespace (`NSpid` of /proc/PID/status).
    static func namespacePID(of pid: pid_t) -> pid_t? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return nil }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.flatMap { pid_t($0) }
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

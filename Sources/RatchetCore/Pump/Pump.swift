import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// How `ratchet pump` runs.
public struct PumpOptions: Sendable {
    /// One cycle (observe, file, work, verify, land), then the open watch windows to their end.
    public var once = false
    /// Attempts at once (default: `concurrency` of ratchet.yaml).
    public var concurrency: Int?
    /// Seconds between cycles, and between checks of an open watch window.
    public var interval: Double = 5
    public init(once: Bool = false, concurrency: Int? = nil) {
        self.once = once
        self.concurrency = concurrency
    }
}

/// What one pump run did.
public struct PumpSummary: Codable, Sendable, Equatable {
    public init() {}
    public var cycles = 0
    public var filed = 0
    public var worked = 0
    public var landed = 0
    public var held = 0
    public var rejected = 0
    public var failed = 0
    public var reverted = 0
    public var watchesPassed = 0
    public var recovered = 0
}

/// `ratchet pump` (SPEC §8): recovery first, then the loop observe → file → work → verify →
/// land, with concurrent attempts in separate worktrees, a deploy after each landing and a
/// watch window per landing (`PumpWatch.swift`); the landing rules (pause, rate limit, error
/// budget, one landing per service per window) in `PumpGates.swift`. Landings of one service
/// take turns (`withLandingLock`), each from its baseline to its first check. Claims go through
/// `work`, whose claim is one store transaction: a second pump on the same workspace never
/// claims a ticket twice. Agents always run sandboxed.
public final class Pump: @unchecked Sendable {
    // `state` and `summary` are guarded by `lock`; everything else is immutable.
    let workspace: Workspace
    let options: PumpOptions
    let progress: @Sendable (String) -> Void
    let concurrency: Int
    private let lock = NSLock()
    /// Serialises checks of the watch windows (PumpWatch.swift).
    let watchLock = NSLock()
    private let wake = DispatchSemaphore(value: 0)
    private var stopped = false
    private var summary = PumpSummary()
    /// Skips already reported in this run (`reason:subject`), so that events do not repeat every cycle.
    private var reported: Set<String> = []

    public init(workspace: Workspace, options: PumpOptions, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.workspace = workspace
        self.options = options
        self.progress = progress
        concurrency = max(1, options.concurrency ?? workspace.config.concurrency)
    }

    /// Asks the pump to stop after the attempts it is running (SIGINT, SIGTERM).
    public func stop() {
        lock.withLock { stopped = true }
        wake.signal()
    }

    var isStopped: Bool { lock.withLock { stopped } }

    func count(_ change: (inout PumpSummary) -> Void) { lock.withLock { change(&summary) } }

    /// Whether `key` is reported for the first time in this run.
    func firstReport(_ key: String) -> Bool { lock.withLock { reported.insert(key).inserted } }

    /// Runs until stopped (or, with `once`, one cycle and the watch windows it opened).
    public func run() throws -> PumpSummary {
        let recovery = try workspace.recoverForPump(progress: progress)
        count { $0.recovered = recovery.findings.filter(\.repaired).count }
        try workspace.database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "pump.started", data: [
                "pid": .number(Double(getpid())), "concurrency": .number(Double(concurrency)), "once": .bool(options.once),
                "exclusive": .bool(recovery.exclusive), "repaired": .number(Double(recovery.findings.filter(\.repaired).count))])
        }
        try Failpoints.hit("pump.recovered")
        catchUpDeploys()
        repeat {
            try cycle()
            if options.once { break }
            _ = wake.wait(timeout: .now() + options.interval)
        } while !isStopped
        while options.once, !isStopped, try workspace.openWatches() > 0 {
            _ = wake.wait(timeout: .now() + min(options.interval, max(0.2, try workspace.nextWatchEnd().timeIntervalSinceNow)))
            try checkWatches()
        }
        let result = lock.withLock { summary }
        try workspace.database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "pump.stopped", data: try RatchetJSON.value(result))
        }
        return result
    }

    /// One cycle: observe and file, check the watch windows, then work and land what may land.
    func cycle() throws {
        count { $0.cycles += 1 }
        observe()
        try checkWatches()
        let jobs = try selectJobs()
        if !jobs.isEmpty { progress("pump: \(jobs.count) ticket(s) to work or land, \(concurrency) at a time") }
        runJobs(jobs)
    }

    /// `observe` with filing, service by service: one ticket per new breach. A paused service
    /// is not observed (SPEC §4: the pump leaves it to people until it is resumed). A failure
    /// is an event, never a stop.
    func observe() {
        for service in (try? workspace.services()) ?? [] {
            if service.isPaused { skip("paused", service: service.name, ticket: nil, "service \(service.name) is paused"); continue }
            do {
                let report = try workspace.observe(service: service.name, file: true, progress: progress)
                count { $0.filed += report.filed.count }
            } catch {
                progress("pump: observe of \(service.name) failed: \(describe(error))")
                _ = try? workspace.database.write { db in
                    try RatchetDatabase.appendEvent(db, kind: "pump.observe-failed", service: service.name, data: ["error": .string(describe(error))])
                }
            }
        }
    }

    /// Deploys each service whose main is not what its last successful deploy ran (a crash
    /// between a landing and its deploy, or a service deployed for the first time).
    func catchUpDeploys() {
        for service in (try? workspace.services()) ?? [] where !service.isPaused {
            guard let config = try? workspace.serviceConfig(service.name), config.deploy != nil,
                  let main = try? workspace.openService(service.name).resolveReference("refs/heads/main"),
                  (try? workspace.lastDeployedCommit(service.name)) != main.hex else { continue }
            workspace.deployAfterChange(service.name, trigger: "recovery", ticket: nil, progress: progress)
        }
    }

    /// Runs `jobs` on `concurrency` threads, each job an attempt in its own worktree.
    func runJobs(_ jobs: [PumpJob]) {
        guard !jobs.isEmpty else { return }
        let queue = PumpQueue(jobs)
        let group = DispatchGroup()
        for _ in 0..<min(concurrency, jobs.count) {
            group.enter()
            Thread.detachNewThread {
                while !self.isStopped, let job = queue.next() { self.runJob(job) }
                group.leave()
            }
        }
        group.wait()
    }

    /// Works (unless already proposed), verifies and lands one ticket, then opens its watch.
    func runJob(_ job: PumpJob) {
        let say: @Sendable (String) -> Void = { [progress] in progress("\(job.ticket) \(job.service): \($0)") }
        do {
            if let agent = job.agent {
                say("working with agent \(agent)")
                count { $0.worked += 1 }
                try workspace.work(ticket: job.ticket, agent: agent, seenAttempts: job.attempts, progress: say)
            }
            // One landing of a service at a time, from its baseline to its first check (adr/0057).
            try workspace.withLandingLock(job.service, waiting: { say("waiting for another landing of \(job.service)") }) {
                let watch = WatchRequest(baseline: workspace.breachedFingerprints(job.service), window: workspace.config.watchWindow)
                let landing = try workspace.merge(ticket: job.ticket, watch: watch, progress: say)
                count { $0.landed += 1 }
                say("landed \(landing.landing.short)" + (landing.deploy.map { "; deploy \($0.status)" } ?? ""))
                try Failpoints.hit("pump.landed")
                try afterLanding(job, landing: landing)
            }
        } catch let lost as ClaimLost {
            count { $0.worked -= 1 }  // counted as it began; nothing was claimed
            skip("claim-lost", service: job.service, ticket: job.ticket, "\(lost)")
        } catch let stop as GateStop {
            count { if stop.outcome == "rejected" { $0.rejected += 1 } else { $0.held += 1 } }
            say("\(stop.outcome): \(stop.message)")
        } catch {
            count { $0.failed += 1 }
            say("error: \(describe(error))")
        }
    }
}

/// One ticket the pump works: `agent` nil when its attempt is already proposed (land only).
struct PumpJob: Sendable {
    var ticket: String
    var service: String
    var agent: String?
    /// The ticket's attempts when the pump chose it: its claim expects exactly these.
    var attempts = 0
}

/// The jobs of one cycle, taken one at a time by the workers.
private final class PumpQueue: @unchecked Sendable {
    // `jobs` and `index` are guarded by `lock`.
    private let lock = NSLock()
    /// Serialises checks of the watch windows (PumpWatch.swift).
    let watchLock = NSLock()
    private let jobs: [PumpJob]
    private var index = 0
    init(_ jobs: [PumpJob]) { self.jobs = jobs }
    func next() -> PumpJob? {
        lock.withLock {
            guard index < jobs.count else { return nil }
            defer { index += 1 }
            return jobs[index]
        }
    }
}

extension Workspace {
    /// What `doctor --repair` does, at the pump's start: it takes the workspace lock without
    /// blocking (the repairs that need it alone run only when no other Ratchet process has
    /// the workspace open), then holds it shared again for the pump's run (a refused
    /// conversion drops a shared flock on Linux).
    func recoverForPump(progress: @escaping @Sendable (String) -> Void) throws -> DoctorReport {
        let report = try doctor(repair: true, progress: progress)
        try shareWorkspaceLock()
        progress("pump: recovery \(report.exclusive ? "with the workspace to itself" : "beside other Ratchet processes"): "
                 + "\(report.findings.filter(\.repaired).count) repair(s)")
        return report
    }
}

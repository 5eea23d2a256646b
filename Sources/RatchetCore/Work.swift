import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// Lease bookkeeping for claims: who holds an attempt, and until when.
enum Lease {
    /// This process's lease owner token: host, pid and a random suffix.
    static let owner: String = {
        let host = ProcessInfo.processInfo.hostName
        return "\(host):\(getpid()):\(UUIDv7.make().suffix(12))"
    }()
}

extension Workspace {
    /// The environment an agent or acceptance command receives: a minimal base, the
    /// variables `agent_env` allows, then `extra`.
    func childEnvironment(allowing names: [String], extra: [String: String]) -> [String: String] {
        let parent = ProcessInfo.processInfo.environment
        var environment: [String: String] = [
            "PATH": parent["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
            "HOME": parent["HOME"] ?? "/tmp",
            "LANG": parent["LANG"] ?? "C.UTF-8",
        ]
        for name in names { if let value = parent[name] { environment[name] = value } }
        environment.merge(extra) { $1 }
        return environment
    }

    /// Ends an attempt that did not propose anything: the attempt becomes `state`, the
    /// ticket goes back to open (escalated once its attempts are used up), in one
    /// transaction with their events; with `escalate`, escalated at once. Returns the
    /// ticket's new state.
    @discardableResult
    func endAttempt(_ attempt: AttemptRecord, as state: AttemptState, error: String, maxAttempts: Int, escalate: Bool = false,
                    outcome: JSONValue? = nil) throws -> TicketState {
        try database.write { db in
            var (current, ticket) = try StateChange.load(db, attempt: attempt.id)
            guard !TicketLifecycle.finishedAttemptStates.contains(current.state) else { return ticket.state }
            let now = Date()
            StateChange.moveAttempt(&current, to: state, error: error, at: now)
            try current.update(db)
            try StateChange.updateTrajectory(db, attempt.trajectoryId, outcome: outcome ?? [
                "status": .string(state.rawValue), "error": .string(error), "duration_s": .number(now.timeIntervalSince(attempt.startedAt))])
            try RatchetDatabase.appendEvent(db, kind: "attempt.\(state.rawValue)", service: attempt.service, ticket: attempt.ticketId,
                                            attempt: attempt.number, data: ["error": .string(error)])
            guard ticket.state != .cancelled else { return ticket.state }
            let used = try AttemptRecord.filter(AttemptRecord.Columns.ticketId == ticket.id).fetchCount(db)
            try StateChange.moveTicket(&ticket, to: escalate || used >= maxAttempts ? .escalated : .open, at: now)
            try ticket.update(db)
            try RatchetDatabase.appendEvent(db, kind: ticket.state == .escalated ? "ticket.escalated" : "ticket.reopened",
                                            service: ticket.service, ticket: ticket.id,
                                            data: ["attempts": .number(Double(used)), "reason": .string(error)])
            return ticket.state
        }
    }

    /// Works ticket `id` once: claims it, makes branch `ticket/ID/N` and its worktree, runs
    /// the agent there (sandboxed), records its output as trajectory steps and commits what
    /// it changed, read by Ratchet itself.
    ///
    /// Returns the attempt, `proposed` on success. A failed agent ends the attempt and
    /// throws; the ticket is then open again (or escalated). `unsandboxed` runs the agent
    /// without bubblewrap, which the service must allow (`sandbox.allow_unsandboxed`); it is
    /// reported through `warning` and recorded on the trajectory. `seenAttempts` makes the
    /// claim a compare-and-swap (the pump's): it claims only a ticket that still has exactly
    /// the attempts its caller saw when it chose it, else throws `ClaimLost`.
    @discardableResult
    public func work(ticket rawID: String, agent rawAgent: String? = nil, unsandboxed: Bool = false, seenAttempts: Int? = nil,
                     progress: @escaping @Sendable (String) -> Void = { _ in },
                     warning: @escaping @Sendable (String) -> Void = { _ in },
                     agentOutput: (@Sendable (Data) -> Void)? = nil) throws -> AttemptRecord {
        let id = try Names.ticketID(rawID)
        let ticket = try ticket(id)
        guard let spec = rawAgent ?? ticket.agent ?? config.defaultAgent else {
            throw RatchetError("no agent for \(id): pass --agent 'command:SHELL', set the ticket's agent, or default_agent in ratchet.yaml")
        }
        let agent = try AgentSpec.parse(spec, config: config)
        let repository = try openService(ticket.service)
        let serviceConfig = try serviceConfig(ticket.service, repository: repository)
        let bubblewrap = try sandboxChoice(serviceConfig, unsandboxed: unsandboxed)
        guard let base = try repository.resolveReference("refs/heads/main") else {
            throw RatchetError("service \(ticket.service) has no commit on main")
        }
        let attempt = try claim(id, agent: agent, base: base, serviceConfig: serviceConfig, repository: repository, seenAttempts: seenAttempts)
        progress("claimed \(id) as attempt \(attempt.number) on branch \(attempt.branch)")
        // Every attempt writes a pack per durable step, landed or not: a service whose attempts
        // are rejected or fail would otherwise gather packs until its next landing.
        defer { startBackgroundPacking(repository, service: ticket.service) }
        try Failpoints.hit("claim.committed")
        var run = AttemptRun(workspace: self, attempt: attempt, serviceConfig: serviceConfig, repository: repository)
        do {
            try run.prepare(base: base, ticket: ticketView(id))
        } catch {
            try run.fail("cannot prepare the worktree: \(describe(error))")
        }
        progress("worktree \(attempt.worktree) ready; running agent \(agent.name)")
        try Failpoints.hit("worktree.ready")
        if bubblewrap == nil {
            let text = "agent \(agent.name) of \(id)/\(attempt.number) runs UNSANDBOXED: it can read and write anything this user can (sandbox.allow_unsandboxed)"
            warning(text)
            try run.recordUnsandboxed(text)
        }
        guard let command = agent.command else {
            return try workRunbook(&run, ticket: ticketView(id), agent: agent, bubblewrap: bubblewrap, progress: progress)
        }
        let result: ProcessResult
        do {
            result = try run.runAgent(command, bubblewrap: bubblewrap, onOutput: agentOutput)
        } catch {
            try run.fail("cannot start the agent: \(describe(error))")
        }
        do {
            return try run.finish(result, agent: agent, command: command, progress: progress)
        } catch where !run.ended {
            try run.fail("cannot record the agent's work: \(describe(error))")
        }
    }

    /// The bubblewrap to run agents with, or nil to run them unsandboxed, which needs both
    /// the service's `sandbox.allow_unsandboxed` and the caller's explicit `unsandboxed`.
    func sandboxChoice(_ serviceConfig: ServiceConfig, unsandboxed: Bool) throws -> String? {
        if unsandboxed {
            guard serviceConfig.allowUnsandboxed else {
                throw RatchetError("service \(serviceConfig.name) does not allow running unsandboxed (sandbox.allow_unsandboxed in service.yaml)")
            }
            return nil
        }
        guard let bubblewrap = Sandbox.bubblewrap() else {
            throw RatchetError("bubblewrap is not installed (Debian package bubblewrap); agents run only in a sandbox unless service \(serviceConfig.name) sets sandbox.allow_unsandboxed and the command gets --unsandboxed")
        }
        return bubblewrap
    }

    /// Claim: ticket open → working, a new attempt with a lease, its trajectory; one transaction.
    /// With `seenAttempts`, a compare-and-swap: nothing changes unless the ticket still has
    /// exactly that many attempts (a second pump's stale choice of a ticket the first pump
    /// already worked, and whose attempt ended, is not a new claim).
    private func claim(_ id: String, agent: AgentSpec, base: ObjectID, serviceConfig: ServiceConfig, repository: Repository,
                       seenAttempts: Int?) throws -> AttemptRecord {
        let now = Date()
        let initial = initialState(serviceConfig, repository: repository, main: base)
        return try database.write { db in
            guard var current = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("no ticket \(id)") }
            let number = (try Int.fetchOne(db, sql: "SELECT MAX(number) FROM attempt WHERE ticketId = ?", arguments: [id]) ?? 0) + 1
            if let seenAttempts, number - 1 != seenAttempts { throw ClaimLost(ticket: id, seen: seenAttempts, now: number - 1) }
            if current.state == .working { throw RatchetError("ticket \(id) is already being worked (claimed by another process)") }
            try TicketLifecycle.check(id, from: current.state, to: .working)
            if try ServiceRecord.fetchOne(db, key: current.service)?.isPaused == true {
                throw RatchetError("service \(current.service) is paused; 'ratchet service resume \(current.service)' first")
            }
            var attempt = AttemptRecord(
                ticketId: id, number: number, service: current.service, branch: "ticket/\(id)/\(number)",
                worktree: "worktrees/\(id)-\(number)", trajectoryId: UUIDv7.make(date: now), agent: agent.name,
                state: .running, base: base.hex, startedAt: now)
            attempt.leaseOwner = Lease.owner
            attempt.leaseExpiresAt = now.addingTimeInterval(serviceConfig.agentTimeout + 300)
            try attempt.insert(db)
            try TrajectoryRecord(id: attempt.trajectoryId, ticketId: id, attemptNumber: number, service: current.service,
                                 agent: agent.name, initialState: initial,
                                 createdAt: now).insert(db)
            try StateChange.moveTicket(&current, to: .working, at: now)
            try current.update(db)
            try RatchetDatabase.appendEvent(db, kind: "ticket.claimed", service: current.service, ticket: id, attempt: number,
                                            data: ["agent": .string(redact(agent.spec)), "branch": .string(attempt.branch),
                                                   "trajectory": .string(attempt.trajectoryId), "base": .string(base.hex)])
            return attempt
        }
    }
}

/// A compare-and-swap claim that lost: the ticket was worked by another process since the
/// caller chose it (`Workspace.work(seenAttempts:)`).
struct ClaimLost: Error, CustomStringConvertible {
    var ticket: String
    var seen: Int
    var now: Int
    var description: String {
        "\(ticket) was worked by another process since this pump chose it (\(seen) attempt(s) then, \(now) now); not claimed again"
    }
}

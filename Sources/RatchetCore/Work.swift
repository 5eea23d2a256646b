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
    /// transaction with their events. Returns the ticket's new state.
    @discardableResult
    func endAttempt(_ attempt: AttemptRecord, as state: AttemptState, error: String, maxAttempts: Int,
                    outcome: JSONValue? = nil) throws -> TicketState {
        try database.write { db in
            guard var current = try AttemptRecord.fetchOne(db, key: attempt.id),
                  var ticket = try TicketRecord.fetchOne(db, key: attempt.ticketId) else { throw RatchetError("attempt vanished") }
            guard !TicketLifecycle.finishedAttemptStates.contains(current.state) else { return ticket.state }
            let now = Date()
            current.state = state
            current.error = error
            current.endedAt = now
            current.leaseOwner = nil
            current.leaseExpiresAt = nil
            try current.update(db)
            if var trajectory = try TrajectoryRecord.fetchOne(db, key: attempt.trajectoryId) {
                trajectory.outcome = outcome ?? ["status": .string(state.rawValue), "error": .string(error),
                                                 "duration_s": .number(now.timeIntervalSince(attempt.startedAt))]
                try trajectory.update(db)
            }
            try RatchetDatabase.appendEvent(db, kind: "attempt.\(state.rawValue)", service: attempt.service, ticket: attempt.ticketId,
                                            attempt: attempt.number, data: ["error": .string(error)])
            if ticket.state != .cancelled {
                let used = try AttemptRecord.filter(AttemptRecord.Columns.ticketId == ticket.id).fetchCount(db)
                let next: TicketState = used >= maxAttempts ? .escalated : .open
                try TicketLifecycle.check(ticket.id, from: ticket.state, to: next)
                ticket.state = next
                ticket.updatedAt = now
                try ticket.update(db)
                try RatchetDatabase.appendEvent(db, kind: next == .escalated ? "ticket.escalated" : "ticket.reopened",
                                                service: ticket.service, ticket: ticket.id,
                                                data: ["attempts": .number(Double(used)), "reason": .string(error)])
            }
            return ticket.state
        }
    }

    /// Works ticket `id` once: claims it, makes branch `ticket/ID/N` and its worktree, runs
    /// the agent there, records its output as trajectory steps and commits what it changed.
    ///
    /// Returns the attempt, `proposed` on success. A failed agent ends the attempt and
    /// throws; the ticket is then open again (or escalated).
    @discardableResult
    public func work(ticket rawID: String, agent rawAgent: String? = nil, progress: @escaping @Sendable (String) -> Void = { _ in },
                     agentOutput: (@Sendable (Data) -> Void)? = nil) throws -> AttemptRecord {
        let id = try Names.ticketID(rawID)
        let ticket = try ticket(id)
        guard let spec = rawAgent ?? ticket.agent ?? config.defaultAgent else {
            throw RatchetError("no agent for \(id): pass --agent 'command:SHELL', set the ticket's agent, or default_agent in ratchet.yaml")
        }
        let agent = try AgentSpec.parse(spec, config: config)
        guard let command = agent.command else {
            throw RatchetError("the built-in runbook agent is not available yet; use --agent 'command:SHELL'")
        }
        let serviceConfig = try serviceConfig(ticket.service)
        let bubblewrap = Sandbox.bubblewrap()
        if bubblewrap == nil && !serviceConfig.allowUnsandboxed {
            throw RatchetError("bubblewrap is not installed (Debian package bubblewrap) and service \(ticket.service) does not allow agents to run unsandboxed (sandbox.allow_unsandboxed in service.yaml)")
        }
        let repository = try Repository.open(servicePath(ticket.service))
        guard let base = try repository.resolveReference("refs/heads/main") else {
            throw RatchetError("service \(ticket.service) has no commit on main")
        }

        // Claim: ticket open → working, a new attempt with a lease, its trajectory; one transaction.
        let now = Date()
        let attempt: AttemptRecord = try database.write { db in
            guard var current = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("no ticket \(id)") }
            if current.state == .working { throw RatchetError("ticket \(id) is already being worked (claimed by another process)") }
            try TicketLifecycle.check(id, from: current.state, to: .working)
            if try ServiceRecord.fetchOne(db, key: current.service)?.isPaused == true {
                throw RatchetError("service \(current.service) is paused; 'ratchet service resume \(current.service)' first")
            }
            let number = (try Int.fetchOne(db, sql: "SELECT MAX(number) FROM attempt WHERE ticketId = ?", arguments: [id]) ?? 0) + 1
            var attempt = AttemptRecord(
                ticketId: id, number: number, service: current.service, branch: "ticket/\(id)/\(number)",
                worktree: "worktrees/\(id)-\(number)", trajectoryId: UUIDv7.make(date: now), agent: agent.name,
                state: .running, base: base.hex, startedAt: now)
            attempt.leaseOwner = Lease.owner
            attempt.leaseExpiresAt = now.addingTimeInterval(serviceConfig.agentTimeout + 300)
            try attempt.insert(db)
            try TrajectoryRecord(id: attempt.trajectoryId, ticketId: id, attemptNumber: number, service: current.service,
                                 agent: agent.name, initialState: ["main": .string(base.hex), "metrics": nil, "invariants": nil],
                                 createdAt: now).insert(db)
            current.state = .working
            current.updatedAt = now
            try current.update(db)
            try RatchetDatabase.appendEvent(db, kind: "ticket.claimed", service: current.service, ticket: id, attempt: number,
                                            data: ["agent": .string(redact(agent.spec)), "branch": .string(attempt.branch),
                                                   "trajectory": .string(attempt.trajectoryId), "base": .string(base.hex)])
            return attempt
        }
        progress("claimed \(id) as attempt \(attempt.number) on branch \(attempt.branch)")
        try Failpoints.hit("claim.committed")
        let worktreePath = root.appendingPathComponent(attempt.worktree).path
        let briefPath = root.appendingPathComponent(".ratchet/briefs/\(id)-\(attempt.number).md").path
        let privateTemp = root.appendingPathComponent(".ratchet/tmp/agent-\(id)-\(attempt.number)").path
        func cleanUp() {
            try? removeWorktree(of: attempt)
            try? FileManager.default.removeItem(atPath: briefPath)
            try? FileManager.default.removeItem(atPath: privateTemp)
        }
        var ended = false
        func fail(_ message: String, state: AttemptState = .failed) throws -> Never {
            ended = true
            cleanUp()
            let next = try endAttempt(attempt, as: state, error: message, maxAttempts: serviceConfig.maxAttempts)
            throw RatchetError("attempt \(id)/\(attempt.number) failed: \(message); ticket \(id) is \(next)")
        }

        do {
            try repository.createBranch(attempt.branch, at: base)
            try Failpoints.hit("branch.created")
            try prepareWorktree(service: ticket.service, repository: repository, branch: attempt.branch, path: worktreePath,
                                name: "\(id)-\(attempt.number)")
            try FileManager.default.createDirectory(atPath: (briefPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: privateTemp, withIntermediateDirectories: true)
            try Data(brief(ticketView(id), attempt: attempt, protectedPaths: serviceConfig.protectedPaths).utf8).write(to: URL(fileURLWithPath: briefPath))
        } catch {
            try fail("cannot prepare the worktree: \(describe(error))")
        }
        progress("worktree \(attempt.worktree) ready; running agent \(agent.name)")
        try Failpoints.hit("worktree.ready")

        // The agent's run: one step, its output the observation.
        let environment = childEnvironment(allowing: serviceConfig.agentEnv, extra: [
            "RATCHET_TICKET": id, "RATCHET_TICKET_FILE": briefPath, "RATCHET_TRAJECTORY": attempt.trajectoryId,
            "RATCHET_WORKTREE": worktreePath, "RATCHET_WORKSPACE": root.path, "RATCHET_SERVICE": ticket.service,
            "RATCHET_ATTEMPT": "\(attempt.number)", "TMPDIR": privateTemp + "/tmp",
        ])
        let limits = ProcessLimits(timeout: serviceConfig.agentTimeout, outputBytes: serviceConfig.agentOutputBytes,
                                   fileBytes: serviceConfig.agentFileBytes)
        let run: ProcessResult
        do {
            // The agent's process group is recorded so that recovery can end it if this process dies.
            let groupFile = runFolder + "/\(id)-\(attempt.number).pgid"
            defer { try? FileManager.default.removeItem(atPath: groupFile) }
            let recordGroup: (pid_t) -> Void = { pid in try? Data("\(pid)\n".utf8).write(to: URL(fileURLWithPath: groupFile)) }
            if let bubblewrap {
                let sandbox = try agentSandbox(executable: bubblewrap, worktree: worktreePath,
                                               gitDirectory: String(repository.commonDirectory.dropLast()), readOnly: [briefPath],
                                               network: serviceConfig.sandboxNetwork, privateFolder: privateTemp)
                run = try sandbox.run(["/bin/sh", "-c", command], environment: environment, limits: limits,
                                      onOutput: agentOutput, onStart: recordGroup)
            } else {
                progress("warning: bubblewrap is not installed; the agent runs unsandboxed (sandbox.allow_unsandboxed)")
                run = try ProcessRunner.runShell(command, directory: worktreePath, environment: environment, limits: limits, onOutput: agentOutput,
                                                 onStart: recordGroup)
            }
        } catch {
            try fail("cannot start the agent: \(describe(error))")
        }
        do {
            return try finish()
        } catch where !ended {
            try fail("cannot record the agent's work: \(describe(error))")
        }

        /// Records the run, commits what the agent left, and proposes the attempt.
        func finish() throws -> AttemptRecord {
            try Failpoints.hit("agent.finished")
            try recordStep(trajectory: attempt.trajectoryId, ticket: id, service: ticket.service, attempt: attempt.number,
                           tool: "command", arguments: ["command": .string(redact(command))], risk: "medium", effect: "write-worktree",
                           ok: run.succeeded, output: run.output,
                           data: ["exit_status": run.exitStatus.map { .number(Double($0)) } ?? nil,
                                  "signal": run.signal.map { .number(Double($0)) } ?? nil,
                                  "timed_out": .bool(run.timedOut), "left_processes": .bool(run.leftProcesses),
                                  "output_truncated": .bool(run.isTruncated), "duration_s": .number(run.duration)],
                           commit: nil)
            progress("agent \(run.summary) after \(String(format: "%.2f", run.duration)) s")

            // Whatever the agent left uncommitted becomes the final step commit, unless it broke a limit.
            // The step's objects are written as one pack, flushed before the branch moves (docs/performance.md).
            let batch = try ObjectBatch(path: worktreePath)
            let worktree = batch.repository
            let changes = try worktree.status()
            for change in changes where !change.isDeleted {
                let path = worktreePath + "/" + change.path
                if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > serviceConfig.agentFileBytes {
                    try fail("agent wrote \(change.path) of \(size) bytes; the limit is \(serviceConfig.agentFileBytes) (limits.agent_file_bytes)")
                }
            }
            if run.signal == SIGXFSZ { try fail("agent \(run.summary) (limit \(serviceConfig.agentFileBytes) bytes, limits.agent_file_bytes)") }
            var head: ObjectID?
            if !changes.isEmpty {
                let view = try ticketView(id)
                let stepNumber = try database.read { db in
                    (try Int.fetchOne(db, sql: "SELECT MAX(\"index\") FROM trajectoryStep WHERE trajectoryId = ?", arguments: [attempt.trajectoryId]) ?? 0) + 1
                }
                let message = try CommitMessage.step(ticket: view, summary: view.title, trajectory: attempt.trajectoryId,
                                                     step: stepNumber, attempt: attempt.number)
                do {
                    head = try worktree.commitChanges(changes, author: Signature(name: agent.name, email: agent.email),
                                                      committer: config.identity, message: message,
                                                      beforeUpdatingBranch: { try batch.flush(roots: [$0]); try Failpoints.hit("step.flushed") })
                } catch {
                    try fail("cannot commit the agent's changes: \(describe(error))")
                }
                try Failpoints.hit("step.committed")
                if let head {
                    try recordStep(trajectory: attempt.trajectoryId, ticket: id, service: ticket.service, attempt: attempt.number,
                                   tool: "commit", arguments: ["message": .string(message)], risk: "low", effect: "commit", ok: true,
                                   output: "committed \(head.short): \(changes.count) path(s) changed",
                                   data: ["paths": .array(changes.prefix(1000).map { .string($0.path) })], commit: head.hex)
                    progress("committed \(head.short) on \(attempt.branch) (\(changes.count) path(s))")
                }
            }
            try Failpoints.hit("step.recorded")
            guard run.succeeded else { try fail("agent \(run.summary)") }
            // An agent may also have committed on its branch itself: its last commit is the head.
            if head == nil, let branchHead = try worktree.headCommit(), branchHead != base { head = branchHead }
            guard let head else { try fail("agent made no changes") }

            // Propose: attempt running → proposed, ticket working → proposed.
            let proposed: AttemptRecord = try database.write { db in
                guard var current = try AttemptRecord.fetchOne(db, key: attempt.id),
                      var ticket = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("attempt vanished") }
                guard current.state == .running, ticket.state == .working else {
                    throw RatchetError("ticket \(id) became \(ticket.state) while the agent ran; attempt \(id)/\(current.number) is \(current.state) and proposes nothing")
                }
                let now = Date()
                current.state = .proposed
                current.head = head.hex
                current.leaseOwner = nil
                current.leaseExpiresAt = nil
                try current.update(db)
                ticket.state = .proposed
                ticket.updatedAt = now
                try ticket.update(db)
                try RatchetDatabase.appendEvent(db, kind: "attempt.proposed", service: ticket.service, ticket: id, attempt: current.number,
                                                data: ["head": .string(head.hex), "branch": .string(current.branch)])
                return current
            }
            try Failpoints.hit("attempt.proposed")
            try? FileManager.default.removeItem(atPath: briefPath)
            try? FileManager.default.removeItem(atPath: privateTemp)
            return proposed
        }
    }

    /// The markdown brief an agent reads (`RATCHET_TICKET_FILE`).
    func brief(_ ticket: TicketView, attempt: AttemptRecord, protectedPaths: [String]) -> String {
        var text = "# \(ticket.id): \(ticket.title)\n\n"
        text += "- service: \(ticket.service)\n- risk: \(ticket.risk)\n- source: \(ticket.source)\n"
        text += "- attempt: \(attempt.number) on branch `\(attempt.branch)`\n- trajectory: \(attempt.trajectoryId)\n\n"
        text += "## Objective\n\n\(ticket.objective.isEmpty ? "(none given)" : ticket.objective)\n\n"
        text += "## Acceptance criteria\n\n" + (ticket.acceptance.isEmpty ? "(none)\n" : ticket.acceptance.map { "- \($0)\n" }.joined())
        text += "\n## Constraints\n\n" + (ticket.constraints.isEmpty ? "(none)\n" : ticket.constraints.map { "- \($0)\n" }.joined())
        if !ticket.context.isEmpty { text += "\n## Context\n\n\(ticket.context)\n" }
        text += "\nProtected paths (changes need human approval): \(protectedPaths.joined(separator: ", ")).\n"
        return text
    }
}

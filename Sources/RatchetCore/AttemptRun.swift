import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// One attempt's run after its claim: prepare the worktree, run the agent, check that it
/// touched nothing but its worktree, commit what it left, propose. Every write to the
/// repository goes through `repository`, opened by the service's own path (never through
/// the worktree) and naming the attempt's branch explicitly.
struct AttemptRun {
    let workspace: Workspace
    let attempt: AttemptRecord
    let serviceConfig: ServiceConfig
    let repository: Repository
    let worktreePath: String
    let briefPath: String
    let privateFolder: String
    /// The worktree's link files as Ratchet wrote them (checked after the agent ran).
    var link: WorktreeLink?
    /// Taken just before the agent runs.
    var referenceGuard: ReferenceGuard?
    /// The attempt's tools, served on its socket while the agent runs.
    var tools: AttemptTools?
    private(set) var ended = false

    var id: String { attempt.ticketId }
    var branchRef: String { "refs/heads/\(attempt.branch)" }

    init(workspace: Workspace, attempt: AttemptRecord, serviceConfig: ServiceConfig, repository: Repository) {
        self.workspace = workspace
        self.attempt = attempt
        self.serviceConfig = serviceConfig
        self.repository = repository
        worktreePath = workspace.root.appendingPathComponent(attempt.worktree).path
        briefPath = workspace.root.appendingPathComponent(".ratchet/briefs/\(attempt.ticketId)-\(attempt.number).md").path
        privateFolder = workspace.root.appendingPathComponent(".ratchet/tmp/agent-\(attempt.ticketId)-\(attempt.number)").path
    }

    /// Makes the branch, the worktree, the brief and the private folder.
    mutating func prepare(base: ObjectID, ticket: TicketView) throws {
        try repository.createBranch(attempt.branch, at: base)
        try Failpoints.hit("branch.created")
        link = try workspace.prepareWorktree(service: attempt.service, repository: repository, branch: attempt.branch, path: worktreePath,
                                             name: "\(id)-\(attempt.number)")
        try FileManager.default.createDirectory(atPath: (briefPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: privateFolder, withIntermediateDirectories: true)
        try replaceFile(briefPath, with: Array(workspace.brief(ticket, attempt: attempt, serviceConfig: serviceConfig,
                                                               agentsFile: worktreePath + "/" + ServiceConfig.agentsFile).utf8))
    }

    /// Records on the trajectory that the agent runs without a sandbox.
    func recordUnsandboxed(_ text: String) throws {
        try workspace.recordStep(trajectory: attempt.trajectoryId, ticket: id, service: attempt.service, attempt: attempt.number,
                                 tool: "sandbox", arguments: ["sandboxed": false], risk: "high", effect: "read", ok: true,
                                 output: "warning: \(text)", data: ["sandboxed": false], commit: nil)
        _ = try? workspace.database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "security.unsandboxed", service: attempt.service, ticket: id, attempt: attempt.number,
                                            data: ["agent": .string(attempt.agent)])
        }
    }

    /// Runs the agent's command in its sandbox (or, with `bubblewrap` nil, unsandboxed).
    mutating func runAgent(_ command: String, bubblewrap: String?, onOutput: (@Sendable (Data) -> Void)?) throws -> ProcessResult {
        var environment = workspace.childEnvironment(allowing: serviceConfig.agentEnv, extra: [
            "RATCHET_TICKET": id, "RATCHET_TICKET_FILE": briefPath, "RATCHET_TRAJECTORY": attempt.trajectoryId,
            "RATCHET_WORKTREE": worktreePath, "RATCHET_WORKSPACE": workspace.root.path, "RATCHET_SERVICE": attempt.service,
            "RATCHET_ATTEMPT": "\(attempt.number)", "TMPDIR": privateFolder + "/tmp", "HOME": privateFolder + "/home",
        ])
        let limits = ProcessLimits(timeout: serviceConfig.agentTimeout, outputBytes: serviceConfig.agentOutputBytes,
                                   fileBytes: serviceConfig.agentFileBytes)
        // The agent's process group is recorded so that recovery can end it if this process dies.
        let groupFile = workspace.runFolder + "/\(id)-\(attempt.number).pgid"
        defer { try? FileManager.default.removeItem(atPath: groupFile) }
        let recordGroup: (pid_t) -> Void = { pid in try? replaceFile(groupFile, with: Array("\(pid)\n".utf8)) }
        let referenceGuard = try ReferenceGuard(journal: ReferenceJournal(workspace: workspace, service: attempt.service),
                                                repository: repository, ownBranch: branchRef)
        self.referenceGuard = referenceGuard
        let tools = AttemptTools(workspace: workspace, attempt: attempt, serviceConfig: serviceConfig, worktreePath: worktreePath, link: link,
                                 bubblewrap: bubblewrap, privateFolder: privateFolder, briefPath: briefPath, referenceGuard: referenceGuard)
        self.tools = tools
        let server = try ToolServer(path: workspace.toolSocketPath(ticket: id, attempt: attempt.number), tools: tools)
        defer { server.stop() }
        let path = environment["PATH"] ?? "/usr/bin:/bin"
        environment["PATH"] = Sandbox.binaryFolder + ":" + path
        guard let bubblewrap else {
            if let folder = ToolServer.binaryFolder { environment["PATH"] = folder + ":" + path }
            for folder in ["tmp", "home"] { try FileManager.default.createDirectory(atPath: privateFolder + "/" + folder, withIntermediateDirectories: true) }
            environment["RATCHET_SOCKET"] = server.path
            return try ProcessRunner.runShell(command, directory: worktreePath, environment: environment, limits: limits,
                                              onOutput: onOutput, onStart: recordGroup)
        }
        environment["RATCHET_SOCKET"] = ToolServer.sandboxPath
        var sandbox = try workspace.agentSandbox(executable: bubblewrap, worktree: worktreePath,
                                                 gitDirectory: String(repository.commonDirectory.dropLast()), readOnly: [briefPath],
                                                 network: serviceConfig.sandboxNetwork, privateFolder: privateFolder)
        sandbox.mounts.append(Sandbox.Mount(server.path, at: ToolServer.sandboxPath))
        return try sandbox.run(["/bin/sh", "-c", command], environment: environment, limits: limits, onOutput: onOutput, onStart: recordGroup)
    }

    /// Records the run, checks for tampering, commits what the agent left and proposes.
    mutating func finish(_ run: ProcessResult, agent: AgentSpec, command: String, progress: @Sendable (String) -> Void) throws -> AttemptRecord {
        try Failpoints.hit("agent.finished")
        try workspace.recordStep(trajectory: attempt.trajectoryId, ticket: id, service: attempt.service, attempt: attempt.number,
                                 tool: "command", arguments: ["command": .string(workspace.redact(command))], risk: "medium",
                                 effect: "write-worktree", ok: run.succeeded, output: run.output + (run.isTruncated ? OutputBound.marker : ""),
                                 data: ["exit_status": run.exitStatus.map { .number(Double($0)) } ?? nil,
                                        "signal": run.signal.map { .number(Double($0)) } ?? nil,
                                        "timed_out": .bool(run.timedOut), "left_processes": .bool(run.leftProcesses),
                                        "output_truncated": .bool(run.isTruncated), "duration_s": .number(run.duration)],
                                 commit: nil, usage: ToolUsage.printed(in: run.output)?.json)
        progress("agent \(run.summary) after \(String(format: "%.2f", run.duration)) s")
        try checkTampering()
        switch tools?.end {
        case .escalated(let reason)?: try fail("escalated by the agent: \(workspace.redact(reason))", state: .failed)
        case .failed(let reason)?: try fail(reason, discardWorktree: reason.hasPrefix("tampered:"))
        case .done?, nil: break
        }
        if run.signal == SIGXFSZ { try fail("agent \(run.summary) (limit \(serviceConfig.agentFileBytes) bytes, limits.agent_file_bytes)") }
        let head = try commitWorktree(agent: agent, progress: progress)
        try Failpoints.hit("step.recorded")
        guard run.succeeded else { try fail("agent \(run.summary)") }
        guard let head else { try fail("agent made no changes") }
        let proposed = try propose(head)
        try Failpoints.hit("attempt.proposed")
        cleanUp()
        return proposed
    }

    /// Removes the brief and the private folder.
    func cleanUp() {
        try? FileManager.default.removeItem(atPath: briefPath)
        try? FileManager.default.removeItem(atPath: privateFolder)
    }

    /// Fails the attempt when a reference other than its branch moved, or its worktree no
    /// longer links where Ratchet put it; the references are restored first.
    mutating func checkTampering() throws {
        guard let referenceGuard else { return }
        let found = try referenceGuard.tamperings(in: repository)
        let broken = link.flatMap { $0.problem(worktree: worktreePath) }
        guard !found.isEmpty || broken != nil else { return }
        let reason = workspace.handleTampering(found, guard: referenceGuard, repository: repository, attempt: attempt, link: broken)
        try fail(reason, discardWorktree: true)
    }

    /// Reads the worktree against the branch's head and commits the difference as one step
    /// commit on the attempt's branch (compare-and-swap); nil when nothing changed. An agent
    /// that committed on its own branch (unsandboxed) has its head kept as the base.
    /// `summary` is the commit's subject (default: the ticket's title); with `recording`
    /// false the caller records the step that made the change, with the commit on it.
    mutating func commitWorktree(agent: AgentSpec, summary: String? = nil, recording: Bool = true,
                                 progress: @Sendable (String) -> Void) throws -> ObjectID? {
        let limits = serviceConfig.agentFolderLimits
        let step: StepCommit?
        do {
            step = try workspace.commitStep(attempt: attempt, worktree: worktreePath, link: link, limits: limits, summary: summary)
        } catch {
            try fail(describe(error))
        }
        guard let step else {
            guard let branchHead = try repository.resolveReference(branchRef) else { try fail("tampered: \(branchRef) was deleted") }
            return branchHead == ObjectID(hex: attempt.base) ? nil : branchHead
        }
        guard recording else { return step.head }
        try workspace.recordStep(trajectory: attempt.trajectoryId, ticket: id, service: attempt.service, attempt: attempt.number,
                                 tool: "commit", arguments: ["message": .string(step.message)], risk: "low", effect: "commit", ok: true,
                                 output: "committed \(step.head.short): \(step.paths.count) path(s) changed",
                                 data: ["paths": .array(step.paths.prefix(1000).map { .string($0) })], commit: step.head.hex)
        progress("committed \(step.head.short) on \(attempt.branch) (\(step.paths.count) path(s))")
        return step.head
    }

    /// Propose: attempt running → proposed, ticket working → proposed.
    func propose(_ head: ObjectID) throws -> AttemptRecord {
        try workspace.database.write { db in
            var (current, ticket) = try StateChange.load(db, attempt: attempt.id)
            guard current.state == .running, ticket.state == .working else {
                throw RatchetError("ticket \(id) became \(ticket.state) while the agent ran; attempt \(id)/\(current.number) is \(current.state) and proposes nothing")
            }
            let now = Date()
            StateChange.moveAttempt(&current, to: .proposed, at: now)
            current.head = head.hex
            try current.update(db)
            try StateChange.moveTicket(&ticket, to: .proposed, at: now)
            try ticket.update(db)
            try RatchetDatabase.appendEvent(db, kind: "attempt.proposed", service: ticket.service, ticket: id, attempt: current.number,
                                            data: ["head": .string(head.hex), "branch": .string(current.branch)])
            return current
        }
    }

    /// Ends the attempt as failed (the ticket open again or escalated) and throws. A
    /// tampered worktree is deleted rather than returned to the pool.
    /// `escalate` moves the ticket to escalated at once (an agent's `escalate`).
    mutating func fail(_ message: String, state: AttemptState = .failed, discardWorktree: Bool = false, escalate: Bool = false) throws -> Never {
        ended = true
        if discardWorktree { workspace.discardWorktree(at: worktreePath, service: attempt.service) }
        try? workspace.removeWorktree(of: attempt)
        cleanUp()
        let next = try workspace.endAttempt(attempt, as: state, error: message, maxAttempts: serviceConfig.maxAttempts, escalate: escalate)
        throw RatchetError("attempt \(id)/\(attempt.number) failed: \(message); ticket \(id) is \(next)")
    }
}

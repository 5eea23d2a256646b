import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The tools of one running attempt (SPEC §6): every call is one recorded step with its
/// risk, effect and observation, performed by the process that runs the attempt. The tool
/// socket (`ToolServer`), `ratchet mcp` through it, and the built-in runbook agent all call
/// `call(name:arguments:)`. Calls are serialised; after every call that writes, the
/// reference guard checks that no reference but the attempt's branch moved.
public final class AttemptTools: @unchecked Sendable {
    /// How the agent's work ended through the tools.
    public enum End: Sendable, Equatable {
        case done(String)
        case escalated(String)
        /// A writing call found tampering or the spend budget was exceeded: the attempt fails.
        case failed(String)
    }

    let workspace: Workspace
    public let attempt: AttemptRecord
    let serviceConfig: ServiceConfig
    let worktreePath: String
    let link: WorktreeLink?
    let bubblewrap: String?
    let privateFolder: String
    let briefPath: String
    let referenceGuard: ReferenceGuard?
    private let lock = NSLock()
    var endState: End?
    /// What the agent's calls have added to the trajectory (limits.trajectory_steps/_bytes).
    var growth = TrajectoryGrowth()

    init(workspace: Workspace, attempt: AttemptRecord, serviceConfig: ServiceConfig, worktreePath: String, link: WorktreeLink?,
         bubblewrap: String?, privateFolder: String, briefPath: String, referenceGuard: ReferenceGuard?) {
        self.workspace = workspace
        self.attempt = attempt
        self.serviceConfig = serviceConfig
        self.worktreePath = worktreePath
        self.link = link
        self.bubblewrap = bubblewrap
        self.privateFolder = privateFolder
        self.briefPath = briefPath
        self.referenceGuard = referenceGuard
    }

    /// How the agent ended its work through the tools, nil while it may still call them.
    public var end: End? { lock.withLock { endState } }

    /// Calls tool `name` with `arguments` (an object; usage may ride along as `tokens_in`,
    /// `tokens_out`, `cost_usd`) and records the call as one step. Never throws: a refused
    /// or failed call is an observation with `ok` false, recorded too when it can be.
    public func call(name: String, arguments: JSONValue) -> ToolObservation {
        lock.withLock {
            guard let tool = ToolCatalog.definition(name) else {
                return record(Self.unknown(name), arguments: Self.bounded(arguments), usage: nil,
                              .error("no tool '\(Self.safeToolName(name))'; the tools are \(ToolCatalog.all.map(\.name).joined(separator: ", "))"))
            }
            if let endState {
                return record(tool, arguments: Self.bounded(arguments), usage: nil, .error("the attempt's tools are closed (\(Self.text(of: endState)))"))
            }
            let usage: ToolUsage?
            var observation: ToolObservation
            do {
                usage = try ToolUsage.from(arguments)
                try Self.check(arguments, for: tool)
                try requireRunning()
                observation = try perform(tool, arguments: arguments)
            } catch {
                return record(tool, arguments: Self.bounded(arguments), usage: nil, .error(describe(error)))
            }
            if tool.writes, let reason = tampering() { observation = close(observation, .failed(reason)) }
            if let reason = overBudget(adding: usage) { observation = close(observation, .failed(reason)) }
            return record(tool, arguments: Self.withoutUsage(arguments), usage: usage, observation)
        }
    }

    /// Refused arguments as stored: at most 4 KiB of their JSON, so that an agent cannot fill
    /// the store (and the landing's note) by repeating refused calls with large arguments.
    static func bounded(_ arguments: JSONValue) -> JSONValue {
        guard let text = try? RatchetJSON.string(arguments, pretty: false), text.utf8.count > 4096 else { return arguments }
        return .object(["truncated": .string(String(decoding: text.utf8.prefix(4096), as: UTF8.self)), "bytes": .number(Double(text.utf8.count))])
    }

    /// The arguments without the usage members (those are recorded as the step's usage).
    static func withoutUsage(_ arguments: JSONValue) -> JSONValue {
        guard case .object(var members) = arguments else { return arguments }
        for key in ToolCatalog.usageArguments { members[key] = nil }
        return .object(members)
    }

    /// Records a call refused before it reached a tool (a malformed or forged request).
    func call(name: String, arguments: JSONValue, refusal: String) -> ToolObservation {
        lock.withLock { record(ToolCatalog.definition(name) ?? Self.unknown(name), arguments: Self.bounded(arguments), usage: nil, .error(refusal)) }
    }

    /// How a call of a tool that does not exist is recorded.
    static func unknown(_ name: String) -> ToolDefinition {
        ToolDefinition(name: safeToolName(name), summary: "", risk: "none", effect: "read", arguments: [])
    }

    private func close(_ observation: ToolObservation, _ end: End) -> ToolObservation {
        endState = end
        var closed = observation
        closed.ok = false
        closed.ended = true
        closed.output += "\nerror: \(Self.text(of: end))"
        return closed
    }

    static func text(of end: End) -> String {
        switch end {
        case .done(let summary): "done: \(summary)"
        case .escalated(let reason): "escalated: \(reason)"
        case .failed(let reason): "failed: \(reason)"
        }
    }

    /// A tool name as given, safe to store and show: printable, at most 64 characters.
    static func safeToolName(_ name: String) -> String {
        let printable = String(name.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F && !Names.isBidiControl($0) }.prefix(64))
        return printable.isEmpty ? "(empty)" : printable
    }

    /// Refuses missing, unknown or malformed arguments.
    static func check(_ arguments: JSONValue, for tool: ToolDefinition) throws {
        guard case .object(let members) = arguments else { throw RatchetError("the arguments of \(tool.name) must be an object") }
        let known = Set(tool.arguments.map(\.name) + ToolCatalog.usageArguments)
        if let unknown = members.keys.sorted().first(where: { !known.contains($0) }) {
            throw RatchetError("tool \(tool.name) has no argument '\(safeToolName(unknown))' (\(tool.usage))")
        }
        for argument in tool.arguments {
            guard let value = members[argument.name], value != .null else {
                if argument.required { throw RatchetError("tool \(tool.name) needs \(argument.name) (\(tool.usage))") }
                continue
            }
            guard let text = value.stringValue else { throw RatchetError("argument \(argument.name) of \(tool.name) must be a string") }
            if ["message", "reason", "summary"].contains(argument.name) {
                _ = try Names.line(text, what: argument.name)
            } else if text.utf8.count > 65_536 {
                throw RatchetError("argument \(argument.name) of \(tool.name) is longer than 64 KiB")
            }
        }
    }

    /// Refuses calls once the attempt is no longer running (cancelled, failed, ended).
    private func requireRunning() throws {
        let current = try workspace.database.read { db in try AttemptRecord.fetchOne(db, key: attempt.id) }
        guard let current, current.state == .running else {
            throw RatchetError("attempt \(attempt.ticketId)/\(attempt.number) is \(current?.state.rawValue ?? "gone"); no tool calls outside a running attempt")
        }
    }

    /// Records the call as a step (the arguments' strings redacted) and returns the
    /// observation with its index; a call that cannot be recorded says so.
    private func record(_ tool: ToolDefinition, arguments: JSONValue, usage: ToolUsage?, _ observation: ToolObservation) -> ToolObservation {
        var result = observation
        if growth.isFull {
            // Past the limit nothing more is stored: the answer says so, and an agent calling in a loop adds nothing.
            result.ok = false
            result.ended = true
            result.output = workspace.redact(result.output) + "\nerror: not recorded: \(TrajectoryGrowth.fullMessage)"
            return result
        }
        if let reason = growth.overLimit(adding: arguments, result, config: serviceConfig) {
            growth.reachLimit()
            if endState == nil { result = close(result, .failed(reason)) } else { result.ok = false; result.output += "\nerror: \(reason)" }
        }
        growth.add(arguments, result)
        do {
            result.step = try workspace.recordStep(
                trajectory: attempt.trajectoryId, ticket: attempt.ticketId, service: attempt.service, attempt: attempt.number,
                tool: tool.name, arguments: workspace.redact(arguments), risk: tool.risk, effect: tool.effect, ok: result.ok,
                output: result.output, data: workspace.redact(result.data), commit: result.commit, usage: usage?.json)
        } catch {
            result.ok = false
            result.output += "\nerror: the step could not be recorded: \(describe(error))"
        }
        result.output = workspace.redact(result.output)
        result.ended = result.ended || endState != nil
        return result
    }

    /// After a writing call: the references that moved without Ratchet, put back; nil when none.
    private func tampering() -> String? {
        guard let referenceGuard else { return nil }
        do {
            let repository = try workspace.openService(attempt.service)
            let found = try referenceGuard.tamperings(in: repository)
            guard !found.isEmpty else { return nil }
            return workspace.handleTampering(found, guard: referenceGuard, repository: repository, attempt: attempt, link: nil)
        } catch {
            return "tampered: the references cannot be checked: \(describe(error))"
        }
    }

    /// Why the tools close when the ticket's spend over all its attempts, with this call's,
    /// exceeds the service's budget; nil when it does not.
    private func overBudget(adding usage: ToolUsage?) -> String? {
        guard let budget = serviceConfig.ticketSpendUSD else { return nil }
        let spent = ((try? workspace.ticketSpend(attempt.ticketId)) ?? 0) + (usage?.costUSD ?? 0)
        guard spent > budget else { return nil }
        return String(format: "spend budget exceeded: $%.4f spent on %@, limit $%.4f (limits.ticket_spend_usd)", spent, attempt.ticketId, budget)
    }
}

extension Workspace {
    /// The tools of a running attempt, for an agent that runs inside this process (the
    /// built-in runbook agent): the same calls the socket serves, recorded the same way.
    /// The reference guard is taken now: writing calls are checked against this moment.
    public func attemptTools(_ attempt: AttemptRecord) throws -> AttemptTools {
        let serviceConfig = try serviceConfig(attempt.service)
        let repository = try openService(attempt.service)
        let referenceGuard = try ReferenceGuard(journal: ReferenceJournal(workspace: self, service: attempt.service), repository: repository,
                                                ownBranch: "refs/heads/\(attempt.branch)")
        let worktree = root.appendingPathComponent(attempt.worktree).path
        return AttemptTools(workspace: self, attempt: attempt, serviceConfig: serviceConfig, worktreePath: worktree,
                            link: WorktreeLink(worktree: worktree, commonDirectory: repository.commonDirectory), bubblewrap: Sandbox.bubblewrap(),
                            privateFolder: root.appendingPathComponent(".ratchet/tmp/agent-\(attempt.ticketId)-\(attempt.number)").path,
                            briefPath: root.appendingPathComponent(".ratchet/briefs/\(attempt.ticketId)-\(attempt.number).md").path,
                            referenceGuard: referenceGuard)
    }

    /// The host path of an attempt's tool socket: under `.ratchet/run`, or a private folder
    /// under /tmp when that path is too long for a socket address.
    func toolSocketPath(ticket: String, attempt: Int) throws -> String {
        let path = runFolder + "/\(ticket)-\(attempt).sock"
        if path.utf8.count < 100 { return path }
        var template = Array("/tmp/ratchet-tools-XXXXXX".utf8CString)
        guard let folder = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RatchetError("cannot make a folder for the tool socket under /tmp: \(String(cString: strerror(errno)))")
        }
        return String(cString: folder) + "/tools.sock"
    }
}

import Foundation
import GRDB
import RatchetGit
import RatchetMetrics
import RatchetStore

/// What each tool does. Arguments are checked (`AttemptTools.check`) before these run;
/// errors thrown here become the step's failed observation.
extension AttemptTools {
    func perform(_ tool: ToolDefinition, arguments: JSONValue) throws -> ToolObservation {
        let text = { (name: String) in arguments[name]?.stringValue ?? "" }
        switch tool.name {
        case "ticket": return try ticket()
        case "metrics": return try metrics(text("expr"))
        case "invariants": return try invariants()
        case "test": return try test()
        case "canary": return try canary()
        case "commit": return try commit(text("message"))
        case "note": return ToolObservation(ok: true, output: "noted")
        case "escalate": return try escalate(text("reason"))
        case "done": return done(text("summary"))
        default: throw RatchetError("tool \(tool.name) has no implementation")
        }
    }

    private func ticket() throws -> ToolObservation {
        let view = try workspace.ticketView(attempt.ticketId)
        let brief = (try? String(contentsOfFile: briefPath, encoding: .utf8))
            ?? workspace.brief(view, attempt: attempt, serviceConfig: serviceConfig, agentsFile: nil)
        return ToolObservation(ok: true, output: brief, data: ["ticket": .string(view.id), "title": .string(view.title)])
    }

    /// The expression evaluated now over the service's metrics (the embedded store or its
    /// Prometheus); the observation's data is Prometheus's JSON for the value.
    private func metrics(_ expression: String) throws -> ToolObservation {
        let now = Date()
        let value = try workspace.scopedQuery(service: attempt.service, expression: expression, at: now)
        let json = PrometheusJSON.data(value, at: Int64((now.timeIntervalSince1970 * 1000).rounded()))
        let data = (try? RatchetJSON.decoder().decode(JSONValue.self, from: Data(json.utf8))) ?? .string(json)
        let output: String
        switch value {
        case .scalar(let number): output = "scalar: \(PrometheusJSON.formatValue(number))"
        case .string(let text): output = "string: \(text)"
        case .vector(let samples):
            output = samples.isEmpty ? "no data" : samples.map { "\($0.labels) => \(PrometheusJSON.formatValue($0.value))" }.sorted().joined(separator: "\n")
        case .matrix(let series): output = "\(series.count) series (range vector; see data)"
        }
        return ToolObservation(ok: true, output: output, data: data)
    }

    /// The service's invariants and SLOs evaluated now (nothing filed).
    private func invariants() throws -> ToolObservation {
        let checks = try workspace.invariantStatus(service: attempt.service)
        let lines = checks.map { check in
            let state = check.holds.map { $0 ? "holds" : "BREACHED" } ?? "unknown"
            return "\(state) \(check.kind) \(check.name)" + (check.value.map { " = \(PrometheusJSON.formatValue($0))" } ?? "")
                + (check.error.map { " (\($0))" } ?? "")
        }
        return ToolObservation(ok: true, output: lines.isEmpty ? "no invariants (invariants.yaml)" : lines.joined(separator: "\n"),
                               data: ["checks": try RatchetJSON.value(checks)])
    }

    /// The service's test command over the worktree, in a sandbox of its own (the worktree
    /// writable, as for the agent), with the agent's network: the tests are the agent's code
    /// and their output goes back to the agent, so they get no more network than it has.
    private func test() throws -> ToolObservation {
        guard let command = serviceConfig.test else { throw RatchetError("service \(attempt.service) has no test command (service.yaml `test`)") }
        let limits = ProcessLimits(timeout: serviceConfig.agentTimeout, outputBytes: 64 * 1024, fileBytes: serviceConfig.agentFileBytes)
        let environment = workspace.childEnvironment(allowing: [], extra: ["RATCHET_SERVICE": attempt.service, "RATCHET_WORKTREE": worktreePath])
        let result: ProcessResult
        if let bubblewrap {
            let folder = privateFolder + "/test-\(UUIDv7.make().suffix(8))"
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let gitDirectory = workspace.servicePath(attempt.service) + "/.git"
            let sandbox = try workspace.agentSandbox(executable: bubblewrap, worktree: worktreePath, gitDirectory: gitDirectory, readOnly: [],
                                                     network: serviceConfig.sandboxNetwork && serviceConfig.verifyNetwork, privateFolder: folder)
            result = try sandbox.run(["/bin/sh", "-c", command], environment: environment, limits: limits)
        } else {
            result = try ProcessRunner.runShell(command, directory: worktreePath, environment: environment, limits: limits)
        }
        return ToolObservation(ok: result.succeeded, output: result.output + (result.isTruncated ? OutputBound.marker : ""),
                               data: ["command": .string(command), "exit_status": result.exitStatus.map { .number(Double($0)) } ?? .null,
                                      "timed_out": .bool(result.timedOut), "duration_s": .number(result.duration)])
    }

    /// Main's canary on the branch's head (the last step commit) against main.
    /// Canary runs one attempt may ask for: each holds the workspace's one canary lock for
    /// its whole run, so an agent calling it without end would starve every landing.
    static let canaryCallsPerAttempt = 3

    private func canary() throws -> ToolObservation {
        let done = try workspace.database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trajectoryStep WHERE trajectoryId = ? AND tool = 'canary' AND ok",
                             arguments: [attempt.trajectoryId]) ?? 0
        }
        guard done < Self.canaryCallsPerAttempt else {
            throw RatchetError("this attempt has run the canary \(done) times, its limit; the merge runs it again on the exact candidate")
        }
        let repository = try workspace.openService(attempt.service)
        guard let head = try repository.resolveReference("refs/heads/\(attempt.branch)"), head.hex != attempt.base else {
            throw RatchetError("nothing is committed on \(attempt.branch) yet: call commit first, the canary judges the branch's head")
        }
        let report = try workspace.runCanary(service: attempt.service, ref: head.hex)
        let value = try RatchetJSON.value(report)
        return ToolObservation(ok: true, output: "canary on \(head.short): \(value["verdict"]?.stringValue ?? "?")", data: value)
    }

    private func commit(_ message: String) throws -> ToolObservation {
        let limits = serviceConfig.agentFolderLimits
        guard let step = try workspace.commitStep(attempt: attempt, worktree: worktreePath, link: link, limits: limits, summary: message) else {
            return ToolObservation(ok: true, output: "nothing to commit: the worktree matches \(attempt.branch)")
        }
        return ToolObservation(ok: true, output: "committed \(step.head.short): \(step.paths.count) path(s) changed",
                               data: ["paths": .array(step.paths.prefix(1000).map { .string($0) })], commit: step.head.hex)
    }

    /// Ends the attempt now and moves the ticket to `escalated` (not back to open).
    private func escalate(_ reason: String) throws -> ToolObservation {
        let error = workspace.redact("escalated by the agent: \(reason)")
        try workspace.endAttempt(attempt, as: .failed, error: error, maxAttempts: serviceConfig.maxAttempts, escalate: true, outcome: [
            "status": "escalated", "reason": .string(workspace.redact(reason)), "duration_s": .number(Date().timeIntervalSince(attempt.startedAt))])
        endState = .escalated(reason)
        return ToolObservation(ok: true, output: "ticket \(attempt.ticketId) is escalated; the attempt has ended", ended: true)
    }

    private func done(_ summary: String) -> ToolObservation {
        endState = .done(summary)
        return ToolObservation(ok: true, output: "done: the worktree is committed and proposed when the agent exits", ended: true)
    }
}

/// Bounded text: what is kept of an agent's output, and the marker that says more was cut.
enum OutputBound {
    static let marker = "\n[… output truncated by Ratchet …]"
}

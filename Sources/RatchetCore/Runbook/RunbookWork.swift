import Foundation
import RatchetGit
import RatchetMetrics
import RatchetStore

extension Workspace {
    /// The runbooks of a service at `commit` (`runbooks/*.yaml`, read from git objects, never
    /// through a checkout), with the files that did not parse and why.
    func runbooks(in repository: Repository, at commit: ObjectID) throws -> (runbooks: [Runbook], broken: [String]) {
        let paths = try repository.changedPaths(from: nil, to: try repository.commit(commit).tree)
            .filter { $0.hasPrefix("runbooks/") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.dropFirst(9).contains("/") }
        var runbooks: [Runbook] = []
        var broken: [String] = []
        for path in paths.sorted() {
            guard let data = try repository.fileContents(path, in: commit) else { continue }
            do { runbooks.append(try Runbook.parse(String(decoding: data, as: UTF8.self), file: path)) } catch { broken.append(describe(error)) }
        }
        return (runbooks, broken)
    }

    /// The runbook agent's part of `work`: picks the runbook whose `triggers` name the
    /// ticket's source, walks it, and proposes what it committed. `escalate` (or no matching
    /// runbook) escalates the ticket at once; a failing step fails the attempt.
    func workRunbook(_ run: inout AttemptRun, ticket: TicketView, agent: AgentSpec, bubblewrap: String?,
                     progress: @escaping @Sendable (String) -> Void) throws -> AttemptRecord {
        let base = ObjectID(hex: run.attempt.base)!
        let (runbooks, broken) = try runbooks(in: run.repository, at: base)
        guard let runbook = runbooks.first(where: { $0.triggers.contains(ticket.source) }) else {
            if let first = broken.first { try run.fail("no valid runbook matches source \(ticket.source); \(first)") }
            try escalate(&run, reason: "no runbook in runbooks/ matches the ticket's source \(ticket.source)")
        }
        progress("runbook \(runbook.file) matches \(ticket.source)")
        var walk = RunbookWalk(run: run, runbook: runbook, ticket: ticket, agent: agent, bubblewrap: bubblewrap,
                               observations: WorkspaceObservations(workspace: self), progress: progress, tools: try attemptTools(run.attempt))
        let end: RunbookEnd
        do {
            end = try walk.walk()
        } catch where !walk.run.ended {
            run = walk.run
            try run.fail(describe(error))
        }
        run = walk.run
        switch end {
        case .escalate(let reason):
            try escalate(&run, reason: "runbook \(runbook.name): \(reason)")
        case .done(let summary):
            let head = try run.commitWorktree(agent: agent, progress: progress)
            try Failpoints.hit("step.recorded")
            guard let head else { try run.fail("runbook \(runbook.name) finished without a change: \(summary)") }
            let proposed = try run.propose(head)
            try Failpoints.hit("attempt.proposed")
            run.cleanUp()
            return proposed
        }
    }

    /// Ends the attempt and moves the ticket to `escalated` at once (SPEC §4: an agent's `escalate`).
    private func escalate(_ run: inout AttemptRun, reason: String) throws -> Never {
        try run.fail("escalated: \(reason)", escalate: true)
    }
}

/// The runbook agent's view of metrics and invariants through the metrics and observe seams.
struct WorkspaceObservations: RunbookObservations {
    let workspace: Workspace

    func metricValues(service: String, expression: String) throws -> [Double] {
        switch try workspace.query(service: service, expression: expression, at: Date()) {
        case .scalar(let value): return [value]
        case .vector(let samples): return samples.map(\.value)
        case .matrix: throw RatchetError("'\(Names.printable(expression))' is a range vector; the runbook agent branches on instant values")
        case .string: throw RatchetError("'\(Names.printable(expression))' is a string, not a number")
        }
    }

    func invariantStatus(service: String) throws -> (failing: Int, output: String, data: JSONValue) {
        let checks = try workspace.invariantStatus(service: service)
        let lines = checks.map { check in
            "\(check.holds == true ? "holds" : check.holds == false ? "BREACHED" : "unknown") \(check.name)"
                + (check.value.map { " (\($0))" } ?? "") + (check.error.map { ": \($0)" } ?? "")
        }
        return (checks.filter { $0.holds != true }.count, lines.joined(separator: "\n"), try RatchetJSON.value(checks))
    }
}

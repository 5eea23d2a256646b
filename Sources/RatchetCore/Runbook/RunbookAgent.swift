import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// What the runbook agent reads about the running service: the metrics and observe seams
/// (CONTRACTS.md), behind one small protocol so the walker does not depend on how they are
/// computed.
protocol RunbookObservations {
    /// The sample values of an instant query of `expression` for `service`, now.
    func metricValues(service: String, expression: String) throws -> [Double]
    /// The service's invariants: how many fail (or cannot be evaluated), a table, and the checks as JSON.
    func invariantStatus(service: String) throws -> (failing: Int, output: String, data: JSONValue)
}

/// How a walk ended.
enum RunbookEnd: Equatable {
    case done(String)
    case escalate(String)
}

/// One walk of a runbook's decision tree for one attempt (SPEC §6): each step is one
/// enumerated action, recorded as one trajectory step with its declared risk and effect;
/// a step that changed files is one step commit. File actions run in this process, beneath
/// the worktree only (`BeneathFolder`); commands and tests run in the attempt's sandbox.
struct RunbookWalk {
    var run: AttemptRun
    let runbook: Runbook
    let ticket: TicketView
    let agent: AgentSpec
    let bubblewrap: String?
    let observations: RunbookObservations
    let progress: @Sendable (String) -> Void
    /// The attempt's tools (traj's `AttemptTools`), for the tool actions.
    let tools: AttemptTools
    var files: BeneathFolder { BeneathFolder(path: run.worktreePath, fileLimit: run.serviceConfig.agentFileBytes) }

    /// What one action observed: the step's record, and the numbers `next` conditions read.
    struct Observed {
        var ok = true
        var output = ""
        var data: [String: JSONValue] = [:]
        var values: [String: Double] = [:]
        var commit: ObjectID?
    }

    /// Walks from `start` until a `done` or `escalate` step; a failing step throws (the
    /// attempt then fails with its message), and so does a walk longer than `max_steps`.
    mutating func walk() throws -> RunbookEnd {
        var name = runbook.start
        for _ in 0..<runbook.maxSteps {
            guard let step = runbook.steps[name] else { throw RatchetError("\(runbook.file): no step \(name)") }
            progress("runbook \(runbook.name): \(step.name) (\(step.action.rawValue), risk \(step.risk))")
            let observed: Observed
            do {
                observed = try perform(step)
            } catch let end as RunbookStop {
                try record(step, Observed(ok: true, output: end.text))
                return end.end
            } catch {
                let message = "\(runbook.file): step \(step.name) (\(step.action.rawValue)) failed: \(describe(error))"
                try record(step, Observed(ok: false, output: message))
                throw RatchetError(message)
            }
            try record(step, observed)
            guard let branch = step.next.first(where: { $0.condition?.holds(observed.values) ?? true }) else {
                throw RatchetError("\(runbook.file): step \(step.name) has no branch to take")
            }
            name = branch.target
        }
        throw RatchetError("\(runbook.file): the walk took \(runbook.maxSteps) steps without reaching done or escalate (max_steps); a loop without an exit?")
    }

    /// Records `step` on the trajectory with what it observed.
    func record(_ step: Runbook.Step, _ observed: Observed) throws {
        var arguments: [String: JSONValue] = ["runbook": .string(runbook.file), "step": .string(step.name)]
        for (key, value) in step.arguments { arguments[key] = .string(value.text) }
        var data = observed.data
        for (key, value) in observed.values { data[key] = .number(value) }
        try run.workspace.recordStep(trajectory: run.attempt.trajectoryId, ticket: run.id, service: run.attempt.service,
                                     attempt: run.attempt.number, tool: step.action.rawValue, arguments: .object(arguments),
                                     risk: step.risk, effect: step.effect, ok: observed.ok, output: observed.output,
                                     data: .object(data), commit: observed.commit?.hex)
    }

    /// Performs one action. `ticket`, `test`, `note` and `commit` are the tools every agent
    /// has (`AttemptTools`, one implementation); `metrics` and `invariants` read the metrics
    /// and observe seams directly, since the walk branches on their numbers.
    mutating func perform(_ step: Runbook.Step) throws -> Observed {
        let text = { (key: String) in step.arguments[key]?.text ?? "" }
        switch step.action {
        case .ticket:
            return try tool("ticket", [:])
        case .note:
            return try tool("note", ["text": .string(text("text"))])
        case .test:
            var observed = try tool("test", [:])
            if case .number(let code)? = observed.data["exit_status"] { observed.values["exit_code"] = code } else { observed.values["exit_code"] = observed.ok ? 0 : 1 }
            return observed
        case .commit:
            var observed = try tool("commit", ["message": .string(step.arguments["message"]?.text ?? "\(runbook.name): \(step.name)")])
            observed.values["changed"] = observed.commit == nil ? 0 : 1
            return observed
        case .metrics:
            let values = try observations.metricValues(service: run.attempt.service, expression: text("expr"))
            var observed = Observed(output: values.isEmpty ? "empty result" : values.map { "\($0)" }.joined(separator: "\n"),
                                    values: ["count": Double(values.count)])
            if values.count == 1 { observed.values["value"] = values[0] }
            return observed
        case .invariants:
            let status = try observations.invariantStatus(service: run.attempt.service)
            return Observed(output: status.output, data: ["checks": status.data], values: ["failing": Double(status.failing)])
        case .run:
            return try runCommand(text("command"), step: step)
        case .done:
            throw RunbookStop(end: .done(text("summary")), text: text("summary"))
        case .escalate:
            throw RunbookStop(end: .escalate(text("reason")), text: text("reason"))
        case .setKey:
            return try setKey(step)
        case .replaceText:
            return try replaceText(step)
        case .applyPatch:
            return try applyPatch(step)
        }
    }

    /// One of the attempt's tools, performed by `AttemptTools` (its step is recorded by the walk,
    /// with the runbook's declared risk and effect); a failed tool throws.
    func tool(_ name: String, _ arguments: [String: JSONValue]) throws -> Observed {
        guard let definition = ToolCatalog.definition(name) else { throw RatchetError("no tool \(name)") }
        let observation = try tools.perform(definition, arguments: .object(arguments))
        var data: [String: JSONValue] = [:]
        if case .object(let members) = observation.data { data = members }
        return Observed(ok: observation.ok, output: observation.output, data: data, commit: observation.commit.flatMap(ObjectID.init(hex:)))
    }

    private func branchHead() throws -> ObjectID? { try run.repository.resolveReference(run.branchRef) }

    /// Commits what the step changed as its step commit; the observation records it.
    mutating func commitStep(_ summary: String, _ observed: inout Observed) throws {
        let before = try branchHead()
        let line = try Names.line(summary, what: "step summary", limit: 200)
        if let head = try run.commitWorktree(agent: agent, summary: line, recording: false, progress: progress), head != before {
            observed.commit = head
            observed.values["changed"] = 1
        } else {
            observed.values["changed"] = 0
        }
    }

    /// `run`: a command in the attempt's sandbox, as a command agent runs; what it changed is the step's commit.
    mutating func runCommand(_ command: String, step: Runbook.Step) throws -> Observed {
        let result = try run.runAgent(command, bubblewrap: bubblewrap, onOutput: nil)
        try run.checkTampering()
        if result.signal == SIGXFSZ { throw RatchetError("\(result.summary) (limit \(run.serviceConfig.agentFileBytes) bytes, limits.agent_file_bytes)") }
        var observed = Observed(ok: result.succeeded, output: run.workspace.redact(result.output),
                                data: ["timed_out": .bool(result.timedOut), "duration_s": .number(result.duration)],
                                values: ["exit_code": Double(result.exitStatus ?? (128 + (result.signal ?? 0)))])
        try commitStep("\(step.name): \(command.prefix(120))", &observed)
        return observed
    }

    /// `set_key`: one scalar of a JSON, YAML or TOML file: `value`, or the current number
    /// times `multiply` or plus `add`, clamped to `min`/`max`.
    mutating func setKey(_ step: Runbook.Step) throws -> Observed {
        let file = step.arguments["file"]!.text, key = step.arguments["key"]!.text
        let format = try ConfigEdit.format(of: file)
        let text = String(decoding: try files.read(file), as: UTF8.self)
        let current = try ConfigEdit.locate(key, in: text, format: format, file: file).value
        var value: ConfigScalar
        if let fixed = step.arguments["value"] {
            value = fixed
        } else {
            guard let number = current.number else { throw RatchetError("\(file): \(key) is \(current.literal), not a number") }
            value = .number(step.arguments["multiply"].flatMap(\.number).map { number * $0 } ?? number + (step.arguments["add"]?.number ?? 0))
        }
        if let number = value.number {
            let clamped = min(max(number, step.arguments["min"]?.number ?? -.infinity), step.arguments["max"]?.number ?? .infinity)
            value = .number(clamped)
        }
        var observed = Observed(output: "\(file): \(key) \(current.literal) -> \(value.literal)",
                                data: ["file": .string(file), "key": .string(key), "old": .string(current.literal), "new": .string(value.literal)])
        if let number = value.number { observed.values["value"] = number }
        if value != current {
            try files.write(file, Array(try ConfigEdit.set(key, to: value, in: text, format: format, file: file).utf8))
        }
        try commitStep("Set \(key) in \(file) to \(value.literal)", &observed)
        return observed
    }

    /// `replace_text`: every occurrence of `find` in `file` becomes `replace`; none is an
    /// error, and so is a count other than `expect` when given.
    mutating func replaceText(_ step: Runbook.Step) throws -> Observed {
        let file = step.arguments["file"]!.text, find = step.arguments["find"]!.text, replacement = step.arguments["replace"]!.text
        guard !find.isEmpty else { throw RatchetError("replace_text: find is empty") }
        let text = String(decoding: try files.read(file), as: UTF8.self)
        let count = text.components(separatedBy: find).count - 1
        guard count > 0 else { throw RatchetError("\(file) does not contain the text to replace ('\(Names.printable(String(find.prefix(80))))')") }
        if let expected = step.arguments["expect"]?.number, Double(count) != expected {
            throw RatchetError("\(file) contains the text \(count) time(s), expected \(Int(expected))")
        }
        try files.write(file, Array(text.replacingOccurrences(of: find, with: replacement).utf8))
        var observed = Observed(output: "\(file): replaced \(count) occurrence(s)", data: ["file": .string(file)], values: ["count": Double(count)])
        try commitStep("Replace text in \(file)", &observed)
        return observed
    }

    /// `apply_patch`: a unified diff (inline `patch`, or `file` in the worktree), all or nothing.
    mutating func applyPatch(_ step: Runbook.Step) throws -> Observed {
        let folder = files
        let text = try step.arguments["patch"]?.text ?? String(decoding: try folder.read(step.arguments["file"]!.text), as: UTF8.self)
        let results = try UnifiedPatch.parse(text).apply { try folder.readIfPresent($0) }
        for (path, content) in results {
            if let content { try folder.write(path, content) } else { try folder.remove(path) }
        }
        var observed = Observed(output: "patched \(results.map(\.path).joined(separator: ", "))",
                                data: ["paths": .array(results.map { .string($0.path) })], values: ["count": Double(results.count)])
        try commitStep("Apply a patch to \(results.count) file(s)", &observed)
        return observed
    }
}

/// Thrown by `done` and `escalate`: the walk ends.
private struct RunbookStop: Error {
    var end: RunbookEnd
    var text: String
}

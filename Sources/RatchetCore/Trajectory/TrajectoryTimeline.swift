import Foundation
import RatchetStore

/// `ratchet trajectory show`: a trajectory as lines a person reads on a terminal.
public enum TrajectoryTimeline {
    public static func render(_ trajectory: TrajectoryDocument) -> String {
        var text = "trajectory \(trajectory.id)\n"
        text += "ticket \(trajectory.ticket)/\(trajectory.attempt)  service \(trajectory.service)  agent \(trajectory.agent)\n"
        text += "main at start: \(trajectory.initialState["main"]?.stringValue ?? "?")\n"
        let start = trajectory.steps.first?.time
        for step in trajectory.steps {
            let offset = start.map { String(format: "+%7.2fs", step.time.timeIntervalSince($0)) } ?? ""
            let mark = step.observation.ok ? "ok  " : "FAIL"
            var line = "\(String(format: "%4d", step.index)) \(offset) \(mark) \(step.action.tool) [\(step.action.risk)/\(step.action.effect)]"
            if let arguments = summary(step.action.arguments) { line += " " + arguments }
            if let commit = step.commit { line += " → \(commit.prefix(12))" }
            if let cost = step.usage?["cost_usd"], case .number(let value) = cost { line += String(format: " ($%.4f)", value) }
            text += line + "\n"
            let output = step.observation.output.split(separator: "\n", omittingEmptySubsequences: false)
            for outputLine in output.prefix(3) where !outputLine.isEmpty { text += "        │ \(outputLine.prefix(160))\n" }
            if output.count > 3 { text += "        │ … \(output.count - 3) more line(s) (--json for all)\n" }
        }
        let status = trajectory.outcome?["status"]?.stringValue ?? "running"
        text += "outcome: \(status)"
        if let landing = trajectory.outcome?["landing"]?.stringValue { text += "  landing \(landing.prefix(12))" }
        if let error = trajectory.outcome?["error"]?.stringValue { text += "  (\(error.prefix(200)))" }
        if case .number(let seconds)? = trajectory.outcome?["duration_s"] { text += String(format: "  %.1f s", seconds) }
        text += "\n"
        for label in trajectory.labels {
            text += "label: \(label["kind"]?.stringValue ?? "?") by \(label["by"]?.stringValue ?? "?") at \(label["at"]?.stringValue ?? "?")\n"
        }
        return text
    }

    /// The arguments on one line, at most 100 characters.
    static func summary(_ arguments: JSONValue) -> String? {
        guard case .object(let members) = arguments, !members.isEmpty else { return nil }
        let text = members.keys.sorted().map { key in
            let value = members[key]!
            return "\(key)=" + (value.stringValue.map { "\"\($0)\"" } ?? ((try? RatchetJSON.string(value, pretty: false)) ?? "?"))
        }.joined(separator: " ").replacingOccurrences(of: "\n", with: " ")
        return text.count > 100 ? String(text.prefix(99)) + "…" : text
    }

    /// `YYYY-MM-DD` or a full ISO 8601 time, UTC.
    public static func parseDate(_ text: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withFullDate]
        if let date = formatter.date(from: text) { return date }
        throw RatchetError("'\(Names.printable(text))' is not a date: use YYYY-MM-DD or an ISO 8601 time")
    }
}

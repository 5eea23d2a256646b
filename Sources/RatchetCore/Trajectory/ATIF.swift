import Foundation
import RatchetStore

/// The Agent Trajectory Interchange Format (RFC 0001 of the Harbor project), version
/// pinned to `ATIF.version` (docs/atif.md, docs/atif-schema.json). What ATIF has no field
/// for (the ticket, the initial state, the verified outcome, labels, risk and effect) goes
/// under `extra`.
public enum ATIF {
    /// The pinned version, written as every document's `schema_version`.
    public static let version = "ATIF-v1.6"

    /// One trajectory as an ATIF document: a `user` step with the ticket, then one `agent`
    /// step per Ratchet step (its tool call and observation, usage as metrics).
    public static func document(for trajectory: TrajectoryDocument) -> JSONValue {
        var steps: [JSONValue] = [[
            "step_id": 1, "source": "user",
            "message": .string("Ticket \(trajectory.ticket) of service \(trajectory.service), attempt \(trajectory.attempt)"),
        ]]
        var totals = (prompt: 0.0, completion: 0.0, cost: 0.0, reported: false)
        for step in trajectory.steps {
            let callID = "call_\(step.index)"
            var members: [String: JSONValue] = [
                "step_id": .number(Double(steps.count + 1)),
                "timestamp": .string(timestamp(step.time)),
                "source": "agent",
                "message": .string(step.action.tool == "note" ? step.action.arguments["text"]?.stringValue ?? "" : ""),
                "tool_calls": [["tool_call_id": .string(callID), "function_name": .string(step.action.tool),
                                "arguments": objectOrWrapped(step.action.arguments)]],
                "observation": ["results": [["source_call_id": .string(callID), "content": .string(step.observation.output)]]],
                "extra": ["ratchet_index": .number(Double(step.index)), "risk": .string(step.action.risk), "effect": .string(step.action.effect),
                          "ok": .bool(step.observation.ok), "data": step.observation.data, "commit": .optional(step.commit)],
            ]
            if let metrics = metrics(step.usage) {
                members["metrics"] = metrics
                totals.reported = true
                totals.prompt += metrics["prompt_tokens"].flatMap(number) ?? 0
                totals.completion += metrics["completion_tokens"].flatMap(number) ?? 0
                totals.cost += metrics["cost_usd"].flatMap(number) ?? 0
            }
            steps.append(.object(members))
        }
        var finalMetrics: [String: JSONValue] = ["total_steps": .number(Double(steps.count))]
        if totals.reported {
            finalMetrics["total_prompt_tokens"] = .number(totals.prompt)
            finalMetrics["total_completion_tokens"] = .number(totals.completion)
            finalMetrics["total_cost_usd"] = .number(totals.cost)
        }
        return [
            "schema_version": .string(version),
            "session_id": .string(trajectory.id),
            "agent": ["name": .string(trajectory.agent), "version": "ratchet-0.1.0", "tool_definitions": toolDefinitions],
            "steps": .array(steps),
            "final_metrics": .object(finalMetrics),
            "extra": ["ratchet": [
                "schema": .string(trajectory.schema), "ticket": .string(trajectory.ticket), "service": .string(trajectory.service),
                "attempt": .number(Double(trajectory.attempt)), "initial_state": trajectory.initialState,
                "outcome": trajectory.outcome ?? .null, "labels": .array(trajectory.labels),
            ]],
        ]
    }

    /// The tools the agent had (ToolCatalog), in OpenAI's function-calling shape (ATIF v1.5's
    /// `agent.tool_definitions`, for SFT pipelines that need the signatures).
    static let toolDefinitions: JSONValue = .array(ToolCatalog.all.map { tool in
        ["type": "function", "function": ["name": .string(tool.name), "description": .string(tool.summary), "parameters": tool.parametersSchema]]
    })

    /// Ratchet's usage (`tokens_in`, `tokens_out`, `cost_usd`) as ATIF step metrics.
    static func metrics(_ usage: JSONValue?) -> JSONValue? {
        guard let usage, case .object(let members) = usage, !members.isEmpty else { return nil }
        var metrics: [String: JSONValue] = [:]
        if let value = members["tokens_in"] { metrics["prompt_tokens"] = value }
        if let value = members["tokens_out"] { metrics["completion_tokens"] = value }
        if let value = members["cost_usd"] { metrics["cost_usd"] = value }
        return .object(metrics)
    }

    private static func number(_ value: JSONValue) -> Double? { if case .number(let number) = value { number } else { nil } }

    /// ATIF's tool arguments must be an object.
    private static func objectOrWrapped(_ value: JSONValue) -> JSONValue {
        if case .object = value { return value }
        return ["value": value]
    }

    private static func timestamp(_ date: Date) -> String {
        ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withInternetDateTime])
    }
}

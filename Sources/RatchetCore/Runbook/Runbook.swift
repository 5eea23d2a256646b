import Foundation
import Yams

/// A machine-readable runbook (`runbooks/*.yaml`, SPEC §3, §6; docs/runbooks.md): a
/// decision tree of named steps, each one enumerated action with a declared `risk` and
/// `effect`, walked by the built-in runbook agent for tickets whose source is one of its
/// `triggers`.
public struct Runbook: Sendable, Equatable {
    /// The enumerated actions.
    public enum Action: String, Sendable, CaseIterable {
        case ticket, invariants, metrics, test, note, commit, done, escalate
        case setKey = "set_key", replaceText = "replace_text", applyPatch = "apply_patch", run

        /// What the action does, whatever the runbook says: the declared `effect` must match.
        public var effect: String {
            switch self {
            case .ticket, .invariants, .metrics, .test, .note: return "read"
            case .setKey, .replaceText, .applyPatch, .run: return "write-worktree"
            case .commit: return "commit"
            case .done, .escalate: return "end"
            }
        }

        /// Arguments the action requires, then those it accepts.
        var arguments: (required: [String], optional: [String]) {
            switch self {
            case .ticket, .invariants, .test: return ([], [])
            case .metrics: return (["expr"], [])
            case .note: return (["text"], [])
            case .commit: return ([], ["message"])
            case .done: return (["summary"], [])
            case .escalate: return (["reason"], [])
            case .setKey: return (["file", "key"], ["value", "multiply", "add", "min", "max"])
            case .replaceText: return (["file", "find", "replace"], ["expect"])
            case .applyPatch: return ([], ["patch", "file"])
            case .run: return (["command"], [])
            }
        }
    }

    /// A condition on a step's observation: `SUBJECT OP NUMBER`, e.g. `value >= 0.5`.
    public struct Condition: Sendable, Equatable, CustomStringConvertible {
        public var subject: String
        public var comparison: String
        public var number: Double
        public var description: String { "\(subject) \(comparison) \(number)" }

        /// The subjects an observation may carry.
        public static let subjects = ["value", "exit_code", "count", "failing", "changed"]

        static func parse(_ text: String) throws -> Condition {
            let parts = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard parts.count == 3, subjects.contains(parts[0]), ["<", "<=", ">", ">=", "==", "!="].contains(parts[1]),
                  let number = Double(parts[2]), number.isFinite else {
                throw RatchetError("'\(text)' is not a condition: SUBJECT OP NUMBER, SUBJECT one of \(subjects.joined(separator: ", ")), OP one of < <= > >= == !=")
            }
            return Condition(subject: parts[0], comparison: parts[1], number: number)
        }

        /// Whether it holds for `observation`; a missing subject (an empty query result) never holds.
        public func holds(_ observation: [String: Double]) -> Bool {
            guard let value = observation[subject], !value.isNaN else { return false }
            switch comparison {
            case "<": return value < number
            case "<=": return value <= number
            case ">": return value > number
            case ">=": return value >= number
            case "==": return value == number
            default: return value != number
            }
        }
    }

    /// One branch of `next`: taken when `condition` holds (or always, without one).
    public struct Branch: Sendable, Equatable {
        public var condition: Condition?
        public var target: String
    }

    /// One step of the tree.
    public struct Step: Sendable, Equatable {
        public var name: String
        public var action: Action
        public var arguments: [String: ConfigScalar]
        public var risk: String
        public var effect: String
        public var next: [Branch]
    }

    public var file: String
    public var name: String
    public var description: String
    /// Ticket sources this runbook works, e.g. `invariant:hit_ratio_floor`.
    public var triggers: [String]
    public var start: String
    /// The most steps one walk may take: a loop without an exit ends here.
    public var maxSteps: Int
    public var steps: [String: Step]

    /// The default and the ceiling of `max_steps`.
    public static let defaultMaxSteps = 50
    public static let maximumSteps = 1_000

    /// Parses and validates a runbook; every error names the file and the key.
    public static func parse(_ text: String, file: String) throws -> Runbook {
        let fields = try YAMLFields.parse(text, file: file)
        try fields.rejectUnknown(["name", "description", "triggers", "start", "max_steps", "steps"])
        let triggers = try fields.stringList("triggers") ?? []
        guard !triggers.isEmpty else { throw fields.fail("triggers", "is required: the ticket sources this runbook works (e.g. invariant:NAME)") }
        guard let stepsFields = try fields.nested("steps"), !stepsFields.mapping.isEmpty else { throw fields.fail("steps", "is required") }
        var steps: [String: Step] = [:]
        for (key, _) in stepsFields.mapping {
            guard let name = key.string else { throw fields.fail("steps", "step names must be strings") }
            guard let stepFields = try stepsFields.nested(name) else { throw stepsFields.fail(name, "expected a mapping") }
            steps[name] = try parseStep(name, stepFields)
        }
        let runbook = Runbook(file: file, name: try fields.requiredString("name"), description: try fields.string("description") ?? "",
                              triggers: triggers, start: try fields.requiredString("start"),
                              maxSteps: try fields.int("max_steps", range: 1...maximumSteps) ?? defaultMaxSteps, steps: steps)
        guard steps[runbook.start] != nil else { throw fields.fail("start", "names no step ('\(runbook.start)')") }
        for step in steps.values {
            for branch in step.next where steps[branch.target] == nil {
                throw stepsFields.fail("\(step.name).next", "names no step ('\(branch.target)')")
            }
        }
        return runbook
    }

    private static func parseStep(_ name: String, _ fields: YAMLFields) throws -> Step {
        try fields.rejectUnknown(["action", "args", "risk", "effect", "next", "description"])
        let actionName = try fields.requiredString("action")
        guard let action = Action(rawValue: actionName) else {
            throw fields.fail("action", "unknown action '\(actionName)' (known: \(Action.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let risk = try fields.requiredString("risk")
        guard ["none", "low", "medium", "high"].contains(risk) else { throw fields.fail("risk", "expected none, low, medium or high, got '\(risk)'") }
        let effect = try fields.requiredString("effect")
        guard effect == action.effect else { throw fields.fail("effect", "action \(action.rawValue) has effect \(action.effect), not '\(effect)'") }
        var arguments: [String: ConfigScalar] = [:]
        if let args = try fields.nested("args") {
            let (required, optional) = action.arguments
            try args.rejectUnknown(Set(required + optional))
            for (key, node) in args.mapping {
                guard let key = key.string, node.scalar != nil else { throw args.fail(key.string ?? "?", "expected a scalar") }
                arguments[key] = ConfigScalar(yaml: node)
            }
        }
        for key in action.arguments.required where arguments[key] == nil { throw fields.fail("args.\(key)", "is required by action \(action.rawValue)") }
        try checkChoices(action, arguments, fields)
        let next = try parseNext(fields)
        if action.effect == "end" {
            guard next.isEmpty else { throw fields.fail("next", "a step with effect end has no next") }
        } else {
            guard !next.isEmpty else { throw fields.fail("next", "is required (a step name, or a list of {when, goto})") }
            guard next.last?.condition == nil else { throw fields.fail("next", "the last branch must have no 'when', so that the walk always goes on") }
        }
        return Step(name: name, action: action, arguments: arguments, risk: risk, effect: effect, next: next)
    }

    /// set_key needs exactly one of value, multiply, add; apply_patch one of patch, file.
    private static func checkChoices(_ action: Action, _ arguments: [String: ConfigScalar], _ fields: YAMLFields) throws {
        let choices: [String]
        switch action {
        case .setKey: choices = ["value", "multiply", "add"]
        case .applyPatch: choices = ["patch", "file"]
        default: return
        }
        guard choices.filter({ arguments[$0] != nil }).count == 1 else {
            throw fields.fail("args", "action \(action.rawValue) takes exactly one of \(choices.joined(separator: ", "))")
        }
        for key in ["multiply", "add", "min", "max", "expect"] where arguments[key] != nil && arguments[key]?.number == nil {
            throw fields.fail("args.\(key)", "expected a number")
        }
    }

    private static func parseNext(_ fields: YAMLFields) throws -> [Branch] {
        guard let node = fields.mapping["next"] else { return [] }
        if let target = node.scalar?.string { return target.isEmpty ? [] : [Branch(condition: nil, target: target)] }
        guard let sequence = node.sequence else { throw fields.fail("next", "expected a step name or a list of {when, goto}") }
        return try sequence.enumerated().map { index, item in
            guard let mapping = item.mapping, let target = mapping["goto"]?.string else { throw fields.fail("next[\(index)]", "expected {when: CONDITION, goto: STEP}") }
            for key in mapping.keys where !["when", "goto"].contains(key.string ?? "") { throw fields.fail("next[\(index)]", "unknown key '\(key.string ?? "?")'") }
            do {
                return Branch(condition: try mapping["when"]?.string.map(Condition.parse), target: target)
            } catch {
                throw fields.fail("next[\(index)].when", describe(error))
            }
        }
    }
}

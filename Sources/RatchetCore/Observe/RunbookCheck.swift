import Foundation
import Yams

/// `service check`'s validation of `runbooks/*.yaml` in the draft format of
/// templates/kv-cache/runbooks (a decision tree of steps, each one enumerated action with a
/// declared risk and effect). It checks what can be checked without running anything: keys,
/// known actions, risks, effects, `start` and every `next`/`goto` target, conditions,
/// PromQL expressions, triggers naming invariants and SLOs that exist, and files and keys
/// that exist on main.
struct RunbookCheck {
    /// The actions a runbook step may name: the agent tools (SPEC §6) and the file actions.
    static let actions: Set<String> = ["ticket", "invariants", "metrics", "test", "commit", "note", "done", "escalate",
                                       "set_key", "replace_text", "apply_patch", "run"]
    static let risks: Set<String> = ["none", "low", "medium", "high"]
    static let effects: Set<String> = ["read", "write-worktree", "commit", "end"]

    /// The bytes of a file on main, or nil when there is none.
    var fileOnMain: (String) throws -> Data?
    var invariants: Set<String>
    var slos: Set<String>

    /// Every problem of one runbook file (empty when it is valid).
    func problems(_ text: String, file: String) -> [RatchetError] {
        let fields: YAMLFields
        do {
            fields = try YAMLFields.parse(text, file: file)
            try fields.rejectUnknown(["name", "description", "triggers", "start", "max_steps", "steps"])
            _ = try fields.requiredString("name")
        } catch { return [asRatchetError(error)] }
        var problems: [RatchetError] = []
        func collect(_ body: () throws -> Void) { do { try body() } catch { problems.append(asRatchetError(error)) } }
        var names: Set<String> = []
        collect {
            guard let steps = try fields.nested("steps"), !steps.mapping.isEmpty else { throw fields.fail("steps", "is required (a mapping of named steps)") }
            names = Set(steps.mapping.keys.compactMap(\.string))
            for name in names.sorted() {
                collect {
                    guard let step = try steps.nested(name) else { throw steps.fail(name, "expected a mapping") }
                    problems += self.stepProblems(step, steps: names)
                }
            }
        }
        collect {
            let start = try fields.requiredString("start")
            if !names.isEmpty, !names.contains(start) { throw fields.fail("start", "names no step ('\(Names.printable(start))')") }
        }
        collect {
            for (index, trigger) in (try fields.stringList("triggers") ?? []).enumerated() { try checkTrigger(trigger, fields, "triggers[\(index)]") }
        }
        return problems
    }

    private func checkTrigger(_ trigger: String, _ fields: YAMLFields, _ key: String) throws {
        let parts = trigger.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw fields.fail(key, "expected invariant:NAME, slo:NAME or alert:NAME, got '\(Names.printable(trigger))'") }
        switch parts[0] {
        case "invariant" where !invariants.contains(parts[1]): throw fields.fail(key, "no invariant named '\(Names.printable(parts[1]))' in invariants.yaml")
        case "slo" where !slos.contains(parts[1]): throw fields.fail(key, "no SLO named '\(Names.printable(parts[1]))' in slos.yaml")
        case "invariant", "slo", "alert", "reflection": return
        default: throw fields.fail(key, "expected invariant:NAME, slo:NAME or alert:NAME, got '\(Names.printable(trigger))'")
        }
    }

    /// The problems of one step: each key checked on its own.
    private func stepProblems(_ step: YAMLFields, steps: Set<String>) -> [RatchetError] {
        var problems: [RatchetError] = []
        func collect(_ body: () throws -> Void) { do { try body() } catch { problems.append(asRatchetError(error)) } }
        collect { try step.rejectUnknown(["action", "args", "risk", "effect", "next", "description"]) }
        collect {
            let action = try step.requiredString("action")
            guard Self.actions.contains(action) else { throw step.fail("action", "unknown action '\(Names.printable(action))' (known: \(Self.actions.sorted().joined(separator: ", ")))") }
        }
        collect { try Self.requireOneOf(Self.risks, step, "risk") }
        var isEnd = false
        collect {
            try Self.requireOneOf(Self.effects, step, "effect")
            isEnd = try step.string("effect") == "end"
        }
        collect { try checkNext(step, steps: steps, isEnd: isEnd) }
        collect { if let args = try step.nested("args") { try checkArguments(args) } }
        return problems
    }

    private static func requireOneOf(_ allowed: Set<String>, _ fields: YAMLFields, _ key: String) throws {
        let value = try fields.requiredString(key)
        guard allowed.contains(value) else { throw fields.fail(key, "expected one of \(allowed.sorted().joined(separator: ", ")), got '\(Names.printable(value))'") }
    }

    /// `next` is a step name or a list of `{when: CONDITION, goto: STEP}`; an `end` step has none.
    private func checkNext(_ step: YAMLFields, steps: Set<String>, isEnd: Bool) throws {
        guard step.has("next") else {
            if !isEnd { throw step.fail("next", "is required unless the step's effect is end") }
            return
        }
        if let target = try? step.string("next") {
            guard steps.contains(target) else { throw step.fail("next", "names no step ('\(Names.printable(target))')") }
            return
        }
        let branches = try step.mappingList("next") ?? []
        for (index, branch) in branches.enumerated() {
            try branch.rejectUnknown(["when", "goto"])
            let target = try branch.requiredString("goto")
            guard steps.contains(target) else { throw branch.fail("goto", "names no step ('\(Names.printable(target))')") }
            if let condition = try branch.string("when") {
                guard Self.isCondition(condition) else { throw branch.fail("when", "expected 'value|exit_code|count|failing|changed OP NUMBER', got '\(Names.printable(condition))'") }
            } else if index != branches.count - 1 {
                throw branch.fail("when", "only the last branch may omit when")
            }
        }
    }

    static func isCondition(_ text: String) -> Bool {
        text.range(of: #"^\s*(value|exit_code|count|failing|changed)\s*(==|!=|<=|>=|<|>)\s*-?[0-9]+(\.[0-9]+)?\s*$"#, options: .regularExpression) != nil
    }

    /// `expr` parses; `file` exists on main and, for key actions, `key` is one of its keys.
    private func checkArguments(_ args: YAMLFields) throws {
        if let expression = try args.string("expr") { try PromQLCheck.require(expression, args, "expr") }
        guard let file = try args.string("file") else { return }
        guard !file.hasPrefix("/"), !file.split(separator: "/").contains(".."), let data = try fileOnMain(file) else {
            throw args.fail("file", "'\(Names.printable(file))' is not a file on main")
        }
        guard let key = try args.string("key") else { return }
        guard Self.hasKey(key, in: data) else { throw args.fail("key", "'\(Names.printable(key))' is not a key of \(file) on main") }
    }

    /// Whether the dotted `key` names a value of a JSON or YAML document.
    static func hasKey(_ key: String, in data: Data) -> Bool {
        var node: Any? = try? JSONSerialization.jsonObject(with: data)
        if node == nil { node = try? Yams.load(yaml: String(decoding: data, as: UTF8.self)) }
        for part in key.split(separator: ".") {
            guard let mapping = node as? [String: Any], let next = mapping[String(part)] else { return false }
            node = next
        }
        return true
    }
}

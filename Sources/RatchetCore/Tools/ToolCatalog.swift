import Foundation
import RatchetStore

/// The tools of SPEC §6: their names, arguments, risk and effect. One home for what a tool
/// is, used by the socket server, `ratchet tool`, `ratchet mcp` and the brief.
public struct ToolDefinition: Sendable {
    /// One argument: its name, what it is, and whether the call needs it.
    public struct Argument: Sendable {
        public var name: String
        public var summary: String
        public var required: Bool
        /// The command-line flag that gives it (`-m` for commit); nil: the positional words.
        public var flag: String?
    }
    public var name: String
    public var summary: String
    public var risk: String
    public var effect: String
    public var arguments: [Argument]
    /// Whether the call ends the agent's work (`done`, `escalate`).
    public var ends: Bool { effect == "end" }
    /// Whether the call writes (then the reference guard runs after it).
    public var writes: Bool { effect == "commit" || effect == "write-worktree" }

    /// The arguments as a JSON Schema object, with the usage any call may report: MCP's
    /// `inputSchema` (`ratchet mcp`) and ATIF's `tool_definitions` (docs/atif.md).
    public var parametersSchema: JSONValue {
        var properties: [String: JSONValue] = [:]
        for argument in arguments { properties[argument.name] = ["type": "string", "description": .string(argument.summary)] }
        properties["tokens_in"] = ["type": "number", "description": "model input tokens this step used"]
        properties["tokens_out"] = ["type": "number", "description": "model output tokens this step used"]
        properties["cost_usd"] = ["type": "number", "description": "model cost of this step in USD"]
        return ["type": "object", "properties": .object(properties), "required": .array(arguments.filter(\.required).map { .string($0.name) })]
    }

    /// The call as a command line: `commit -m MSG`.
    public var usage: String {
        ([name] + arguments.map { argument in
            let word = argument.name.uppercased()
            let text = argument.flag.map { "\($0) \(word)" } ?? word
            return argument.required ? text : "[\(text)]"
        }).joined(separator: " ")
    }
}

public enum ToolCatalog {
    /// Model usage an agent may report with any call (`usage` argument or `--tokens-in` …).
    public static let usageArguments = ["tokens_in", "tokens_out", "cost_usd"]

    public static let all: [ToolDefinition] = [
        .init(name: "ticket", summary: "Read the ticket's brief: objective, acceptance criteria, constraints, context.",
              risk: "none", effect: "read", arguments: []),
        .init(name: "metrics", summary: "Evaluate a PromQL expression over the service's metrics now.", risk: "none", effect: "read",
              arguments: [.init(name: "expr", summary: "the PromQL expression", required: true)]),
        .init(name: "invariants", summary: "The status of the service's invariants and SLOs.", risk: "none", effect: "read", arguments: []),
        .init(name: "test", summary: "Run the service's test command (service.yaml `test`) on the worktree, in a sandbox.",
              risk: "low", effect: "read", arguments: []),
        .init(name: "canary", summary: "Judge the attempt's last step commit against main with main's canary.", risk: "low", effect: "read",
              arguments: []),
        .init(name: "commit", summary: "Commit the worktree as one step commit on the attempt's branch.", risk: "low", effect: "commit",
              arguments: [.init(name: "message", summary: "one line saying what the step does", required: true, flag: "-m")]),
        .init(name: "note", summary: "Record reasoning on the trajectory.", risk: "none", effect: "read",
              arguments: [.init(name: "text", summary: "the note", required: true)]),
        .init(name: "escalate", summary: "Give up and hand the ticket to a person: it becomes escalated at once.", risk: "low",
              effect: "end", arguments: [.init(name: "reason", summary: "why a person is needed", required: true)]),
        .init(name: "done", summary: "Finish: what the worktree holds is committed and proposed when the agent exits.", risk: "none",
              effect: "end", arguments: [.init(name: "summary", summary: "what was done", required: true)]),
    ]

    /// The tool named `name`.
    public static func definition(_ name: String) -> ToolDefinition? { all.first { $0.name == name } }

    /// The arguments object of a command-line call (`ratchet tool commit -m MSG`): the flag
    /// names its argument, the remaining words joined by spaces are the first argument
    /// without a flag; `--tokens-in N`, `--tokens-out N`, `--cost-usd X` report usage.
    public static func arguments(for tool: ToolDefinition, argv: [String]) throws -> JSONValue {
        var members: [String: JSONValue] = [:]
        var words: [String] = []
        var rest = argv[...]
        while let word = rest.popFirst() {
            if let usage = usageArguments.first(where: { "--" + $0.replacingOccurrences(of: "_", with: "-") == word }) {
                guard let value = rest.popFirst(), let number = Double(value), number >= 0 else {
                    throw RatchetError("\(word) needs a number ≥ 0")
                }
                members[usage] = .number(number)
            } else if let argument = tool.arguments.first(where: { $0.flag != nil && $0.flag == word }) {
                guard let value = rest.popFirst() else { throw RatchetError("\(word) needs a value (\(tool.usage))") }
                members[argument.name] = .string(value)
            } else if word == "--" {
                words += rest
                rest = []
            } else {
                words.append(word)
            }
        }
        if !words.isEmpty {
            guard let positional = tool.arguments.first(where: { $0.flag == nil }) else {
                throw RatchetError("tool \(tool.name) takes no argument '\(words[0])' (\(tool.usage))")
            }
            members[positional.name] = .string(words.joined(separator: " "))
        }
        return .object(members)
    }
}

/// What a tool call gives back: the step's observation, and the step it was recorded as.
public struct ToolObservation: Codable, Sendable, Equatable {
    public var ok: Bool
    public var output: String
    public var data: JSONValue
    /// The step's index on the trajectory (nil when it could not be recorded).
    public var step: Int?
    /// The step commit, for `commit`.
    public var commit: String?
    /// Whether the attempt's tools are closed after this call (done, escalated, failed).
    public var ended: Bool

    public init(ok: Bool, output: String, data: JSONValue = .object([:]), step: Int? = nil, commit: String? = nil, ended: Bool = false) {
        self.ok = ok; self.output = output; self.data = data; self.step = step; self.commit = commit; self.ended = ended
    }

    /// A refused or failed call.
    public static func error(_ message: String, data: JSONValue = .object([:])) -> ToolObservation {
        ToolObservation(ok: false, output: "error: " + message, data: data)
    }
}

/// Model usage reported for one step (SPEC §9): tokens in and out, cost in USD.
public struct ToolUsage: Codable, Sendable, Equatable {
    public var tokensIn: Int?
    public var tokensOut: Int?
    public var costUSD: Double?
    enum CodingKeys: String, CodingKey {
        case tokensIn = "tokens_in", tokensOut = "tokens_out", costUSD = "cost_usd"
    }
    public init(tokensIn: Int? = nil, tokensOut: Int? = nil, costUSD: Double? = nil) {
        self.tokensIn = tokensIn; self.tokensOut = tokensOut; self.costUSD = costUSD
    }

    /// The largest token count or cost one report may carry: what an agent reports is
    /// hostile input, and a count past `Int.max` would trap on conversion.
    static let maximum: Double = 1e12

    /// The usage members of a call's arguments (nil when none is given).
    static func from(_ arguments: JSONValue) throws -> ToolUsage? {
        func number(_ key: String) throws -> Double? {
            guard let value = arguments[key], value != .null else { return nil }
            guard case .number(let number) = value, number >= 0, number <= maximum else {
                throw RatchetError("\(key) must be a number from 0 to \(Int(maximum))")
            }
            return number
        }
        let usage = ToolUsage(tokensIn: try number("tokens_in").map { Int($0) }, tokensOut: try number("tokens_out").map { Int($0) },
                              costUSD: try number("cost_usd"))
        return usage == ToolUsage() ? nil : usage
    }

    /// The usage an agent printed on its output, summed: lines
    /// `ratchet-usage: tokens_in=N tokens_out=N cost_usd=X` (any of the three).
    static func printed(in output: String) -> ToolUsage? {
        var total = ToolUsage()
        for line in output.split(separator: "\n") where line.hasPrefix("ratchet-usage:") {
            for pair in line.dropFirst("ratchet-usage:".count).split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let value = Double(parts[1]), value >= 0, value <= maximum else { continue }
                // Sums saturate at `maximum` (an output may repeat the line any number of times).
                func add(_ sum: Int?) -> Int { Int(min(Double(sum ?? 0) + value.rounded(.down), maximum)) }
                switch parts[0] {
                case "tokens_in": total.tokensIn = add(total.tokensIn)
                case "tokens_out": total.tokensOut = add(total.tokensOut)
                case "cost_usd": total.costUSD = min((total.costUSD ?? 0) + value, maximum)
                default: continue
                }
            }
        }
        return total == ToolUsage() ? nil : total
    }

    var json: JSONValue {
        var members: [String: JSONValue] = [:]
        if let tokensIn { members["tokens_in"] = .number(Double(tokensIn)) }
        if let tokensOut { members["tokens_out"] = .number(Double(tokensOut)) }
        if let costUSD { members["cost_usd"] = .number(costUSD) }
        return .object(members)
    }
}

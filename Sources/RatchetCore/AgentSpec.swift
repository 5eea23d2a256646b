import Foundation

/// Which agent works an attempt (SPEC §6): `command:SHELL`, a named command agent from
/// `ratchet.yaml`, or `runbook`.
public struct AgentSpec: Sendable, Equatable {
    /// The agent's name: the author name of its commits (`NAME <NAME@agents.ratchet.invalid>`).
    public var name: String
    /// The shell command, nil for the built-in runbook agent.
    public var command: String?
    /// The spec as written.
    public var spec: String

    /// Parses a spec; `config` resolves named agents (nil: only check the syntax).
    public static func parse(_ raw: String, config: WorkspaceConfig?) throws -> AgentSpec {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("command:") {
            let command = String(text.dropFirst("command:".count)).trimmingCharacters(in: .whitespaces)
            guard !command.isEmpty else { throw RatchetError("agent 'command:' needs a shell command, e.g. --agent 'command:./fix.sh'") }
            guard !command.contains("\0") else { throw RatchetError("agent command contains a NUL byte") }
            return AgentSpec(name: "command", command: command, spec: text)
        }
        if text == "runbook" {
            return AgentSpec(name: "runbook", command: nil, spec: text)
        }
        let name = try Names.agentName(text)
        guard let config else { return AgentSpec(name: name, command: nil, spec: text) }
        guard let command = config.agents[name] else {
            let known = config.agents.keys.sorted()
            throw RatchetError("unknown agent '\(name)': use 'command:SHELL', 'runbook'" + (known.isEmpty ? "" : " or one of \(known.joined(separator: ", "))") + " (agents: in ratchet.yaml)")
        }
        return AgentSpec(name: name, command: command, spec: text)
    }

    /// The author email of the agent's commits.
    public var email: String { "\(name)@agents.ratchet.invalid" }
}

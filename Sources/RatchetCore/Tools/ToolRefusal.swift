import Foundation
import RatchetStore

extension Workspace {
    /// A tool called where no attempt serves tools (`RATCHET_SOCKET` unset): there is no
    /// trajectory to put it on, so it is recorded as a `tool.refused` event for an operator.
    /// Inside an agent's sandbox no workspace is visible and nothing is recorded here: calls
    /// made there reach the attempt's socket and become steps.
    public func recordToolRefusal(command: String, tool: String?, reason: String) throws {
        let data: JSONValue = ["command": .string(command), "tool": .optional(tool.map { String($0.prefix(100)) }), "reason": .string(reason)]
        try database.write { db in try RatchetDatabase.appendEvent(db, kind: "tool.refused", data: data) }
    }

    /// Records the refusal in the workspace found from `directory` and the environment, when
    /// there is one; returns its root (nil: none found, or it could not be written).
    public static func recordToolRefusal(command: String, tool: String?, reason: String) -> String? {
        guard let workspace = try? Workspace.locate(), (try? workspace.recordToolRefusal(command: command, tool: tool, reason: reason)) != nil else {
            return nil
        }
        return workspace.root.path
    }
}

/// A tool called outside an attempt: the error, after recording `tool.refused` in the
/// workspace around the caller when there is one (docs/events.md).
public enum ToolRefusalError {
    public static func outsideAnAttempt(command: String, tool: String?) -> RatchetError {
        let reason = "RATCHET_SOCKET is not set ('ratchet \(command)' runs inside an agent's attempt)"
        let recorded = Workspace.recordToolRefusal(command: command, tool: tool, reason: reason)
        return RatchetError("no attempt to act for: \(reason)" + (recorded.map { "; recorded as tool.refused in \($0)" } ?? ""))
    }
}

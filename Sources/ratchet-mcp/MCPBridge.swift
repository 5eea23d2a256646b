import Foundation
import MCP
import RatchetCore
import RatchetStore

/// The MCP server: lists the tool catalog, forwards each call to the socket.
enum MCPBridge {
    static func serve(socket: String, trajectory: String?) async throws {
        let server = Server(name: "ratchet", version: ratchetVersion,
                            instructions: "The tools of one Ratchet attempt. Read the ticket, change the worktree, commit, then done (or escalate).",
                            capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: try ToolCatalog.all.map(tool)) }
        await server.withMethodHandler(CallTool.self) { parameters in
            let arguments = try JSONValue.object(parameters.arguments.map(convert) ?? [:])
            let request = ToolRequest(tool: parameters.name, arguments: arguments, trajectory: trajectory)
            let observation: ToolObservation
            do {
                observation = try ToolClient.call(request, socket: socket)
            } catch {
                return .init(content: [.text(text: "error: \(describe(error))", annotations: nil, _meta: nil)], isError: true)
            }
            return .init(content: [.text(text: observation.output, annotations: nil, _meta: nil)], isError: !observation.ok)
        }
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
    }

    /// A catalog entry as an MCP tool: its arguments and the usage it may report.
    static func tool(_ definition: ToolDefinition) throws -> Tool {
        let schema = try JSONDecoder().decode(Value.self, from: JSONEncoder().encode(definition.parametersSchema))
        return Tool(name: definition.name, description: "\(definition.summary) (risk \(definition.risk), effect \(definition.effect))",
                    inputSchema: schema, annotations: .init(readOnlyHint: definition.effect == "read"))
    }

    /// MCP values as Ratchet's JSON values (through their JSON form).
    static func convert(_ members: [String: Value]) throws -> [String: JSONValue] {
        try JSONDecoder().decode([String: JSONValue].self, from: JSONEncoder().encode(members))
    }
}

/// A failure message handed from the server task to the command.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?
    func set(_ text: String) { lock.withLock { message = text } }
    var value: String? { lock.withLock { message } }
}

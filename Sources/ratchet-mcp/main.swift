import Foundation
import RatchetCore

// `ratchet mcp` (adr/0073): the attempt's tools over MCP on stdio (the official Swift SDK), as
// a client of the attempt's tool socket (`RATCHET_SOCKET`); it writes nothing itself. Its own
// executable, the only one that links the MCP SDK (and through it FoundationNetworking and
// libcurl): the full `ratchet` execs it for `ratchet mcp`, the sandbox's thin client directly.

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("error: " + message.replacingOccurrences(of: "\n", with: " ") + "\n").utf8))
    exit(1)
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.isEmpty || arguments == ["mcp"] else {
    fail("unexpected argument '\(Names.printable(arguments.first { $0 != "mcp" } ?? ""))' (usage: ratchet mcp)")
}
let environment = ProcessInfo.processInfo.environment
guard let socket = environment["RATCHET_SOCKET"], !socket.isEmpty else {
    fail(ToolRefusalError.outsideAnAttempt(command: "mcp", tool: nil).message)
}
let trajectory = environment["RATCHET_TRAJECTORY"]
let finished = DispatchSemaphore(value: 0)
let failure = FailureBox()
Task.detached {
    do { try await MCPBridge.serve(socket: socket, trajectory: trajectory) } catch { failure.set(describe(error)) }
    finished.signal()
}
finished.wait()
if let message = failure.value { fail(message) }

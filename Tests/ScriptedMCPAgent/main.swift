import Foundation
import MCP
import SystemPackage

// A scripted agent for the tests (never a model): it starts `ratchet mcp` on a pipe, talks
// to it with the MCP Swift SDK's own client, and acts through the attempt's tools.
//   ratchet-scripted-mcp-agent RATCHET land        list tools, read the ticket, write mcp.txt, commit, done
//   ratchet-scripted-mcp-agent RATCHET disconnect  write mcp.txt, call `test`, kill `ratchet mcp` once the
//                                                  service's test command says it runs (FIFO in $RATCHET_TEST_FIFO)

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("scripted agent: \(message)\n".utf8))
    exit(1)
}

let arguments = CommandLine.arguments
guard arguments.count == 3 else { fail("usage: ratchet-scripted-mcp-agent RATCHET land|disconnect") }
let server = Process()
server.executableURL = URL(fileURLWithPath: arguments[1])
server.arguments = ["mcp"]
let toServer = Pipe(), fromServer = Pipe()
server.standardInput = toServer
server.standardOutput = fromServer
do { try server.run() } catch { fail("cannot start ratchet mcp: \(error)") }
try "written over MCP\n".write(toFile: "mcp.txt", atomically: true, encoding: .utf8)

let transport = StdioTransport(input: FileDescriptor(rawValue: fromServer.fileHandleForReading.fileDescriptor),
                               output: FileDescriptor(rawValue: toServer.fileHandleForWriting.fileDescriptor))
let client = Client(name: "scripted-agent", version: "1.0")

func text(_ content: [Tool.Content]) -> String {
    content.compactMap { if case .text(let text, _, _) = $0 { text } else { nil } }.joined(separator: "\n")
}

func land() async throws {
    let (tools, _) = try await client.listTools()
    guard Set(tools.map(\.name)).isSuperset(of: ["ticket", "commit", "done", "escalate", "test", "note"]) else { fail("tools: \(tools.map(\.name))") }
    let ticket = try await client.callTool(name: "ticket")
    guard ticket.isError != true, text(ticket.content).contains("## Acceptance criteria") else { fail("ticket: \(text(ticket.content))") }
    let bad = try await client.callTool(name: "commit", arguments: [:])
    guard bad.isError == true else { fail("a commit without a message was accepted") }
    let commit = try await client.callTool(name: "commit", arguments: ["message": "Write mcp.txt", "tokens_in": 1200, "tokens_out": 300,
                                                                         "cost_usd": 0.02])
    guard commit.isError != true else { fail("commit: \(text(commit.content))") }
    let done = try await client.callTool(name: "done", arguments: ["summary": "wrote mcp.txt"])
    guard done.isError != true else { fail("done: \(text(done.content))") }
    print("mcp agent: \(text(commit.content))")
}

func disconnect() async throws {
    guard let fifo = ProcessInfo.processInfo.environment["RATCHET_TEST_FIFO"] else { fail("RATCHET_TEST_FIFO is not set") }
    let call = Task { try await client.callTool(name: "test") }
    // The service's test command writes to the FIFO once it runs: the call is in progress.
    guard let handle = FileHandle(forReadingAtPath: fifo) else { fail("cannot open \(fifo)") }
    _ = try handle.readToEnd()
    kill(server.processIdentifier, SIGKILL)
    call.cancel()
    print("mcp agent: disconnected mid-call")
}

let finished = DispatchSemaphore(value: 0)
Task.detached {
    do {
        _ = try await client.connect(transport: transport)
        switch arguments[2] {
        case "land": try await land()
        case "disconnect": try await disconnect()
        default: fail("unknown script \(arguments[2])")
        }
    } catch {
        fail("\(error)")
    }
    finished.signal()
}
finished.wait()
try? toServer.fileHandleForWriting.close()
server.waitUntilExit()
exit(0)

import ArgumentParser
import Foundation
import RatchetCore

/// `ratchet tool NAME …`: a thin client of the attempt's tool socket (`RATCHET_SOCKET`).
/// It opens nothing of the workspace: one connection, one answer.
struct ToolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tool", abstract: "Call one of the attempt's tools (inside an agent's run): "
            + ToolCatalog.all.map(\.usage).joined(separator: " | "))
    @Flag(name: .long, help: "Print the observation as one JSON document.") var json = false
    @Argument(help: "The tool: \(ToolCatalog.all.map(\.name).joined(separator: ", ")).") var name: String
    @Argument(parsing: .captureForPassthrough, help: "The tool's arguments (e.g. commit -m MSG; --tokens-in N --tokens-out N --cost-usd X report usage).")
    var arguments: [String] = []

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let socket = environment["RATCHET_SOCKET"], !socket.isEmpty else {
            throw ToolRefusalError.outsideAnAttempt(command: "tool", tool: name)
        }
        let observation = try ToolClient.call(ToolRequest(tool: name, argv: arguments, trajectory: environment["RATCHET_TRAJECTORY"]),
                                              socket: socket)
        if json {
            try Terminal.printJSON(observation)
        } else if observation.ok {
            print(Names.escapedForTerminal(observation.output))
        } else {
            FileHandle.standardError.write(Data((Names.escapedForTerminal(observation.output) + "\n").utf8))
        }
        if !observation.ok { throw ExitCode(1) }
    }
}

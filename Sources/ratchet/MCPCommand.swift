import ArgumentParser
import Foundation
import RatchetCore

/// `ratchet mcp`: the attempt's tools over MCP on stdin/stdout, served by `ratchet-mcp`, the
/// executable beside this one that links the MCP SDK (adr/0073): this binary links neither
/// the SDK nor, through it, libcurl. Same arguments, same environment, by exec.
struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp", abstract: "Serve the attempt's tools over MCP on stdin/stdout (inside an agent's run).")

    func run() throws {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let server = (me as NSString).deletingLastPathComponent + "/ratchet-mcp"
        guard FileManager.default.isExecutableFile(atPath: server) else {
            throw RatchetError("'ratchet mcp' is served by ratchet-mcp, which is not installed beside \(me) (swift build --product ratchet-mcp)")
        }
        let arguments = ([server] + CommandLine.arguments.dropFirst()).map { strdup($0) } + [nil]
        execv(server, arguments)
        throw RatchetError("cannot run \(server): \(String(cString: strerror(errno)))")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RatchetTerminalText

// The `ratchet` an agent's sandbox runs (/run/ratchet/bin/ratchet): `ratchet tool NAME ARG…`
// is answered here, one connection to the attempt's tool socket and one answer; `ratchet mcp`
// is handed to `ratchet-mcp` (adr/0073) and every other command line (`ratchet tool --json …`,
// help, errors before a request is sent) to the full binary, by exec. No Foundation, static standard library: the call
// starts in about a millisecond instead of the full binary's ~20 ms of dynamic linking
// (docs/performance.md, adr/0042).

let arguments = CommandLine.arguments

/// The full `ratchet` binary answers everything else (same arguments, same environment);
/// `ratchet mcp` goes straight to `ratchet-mcp` (one exec fewer), when it is installed.
func handOver() -> Never {
    let mcp = arguments.count == 2 && arguments[1] == "mcp" ? ToolWire.mcpBinary() : nil
    guard let full = mcp ?? ToolWire.fullBinary() else { fail("the full ratchet binary is not installed beside \(arguments[0])") }
    var cArguments = ([full] + arguments.dropFirst()).map { strdup($0) }
    cArguments.append(nil)
    execv(full, cArguments)
    fail("cannot run \(full): \(String(cString: strerror(errno)))")
}

func fail(_ message: String) -> Never {
    ToolWire.write(2, "error: " + message + "\n")
    exit(1)
}

// The first process of a deploy's sandbox (adr/0077): never handed over, the full binary has no such mode.
if arguments.count >= 2, arguments[1] == SandboxInit.mode {
    SandboxInit.run(Array(arguments.dropFirst(arguments.count > 2 && arguments[2] == "--" ? 3 : 2)))
}

guard arguments.count >= 3, arguments[1] == "tool", !arguments[2].hasPrefix("-"),
      let socketPath = getenv("RATCHET_SOCKET").map({ String(cString: $0) }), !socketPath.isEmpty else { handOver() }
let request = ToolWire.request(tool: arguments[2], argv: Array(arguments.dropFirst(3)),
                               trajectory: getenv("RATCHET_TRAJECTORY").map { String(cString: $0) })
guard let fd = ToolWire.connect(socketPath) else { handOver() }
guard ToolWire.send(fd, request + "\n") else { fail("the tool socket closed the connection") }
shutdown(fd, Int32(SHUT_WR))
guard let answer = ToolWire.readAll(fd, limit: 256 << 20), let observation = ToolWire.observation(answer) else {
    fail("the tool socket \(TerminalText.escaped(socketPath)) answered something that is not a tool observation")
}
let text = TerminalText.escaped(observation.output) + "\n"
ToolWire.write(observation.ok ? 1 : 2, text)
exit(observation.ok ? 0 : 1)

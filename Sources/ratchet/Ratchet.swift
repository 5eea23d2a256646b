import ArgumentParser
import Foundation
import RatchetCore

/// The `ratchet` command line: parses arguments and hands off to RatchetCore. No logic here.
@main
struct RatchetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ratchet",
        abstract: "A git-native harness in which AI agents develop and operate infrastructure services.",
        version: ratchetVersion,
        subcommands: [InitCommand.self, ServiceCommand.self, TicketCommand.self, WorkCommand.self, MergeCommand.self,
                      CanaryCommand.self, ApproveCommand.self, RejectCommand.self, RevertCommand.self, EventsCommand.self, DoctorCommand.self, QuickstartCommand.self,
                      SummaryCommand.self, ReindexCommand.self, ReflectCommand.self,
                      MetricsCommand.self, QueryCommand.self,
                      ObserveCommand.self,
                      ToolCommand.self, MCPCommand.self, TrajectoryCommand.self,
                      PumpCommand.self])

    /// Runs the command line; every failure is one `error:` line on stderr and a non-zero exit.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as RatchetError {
            fail(error.message)
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = message(for: error)
            if message.isEmpty || isArgumentError(error) {
                let line = message.split(separator: "\n").first.map(String.init) ?? describe(error)
                fail(line.isEmpty ? describe(error) : line, code: code.rawValue)
            }
            fail(describe(error))
        }
    }

    private static func isArgumentError(_ error: any Error) -> Bool {
        !(error is RatchetError) && String(reflecting: type(of: error)).contains("ArgumentParser")
    }

    /// Prints `error: message` on stderr and exits.
    static func fail(_ message: String, code: Int32 = 1) -> Never {
        var line = message.replacingOccurrences(of: "\n", with: " ")
        if line.lowercased().hasPrefix("error: ") { line = String(line.dropFirst(7)) }
        FileHandle.standardError.write(Data("error: \(Names.escapedForTerminal(line).replacingOccurrences(of: "\n", with: " "))\n".utf8))
        Foundation.exit(code == 0 ? 1 : code)
    }
}

/// Flags every workspace command shares.
struct WorkspaceOptions: ParsableArguments {
    @Option(name: .long, help: "The workspace folder (default: $RATCHET_WORKSPACE, else the nearest folder above with ratchet.yaml).")
    var workspace: String?

    func open() throws -> Workspace { try Workspace.locate(explicit: workspace) }

    /// For commands that only read: the store is opened read-only (no write lock, no fsync).
    func openForReading() throws -> Workspace { try Workspace.locate(explicit: workspace, readOnly: true) }
}

/// The `--json` flag of read commands.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON document on stdout.")
    var json = false
}

/// Terminal helpers: progress goes to stderr, and only when it is a terminal.
enum Terminal {
    static let isInteractive = isatty(STDERR_FILENO) == 1

    static let progress: @Sendable (String) -> Void = { line in
        if isInteractive { FileHandle.standardError.write(Data("· \(Names.escapedForTerminal(line))\n".utf8)) }
    }

    /// Where a warning goes: stderr, terminal or not.
    static let warning: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data("warning: \(Names.escapedForTerminal(line))\n".utf8))
    }

    /// An agent's output, streamed to a terminal with its control characters escaped.
    static let agentOutput: (@Sendable (Data) -> Void)? = isInteractive ? { @Sendable (data: Data) in
        FileHandle.standardError.write(Data(Names.escapedForTerminal(String(decoding: data, as: UTF8.self)).utf8))
    } : nil

    static func printJSON<T: Encodable>(_ value: T) throws {
        Swift.print(try RatchetJSON.string(value))
    }
}

/// Everything the commands print for people goes through here: objectives, file names and
/// output are shown with control characters and bidirectional overrides escaped.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(Names.escapedForTerminal(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}

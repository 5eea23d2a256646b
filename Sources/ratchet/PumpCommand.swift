import ArgumentParser
import Dispatch
import Foundation
import RatchetCore

struct PumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pump",
        abstract: "Run the loop: recovery, then observe, file, work, verify, land, deploy and watch, until stopped (SIGINT, SIGTERM).")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "One cycle, then wait for the watch windows it opened, and exit.") var once = false
    @Option(help: "Attempts at once (default: concurrency in ratchet.yaml).") var concurrency: Int?

    func validate() throws {
        if let concurrency, !(1...64).contains(concurrency) { throw ValidationError("--concurrency must be between 1 and 64") }
    }

    func run() throws {
        let pump = Pump(workspace: try workspace.open(), options: PumpOptions(once: once, concurrency: concurrency), progress: PumpCommand.progress)
        var sources: [DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { pump.stop() }
            source.resume()
            sources.append(source)
        }
        let summary = try pump.run()
        sources.forEach { $0.cancel() }
        if output.json {
            try Terminal.printJSON(summary)
        } else {
            print("pump: \(summary.cycles) cycle(s): \(summary.filed) filed, \(summary.worked) worked, \(summary.landed) landed, "
                  + "\(summary.held) held, \(summary.rejected) rejected, \(summary.failed) failed, \(summary.reverted) reverted by the watch")
        }
    }

    /// Progress on a terminal, each line with the time: the pump runs for long.
    static let progress: @Sendable (String) -> Void = { line in
        guard Terminal.isInteractive else { return }
        let time = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withTime, .withColonSeparatorInTime])
        FileHandle.standardError.write(Data("\(time) \(Names.escapedForTerminal(line))\n".utf8))
    }
}

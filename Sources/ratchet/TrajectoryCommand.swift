import ArgumentParser
import Foundation
import RatchetCore

struct TrajectoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trajectory", abstract: "Read and export trajectories (SPEC §9).",
        subcommands: [TrajectoryShowCommand.self, TrajectoryExportCommand.self])
}

struct TrajectoryShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One trajectory as a timeline: by id, T-7 (latest attempt) or T-7/2.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "A trajectory id, T-7 or T-7/2.") var id: String

    func run() throws {
        let document = try workspace.openForReading().trajectory(named: id)
        if output.json { return try Terminal.printJSON(document) }
        print(Names.escapedForTerminal(TrajectoryTimeline.render(document)), terminator: "")
    }
}

struct TrajectoryExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Stream trajectories as JSONL (one document a line) or ATIF.")
    @OptionGroup var workspace: WorkspaceOptions
    @Option(help: "Only trajectories started on or after this date (YYYY-MM-DD or ISO 8601, UTC).") var since: String?
    @Option(help: "Only this service.") var service: String?
    @Option(help: "Only this outcome status (landed, failed, escalated, rejected, needs-approval, running, …).") var outcome: String?
    @Option(help: "jsonl (default) or atif.") var format: String = "jsonl"
    @Option(help: "Write to this file instead of stdout (written whole or not at all).") var output: String?

    func run() throws {
        guard let format = TrajectoryFormat(rawValue: format) else {
            throw RatchetError("unknown format '\(Names.printable(format))': use jsonl or atif")
        }
        let filter = TrajectoryFilter(since: try since.map(TrajectoryTimeline.parseDate), service: service, outcome: outcome)
        let count = try workspace.openForReading().exportTrajectories(filter, format: format, to: output)
        Terminal.progress("exported \(count) trajectories")
    }
}

import ArgumentParser
import RatchetCore

struct CanaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "canary", abstract: "Run a service's canary by hand, show stored canary reports, or calibrate a canary.",
        subcommands: [Run.self, Show.self, Calibrate.self], defaultSubcommand: Run.self)

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Judge a ticket's proposed attempt (merged with main) or any commit against main with main's canary.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The ticket id whose proposed attempt to judge.") var id: String?
        @Option(help: "The service, with --ref.") var service: String?
        @Option(help: "The commit to judge (a branch, tag or sha), with --service.") var ref: String?

        func validate() throws {
            if id != nil, service != nil || ref != nil { throw ValidationError("give a ticket id, or --service S --ref REF, not both") }
            if id == nil, service == nil || ref == nil { throw ValidationError("give a ticket id, or both --service S and --ref REF") }
        }

        func run() throws {
            let workspace = try workspace.open()
            let report = if let id {
                try workspace.runCanary(ticket: id, progress: Terminal.progress)
            } else {
                try workspace.runCanary(service: service!, ref: ref!, progress: Terminal.progress)
            }
            if output.json { return try Terminal.printJSON(report) }
            print(report.table())
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the stored canary reports of a ticket, or one report by number.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "A ticket id (all its reports, oldest first) or a report number.") var id: String

        func run() throws {
            let reports = try workspace.openForReading().canaryReports(id)
            if output.json { return try Terminal.printJSON(reports) }
            if reports.isEmpty { print("no canary reports for \(id)") }
            print(reports.map { $0.table() }.joined(separator: "\n\n"))
        }
    }

    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "calibrate",
            abstract: "Judge main against itself N times and report each metric's noise and the smallest allowed_change with under 1% false alarms.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The service.") var service: String
        @Option(help: "Runs of main against itself (2–200); each runs to the canary's maximum of rounds.") var runs = 10

        func validate() throws {
            if !(2...200).contains(runs) { throw ValidationError("--runs must be from 2 to 200") }
        }

        func run() throws {
            let calibration = try workspace.open().calibrateCanary(service: service, runs: runs, progress: Terminal.progress)
            if output.json { return try Terminal.printJSON(calibration) }
            print(calibration.table())
        }
    }
}

import ArgumentParser
import RatchetCore

struct CanaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "canary", abstract: "Run a service's canary by hand, or show stored canary reports.",
        subcommands: [Run.self, Show.self], defaultSubcommand: Run.self)

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
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
        static let configuration = CommandConfiguration(abstract: "Show the stored canary reports of a ticket, or one report by number.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "A ticket id (all its reports, oldest first) or a report number.") var id: String

        func run() throws {
            let reports = try workspace.open().canaryReports(id)
            if output.json { return try Terminal.printJSON(reports) }
            if reports.isEmpty { print("no canary reports for \(id)") }
            print(reports.map { $0.table() }.joined(separator: "\n\n"))
        }
    }
}

import ArgumentParser
import RatchetCore

struct ReindexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex", abstract: "Rebuild the store's view of landings and reverts from the service repos' history and trailers.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Only this service.") var service: String?

    func run() throws {
        let report = try workspace.open().reindex(service: service)
        if output.json { return try Terminal.printJSON(report) }
        print("read \(report.services.count) service(s): \(report.landings) landing(s), \(report.reverts) revert(s); \(report.updated) attempt(s) updated")
        for line in report.unknown { print("unknown: \(line)") }
    }
}

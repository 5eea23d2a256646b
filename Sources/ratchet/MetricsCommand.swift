import ArgumentParser
import Foundation
import RatchetCore

struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Bring metrics into the workspace store.",
        subcommands: [MetricsImportCommand.self, MetricsScrapeCommand.self])
}

struct MetricsImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Backfill timestamped OpenMetrics or text-format samples from a file (all or nothing).")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "The service the samples belong to.") var service: String
    @Argument(help: "The file: OpenMetrics ending in '# EOF' (seconds) or text format 0.0.4 (millisecond timestamps).") var file: String

    func run() throws {
        let workspace = try workspace.open()
        var shown = -1
        let report = try workspace.importMetrics(service: service, file: file) { done, total in
            let percent = total == 0 ? 100 : done * 100 / total
            if percent / 10 != shown / 10 { shown = percent; Terminal.progress("imported \(done) of \(total) samples") }
        }
        if output.json { return try Terminal.printJSON(report) }
        print("imported \(report.samples) samples (\(report.format)) into \(report.service): \(report.stored) stored, "
              + "\(report.rolledUpOnly) older than the raw retention kept as rollups, \(report.duplicates) already present, \(report.newSeries) new series")
    }
}

struct MetricsScrapeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrape", abstract: "Scrape the service's metrics.scrape target once into the store (records up).")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "The service to scrape.") var service: String
    @Option(help: "Seconds before the target is given up on (up is then 0).") var timeout: Double = 10

    func validate() throws {
        if !(timeout > 0 && timeout <= 3600) { throw RatchetError("invalid timeout \(timeout): expected seconds between 0 and 3600") }
    }

    func run() throws {
        let workspace = try workspace.open()
        let report = try workspace.scrape(service: service, timeout: timeout)
        if output.json { return try Terminal.printJSON(report) }
        for error in report.lineErrors { Terminal.warning("\(report.target): \(error)") }
        if let error = report.error {
            print("up 0: \(error)")
        } else {
            print("up 1: \(report.samplesScraped) samples from \(report.target), \(report.lineErrors.count) malformed lines")
        }
    }
}

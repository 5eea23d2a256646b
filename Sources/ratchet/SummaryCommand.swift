import ArgumentParser
import Foundation
import RatchetCore

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary", abstract: "The weekly merge summary: what landed, was reverted, rejected or escalated, per service.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "The ISO week, YYYY-Www (UTC; default: the current week so far).") var week: String?
    @Option(help: "Only this service.") var service: String?
    @Option(help: "markdown (default), html or json.") var format: String?
    @Option(name: .customLong("output"), help: "Write the summary to this file instead of stdout.") var file: String?

    func validate() throws {
        if let week { _ = try ISOWeek.parse(week) }
        if let format { _ = try SummaryFormat.parse(format) }
        if output.json, let format, try SummaryFormat.parse(format) != .json { throw RatchetError("--json conflicts with --format \(format)") }
    }

    func run() throws {
        let request = SummaryRequest(week: try week.map(ISOWeek.parse), service: service)
        let chosen = output.json ? .json : try format.map(SummaryFormat.parse) ?? .markdown
        let workspace = try workspace.open()
        let (text, report) = try workspace.writeSummary(request, format: chosen) { text in
            guard let file else { return }
            do { try Data(text.utf8).write(to: URL(fileURLWithPath: file), options: .atomic) } catch {
                throw RatchetError("cannot write \(file): \(error.localizedDescription)")
            }
        }
        guard let file else { return Swift.print(chosen == .markdown ? Names.escapedForTerminal(text) : text, terminator: "") }
        Terminal.progress("wrote \(file) (a copy is in \(report))")
    }
}

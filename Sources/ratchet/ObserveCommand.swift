import ArgumentParser
import Foundation
import RatchetCore

struct ObserveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observe",
        abstract: "Scrape, evaluate every invariant and SLO, and file one ticket per breach.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Only this service (default: every service).") var service: String?
    @Flag(help: "Show the status only; file no ticket.") var noFile = false

    func run() throws {
        let report = try workspace.open().observe(service: service, file: !noFile, progress: output.json ? { _ in } : Terminal.progress)
        if output.json {
            try Terminal.printJSON(report)
        } else {
            print(ObserveTable.render(report.checks))
            for failure in report.failures { Terminal.warning("\(failure.service): \(failure.stage): \(failure.error)") }
        }
        if !report.failures.isEmpty {
            RatchetCommand.fail("observation failed for \(Set(report.failures.map(\.service)).count) service(s); nothing was filed for what was not evaluated (see 'ratchet events')")
        }
    }
}

/// The aligned table `ratchet observe` prints.
enum ObserveTable {
    static func render(_ checks: [CheckStatus]) -> String {
        if checks.isEmpty { return "no invariants or SLOs to observe" }
        var rows = [["SERVICE", "KIND", "NAME", "STATUS", "VALUE", "BUDGET", "TICKET"]]
        for check in checks {
            let status = check.state == "breach" ? "BREACH" + (check.severity.map { " (\($0))" } ?? "") : check.state
            rows.append([check.service, check.kind, check.name, status, check.value.map(ObserveFormat.number) ?? "-",
                         check.budgetRemaining.map { ObserveFormat.number(($0 * 1000).rounded() / 10) + "%" } ?? "-", check.ticket ?? "-"])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}

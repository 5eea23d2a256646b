import ArgumentParser
import RatchetCore

struct ReflectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reflect", abstract: "Look across tickets and history for patterns that need a person, and file a ticket for each.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "How far back to look (30d, 12h; default: reflect_window in ratchet.yaml).") var window: String?
    @Option(help: "Judge drift (main's canary on main against main a week earlier): auto (once a week per service), never, force.")
    var drift: DriftMode = .auto

    func validate() throws {
        if let window, RatchetCore.Duration.parse(window) ?? 0 <= 0 { throw RatchetError("invalid window '\(Names.printable(window))': expected a duration such as 30d") }
    }

    func run() throws {
        let workspace = try workspace.open()
        defer { workspace.notifyPeople() }
        let report = try workspace.reflect(window: window.flatMap(RatchetCore.Duration.parse), drift: drift, progress: Terminal.progress)
        if output.json { return try Terminal.printJSON(report) }
        if report.findings.isEmpty { print("no patterns in the window") }
        for finding in report.findings {
            print("\(finding.status)\t\(finding.kind)\t\(finding.subject)\t\(finding.count) (high \(finding.high), low \(finding.low))"
                + (finding.ticket.map { "\t\($0)" } ?? ""))
        }
        report.drift.forEach { print($0.line) }
    }
}

extension DriftMode: ExpressibleByArgument {}

import ArgumentParser
import RatchetCore

struct ReflectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reflect", abstract: "Look across tickets and history for patterns that need a person, and file a ticket for each.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "How far back to look (30d, 12h; default: reflect_window in ratchet.yaml).") var window: String?

    func validate() throws {
        if let window, RatchetCore.Duration.parse(window) ?? 0 <= 0 { throw RatchetError("invalid window '\(Names.printable(window))': expected a duration such as 30d") }
    }

    func run() throws {
        let workspace = try workspace.open()
        defer { workspace.notifyPeople() }
        let report = try workspace.reflect(window: window.flatMap(RatchetCore.Duration.parse))
        if output.json { return try Terminal.printJSON(report) }
        if report.findings.isEmpty { print("no patterns in the window") }
        for finding in report.findings {
            print("\(finding.status)\t\(finding.kind)\t\(finding.subject)\t\(finding.count) (high \(finding.high), low \(finding.low))"
                + (finding.ticket.map { "\t\($0)" } ?? ""))
        }
        print("drift: \(report.drift)")
    }
}

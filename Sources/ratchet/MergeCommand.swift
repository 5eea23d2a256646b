import ArgumentParser
import RatchetCore

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Verify a proposed ticket on the exact merge result with main (acceptance, canary), then land it.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The ticket id.") var id: String
    @Option(name: .customLong("override-gate"), help: "Land although max_landings_per_hour or the error-budget gate refuses; the reason is recorded (merge.gate-overridden).")
    var overrideGate: String?

    func run() throws {
        let workspace = try workspace.open()
        defer { workspace.notifyPeople() }
        let result: LandingResult
        do {
            result = try workspace.merge(ticket: id, overrideGate: overrideGate, progress: Terminal.progress)
        } catch let stop as GateStop {
            // Verified but not landed: show why, then the one error line.
            if output.json {
                try Terminal.printJSON(workspace.ticketView(id))
            } else {
                for check in stop.acceptance { print("\(check.status)\t\(check.criterion)") }
                if let report = stop.report { print(report.table()) }
            }
            throw RatchetError(stop.message)
        }
        if let warning = result.checkoutWarning { Terminal.progress("warning: \(warning)") }
        if output.json { return try Terminal.printJSON(workspace.ticketView(id)) }
        for check in result.acceptance { print("\(check.status)\t\(check.criterion)") }
        if let report = result.canary { print("canary\t\(report.trailer) (report #\(report.id ?? 0); ratchet canary show \(id))") }
        print("landed \(id) on main as \(result.landing.hex)\(result.rebuilds > 0 ? " (rebuilt \(result.rebuilds)x because main moved)" : "")")
        print("see: git -C services/\(result.attempt.service) log --first-parent main; undo: ratchet revert \(id)")
    }
}

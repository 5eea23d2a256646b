import ArgumentParser
import Foundation
import RatchetCore

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the workspace after a crash and, with --repair, reconcile git and the store and remove what a kill left behind.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Repair what is found (every repair is recorded as a recovery.* event).") var repair = false

    func run() throws {
        let report = try workspace.open().doctor(repair: repair, progress: Terminal.progress)
        if output.json {
            try Terminal.printJSON(report)
        } else {
            if !report.exclusive {
                print("note: other Ratchet processes are running; only what they cannot be using was checked")
            }
            if report.findings.isEmpty { print("ok: nothing to repair") }
            for finding in report.findings {
                print("\(finding.repaired ? "repaired" : "found")\t\(finding.kind)\t\(finding.detail)")
            }
        }
        if !report.isHealthy {
            RatchetCommand.fail("\(report.findings.filter { !$0.repaired }.count) problem(s) \(repair ? "could not be repaired" : "found; run 'ratchet doctor --repair'")")
        }
    }
}

import ArgumentParser
import RatchetCore

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Verify a proposed ticket on the exact merge result with main, then land it.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The ticket id.") var id: String

    func run() throws {
        let workspace = try workspace.open()
        let result = try workspace.merge(ticket: id, progress: Terminal.progress)
        if let warning = result.checkoutWarning { Terminal.progress("warning: \(warning)") }
        if output.json { return try Terminal.printJSON(workspace.ticketView(id)) }
        for check in result.acceptance { print("\(check.status)\t\(check.criterion)") }
        print("landed \(id) on main as \(result.landing.hex)\(result.rebuilds > 0 ? " (rebuilt \(result.rebuilds)x because main moved)" : "")")
        print("see: git -C services/\(result.attempt.service) log --first-parent main; undo: ratchet revert \(id)")
    }
}

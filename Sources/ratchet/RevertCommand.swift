import ArgumentParser
import RatchetCore

struct RevertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revert", abstract: "Undo a ticket's landing with a revert commit on main.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The ticket id.") var id: String
    @Option(help: "Why (one line); recorded as the Reason: trailer.") var reason: String?

    func run() throws {
        let workspace = try workspace.open()
        let revert = try workspace.revert(ticket: id, reason: reason, progress: Terminal.progress)
        if output.json { return try Terminal.printJSON(workspace.ticketView(id)) }
        print("reverted \(id) with \(revert.hex)")
    }
}

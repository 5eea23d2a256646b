import ArgumentParser
import Foundation
import RatchetCore

struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Land a ticket that needs approval (a marginal canary verdict or a protected path).")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The ticket id.") var id: String
    @Option(help: "Who approves (default: $USER); recorded as the Approved-By: trailer.") var by: String?
    @Option(help: "Why (one line); recorded on the trajectory's approval label.") var note: String?
    @Option(name: .customLong("override-gate"), help: "Land although max_landings_per_hour or the error-budget gate refuses; the reason is recorded (merge.gate-overridden).")
    var overrideGate: String?

    func run() throws {
        let workspace = try workspace.open()
        let result = try workspace.approve(ticket: id, by: by, note: note, overrideGate: overrideGate, progress: Terminal.progress)
        if let warning = result.checkoutWarning { Terminal.progress("warning: \(warning)") }
        if output.json { return try Terminal.printJSON(workspace.ticketView(id)) }
        for check in result.acceptance { print("\(check.status)\t\(check.criterion)") }
        if let report = result.canary { print("canary\t\(report.trailer) (report #\(report.id ?? 0))") }
        print("landed \(id) on main as \(result.landing.hex), approved")
        print("see: git -C services/\(result.attempt.service) log --first-parent main; undo: ratchet revert \(id)")
    }
}

struct RejectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reject", abstract: "Turn down a ticket's proposed attempt; the ticket is open again.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The ticket id.") var id: String
    @Option(help: "Why (one line); recorded on the trajectory's rejection label.") var reason: String?
    @Option(help: "Who rejects (default: $USER).") var by: String?

    func run() throws {
        let workspace = try workspace.open()
        let ticket = try workspace.rejectTicket(id, reason: reason, by: by)
        if output.json { return try Terminal.printJSON(workspace.ticketView(ticket.id)) }
        print("rejected the attempt of \(ticket.id); \(ticket.id) is \(ticket.state)")
    }
}

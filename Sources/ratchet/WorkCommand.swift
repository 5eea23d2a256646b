import ArgumentParser
import RatchetCore

struct WorkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "work", abstract: "Work a ticket once: claim it, branch, run the agent in a worktree, commit what it changed.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The ticket id.") var id: String
    @Option(help: "The agent: 'command:SHELL', 'runbook', or a name from ratchet.yaml.") var agent: String?
    @Flag(help: "Run the agent without bubblewrap (the service must set sandbox.allow_unsandboxed); always warned and recorded.")
    var unsandboxed = false

    func run() throws {
        let workspace = try workspace.open()
        defer { workspace.notifyPeople() }
        let attempt = try workspace.work(ticket: id, agent: agent, unsandboxed: unsandboxed, progress: Terminal.progress,
                                         warning: Terminal.warning, agentOutput: Terminal.agentOutput)
        if output.json { return try Terminal.printJSON(workspace.ticketView(id)) }
        print("\(attempt.ticketId)/\(attempt.number) proposed on branch \(attempt.branch) at \(attempt.head?.prefix(7) ?? "-")")
        print("next: ratchet merge \(attempt.ticketId)")
    }
}

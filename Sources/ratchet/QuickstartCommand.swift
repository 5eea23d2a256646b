import ArgumentParser
import RatchetCore

struct QuickstartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quickstart", abstract: "Show the whole loop in a fresh workspace: service, ticket, agent, merge, revert.")
    @Argument(help: "The folder for the new workspace (default: ./ratchet-quickstart).") var directory: String = "ratchet-quickstart"

    func run() throws {
        try Quickstart.run(in: directory) { print($0) }
    }
}

import ArgumentParser
import RatchetCore

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create a workspace (ratchet.yaml, ratchet.sqlite, services/, worktrees/, reports/).")

    @Argument(help: "The folder to make a workspace (default: the current folder).")
    var directory: String = "."

    func run() throws {
        let workspace = try Workspace.create(at: directory)
        print("initialised Ratchet workspace in \(workspace.root.path)")
        print("next: ratchet service add NAME --template kv-cache")
    }
}

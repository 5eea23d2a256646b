import ArgumentParser
import Foundation
import RatchetCore

struct TicketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticket", abstract: "File, list, show, cancel and resolve tickets.",
        subcommands: [New.self, List.self, Show.self, Cancel.self, Resolve.self])

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "new", abstract: "File a ticket, from flags or from a YAML or JSON file.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "The service the ticket is for.") var service: String?
        @Option(help: "A one-line title.") var title: String?
        @Option(help: "What the change should achieve.") var objective: String?
        @Option(name: .customLong("accept"), help: "An acceptance criterion: command:SHELL, invariant:NAME, canary, or text. Repeatable.") var acceptance: [String] = []
        @Option(name: .customLong("constraint"), help: "A constraint the change must respect. Repeatable.") var constraints: [String] = []
        @Option(help: "low, medium or high.") var risk: String?
        @Option(help: "The agent to work it (command:SHELL or a name from ratchet.yaml).") var agent: String?
        @Option(help: "A ticket file (YAML or JSON); flags override its fields.") var file: String?
        @Flag(help: "The ticket restores reliability: it may land while the service's error budget is spent.") var restores = false

        func run() throws {
            var draft: TicketDraft
            if let file {
                let text: String
                do { text = try String(contentsOfFile: file, encoding: .utf8) } catch { throw RatchetError("cannot read \(file): \(error.localizedDescription)") }
                draft = try TicketDraft.parse(text, file: file)
            } else {
                guard let title else { throw RatchetError("--title is required (or --file TICKET.yaml)") }
                draft = TicketDraft(service: service ?? "", title: title)
            }
            if let service { draft.service = service }
            if let title { draft.title = title }
            if let objective { draft.objective = objective }
            if !acceptance.isEmpty { draft.acceptance = acceptance }
            if !constraints.isEmpty { draft.constraints = constraints }
            if let risk { draft.risk = risk }
            if let agent { draft.agent = agent }
            if restores { draft.restores = true }
            guard !draft.service.isEmpty else { throw RatchetError("--service is required") }
            let workspace = try workspace.open()
            let ticket = try workspace.createTicket(draft)
            if output.json { return try Terminal.printJSON(workspace.ticketView(ticket.id)) }
            print(ticket.id)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List tickets.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only tickets in this state.") var state: String?
        @Option(help: "Only tickets of this service.") var service: String?

        func run() throws {
            let workspace = try workspace.openForReading()
            if output.json { return try Terminal.printJSON(try workspace.ticketViews(state: state, service: service)) }
            let lines = try workspace.ticketLines(state: state, service: service)
            print(lines.isEmpty ? "no tickets" : lines.joined(separator: "\n"))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a ticket and its attempts.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The ticket id, e.g. T-7.") var id: String

        func run() throws {
            let view = try workspace.openForReading().ticketView(id)
            if output.json { return try Terminal.printJSON(view) }
            print("\(view.id)  \(view.title)")
            print("state       \(view.state)")
            print("service     \(view.service)")
            print("risk        \(view.risk)   source \(view.source)\(view.restores ? "   restores" : "")")
            if !view.objective.isEmpty { print("objective   \(view.objective)") }
            for criterion in view.acceptance { print("accept      \(criterion)") }
            for constraint in view.constraints { print("constraint  \(constraint)") }
            if let landing = view.landing { print("landing     \(landing)") }
            if let revert = view.revert { print("revert      \(revert)") }
            for attempt in view.attempts {
                print("attempt \(attempt.number)   \(attempt.state)  \(attempt.branch)  head \(attempt.head.map { String($0.prefix(7)) } ?? "-")  trajectory \(attempt.trajectory)")
                if let error = attempt.error { print("            \(error)") }
            }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a ticket that has not merged.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The ticket id.") var id: String
        @Option(help: "Why (one line).") var reason: String?

        func run() throws {
            let workspace = try workspace.open()
            let ticket = try workspace.cancelTicket(id, reason: reason)
            if output.json { return try Terminal.printJSON(workspace.ticketView(ticket.id)) }
            print("\(ticket.id) cancelled")
        }
    }

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resolve", abstract: "Close a ticket that waits for a person (a reflection finding, an escalation) with a note.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The ticket id.") var id: String
        @Option(help: "What was decided or done (one line).") var note: String
        @Option(help: "Who resolved it (default: $USER).") var by: String?

        func run() throws {
            let workspace = try workspace.open()
            let ticket = try workspace.resolveTicket(id, note: note, by: by)
            if output.json { return try Terminal.printJSON(workspace.ticketView(ticket.id)) }
            print("\(ticket.id) resolved")
        }
    }
}

import ArgumentParser
import Foundation
import RatchetCore

struct ServiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service", abstract: "Add, list, show, check, pause, resume and pack services.",
        subcommands: [Add.self, List.self, Show.self, Check.self, Pause.self, Resume.self, Pack.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Create a service repo from a template, or adopt an existing repo.")
        @OptionGroup var workspace: WorkspaceOptions
        @Argument(help: "The service name: lowercase letters, digits and dashes.") var name: String
        @Option(help: "A template shipped with Ratchet (templates/T plus canaries/T).") var template: String?
        @Option(help: "An existing git repo with service.yaml on main, cloned into services/NAME.") var from: String?

        func validate() throws {
            guard (template == nil) != (from == nil) else { throw ValidationError("give exactly one of --template T or --from PATH") }
        }

        func run() throws {
            let workspace = try workspace.open()
            let record = try workspace.addService(name: name, template: template, from: from)
            print("added service \(record.name) in \(record.path)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the services.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let services = try workspace.openForReading().services()
            if output.json {
                struct Row: Encodable { var name, path: String; var template: String?; var paused: Bool }
                try Terminal.printJSON(services.map { Row(name: $0.name, path: $0.path, template: $0.template, paused: $0.isPaused) })
                return
            }
            if services.isEmpty { print("no services; add one with: ratchet service add NAME --template kv-cache") }
            for service in services {
                print("\(service.name)\t\(service.path)\t\(service.template.map { "template \($0)" } ?? "adopted")\(service.isPaused ? "\tpaused" : "")")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one service.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The service name.") var name: String

        func run() throws {
            let view = try workspace.openForReading().serviceView(name)
            if output.json { return try Terminal.printJSON(view) }
            print("service     \(view.name)")
            print("path        \(view.path)")
            print("main        \(view.main ?? "(none)")")
            print("template    \(view.template ?? "(adopted)")")
            print("description \(view.description)")
            print("owners      \(view.owners.joined(separator: ", "))")
            print("protected   \(view.protectedPaths.joined(separator: " "))")
            print("tickets     \(view.tickets.isEmpty ? "none" : view.tickets.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "check", abstract: "Validate a service's files and say exactly what is wrong where.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The service name.") var name: String

        func run() throws {
            let findings = try workspace.open().checkService(name)
            let errors = findings.filter { !$0.isWarning }
            if output.json {
                struct Report: Encodable { var service: String; var ok: Bool; var findings: [CheckFinding] }
                try Terminal.printJSON(Report(service: name, ok: errors.isEmpty, findings: findings))
            } else {
                for finding in findings where finding.isWarning { Terminal.warning(finding.message) }
                for finding in errors { FileHandle.standardError.write(Data("\(Names.escapedForTerminal(finding.message))\n".utf8)) }
                if errors.isEmpty { print("\(name): ok" + (findings.isEmpty ? "" : " (\(findings.count) warning(s))")) }
            }
            if !errors.isEmpty { RatchetCommand.fail("service \(name) has \(errors.count) problem(s)") }
        }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "pause", abstract: "Stop landings for a service (merge, approve and work refuse it).")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The service name.") var name: String
        @Option(help: "Why, recorded in the event.") var reason: String?

        func run() throws { try PauseOutput.show(try workspace.open().setPaused(name, true, reason: reason), json: output.json) }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let a paused service land again.")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The service name.") var name: String
        @Option(help: "Why, recorded in the event.") var reason: String?

        func run() throws { try PauseOutput.show(try workspace.open().setPaused(name, false, reason: reason), json: output.json) }
    }

    enum PauseOutput {
        static func show(_ change: PauseChange, json: Bool) throws {
            if json { return try Terminal.printJSON(change) }
            let state = change.paused ? "paused" : "resumed"
            print(change.changed ? "\(change.service): \(state)" : "\(change.service): already \(change.paused ? "paused" : "running")")
        }
    }

    struct Pack: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pack",
            abstract: "Pack a service repo's loose objects and combine its small packs (landings start this in the background).")
        @OptionGroup var workspace: WorkspaceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The service name.") var name: String
        @Flag(help: "Only what passed its threshold (1,024 loose objects, 32 packs, 128 loose references).") var ifNeeded = false
        @Option(help: .hidden) var lockFd: Int32?

        func run() throws {
            let result = try workspace.open().packService(name, ifNeeded: ifNeeded, lockDescriptor: lockFd, ownProcess: true,
                                                          progress: output.json ? { _ in } : Terminal.progress)
            if output.json { return try Terminal.printJSON(result) }
            if result.staleLockRemoved { print("\(result.service): removed a stale .git/packed-refs.lock (a writer killed mid-write)") }
            if result.referencesDeferred { print("\(result.service): references not packed: .git/packed-refs.lock is held by a write in progress") }
            if result.objects == 0 && result.packsCombined == 0 && result.references == 0 {
                print("\(result.service): nothing to pack")
            } else {
                print("\(result.service): packed \(result.objects) loose object(s) and \(result.references) loose reference(s) and combined "
                      + "\(result.packsCombined) pack(s) in \(Int(result.durationMs.rounded())) ms")
            }
        }
    }
}

import Foundation
import RatchetCore
import RatchetStore
import RatchetTestSupport
import Testing

@Suite("Validation")
struct ValidationTests {
    @Test(arguments: ["..", "T-1~^:?*[\\", "T-1@{0}", "-T-1", "T-0", "T-1/1", "t-1", "T-1\n", String(repeating: "T", count: 10_000)])
    func badTicketIDsAreRefused(_ id: String) {
        #expect(throws: RatchetError.self) { try Names.ticketID(id) }
    }

    @Test(arguments: ["a/b", "..", "../x", "-svc", "Svc", "svc-", "a--b", "", String(repeating: "a", count: 64)])
    func badServiceNamesAreRefused(_ name: String) {
        #expect(throws: RatchetError.self) { try Names.serviceName(name) }
    }

    @Test func titlesAreOneLineWithoutControlCharacters() throws {
        #expect(message { _ = try Names.line("Fix it\nApproved-By: someone", what: "title") }?.contains("a newline") == true)
        #expect(throws: RatchetError.self) { try Names.line("bell\u{07}", what: "title") }
        #expect(throws: RatchetError.self) { try Names.line(String(repeating: "x", count: 10_240), what: "title", limit: 200) }
        #expect(try Names.line("  Raise a..b ~^:?*[ limits @{ -x ", what: "title") == "Raise a..b ~^:?*[ limits @{ -x")
    }

    @Test func illegalTransitionsAreRefusedWithTheAllowedOnes() {
        #expect(message { try TicketLifecycle.check("T-1", from: .open, to: .merged) }
            == "ticket T-1 is open and cannot become merged (from open it can become: cancelled, resolved, working)")
        #expect(message { try TicketLifecycle.check("T-1", from: .merged, to: .cancelled) }?.contains("cannot become cancelled") == true)
        #expect(throws: Never.self) { try TicketLifecycle.check("T-1", from: .proposed, to: .merged) }
    }

    @Test func serviceYAMLErrorsSayWhatIsWrongWhere() {
        #expect(message { _ = try ServiceConfig.parse("name: svc\nlimits:\n  agent_timeout: soon\n") }
            == "service.yaml: limits.agent_timeout: expected a duration such as 600s, 10m or 2h, got 'soon'")
        #expect(message { _ = try ServiceConfig.parse("name: svc\ncolour: red\n") }?.hasPrefix("service.yaml: colour: unknown key") == true)
        #expect(message { _ = try ServiceConfig.parse("name: a/b\n") }?.hasPrefix("service.yaml: name: invalid service name") == true)
        #expect(message { _ = try ServiceConfig.parse("name: svc\nmax_attempts: 0\n") }?.contains("between 1 and 100") == true)
        #expect(message { _ = try ServiceConfig.parse("- a\n- b\n") }?.contains("expected a mapping") == true)
    }

    @Test func ticketFilesAcceptYAMLAndJSON() throws {
        let yaml = try TicketDraft.parse("service: svc\ntitle: From YAML\nacceptance: ['command:true', canary]\nrisk: medium\n", file: "t.yaml")
        #expect(yaml.title == "From YAML" && yaml.acceptance == ["command:true", "canary"] && yaml.risk == "medium")
        let json = try TicketDraft.parse(#"{"service": "svc", "title": "From JSON", "constraints": ["keep the API"]}"#, file: "t.json")
        #expect(json.title == "From JSON" && json.constraints == ["keep the API"])
        #expect(message { _ = try TicketDraft.parse("title: x\nowner: me\n", file: "t.yaml") }?.hasPrefix("t.yaml: owner: unknown key") == true)
    }

    @Test func badTicketsLeaveNothingBehind() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        for title in ["Fix\nApproved-By: someone", String(repeating: "x", count: 10_240), "tab\there", ""] {
            #expect(throws: RatchetError.self) { try workspace.createTicket(TicketDraft(service: "svc", title: title)) }
        }
        var draft = TicketDraft(service: "svc", title: "ok")
        draft.risk = "extreme"
        #expect(throws: RatchetError.self) { try workspace.createTicket(draft) }
        #expect(throws: RatchetError.self) { try workspace.createTicket(TicketDraft(service: "nope", title: "ok")) }
        #expect(try workspace.tickets().isEmpty)
        #expect(try workspace.database.events().filter { $0.kind == "ticket.created" }.isEmpty)
    }

    @Test func unknownTemplateAndExistingServiceAreRefused() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let unknown = message { try workspace.addService(name: "x", template: "nope") }
        #expect(unknown?.hasPrefix("unknown template 'nope' (available: ") == true && unknown?.contains("kv-cache") == true)
        #expect(message { try workspace.addService(name: "x", template: "../templates/kv-cache") }?.hasPrefix("unknown template") == true)
        #expect(message { try workspace.addService(name: "svc", template: "kv-cache") } == "service 'svc' already exists")
        #expect(!FileManager.default.fileExists(atPath: workspace.servicePath("x")))
        #expect(try workspace.services().map(\.name) == ["svc"])
    }

    @Test func serviceCanBeAdoptedFromAnExistingRepo() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let source = folder("existing")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try git(["init", "-q", "-b", "main"], in: source)
        try Data("name: adopted\ntest: true\n".utf8).write(to: URL(fileURLWithPath: source + "/service.yaml"))
        try git(["add", "."], in: source)
        try git(["commit", "-qm", "init"], in: source)
        try workspace.addService(name: "adopted", from: source)
        // A service.yaml from before sandbox.network defaulted to none gets a warning, not an error.
        let findings = try workspace.checkService("adopted")
        #expect(findings.count == 1 && findings.allSatisfy(\.isWarning))
        #expect(findings.first?.message.contains("sandbox.network is not set") == true)
        #expect(try git(["log", "--format=%s", "main"], in: workspace.servicePath("adopted")) == "init")
        #expect(message { try workspace.addService(name: "other", from: source) }?.contains("names the service 'adopted'") == true)
    }

    @Test func serviceCheckReportsBrokenFiles() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        #expect(try workspace.checkService("svc").isEmpty)
        try Data("name: svc\nmax_attempts: lots\n".utf8).write(to: URL(fileURLWithPath: workspace.servicePath("svc") + "/service.yaml"))
        let findings = try workspace.checkService("svc")
        #expect(findings.map(\.message) == ["services/svc/service.yaml: max_attempts: expected an integer, got 'lots'"])
    }

    @Test func cancelEndsTheAttemptAndRemovesItsWorktree() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let id = try file(workspace, "Cancel me")
        try workspace.work(ticket: id, agent: "command:echo x > x.txt")
        #expect(FileManager.default.fileExists(atPath: workspace.worktreePath(ticket: id, attempt: 1)))
        try workspace.cancelTicket(id, reason: "not needed")
        #expect(try workspace.ticketView(id).attempts.map(\.state) == ["cancelled"])
        #expect(!FileManager.default.fileExists(atPath: workspace.worktreePath(ticket: id, attempt: 1)))
        #expect(message { try workspace.cancelTicket(id) }?.contains("cancelled is final") == true)
        try expectConsistent(workspace)
    }
}

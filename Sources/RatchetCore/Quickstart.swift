import Foundation
import RatchetGit

/// `ratchet quickstart`: the whole loop, as far as it exists today, in a fresh workspace.
public enum Quickstart {
    /// Creates a workspace in `directory` and walks a ticket through work, merge (with the
    /// canary passing it) and revert, a regression through work and merge (the canary
    /// rejecting it), and a hostile agent through work and merge (the gate holding it),
    /// printing what a person would look at.
    public static func run(in directory: String, print: (String) -> Void) throws {
        print("== 1. a workspace and a service from the kv-cache template")
        let workspace = try workspaceWithShortWatch(in: directory)
        let service = try workspace.addService(name: "kv-cache", template: "kv-cache")
        let servicePath = workspace.servicePath(service.name)
        print("workspace \(workspace.root.path)")
        print("service   \(service.name) in \(service.path)")
        let port = try freeLoopbackPort()
        defer { workspace.stopDeployment(service: service.name) }
        let looped = try loopScene(workspace, service: service.name, port: port, print: print)
        let (ticket, branch) = try handTicketScene(workspace, service: service.name, in: servicePath, print: print)
        try regressionScene(workspace, service: service.name, print: print)
        try hostileScene(workspace, service: service.name, in: servicePath, print: print)
        try revertScene(workspace, ticket: ticket, branch: branch, in: servicePath, print: print)
        try reviewScenes(workspace, print: print)
        print("\nnext: cd \(workspace.root.path) && ratchet ticket show \(looped) && ratchet trajectory show \(looped) && ratchet events")
        if workspace.stopDeployment(service: service.name) != nil { print("(the deployed kv-cache was stopped: the quickstart leaves nothing running)") }
    }

    /// A new workspace whose watch window is short, so that the pump's watch of the loop's
    /// landing ends within the quickstart.
    static func workspaceWithShortWatch(in directory: String) throws -> Workspace {
        let workspace = try Workspace.create(at: directory)
        let configPath = workspace.root.appendingPathComponent(Workspace.configFileName).path
        let configText = try String(contentsOfFile: configPath, encoding: .utf8)
        try Data(configText.replacingOccurrences(of: "watch_window: 10m", with: "watch_window: 3s").utf8).write(to: URL(fileURLWithPath: configPath))
        return try Workspace.locate(explicit: workspace.root.path)
    }

    /// Scenes 2–4: a ticket by hand, a command agent's attempt, and its verified landing.
    /// Returns the ticket and its attempt's branch, for the revert scene.
    static func handTicketScene(_ workspace: Workspace, service: String, in servicePath: String,
                                print: (String) -> Void) throws -> (ticket: String, branch: String) {
        print("\n== 2. a ticket by hand")
        var draft = TicketDraft(service: service, title: "Raise the cache capacity to 2048 entries")
        draft.objective = "Give the cache room for 2048 entries, far above the working set."
        draft.acceptance = [
            "command:python3 -m unittest discover -s tests -q",
            "command:grep -q '\"capacity\": 2048' config/cache.json",
        ]
        draft.constraints = ["change config/cache.json only"]
        draft.source = "human:quickstart"
        let ticket = try workspace.createTicket(draft)
        print("\(ticket.id): \(ticket.title)")
        for criterion in ticket.acceptance { print("  accept: \(criterion)") }

        print("\n== 3. a command agent makes the change on branch ticket/\(ticket.id)/1")
        let agent = #"command:sed -i 's/"capacity": [0-9]*/"capacity": 2048/' config/cache.json && echo raised capacity to 2048"#
        print("$ ratchet work \(ticket.id) --agent '\(agent)'")
        let attempt = try workspace.work(ticket: ticket.id, agent: agent)
        print("attempt \(attempt.number) proposed: \(attempt.branch) at \(attempt.head!.prefix(7)), trajectory \(attempt.trajectoryId)")
        print(git(["log", "--format=%h %an <%ae>%n    %s%n%w(0,4,4)%(trailers)", "-1", attempt.branch], in: servicePath))

        print("== 4. merge: the exact merge result is verified (acceptance, then main's canary against main), then lands by compare-and-swap")
        print("$ ratchet merge \(ticket.id)")
        let landing: LandingResult
        do {
            landing = try workspace.merge(ticket: ticket.id)
        } catch let stop as GateStop where stop.outcome == "needs-approval" && stop.report?.verdict == .marginal {
            // On a busy machine the canary may not tell a harmless change from noise within its
            // rounds: it holds the ticket for a person instead of guessing (docs/canary.md).
            if let report = stop.report { print(indent(report.table())) }
            print("marginal: the canary could not rule out a regression within its rounds; a person looks and approves")
            print("$ ratchet approve \(ticket.id) --by quickstart")
            landing = try workspace.approve(ticket: ticket.id, by: "quickstart")
        }
        for check in landing.acceptance { print("  \(check.status): \(check.criterion)") }
        if let report = landing.canary { print(indent(report.table())) }
        print("landed \(landing.landing.short)")
        print("$ git log --first-parent --oneline main")
        print(git(["log", "--first-parent", "--format=%h %s", "main"], in: servicePath))
        print("$ git show --no-patch \(landing.landing.short)")
        print(git(["show", "--no-patch", "--format=commit %H%nMerge: %p%nAuthor: %an <%ae>%n%n%w(0,4,4)%B", landing.landing.hex], in: servicePath))
        print("$ git notes --ref=ratchet show \(landing.landing.short) | head -5")
        print(git(["notes", "--ref=ratchet", "show", landing.landing.hex], in: servicePath).split(separator: "\n").prefix(5).joined(separator: "\n"))
        print("    …")
        return (ticket.id, attempt.branch)
    }

    /// Scene 5: a real regression, which the canary rejects.
    static func regressionScene(_ workspace: Workspace, service: String, print: (String) -> Void) throws {
        print("\n== 5. a real regression: an agent adds a sleep to the GET path; the canary rejects it")
        var slowDraft = TicketDraft(service: service, title: "Pace GETs to protect the backend")
        slowDraft.objective = "Add a short pause before each cache lookup."
        slowDraft.acceptance = ["command:python3 -m unittest discover -s tests -q", "canary"]
        slowDraft.source = "human:quickstart"
        let slow = try workspace.createTicket(slowDraft)
        let slowAgent = #"command:sed -i 's/        value = self.server.cache.get(key)/        time.sleep(0.003)\n        value = self.server.cache.get(key)/' kvcache/server.py"#
        print("$ ratchet work \(slow.id) --agent '\(slowAgent)'")
        let slowAttempt = try workspace.work(ticket: slow.id, agent: slowAgent)
        print("attempt \(slowAttempt.number) proposed: \(slowAttempt.branch) at \(slowAttempt.head!.prefix(7))")
        print("$ ratchet merge \(slow.id)")
        do {
            try workspace.merge(ticket: slow.id)
            print("(unexpected: the regression landed)")
        } catch let stop as GateStop {
            for check in stop.acceptance { print("  \(check.status): \(check.criterion)") }
            if let report = stop.report { print(indent(report.table())) }
            print("error: \(stop.message)")
        }
        print("\(slow.id) is \(try workspace.ticket(slow.id).state); main is unchanged; see: ratchet canary show \(slow.id)")
    }

    /// Scene 7: the landing of scene 4 undone through a commit on main.
    static func revertScene(_ workspace: Workspace, ticket: String, branch: String, in servicePath: String,
                            print: (String) -> Void) throws {
        print("\n== 7. revert through a commit on main")
        print("$ ratchet revert \(ticket) --reason 'quickstart: show the undo'")
        let revert = try workspace.revert(ticket: ticket, reason: "quickstart: show the undo", by: "quickstart")
        print("$ git log --first-parent --oneline main")
        print(git(["log", "--first-parent", "--format=%h %s", "main"], in: servicePath))
        print("$ git show --no-patch \(revert.short)")
        print(git(["show", "--no-patch", "--format=%w(0,4,4)%B", revert.hex], in: servicePath))
        let view = try workspace.ticketView(ticket)
        print("\(view.id) is \(view.state); landing \(view.landing?.prefix(7) ?? "-"), revert \(view.revert?.prefix(7) ?? "-"); branch \(branch) kept")
    }

    /// Scenes 8–10: recovery, the weekly summary and reflection.
    static func reviewScenes(_ workspace: Workspace, print: (String) -> Void) throws {
        print("\n== 8. after a crash, recovery reconciles git and the store (here there is nothing to do)")
        print("$ ratchet doctor")
        let doctor = try workspace.doctor(repair: false)
        print(doctor.findings.isEmpty ? "ok: nothing to repair" : doctor.findings.map { "found \($0.kind): \($0.detail)" }.joined(separator: "\n"))
        print("\n== 9. the weekly summary a person reads (a copy is kept in reports/)")
        print("$ ratchet summary")
        let summary = try workspace.writeSummary(SummaryRequest(), format: .markdown)
        print(indent(summary.text.trimmingCharacters(in: .newlines)))
        print("kept in \(summary.report)")
        print("\n== 10. reflection: patterns across tickets and history that need a person")
        print("$ ratchet reflect")
        let reflection = try workspace.reflect()
        for finding in reflection.findings { print("\(finding.status) \(finding.kind) \(finding.subject): \(finding.count) (high \(finding.high))") }
        if reflection.findings.isEmpty { print("no patterns in the window") }
        reflection.drift.forEach { print($0.line) }
    }

    /// An agent that tries to land without being judged: it points its worktree at `main`,
    /// loosens its canary and plants a hook. The sandbox refuses the writes, Ratchet commits
    /// on the attempt's branch only, and the gate holds the loosened canary for a person,
    /// who rejects it (docs/security.md).
    private static func hostileScene(_ workspace: Workspace, service: String, in servicePath: String, print: (String) -> Void) throws {
        print("\n== 6. a hostile agent: it tries to commit straight to main, loosen its canary and plant a hook")
        var draft = TicketDraft(service: service, title: "Tune the canary")
        draft.source = "human:quickstart"
        let ticket = try workspace.createTicket(draft)
        let main = try Repository.open(servicePath).resolveReference("refs/heads/main")
        let agent = #"command:echo 'gitdir: /elsewhere' > .git; echo evil > ../../services/kv-cache/.git/hooks/post-checkout; sed -i 's/allowed_change: .*/allowed_change: 1000/' canary/canary.yaml; true"#
        print("$ ratchet work \(ticket.id) --agent '\(agent)'")
        let attempt = try workspace.work(ticket: ticket.id, agent: agent)
        let nowMain = try Repository.open(servicePath).resolveReference("refs/heads/main")
        let planted = FileManager.default.fileExists(atPath: servicePath + "/.git/hooks/post-checkout")
        print("attempt \(attempt.number) proposed: \(attempt.branch) at \(attempt.head!.prefix(7)); main \(nowMain == main ? "is still" : "MOVED to") \(nowMain?.short ?? "-"); \(planted ? "a hook WAS planted" : "no hook was planted")")
        print("$ ratchet merge \(ticket.id)")
        do {
            try workspace.merge(ticket: ticket.id)
            print("(unexpected: the loosened canary landed)")
        } catch let stop as GateStop {
            print("error: \(stop.message)")
        }
        print("$ ratchet reject \(ticket.id) --reason 'an agent never loosens its own gate'")
        try workspace.rejectTicket(ticket.id, reason: "an agent never loosens its own gate", by: "quickstart")
        print("\(ticket.id) is \(try workspace.ticket(ticket.id).state); main is unchanged")
    }

    static func indent(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
    }

    /// What `git args` prints in `directory`, for display only.
    static func git(_ arguments: [String], in directory: String) -> String {
        guard let result = try? ProcessRunner.run(["/usr/bin/env", "git"] + arguments, directory: directory,
                                                  environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": "/tmp", "GIT_PAGER": "cat"],
                                                  limits: ProcessLimits(timeout: 30, outputBytes: 64 * 1024)),
              result.exitStatus == 0 else { return "(git is not installed; inspect \(directory) with git to see this)" }
        return result.output.trimmingCharacters(in: .newlines)
    }
}

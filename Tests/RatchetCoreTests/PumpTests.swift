import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetStore
import RatchetTestSupport
import Testing

/// A workspace for the pump: watch window `window`, `svc`'s metrics pointed at a port where
/// nothing listens (observe records a failure, files nothing), `settings` replaced in service.yaml.
func pumpWorkspace(_ folder: ScratchFolder, window: String = "0s", scrape: String? = nil, settings: [(String, String)] = []) throws -> Workspace {
    let first = try makeWorkspace(folder)
    let path = first.servicePath("svc")
    var yaml = try String(contentsOfFile: path + "/service.yaml", encoding: .utf8)
    let target = scrape ?? "http://127.0.0.1:\(freePort())/metrics"
    for (old, new) in [("http://127.0.0.1:8080/metrics", target)] + settings { yaml = yaml.replacingOccurrences(of: old, with: new) }
    try Data(yaml.utf8).write(to: URL(fileURLWithPath: path + "/service.yaml"))
    try git(["commit", "-qam", "Pump settings"], in: path)
    let config = first.root.appendingPathComponent("ratchet.yaml").path
    let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "watch_window: 10m", with: "watch_window: \(window)")
    try Data(text.utf8).write(to: URL(fileURLWithPath: config))
    return try Workspace.locate(explicit: first.root.path)
}

/// Files a ticket for `svc` worked by `agent`.
func fileWithAgent(_ workspace: Workspace, _ title: String, agent: String?, source: String? = nil, assignee: String = "agent") throws -> String {
    var draft = TicketDraft(service: "svc", title: title)
    draft.agent = agent
    draft.assignee = assignee
    if let source { draft.source = source }
    return try workspace.createTicket(draft).id
}

func eventKinds(_ workspace: Workspace, prefix: String) throws -> [String] {
    try workspace.database.events(since: 0, limit: 100_000).map(\.kind).filter { $0.hasPrefix(prefix) }
}

@Suite("The pump", .serialized)
struct PumpTests {
    @Test func thePumpWorksAndLandsAgentTicketsAndLeavesPeoplesTicketsAlone() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder)
        let first = try fileWithAgent(workspace, "Add a note", agent: "command:echo one > one.txt")
        let second = try fileWithAgent(workspace, "Add another note", agent: "command:echo two > two.txt")
        let person = try fileWithAgent(workspace, "For a person", agent: "command:echo x > x.txt", assignee: "human")
        let finding = try fileWithAgent(workspace, "A reflection finding", agent: "command:echo y > y.txt", source: "reflection:hysteresis")
        let summary = try Pump(workspace: workspace, options: PumpOptions(once: true, concurrency: 2)).run()
        #expect(summary.landed == 2 && summary.worked == 2, "\(summary)")
        for id in [first, second] { #expect(try workspace.ticket(id).state.rawValue == "merged") }
        for id in [person, finding] {
            #expect(try workspace.ticket(id).state.rawValue == "open")
            #expect(try workspace.ticketView(id).attempts.isEmpty)
        }
        #expect(try eventKinds(workspace, prefix: "pump.").filter { $0 != "pump.observe-failed" } == ["pump.started", "pump.stopped"])
        #expect(try eventKinds(workspace, prefix: "watch.").sorted() == ["watch.passed", "watch.passed", "watch.started", "watch.started"])
        try expectConsistent(workspace)
    }

    @Test func aPausedServiceAndTheLandingRateLimitAreHonoured() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder, settings: [("max_landings_per_hour: 6", "max_landings_per_hour: 2")])
        let ids = try (1...3).map { try fileWithAgent(workspace, "Note \($0)", agent: "command:echo \($0) > n\($0).txt") }
        _ = try workspace.setPaused("svc", true, reason: "test")
        _ = try Pump(workspace: workspace, options: PumpOptions(once: true)).run()
        #expect(try ids.map { try workspace.ticket($0).state.rawValue } == ["open", "open", "open"])
        _ = try workspace.setPaused("svc", false, reason: nil)
        let summary = try Pump(workspace: workspace, options: PumpOptions(once: true)).run()
        #expect(summary.landed == 2, "\(summary)")
        #expect(try ids.map { try workspace.ticket($0).state.rawValue } == ["merged", "merged", "open"])
        let skips = try workspace.database.events(since: 0, limit: 100_000).filter { $0.kind == "pump.skipped" }.map { $0.data["reason"]?.stringValue ?? "" }
        #expect(skips == ["paused", "rate-limited"])
        // By hand too: the gate is in the landing path, and names itself; nothing changes.
        try workspace.work(ticket: ids[2], agent: "command:echo 3 > n3.txt")
        let main = try workspace.openService("svc").resolveReference("refs/heads/main")
        let refused = message { try workspace.merge(ticket: ids[2]) }
        #expect(refused?.contains("the max_landings_per_hour gate refuses to land \(ids[2]): service svc landed 2 time(s) in the last hour") == true,
                "got \(refused ?? "-")")
        #expect(refused?.contains("--override-gate") == true)
        #expect(try workspace.ticket(ids[2]).state.rawValue == "proposed")
        #expect(try workspace.openService("svc").resolveReference("refs/heads/main") == main)
        #expect(try eventKinds(workspace, prefix: "merge.").isEmpty)
        // A person's override lands it, and the override is an event of the landing.
        let landing = try workspace.merge(ticket: ids[2], overrideGate: "hotfix the on-call asked for")
        #expect(try workspace.ticket(ids[2]).state.rawValue == "merged")
        let overrides = try workspace.database.events(since: 0, limit: 100_000).filter { $0.kind == "merge.gate-overridden" }
        #expect(overrides.count == 1 && overrides.first?.ticketId == ids[2])
        #expect(overrides.first?.data["reason"]?.stringValue == "hotfix the on-call asked for")
        #expect(overrides.first?.data["landing"]?.stringValue == landing.landing.hex)
        #expect(overrides.first?.data["gates"]?.arrayValue?.first?["gate"]?.stringValue == "max_landings_per_hour")
        // A reason is one line.
        #expect(message { try workspace.merge(ticket: ids[2], overrideGate: "two\nlines") }?.contains("single line") == true)
        try expectConsistent(workspace)
    }

    /// SPEC §4: the pump leaves a paused service alone: it does not observe it (no scrape, no
    /// ticket filed), work or land its tickets, or check its open watch window.
    @Test func aPausedServiceIsNeitherObservedNorWorkedNorWatched() throws {
        let folder = ScratchFolder()
        // What a scrape reads: more items than capacity, a breach of invariant within_capacity.
        try Data("kvcache_items 10\nkvcache_capacity 5\n".utf8).write(to: URL(fileURLWithPath: folder("now.prom")))
        let workspace = try pumpWorkspace(folder, window: "1h", scrape: folder("now.prom"))
        let id = try fileWithAgent(workspace, "Add a note", agent: "command:echo one > one.txt")
        try workspace.work(ticket: id, agent: nil)
        _ = try workspace.merge(ticket: id, watch: WatchRequest(baseline: [], window: 3600), progress: { _ in })
        let waiting = try fileWithAgent(workspace, "Another note", agent: "command:echo two > two.txt")
        _ = try workspace.setPaused("svc", true, reason: "test")
        let before = try workspace.database.events(since: 0, limit: 100_000).count
        // With `once`, the pump does not wait for the paused service's window either.
        let summary = try Pump(workspace: workspace, options: PumpOptions(once: true)).run()
        #expect(summary.filed == 0 && summary.worked == 0 && summary.landed == 0 && summary.reverted == 0, "\(summary)")
        let events = try workspace.database.events(since: 0, limit: 100_000).dropFirst(before).map(\.kind)
        #expect(events.filter { !$0.hasPrefix("pump.") }.isEmpty, "\(events)")
        #expect(try workspace.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM metricSeries WHERE service = 'svc'") } == 0)
        #expect(try workspace.ticket(waiting).state.rawValue == "open")
        #expect(try workspace.watches().map(\.ticket) == [id])
        #expect(try workspace.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket") } == 2)
        // Resumed, it is observed again: the breach is filed (and, being new after the landing, the watch reverts it).
        _ = try workspace.setPaused("svc", false, reason: nil)
        let pump = Pump(workspace: workspace, options: PumpOptions(once: true))
        pump.observe()
        try pump.checkWatches()
        #expect(try workspace.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ticket WHERE source = 'invariant:within_capacity'") } == 1)
        #expect(try eventKinds(workspace, prefix: "watch.") == ["watch.started", "watch.breached"])
        try expectConsistent(workspace)
    }

    /// A failed deploy counts as a breach: the watch reverts the landing through a commit and
    /// reopens the ticket; the same tree then needs a person's approval, so a deterministic
    /// agent cannot loop.
    @Test func aFailedDeployRevertsTheLandingAndTheSameTreeThenNeedsApproval() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder, settings: [("deploy: null ", "deploy: exit 7 ")])
        let id = try fileWithAgent(workspace, "Add a note", agent: "command:echo one > one.txt")
        let summary = try Pump(workspace: workspace, options: PumpOptions(once: true)).run()
        #expect(summary.landed == 1 && summary.reverted == 1, "\(summary)")
        let view = try workspace.ticketView(id)
        #expect(view.state == "open")
        #expect(view.attempts.map(\.state) == ["reverted"])
        let path = workspace.servicePath("svc")
        let subjects = try git(["log", "--first-parent", "--format=%s", "-2", "main"], in: path)
        #expect(subjects == "Revert \(id): Add a note\nMerge \(id): Add a note")
        #expect(try git(["log", "-1", "--format=%(trailers:key=Reason,valueonly)", "main"], in: path).hasPrefix("watch: deploy failed"))
        #expect(try eventKinds(workspace, prefix: "watch.") == ["watch.started", "watch.breached"])
        let second = try Pump(workspace: workspace, options: PumpOptions(once: true)).run()
        #expect(second.landed == 0 && second.held == 1, "\(second)")
        #expect(try workspace.ticket(id).state.rawValue == "needs-approval")
        #expect(try workspace.ticketView(id).attempts.count == 2)
        try expectConsistent(workspace)
    }

    /// A landing whose watch sees a new breach is reverted; a breach already present before it is not its doing.
    @Test func onlyABreachNewAfterTheLandingCounts() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder, window: "1h")
        let pump = Pump(workspace: workspace, options: PumpOptions(once: true))
        let id = try fileWithAgent(workspace, "Add a note", agent: "command:echo one > one.txt")
        try workspace.work(ticket: id, agent: nil)
        let landing = try workspace.merge(ticket: id, watch: WatchRequest(baseline: ["invariant:svc:already"], window: 3600), progress: { _ in })
        try pump.afterLanding(PumpJob(ticket: id, service: "svc", agent: nil), landing: landing)
        // Nothing breached (observe cannot scrape, so nothing is known to be in breach): the window stays open.
        try pump.checkWatches()
        #expect(try workspace.openWatches() == 1)
        #expect(try workspace.ticket(id).state.rawValue == "merged")
        #expect(try workspace.watches().first?.baseline == ["invariant:svc:already"])
        try pump.breach(service: "svc", ticket: id, landing: landing.landing.hex, reason: "invariant x breached", checks: ["invariant:svc:x"])
        #expect(try workspace.ticket(id).state.rawValue == "open")
        #expect(try workspace.openWatches() == 0)
        #expect(try workspace.watchRevertHolds(service: "svc", ticket: id, tree: try workspace.openService("svc").commit(landing.landing).tree).count == 1)
        // Any later candidate of the ticket is held too: a changed byte does not make the fix new.
        let other = try workspace.openService("svc").commit(landing.landing).parents[0]
        #expect(try workspace.watchRevertHolds(service: "svc", ticket: id, tree: try workspace.openService("svc").commit(other).tree).first?.contains("a landing of \(id)") == true)
        #expect(try workspace.watchRevertHolds(service: "svc", ticket: "T-99", tree: try workspace.openService("svc").commit(other).tree).isEmpty)
        try expectConsistent(workspace)
    }

    /// A landing beside an attempt of the same service (the pump at concurrency 2): its write
    /// of main was journalled before the attempt's reference guard started and applied after
    /// the guard's snapshot. That is Ratchet's own write, not tampering (the guard once
    /// "restored" main over such a landing); any other move still is.
    @Test func aWriteInFlightWhenTheGuardStartsIsNotTampering() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let journal = ReferenceJournal(workspace: workspace, service: "svc")
        let raw = try Repository.open(workspace.servicePath("svc"))
        let main = try #require(try raw.resolveReference("refs/heads/main"))
        let identity = workspace.config.identity
        let tree = try raw.commit(main).tree
        let first = try raw.createCommit(tree: tree, parents: [main], author: identity, committer: identity, message: "one\n")
        let second = try raw.createCommit(tree: tree, parents: [first], author: identity, committer: identity, message: "two\n")
        try journal.append("refs/heads/main", first)
        let inFlight = try ReferenceGuard(journal: journal, repository: raw, ownBranch: "refs/heads/ticket/T-9/1")
        try raw.updateReference("refs/heads/main", to: first, expected: main, message: "the landing in flight")
        #expect(try inFlight.tamperings(in: raw).isEmpty)
        // Anything else is still caught: a target never journalled …
        try raw.updateReference("refs/heads/main", to: second, expected: first, message: "an agent")
        #expect(try inFlight.tamperings(in: raw).map(\.reference) == ["refs/heads/main"])
        // … and an older journalled target than the last one (a rollback).
        try journal.append("refs/heads/main", second)
        let later = try ReferenceGuard(journal: journal, repository: raw, ownBranch: "refs/heads/ticket/T-9/1")
        try raw.updateReference("refs/heads/main", to: first, expected: second, message: "an agent rolls back")
        #expect(try later.tamperings(in: raw).map(\.after) == [first])
    }

    /// A claim is a compare-and-swap against what the pump saw when it chose the ticket: a
    /// second pump whose choice went stale (the first pump worked the ticket meanwhile, and
    /// its attempt ended) does not claim it again.
    @Test func aSecondPumpsStaleChoiceNeverClaimsATicketAgain() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder)
        let id = try fileWithAgent(workspace, "Fails once", agent: "command:exit 3")
        let second = Pump(workspace: workspace, options: PumpOptions(once: true))
        let jobs = try second.selectJobs()
        #expect(jobs.map(\.ticket) == [id] && jobs.first?.attempts == 0)
        // Meanwhile the first pump claims it; its attempt fails and the ticket is open again.
        #expect(message { try workspace.work(ticket: id, agent: nil, seenAttempts: 0) }?.contains("agent exited with status 3") == true)
        #expect(try workspace.ticket(id).state.rawValue == "open")
        second.runJobs(jobs)
        #expect(try workspace.ticketView(id).attempts.count == 1)
        let skips = try workspace.database.events(since: 0, limit: 100_000).filter { $0.kind == "pump.skipped" && $0.ticketId == id }
        #expect(skips.map { $0.data["reason"]?.stringValue ?? "" } == ["claim-lost"])
        try expectConsistent(workspace)
    }

    /// When an SLO's error budget is spent, only tickets with `restores: true` land.
    @Test func whenTheErrorBudgetIsSpentOnlyTicketsThatRestoreLand() throws {
        let folder = ScratchFolder()
        // What a scrape reads now: 100 of 1,000 requests failed since the samples an hour ago.
        try Data("kvcache_requests_total{op=\"get\",code=\"200\"} 900\nkvcache_requests_total{op=\"get\",code=\"500\"} 100\n".utf8)
            .write(to: URL(fileURLWithPath: folder("now.prom")))
        let workspace = try pumpWorkspace(folder, scrape: folder("now.prom"))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var text = ""
        // The same series as the scrape makes (it adds `instance` and `job`): an SLO counts
        // each series' increase (adr/0061), so a series of other labels would be another counter.
        let labels = "instance=\"\(folder("now.prom"))\",job=\"svc\",op=\"get\""
        for (offset, good, bad) in [(7_200_000, 0, 0), (3_600_000, 0, 0)] as [(Int64, Int, Int)] {
            text += "kvcache_requests_total{\(labels),code=\"200\"} \(good) \(now - offset)\n"
            text += "kvcache_requests_total{\(labels),code=\"500\"} \(bad) \(now - offset)\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: folder("samples.prom")))
        _ = try workspace.importMetrics(service: "svc", file: folder("samples.prom"))
        // The gate reads the stored samples: what the last observe scraped.
        #expect(workspace.spentBudgets("svc").isEmpty)
        _ = try workspace.observe(service: "svc", file: false)
        #expect(workspace.spentBudgets("svc") == ["availability"])
        let plain = try fileWithAgent(workspace, "An improvement", agent: "command:echo a > a.txt")
        var draft = TicketDraft(service: "svc", title: "A fix that restores reliability")
        draft.agent = "command:echo b > b.txt"
        draft.restores = true
        let restoring = try workspace.createTicket(draft).id
        _ = try Pump(workspace: workspace, options: PumpOptions(once: true)).run()
        #expect(try workspace.ticket(restoring).state.rawValue == "merged")
        #expect(try workspace.ticket(plain).state.rawValue == "open")
        #expect(try workspace.ticketView(plain).attempts.isEmpty)
        let skips = try workspace.database.events(since: 0, limit: 100_000).filter { $0.kind == "pump.skipped" && $0.ticketId == plain }
        #expect(skips.map { $0.data["reason"]?.stringValue ?? "" } == ["budget-spent"])
        // By hand, the same gate refuses, by name, until a person overrides it.
        try workspace.work(ticket: plain, agent: nil)
        let refused = message { try workspace.merge(ticket: plain) }
        #expect(refused?.contains("the error_budget gate refuses to land \(plain): the error budget of availability is spent and \(plain) does not restore reliability") == true,
                "got \(refused ?? "-")")
        #expect(try workspace.ticket(plain).state.rawValue == "proposed")
        _ = try workspace.merge(ticket: plain, overrideGate: "the fix of the budget burn itself")
        #expect(try workspace.ticket(plain).state.rawValue == "merged")
        let override = try workspace.database.events(since: 0, limit: 100_000).first { $0.kind == "merge.gate-overridden" }
        #expect(override?.data["gates"]?.arrayValue?.compactMap { $0["gate"]?.stringValue } == ["error_budget"])
    }
}

import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetStore
import RatchetTestSupport
import Testing

/// What a progress callback saw, from whichever thread calls it.
final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ item: String) { lock.withLock { items.append(item) } }
    var all: [String] { lock.withLock { items } }
}

func events(_ workspace: Workspace, _ kind: String) throws -> [RatchetStore.EventRecord] {
    try workspace.database.events(since: 0, limit: 100_000).filter { $0.kind == kind }
}

/// The watch window (adr/0032, adr/0048, adr/0057): one landing per service per window for
/// every landing, counted from the end of the landing's deploy, and with `watch_window: 0`
/// a breach is laid at the door of the landing that caused it only.
@Suite("The watch window", .serialized)
struct WatchWindowTests {
    /// A landing inside another's window is refused by hand with the gate's name and detail,
    /// which the pump's skip records too; a person can override it.
    @Test func aLandingInsideAWatchWindowIsRefusedByHandAndSkippedByThePump() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder, window: "10m")
        let first = try fileWithAgent(workspace, "First", agent: "command:echo 1 > one.txt")
        let second = try fileWithAgent(workspace, "Second", agent: "command:echo 2 > two.txt")
        try workspace.work(ticket: first, agent: nil)
        let landed = try workspace.merge(ticket: first, watch: WatchRequest(baseline: [], window: 600), progress: { _ in })
        try workspace.work(ticket: second, agent: nil)
        let main = try workspace.openService("svc").resolveReference("refs/heads/main")
        let detail = "service svc is inside the watch window of landing \(landed.landing.hex.prefix(7)) (\(first)): one landing per service per window"
        let refused = message { try workspace.merge(ticket: second) }
        #expect(refused?.hasPrefix("the watch_window gate refuses to land \(second): \(detail); ") == true, "got \(refused ?? "-")")
        #expect(refused?.contains("--override-gate") == true)
        #expect(try workspace.ticket(second).state.rawValue == "proposed")
        #expect(try workspace.openService("svc").resolveReference("refs/heads/main") == main)
        // The pump leaves the service alone, saying the same.
        #expect(try Pump(workspace: workspace, options: PumpOptions(once: true)).selectJobs().isEmpty)
        let skips = try events(workspace, "pump.skipped").map { [$0.data["reason"]?.stringValue, $0.data["detail"]?.stringValue] }
        #expect(skips == [["watching", detail]])
        // A person lands it anyway, on the record.
        _ = try workspace.merge(ticket: second, overrideGate: "the hotfix cannot wait")
        #expect(try workspace.ticket(second).state.rawValue == "merged")
        let override = try events(workspace, "merge.gate-overridden").first
        #expect(override?.data["gates"]?.arrayValue?.compactMap { $0["gate"]?.stringValue } == ["watch_window"])
    }

    /// A person's override inside a window ends that window without a verdict (adr/0076): a
    /// breach after it could be either landing's doing, so the watch reverts neither.
    @Test func anOverrideInsideAWindowInterruptsItAndALaterBreachRevertsNothing() throws {
        let folder = ScratchFolder()
        try Data("kvcache_items 1\nkvcache_capacity 5\n".utf8).write(to: URL(fileURLWithPath: folder("now.prom")))
        let workspace = try pumpWorkspace(folder, window: "1h", scrape: folder("now.prom"))
        let first = try fileWithAgent(workspace, "First", agent: "command:echo 1 > one.txt")
        let second = try fileWithAgent(workspace, "Second", agent: "command:echo 2 > two.txt")
        try workspace.work(ticket: first, agent: nil)
        let watched = try workspace.merge(ticket: first, watch: WatchRequest(baseline: workspace.breachedFingerprints("svc"), window: 3600),
                                          progress: { _ in })
        try workspace.work(ticket: second, agent: nil)
        let hotfix = try workspace.merge(ticket: second, overrideGate: "the hotfix cannot wait")
        #expect(try workspace.openWatches() == 0)
        let interrupted = try events(workspace, "watch.interrupted")
        #expect(interrupted.count == 1 && interrupted.first?.ticketId == first)
        #expect(interrupted.first?.data["landing"]?.stringValue == watched.landing.hex)
        #expect(interrupted.first?.data["by_landing"]?.stringValue == hotfix.landing.hex)
        #expect(interrupted.first?.data["by_ticket"]?.stringValue == second)
        #expect(interrupted.first?.data["reason"]?.stringValue == "the hotfix cannot wait")
        // Now a breach (more items than capacity): nothing is reverted, both stay landed.
        try Data("kvcache_items 10\nkvcache_capacity 5\n".utf8).write(to: URL(fileURLWithPath: folder("now.prom")))
        let main = try workspace.openService("svc").resolveReference("refs/heads/main")
        let summary = try Pump(workspace: workspace, options: PumpOptions(once: true)).run()
        #expect(summary.reverted == 0 && summary.watchesPassed == 0, "\(summary)")
        #expect(try [first, second].map { try workspace.ticket($0).state.rawValue } == ["merged", "merged"])
        #expect(try workspace.openService("svc").resolveReference("refs/heads/main") == main)
        #expect(try events(workspace, "watch.breached").isEmpty)
        try expectConsistent(workspace)
    }

    /// The gate holds again as the landing commits: a window opened by another landing while
    /// this one was being verified (here, as its candidate is built) refuses it; nothing lands.
    @Test func aWindowOpenedDuringVerificationRefusesTheLanding() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder, window: "10m")
        let id = try fileWithAgent(workspace, "Lands during another's window", agent: "command:echo 1 > one.txt")
        try workspace.work(ticket: id, agent: nil)
        let main = try #require(try workspace.openService("svc").resolveReference("refs/heads/main"))
        let opened = Seen()
        let refused = message {
            try workspace.merge(ticket: id, progress: { line in
                guard line.hasPrefix("building the candidate"), opened.all.isEmpty else { return }
                opened.add(line)
                // Another process's landing (T-99) opens its window now.
                _ = try? workspace.database.write { db in
                    try Workspace.startWatch(db, WatchRequest(baseline: [], window: 600), service: "svc", ticket: "T-99", attempt: 1, landing: main)
                }
            })
        }
        #expect(refused?.hasPrefix("the watch_window gate refuses to land \(id): service svc is inside the watch window of landing \(main.hex.prefix(7)) (T-99)") == true,
                "got \(refused ?? "-")")
        #expect(try workspace.ticket(id).state.rawValue == "proposed")
        #expect(try workspace.openService("svc").resolveReference("refs/heads/main") == main)
        #expect(try eventKinds(workspace, prefix: "ticket.merged").isEmpty)
    }

    /// A window starts when the landing's deploy has ended: checked while the deploy runs,
    /// even a zero window neither passes nor breaches; it ends `watch_window` after the deploy.
    @Test func theWindowCountsFromTheEndOfTheLandingsDeploy() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder, window: "0s")
        try enableDeploy(workspace, command: "true", port: freePort())
        let pump = Pump(workspace: workspace, options: PumpOptions(once: true))
        let id = try fileWithAgent(workspace, "Deployed, then watched", agent: "command:echo 1 > one.txt")
        try workspace.work(ticket: id, agent: nil)
        let during = Seen()
        let landed = try workspace.merge(ticket: id, watch: WatchRequest(baseline: [], window: 0), progress: { line in
            guard line.hasPrefix("deploy svc at") else { return }
            // The landing is on main and its deploy is starting: the window has not begun.
            try? pump.checkWatches()
            during.add((try? eventKinds(workspace, prefix: "watch.").joined(separator: " ")) ?? "?")
        })
        #expect(during.all == ["watch.started"], "a check during the deploy closed the window")
        let deployed = try #require(try events(workspace, "deploy.succeeded").last)
        #expect(try workspace.nextWatchEnd() == deployed.time)
        try pump.afterLanding(PumpJob(ticket: id, service: "svc", agent: nil), landing: landed)
        let order = try workspace.database.events(since: 0, limit: 100_000).map(\.kind).filter { $0.hasPrefix("watch.") || $0.hasPrefix("deploy.") }
        #expect(order.suffix(3) == ["watch.started", "deploy.succeeded", "watch.passed"], "\(order)")
    }

    /// With `watch_window: 0` the pump lands one service's tickets in turn, each from its
    /// baseline to its check, so a breach is laid at the door of the landing that caused it
    /// and never of another that landed beside it.
    @Test func aZeroWindowNeverCountsOneLandingsBreachAgainstAnother() throws {
        let folder = ScratchFolder()
        let workspace = try workspaceWithHealthyMetrics(folder)
        let harmless = try fileWithAgent(workspace, "A harmless note", agent: "command:echo 1 > one.txt")
        let breaking = try fileWithAgent(workspace, "Fills the cache past capacity", agent: "command:printf 'kvcache_items 50\\nkvcache_capacity 10\\n' > metrics.prom")
        let summary = try Pump(workspace: workspace, options: PumpOptions(once: true, concurrency: 2)).run()
        #expect(summary.landed == 2 && summary.reverted == 1, "\(summary)")
        #expect(try workspace.ticket(harmless).state.rawValue == "merged")
        #expect(try workspace.ticket(breaking).state.rawValue == "open")
        #expect(try events(workspace, "watch.breached").map(\.ticketId) == [breaking])
        #expect(try events(workspace, "watch.passed").map(\.ticketId) == [harmless])
        try expectConsistent(workspace)
    }

    /// Two pumps check the same windows: closing one is a compare-and-swap, so a window
    /// passes (or breaches) once, whichever check comes second.
    @Test func aWindowClosesOnceWhenTwoChecksCloseIt() throws {
        let folder = ScratchFolder()
        let workspace = try pumpWorkspace(folder)
        let main = try #require(try workspace.openService("svc").resolveReference("refs/heads/main"))
        try workspace.database.write { db in
            try Workspace.startWatch(db, WatchRequest(baseline: [], window: 0), service: "svc", ticket: "T-1", attempt: 1, landing: main)
        }
        #expect(try workspace.closeWatch(main.hex, service: "svc", ticket: "T-1", kind: "watch.passed", data: [:]))
        #expect(try !workspace.closeWatch(main.hex, service: "svc", ticket: "T-1", kind: "watch.passed", data: [:]))
        #expect(try eventKinds(workspace, prefix: "watch.") == ["watch.started", "watch.passed"])
    }
}

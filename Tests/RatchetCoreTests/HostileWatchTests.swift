import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetStore
import RatchetTestSupport
import Testing

/// A pump workspace (window 0) whose `metrics.scrape` is a file in main's checkout, so a
/// landing controls the page exactly as landed service code controls its /metrics; within_capacity holds.
func workspaceWithHealthyMetrics(_ folder: ScratchFolder) throws -> Workspace {
    let workspace = try pumpWorkspace(folder, window: "0s", scrape: "metrics.prom")
    let path = workspace.servicePath("svc")
    try Data("kvcache_items 5\nkvcache_capacity 10\n".utf8).write(to: URL(fileURLWithPath: path + "/metrics.prom"))
    try git(["add", "metrics.prom"], in: path)
    try git(["commit", "-qm", "Person: metrics page"], in: path)
    return workspace
}

/// Landed code owns its own /metrics, so the post-landing watch must not pass a landing that
/// makes the service unobservable (a hostile review's finding: a landing that removed its
/// metrics passed its watch).
@Suite("Hostile watch", .serialized)
struct HostileWatchTests {
    /// Lands a ticket worked by `agent` with the pump's watch (window 0: judged at once, at its end).
    func landAndWatch(_ workspace: Workspace, agent: String) throws -> [String] {
        let baseline = workspace.breachedFingerprints("svc")
        #expect(baseline.contains("held:invariant:svc:within_capacity"), "within_capacity holds before the landing: \(baseline)")
        let pump = Pump(workspace: workspace, options: PumpOptions(once: true))
        let id = try fileWithAgent(workspace, "Change the service", agent: agent)
        try workspace.work(ticket: id, agent: nil)
        let landing = try workspace.merge(ticket: id, watch: WatchRequest(baseline: baseline, window: 0), progress: { _ in })
        try pump.afterLanding(PumpJob(ticket: id, service: "svc", agent: nil), landing: landing)
        return try eventKinds(workspace, prefix: "watch.")
    }

    /// Control: a landing that breaks the invariant is reverted.
    @Test func aLandingThatBreachesIsReverted() throws {
        let folder = ScratchFolder()
        let workspace = try workspaceWithHealthyMetrics(folder)
        let kinds = try landAndWatch(workspace, agent: "command:printf 'kvcache_items 50\\nkvcache_capacity 10\\n' > metrics.prom")
        #expect(kinds == ["watch.started", "watch.breached"])
    }

    /// The same service made unobservable (its page gone: as a dead service or an empty
    /// /metrics) is reverted at the end of its window, naming the check that went dark.
    @Test func aLandingThatSilencesItsMetricsIsReverted() throws {
        let folder = ScratchFolder()
        let workspace = try workspaceWithHealthyMetrics(folder)
        let kinds = try landAndWatch(workspace, agent: "command:rm metrics.prom")
        #expect(kinds == ["watch.started", "watch.breached"], "a landing after which nothing can be observed passed its watch")
        let breached = try workspace.database.events(since: 0, limit: 10_000).last { $0.kind == "watch.breached" }
        guard case .string(let reason)? = breached?.data["reason"] else { Issue.record("no reason: \(String(describing: breached?.data))"); return }
        #expect(reason.contains("cannot be evaluated at the end of its watch window"), "\(reason)")
        #expect(try workspace.ticket("T-1").state.rawValue == "open")
    }
}

import Foundation
import RatchetCore
import RatchetGit
import RatchetTestSupport
import Testing

@Suite("Invariants on the candidate")
struct CandidateInvariantTests {
    /// The kv-cache canary prints each round's /metrics; `invariant:NAME` criteria are judged
    /// on the candidate's snapshots: a harmless change lands with them passed, and a change
    /// that breaks an invariant the canary's own metrics do not see fails its attempt.
    @Test func invariantCriteriaAreJudgedOnTheCandidatesExpositionSnapshots() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .kvCache)
        let service = workspace.servicePath("svc")
        let good = try file(workspace, "Document the cache", accept: ["invariant:within_capacity", "invariant:error_rate_ceiling"])
        try workspace.work(ticket: good, agent: "command:echo '# notes' >> README.md")
        let landing = try workspace.merge(ticket: good)
        #expect(landing.acceptance.map(\.status) == ["passed", "passed"], "\(landing.acceptance)")
        #expect(landing.acceptance.allSatisfy { $0.detail.hasPrefix("holds on the candidate") && $0.detail.contains("snapshot(s) of rounds 1–") })
        let main = try git(["rev-parse", "main"], in: service)

        let broken = try file(workspace, "Report the capacity", accept: ["invariant:within_capacity"])
        try workspace.work(ticket: broken, agent: #"command:sed -i 's/kvcache_capacity {cache.capacity}/kvcache_capacity 0/' kvcache/server.py"#)
        let failure = message { _ = try workspace.merge(ticket: broken) }
        #expect(failure?.hasPrefix("acceptance criterion 'invariant:within_capacity' failed on candidate ") == true, "\(failure ?? "")")
        #expect(failure?.contains("does not hold on the candidate (value ") == true)
        #expect(try git(["rev-parse", "main"], in: service) == main)
        #expect(try workspace.ticket(broken).state == .open)
        try expectConsistent(workspace)
    }

    /// Two rounds of fresh instances (counters restart at each round): rate() over the
    /// snapshots counts the second round's events as an increase after a reset.
    @Test func snapshotsOfFreshInstancesAreCountersWithResets() throws {
        func exposition(hits: Int, misses: Int, items: Int) -> String {
            "# TYPE kvcache_hits_total counter\nkvcache_hits_total \(hits)\n# TYPE kvcache_misses_total counter\nkvcache_misses_total \(misses)\n"
                + "kvcache_items \(items)\nkvcache_capacity 10\n"
        }
        let snapshots = [ExpositionSnapshot(round: 1, time: 1_000_000, text: exposition(hits: 30, misses: 10, items: 4)),
                         ExpositionSnapshot(round: 2, time: 1_002_000, text: exposition(hits: 12, misses: 4, items: 11))]
        let ratio = try parse("""
            invariants:
              - name: ratio
                expr: sum(rate(kvcache_hits_total[5m])) / (sum(rate(kvcache_hits_total[5m])) + sum(rate(kvcache_misses_total[5m]))) > 0.5
              - name: capacity
                expr: kvcache_items <= kvcache_capacity
              - name: nothing
                expr: absent_metric > 1
            """)
        let evaluated = try ratio.map { try SnapshotEvaluation.evaluate($0, on: snapshots) }
        #expect(evaluated[0].status == "passed" && evaluated[0].detail.contains("(value 0.75)"), "\(evaluated[0])")
        #expect(evaluated[1].status == "failed" && evaluated[1].detail.contains("(value 11)"), "\(evaluated[1])")
        #expect(evaluated[2].status == "cannot-evaluate" && evaluated[2].detail.hasPrefix("no data on the candidate"))
        #expect(try SnapshotEvaluation.evaluate(ratio[1], on: []).status == "cannot-evaluate")
    }

    /// The canary protocol's exposition lines: kept per round, refused outside a round or when too large.
    @Test func expositionLinesAreKeptPerRoundAndBounded() throws {
        func line(_ object: [String: Any]) throws -> String { String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self) }
        let good = try [line(["round": 1, "metric": "latency_ms", "value": 1.5]), line(["round": 1, "exposition": "kvcache_items 3\n"]),
                        line(["round": 1, "done": true]), line(["round": 2, "exposition": "kvcache_items 4\n"]), line(["round": 2, "done": true])]
        let samples = try CanaryRunner.parse(good.joined(separator: "\n")).get()
        #expect(samples.expositions.map(\.round) == [1, 2] && samples.expositions.map(\.text) == ["kvcache_items 3\n", "kvcache_items 4\n"])
        #expect(samples.pooled("latency_ms") == [1.5])
        let early = try [line(["exposition": "x 1\n"])].joined(separator: "\n")
        #expect(message { _ = try CanaryRunner.parse(early).get() }?.hasPrefix("printed an exposition while no round was running (line 1)") == true)
        let huge = try [line(["round": 1, "metric": "a", "value": 1]), line(["round": 1, "exposition": String(repeating: "x", count: (1 << 20) + 1)])]
        #expect(message { _ = try CanaryRunner.parse(huge.joined(separator: "\n")).get() } == "printed an exposition of more than 1 MiB (line 2)")
    }

    private func parse(_ text: String) throws -> [Invariant] { try InvariantsFile.parse(text) }
}

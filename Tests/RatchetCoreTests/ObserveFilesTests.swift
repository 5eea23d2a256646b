import Foundation
import RatchetCore
import RatchetTestSupport
import Testing

/// A repo-relative file of the kv-cache template.
private func template(_ path: String) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return try String(contentsOf: root.appendingPathComponent("templates/kv-cache/" + path), encoding: .utf8)
}

/// OpenSLO v1 availability of kv-cache, inline indicator.
let openSLOAvailability = """
    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: availability
      displayName: Requests without server errors
    spec:
      service: kv-cache
      indicator:
        metadata: {name: no-server-errors}
        spec:
          ratioMetric:
            counter: true
            good:
              metricSource:
                type: Prometheus
                spec: {query: 'sum(kvcache_requests_total{code!~"5.."})'}
            total:
              metricSource:
                type: Prometheus
                spec: {query: sum(kvcache_requests_total)}
      timeWindow:
        - duration: 28d
          isRolling: true
      budgetingMethod: Occurrences
      objectives:
        - displayName: three nines
          target: 0.999
    """

@Suite("Observe files")
struct ObserveFilesTests {
    @Test func theTemplatesInvariantsAndSLOsParse() throws {
        let invariants = try InvariantsFile.parse(template("invariants.yaml"))
        #expect(invariants.map(\.name) == ["hit_ratio_floor", "error_rate_ceiling", "p99_latency", "within_capacity"])
        #expect(invariants[1].severity == "page" && invariants[1].runbook == "runbooks/high-error-rate.yaml")
        #expect(invariants[3].expr == "kvcache_items <= kvcache_capacity")
        let slos = try SLOsFile.parse(template("slos.yaml"))
        #expect(slos.map(\.name) == ["availability", "latency"])
        #expect(slos[0].objective == 0.999 && slos[0].window == 30 * 86400 && slos[0].isCounter)
        #expect(slos[0].policy == BurnRateRule.standard)
        #expect(BurnRateRule.standard.map(\.label) == ["14.4x 1h/5m", "6x 6h/30m", "3x 1d/2h", "1x 3d/6h"])
    }

    @Test func openSLOv1RatioSLOsParseInlineAndByIndicatorRef() throws {
        let inline = try SLOsFile.parse(openSLOAvailability)
        #expect(inline == [SLO(name: "availability", description: "Requests without server errors", objective: 0.999, window: 28 * 86400,
                               good: #"sum(kvcache_requests_total{code!~"5.."})"#, bad: nil, total: "sum(kvcache_requests_total)",
                               isCounter: true, policy: BurnRateRule.standard)])
        let referenced = try SLOsFile.parse("""
            apiVersion: openslo/v1
            kind: SLI
            metadata: {name: errors}
            spec:
              ratioMetric:
                bad: {metricSource: {spec: {query: 'sum(rate(kvcache_requests_total{code=~"5.."}[{{.window}}]))'}}}
                total: {metricSource: {spec: {query: 'sum(rate(kvcache_requests_total[{{.window}}]))'}}}
                counter: false
            ---
            apiVersion: openslo/v1
            kind: Service
            metadata: {name: kv-cache}
            spec: {}
            ---
            apiVersion: openslo/v1
            kind: SLO
            metadata: {name: errors}
            spec:
              indicatorRef: errors
              timeWindow: [{duration: 7d, isRolling: true}]
              objectives: [{targetPercent: 99.5}]
            """)
        #expect(referenced.count == 1)
        #expect(referenced.first?.bad?.contains("{{.window}}") == true && referenced.first?.isCounter == false)
        #expect(abs((referenced.first?.objective ?? 0) - 0.995) < 1e-12 && referenced.first?.window == 7 * 86400)
    }

    @Test func badFilesSayWhatIsWrongWhere() {
        #expect(message { _ = try InvariantsFile.parse("invariants:\n  - {name: up, expr: up == 1, severity: loud}\n") }
            == "invariants.yaml: invariants[0].severity: expected ticket or page, got 'loud'")
        #expect(message { _ = try InvariantsFile.parse("invariants:\n  - {name: up}\n") } == "invariants.yaml: invariants[0].expr: is required")
        #expect(message { _ = try InvariantsFile.parse("invariants:\n  - {name: 'a b', expr: up}\n") }?.hasPrefix("invariants.yaml: invariants[0].name: 'a b' must start") == true)
        #expect(message { _ = try InvariantsFile.parse("invariant: []\n") }?.hasPrefix("invariants.yaml: invariant: unknown key") == true)
        #expect(message { _ = try SLOsFile.parse("slos:\n  - {name: a, objective: 99.9, window: 30d, good: g, total: t}\n") }
            == "slos.yaml: slos[0].objective: must be between 0 and 1, exclusive, got 99.9")
        #expect(message { _ = try SLOsFile.parse("slos:\n  - {name: a, objective: 0.9, window: soon, good: g, total: t}\n") }?
            .hasPrefix("slos.yaml: slos[0].window: expected a duration") == true)
        #expect(message { _ = try SLOsFile.parse("slos:\n  - {name: a, objective: 0.9, window: 1d, good: g, bad: b, total: t}\n") }
            == "slos.yaml: slos[0].good: give exactly one of good and bad")
        #expect(message { _ = try SLOsFile.parse(openSLOAvailability.replacingOccurrences(of: "isRolling: true", with: "isRolling: false")) }
            == "slos.yaml: spec.timeWindow[0].isRolling: calendar windows are not supported; use a rolling window")
        #expect(message { _ = try SLOsFile.parse(openSLOAvailability.replacingOccurrences(of: "Occurrences", with: "Timeslices")) }?
            .hasPrefix("slos.yaml: spec.budgetingMethod: only Occurrences is supported") == true)
        #expect(message { _ = try SLOsFile.parse(openSLOAvailability.replacingOccurrences(of: "ratioMetric", with: "thresholdMetric")) }?
            .hasPrefix("slos.yaml: spec.indicator.spec.ratioMetric: is required") == true)
        #expect(message { _ = try SLOsFile.parse("apiVersion: openslo/v2\nkind: SLO\n") }?.hasPrefix("slos.yaml: apiVersion: expected 'openslo/v1'") == true)
    }

    /// 1,000 events an hour for 40 days; 200 of the last hour's events failed, spread evenly.
    /// Objective 0.99 (budget 0.01): the 1h and 5m windows both burn at 20 > 14.4, so the first
    /// pair fires; 6h burns 200/6000/0.01 = 3.33 (< 6); the SLO window keeps 1 − 200/720000/0.01.
    @Test func burnRatesAndBudgetHaveTheWorkbooksNumbers() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let start = now.addingTimeInterval(-40 * 86400)
        let slo = SLO(name: "availability", description: "", objective: 0.99, window: 30 * 86400, good: "good", bad: nil, total: "total",
                      isCounter: true, policy: BurnRateRule.standard)
        func counted(_ name: String, at time: Date) -> Double {
            let total = 1000 * time.timeIntervalSince(start) / 3600
            let bad = 200 * min(1, max(0, time.timeIntervalSince(now.addingTimeInterval(-3600)) / 3600))
            return name == "total" ? total : total - bad
        }
        // Each counter query arrives as its increase over the window (adr/0061); this one answers exactly.
        let status = try SLOEvaluator.evaluate(slo, at: now) { expression, time in
            let parts = expression.split(whereSeparator: { "([])".contains($0) })   // increase(NAME[WINDOW])
            try #require(parts.count == 3 && parts[0] == "increase", "\(expression)")
            let window = try #require(["5m": 300.0, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259_200,
                                       "30d": 2_592_000][String(parts[2])])
            return counted(String(parts[1]), at: time) - counted(String(parts[1]), at: time.addingTimeInterval(-window))
        }
        func near(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) < 1e-9 } ?? false }
        #expect(near(status.errorRatio, 200.0 / 720_000))
        #expect(near(status.budgetRemaining, 1 - 200.0 / 720_000 / 0.01))
        #expect(near(status.burnRates[0].longBurnRate, 20) && near(status.burnRates[0].shortBurnRate, 20) && status.burnRates[0].isFiring)
        #expect(near(status.burnRates[1].longBurnRate, 200.0 / 6000 / 0.01) && !status.burnRates[1].isFiring)
        #expect(near(status.burnRates[2].longBurnRate, 200.0 / 24000 / 0.01) && near(status.burnRates[2].shortBurnRate, 200.0 / 2000 / 0.01))
        #expect(near(status.burnRates[3].longBurnRate, 200.0 / 72000 / 0.01) && !status.burnRates[3].isFiring)
        #expect(status.firing?.rule == BurnRateRule.standard[0])
    }

    /// Counter queries are asked as Prometheus's per-series increase over each window, then
    /// combined as written (adr/0061); the evaluator's `increase` counts resets and extrapolates.
    @Test func counterQueriesAreAskedAsTheirIncreaseAndNoEventsBurnNothing() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let slo = SLO(name: "a", description: "", objective: 0.9, window: 86400, good: #"sum(x{code!~"5.."}) or vector(0)"#, bad: nil,
                      total: "sum by (job) (x) - sum(rate(y[5m] offset 1h))", isCounter: true,
                      policy: [BurnRateRule(long: 3600, short: 300, factor: 1, severity: "page")])
        var asked: [String] = []
        let quiet = try SLOEvaluator.evaluate(slo, at: now) { expression, time in
            #expect(time == now)
            asked.append(expression)
            return nil
        }
        #expect(quiet.errorRatio == nil && quiet.budgetRemaining == nil && quiet.firing == nil)
        let expected = ["1d", "1h", "5m"].flatMap { window in
            [#"sum(increase(x{code!~"5.."}[\#(window)])) or vector(0.0)"#,
             "sum by (job) (increase(x[\(window)])) - sum(rate(y[5m] offset 1h))"]
        }
        #expect(asked.sorted() == expected.sorted(), "\(asked)")
    }
}

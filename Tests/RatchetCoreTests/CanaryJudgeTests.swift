import Foundation
import RatchetCore
import RatchetTestSupport
import Testing

@Suite("Canary judge")
struct CanaryJudgeTests {
    // Expected values computed once with SciPy 1.17.1:
    //   from scipy.stats import mannwhitneyu
    //   mannwhitneyu(x, y, alternative="two-sided", method=M)  → (statistic, pvalue)
    // with the x, y and M of each case.

    @Test func exactSmallSamplesMatchSciPy() {
        // mannwhitneyu([1.1, 2.3, 3.2, 4.8, 5.0], [2.9, 6.1, 7.4, 8.0, 9.9, 10.5], alternative="two-sided", method="exact")
        //   → statistic 3.0, pvalue 0.030303030303030304
        let result = MannWhitney.test([1.1, 2.3, 3.2, 4.8, 5.0], [2.9, 6.1, 7.4, 8.0, 9.9, 10.5])
        #expect(result.method == "exact")
        #expect(result.u == 3.0)
        #expect(abs(result.p - 0.030303030303030304) < 1e-12)

        // mannwhitneyu([10.0, …, 17.0], [1.0, …, 8.0], alternative="two-sided", method="exact")
        //   → statistic 64.0, pvalue 0.0001554001554001554
        let separated = MannWhitney.test((10...17).map(Double.init), (1...8).map(Double.init))
        #expect(separated.method == "exact" && separated.u == 64)
        #expect(abs(separated.p - 0.0001554001554001554) < 1e-15)

        // x = [i*1.5 + 0.25 for i in range(20)], y = [i*1.7 for i in range(20)]
        // mannwhitneyu(x, y, alternative="two-sided", method="exact") → statistic 181.0, pvalue 0.6204650618056817
        let twenty = MannWhitney.test((0..<20).map { Double($0) * 1.5 + 0.25 }, (0..<20).map { Double($0) * 1.7 })
        #expect(twenty.method == "exact" && twenty.u == 181)
        #expect(abs(twenty.p - 0.6204650618056817) < 1e-12)
    }

    @Test func asymptoticWithTiesMatchesSciPy() {
        // mannwhitneyu([1,2,2,3,3,3,4,5,5,6], [2,3,4,4,5,6,6,7,7,8,9], alternative="two-sided", method="asymptotic")
        //   → statistic 23.5, pvalue 0.027640884214298913
        let ties = MannWhitney.test([1, 2, 2, 3, 3, 3, 4, 5, 5, 6], [2, 3, 4, 4, 5, 6, 6, 7, 7, 8, 9])
        #expect(ties.method == "asymptotic" && ties.u == 23.5)
        #expect(abs(ties.p - 0.027640884214298913) < 1e-12)

        // x = [(i*37 % 101)/10 for i in range(60)], y = [(i*53 % 103)/10 + 0.8 for i in range(70)]
        // mannwhitneyu(x, y, alternative="two-sided", method="asymptotic") → statistic 1728.5, pvalue 0.08315121992517324
        let large = MannWhitney.test((0..<60).map { Double(($0 * 37) % 101) / 10 }, (0..<70).map { Double(($0 * 53) % 103) / 10 + 0.8 })
        #expect(large.method == "asymptotic" && large.u == 1728.5)
        #expect(abs(large.p - 0.08315121992517324) < 1e-12)

        // Forcing the normal approximation on the exact case:
        // mannwhitneyu([1.1, 2.3, 3.2, 4.8, 5.0], [2.9, 6.1, 7.4, 8.0, 9.9, 10.5], method="asymptotic") → 3.0, 0.03576376659097789
        let forced = MannWhitney.test([1.1, 2.3, 3.2, 4.8, 5.0], [2.9, 6.1, 7.4, 8.0, 9.9, 10.5], method: "asymptotic")
        #expect(abs(forced.p - 0.03576376659097789) < 1e-12)
    }

    @Test func allValuesTiedIsNotSignificant() {
        let result = MannWhitney.test([0, 0, 0, 0], [0, 0, 0])
        #expect(result.p == 1)
    }

    /// A canary.yaml whose metrics are `unit: sample` (Mann-Whitney) unless they say otherwise.
    private func config(_ metrics: String, checks: String = "") throws -> CanaryConfig {
        let sampled = metrics.contains("unit:") ? metrics : metrics.replacingOccurrences(of: "{name:", with: "{unit: sample, name:")
        return try CanaryConfig.parse("command: [\"./run\"]\nmetrics:\n\(sampled)\nthresholds: {pass: 95, marginal: 75}\n\(checks)")
    }

    /// A deterministic spread of `count` values around `center`.
    private func samples(_ center: Double, count: Int = 200, spread: Double = 0.1) -> [Double] {
        (0..<count).map { center * (1 + spread * (Double(($0 * 7919) % count) / Double(count) - 0.5)) }
    }

    @Test func identicalDistributionsPass() throws {
        let config = try config("  - {name: latency_ms, direction: increase, allowed_change: 0.1, critical: true, weight: 2}\n  - {name: hits, direction: decrease}")
        let values = ["latency_ms": samples(12), "hits": samples(0.6)]
        let judgement = CanaryJudge.judge(config, baseline: values, candidate: values)
        #expect(judgement.verdict == .pass && judgement.score == 100)
        #expect(judgement.metrics.map(\.classification) == [.pass, .pass])
        #expect(judgement.metrics[0].p == 1)
        // The same distribution in another order passes too.
        let shuffled = ["latency_ms": samples(12).reversed() as [Double], "hits": samples(0.6).reversed() as [Double]]
        #expect(CanaryJudge.judge(config, baseline: values, candidate: shuffled).verdict == .pass)
    }

    @Test func aShiftIsFlaggedInTheRightDirection() throws {
        let config = try config("""
              - {name: latency_ms, direction: increase, allowed_change: 0.1}
              - {name: throughput, direction: decrease, allowed_change: 0.1}
              - {name: size, direction: either, allowed_change: 0.1}
            """)
        let baseline = ["latency_ms": samples(10), "throughput": samples(100), "size": samples(5)]
        // Latency up 50 %: High; throughput down 50 %: Low; size up 50 %: High (either).
        let worse = CanaryJudge.judge(config, baseline: baseline, candidate: ["latency_ms": samples(15), "throughput": samples(50), "size": samples(7.5)])
        #expect(worse.metrics.map(\.classification) == [.high, .low, .high])
        #expect(worse.verdict == .fail && worse.score == 0)
        #expect(worse.metrics[0].reason.contains("+50%"))
        // The opposite shifts are improvements for one-sided metrics; `either` still flags.
        let better = CanaryJudge.judge(config, baseline: baseline, candidate: ["latency_ms": samples(5), "throughput": samples(150), "size": samples(2.5)])
        #expect(better.metrics.map(\.classification) == [.pass, .pass, .low])
        #expect(better.metrics[0].reason.contains("improvement"))
        // A shift within allowed_change passes although it is significant.
        let small = CanaryJudge.judge(config, baseline: baseline, candidate: ["latency_ms": samples(10.5), "throughput": samples(100), "size": samples(5)])
        #expect(small.metrics[0].classification == .pass && (small.metrics[0].p ?? 1) < 0.05)
        #expect(small.metrics[0].reason.contains("within"))
    }

    @Test func aCriticalFailureScoresZeroAndWeightsShareTheRest() throws {
        let config = try config("""
              - {name: latency_ms, direction: increase, critical: true, weight: 1}
              - {name: errors, direction: increase, weight: 3}
            """)
        let baseline = ["latency_ms": samples(10), "errors": samples(1)]
        let critical = CanaryJudge.judge(config, baseline: baseline, candidate: ["latency_ms": samples(20), "errors": samples(1)])
        #expect(critical.score == 0 && critical.verdict == .fail)
        #expect(critical.summary.contains("critical latency_ms High"))
        // A failed non-critical metric of weight 3 of 4: score 25, fail.
        let heavy = CanaryJudge.judge(config, baseline: baseline, candidate: ["latency_ms": samples(10), "errors": samples(2)])
        #expect(heavy.score == 25 && heavy.verdict == .fail)
        // Weight 1 of 4 failing: 75, marginal.
        let config2 = try self.config("""
              - {name: latency_ms, direction: increase, weight: 1}
              - {name: errors, direction: increase, critical: true, weight: 3}
            """)
        let marginal = CanaryJudge.judge(config2, baseline: baseline, candidate: ["latency_ms": samples(20), "errors": samples(1)])
        #expect(marginal.score == 75 && marginal.verdict == .marginal)
    }

    @Test func missingSamplesAreNoData() throws {
        let config = try config("""
              - {name: latency_ms, critical: true}
              - {name: optional_metric}
            """)
        let values = ["latency_ms": samples(10)]
        let optional = CanaryJudge.judge(config, baseline: values, candidate: values)
        #expect(optional.metrics[1].classification == .noData && optional.verdict == .pass && optional.score == 100)
        let critical = CanaryJudge.judge(config, baseline: values, candidate: ["optional_metric": samples(1)])
        #expect(critical.metrics[0].classification == .noData && critical.verdict == .fail && critical.score == 0)
        #expect(critical.summary.contains("no samples from the candidate"))
    }

    @Test func absoluteChecksUseTheCandidateSamples() throws {
        let config = try config("  - {name: latency_ms}", checks: "checks:\n  - p99(latency_ms) < 250\n  - count(latency_ms) >= 10\n  - max(error_rate) <= 0.01")
        let baseline = ["latency_ms": samples(100), "error_rate": [0, 0]]
        let fine = CanaryJudge.judge(config, baseline: baseline, candidate: ["latency_ms": samples(100), "error_rate": [0, 0.005]])
        #expect(fine.checks.map(\.ok) == [true, true, true] && fine.verdict == .pass)
        let broken = CanaryJudge.judge(config, baseline: baseline, candidate: ["latency_ms": samples(100) + [400, 400, 400], "error_rate": [0.02]])
        #expect(broken.checks.map(\.ok) == [false, true, false])
        #expect(broken.verdict == .fail && broken.score == 0)
        #expect(broken.checks[2].reason == "max(error_rate) = 0.02, limit <= 0.01")
        #expect(SampleStatistics.value("p50", of: [1, 2, 3, 4]) == 2.5)
        #expect(SampleStatistics.value("p90", of: (1...11).map(Double.init)) == 10)
        #expect(SampleStatistics.value("sum", of: []) == 0 && SampleStatistics.value("mean", of: []) == nil)
    }

    @Test func canaryYAMLErrorsSayWhatIsWrongWhere() {
        func error(_ text: String) -> String { message { _ = try CanaryConfig.parse(text) } ?? "" }
        #expect(error("metrics: [{name: a}]").contains("command: is required"))
        #expect(error("command: [/bin/true]\nmetrics: [{name: a}]").contains("must be a program inside the canary folder"))
        #expect(error("command: [./run]").contains("metrics: is required"))
        #expect(error("command: [./run]\nmetrics: [{name: a, direction: up}]").contains("metrics[0].direction: must be increase, decrease or either"))
        #expect(error("command: [./run]\nmetrics: [{name: a, weight: -1}]").contains("metrics[0].weight"))
        #expect(error("command: [./run]\nmetrics: [{name: a}, {name: a}]").contains("listed twice"))
        #expect(error("command: [./run]\nmetrics: [{name: a}]\nthresholds: {pass: 50, marginal: 80}").contains("thresholds.marginal"))
        #expect(error("command: [./run]\nmetrics: [{name: a}]\nchecks: ['p42(a) < 3']").contains("checks[0]: unknown statistic 'p42'"))
        #expect(error("command: [./run]\nmetrics: [{name: a}]\nchecks: ['a < 3']").contains("checks[0]: 'a < 3' is not STAT(METRIC) OP NUMBER"))
        #expect(error("command: [./run]\nmetrics: [{name: a}]\nbogus: 1").contains("bogus: unknown key"))
        #expect(error("command: [./run]\nmetrics: [{name: a}]\ntimeout: forever").contains("timeout: expected a duration"))
        #expect(error(": : :").contains("not valid YAML"))
    }

    @Test func theShippedCanariesParse() throws {
        for name in ["kv-cache", "batch-worker"] {
            let text = try String(contentsOfFile: "\(repositoryRoot)/canaries/\(name)/canary.yaml", encoding: .utf8)
            let config = try CanaryConfig.parse(text)
            #expect(!config.metrics.isEmpty && config.metrics.contains { $0.isCritical })
        }
    }
}

import Foundation

/// The judge's result: pass, marginal (needs approval) or fail. An open set.
public struct CanaryVerdict: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let pass = CanaryVerdict(rawValue: "pass")
    public static let marginal = CanaryVerdict(rawValue: "marginal")
    public static let fail = CanaryVerdict(rawValue: "fail")
    public var description: String { rawValue }
}

/// How one metric compared: Pass, High, Low or NoData (Kayenta's classes).
public struct MetricClass: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let pass = MetricClass(rawValue: "Pass")
    /// Significantly higher than baseline beyond the allowance, in a bad direction.
    public static let high = MetricClass(rawValue: "High")
    /// Significantly lower than baseline beyond the allowance, in a bad direction.
    public static let low = MetricClass(rawValue: "Low")
    /// One side has no samples.
    public static let noData = MetricClass(rawValue: "NoData")
    /// The effect's interval straddles the allowance (or too few rounds): counts like a
    /// marginal verdict.
    public static let inconclusive = MetricClass(rawValue: "Inconclusive")
    public var description: String { rawValue }
}

/// Count and median of one side's samples of a metric.
public struct SampleSummary: Codable, Sendable, Equatable {
    public var count: Int
    public var median: Double?
}

/// The judgement of one metric.
public struct MetricJudgement: Codable, Sendable, Equatable {
    public var name: String
    public var classification: MetricClass
    public var direction: String
    public var allowedChange: Double
    public var critical: Bool
    public var weight: Double
    public var baseline: SampleSummary
    public var candidate: SampleSummary
    /// (median(candidate) − median(baseline)) / |median(baseline)|; nil when undefined
    /// (no data, or a baseline median of 0 with a different candidate median).
    public var change: Double?
    /// U of the candidate sample against the baseline.
    public var u: Double?
    /// Two-sided p-value.
    public var p: Double?
    /// `exact` or `asymptotic` (Mann-Whitney), or `confidence-sequence` (rounds).
    public var method: String?
    /// `round` or `sample` (nil in reports from before rounds: sample).
    public var unit: String?
    /// `ratio` or `difference` (nil in reports from before rounds: ratio).
    public var effect: String?
    /// Paired rounds judged (unit round).
    public var rounds: Int?
    /// The effect's anytime-valid interval [low, high] (unit round); nil ends are unbounded.
    public var interval: [Double?]?
    /// Each paired round's observation, in round order (unit round): ln(candidate/baseline)
    /// of the round medians for effect `ratio`, candidate − baseline for `difference`.
    public var observations: [Double]?
    /// One line saying why.
    public var reason: String
    enum CodingKeys: String, CodingKey {
        case name, classification, direction, critical, weight, baseline, candidate, change, u, p, method, unit, effect, rounds, interval, observations, reason
        case allowedChange = "allowed_change"
    }

    /// Whether this metric counts against the verdict.
    public var isFailure: Bool { classification == .high || classification == .low || (critical && classification == .noData) }
}

/// The result of one absolute check on the candidate's samples.
public struct CheckJudgement: Codable, Sendable, Equatable {
    public var check: String
    public var value: Double?
    public var ok: Bool
    public var reason: String
}

/// What the judge decided from two sets of samples.
public struct Judgement: Codable, Sendable, Equatable {
    public var verdict: CanaryVerdict
    /// 0–100, one decimal.
    public var score: Double
    /// One line: the verdict and its main reasons.
    public var summary: String
    public var metrics: [MetricJudgement]
    public var checks: [CheckJudgement]
}

/// The statistical judge (docs/canary.md, adr/0008): per metric a two-sided Mann-Whitney U
/// test and the median ratio; Kayenta's classification and weighted score; absolute checks.
public enum CanaryJudge {
    /// Judges `candidate` against `baseline` (samples per metric name, all in one round) under `config`.
    public static func judge(_ config: CanaryConfig, baseline: [String: [Double]], candidate: [String: [Double]]) -> Judgement {
        judge(config, baseline: SideSamples(flat: baseline), candidate: SideSamples(flat: candidate))
    }

    /// Judges `candidate` against `baseline` (samples per metric and round) under `config`.
    /// `endedEarly` (a module that stopped before it was told to) caps the verdict at marginal.
    public static func judge(_ config: CanaryConfig, baseline: SideSamples, candidate: SideSamples, endedEarly: String? = nil) -> Judgement {
        let metrics = config.metrics.map { judgeMetric($0, baseline: baseline, candidate: candidate, config: config) }
        let checks = config.checks.map { check($0, candidate.pooled($0.metric)) }

        // Kayenta's score: the weighted share of Pass among the metrics that have data.
        // A failed critical metric (High, Low, or NoData) or a failed check scores 0.
        let counted = metrics.filter { $0.classification != .noData }
        let total = counted.reduce(0) { $0 + $1.weight }
        // Inconclusive counts like a marginal verdict: not against the score, but it caps the verdict below.
        let passed = counted.filter { $0.classification == .pass || $0.classification == .inconclusive }.reduce(0) { $0 + $1.weight }
        var score = total > 0 ? (1000 * passed / total).rounded() / 10 : 0
        let criticalFailures = metrics.filter { $0.critical && $0.isFailure }
        let failedChecks = checks.filter { !$0.ok }
        if !criticalFailures.isEmpty || !failedChecks.isEmpty { score = 0 }

        let inconclusive = metrics.filter { $0.classification == .inconclusive }
        var verdict: CanaryVerdict = score >= config.passThreshold && total > 0 ? .pass
            : score >= config.marginalThreshold && total > 0 ? .marginal : .fail
        if verdict == .pass && (!inconclusive.isEmpty || endedEarly != nil) { verdict = .marginal }
        var reasons: [String] = endedEarly.map { [$0] } ?? []
        if total == 0 { reasons.append("no metric had samples on both sides") }
        reasons += criticalFailures.map { "critical \($0.name) \($0.classification): \($0.reason)" }
        reasons += failedChecks.map { "check \($0.check) failed: \($0.reason)" }
        reasons += metrics.filter { !$0.critical && $0.isFailure }.map { "\($0.name) \($0.classification): \($0.reason)" }
        reasons += inconclusive.map { "\($0.name) Inconclusive: \($0.reason)" }
        let counts = "\(counted.filter { $0.classification == .pass }.count)/\(counted.count) metrics pass"
        var summary = "\(verdict) score=\(CanaryFormat.number(score)) (\(counts)"
            + (checks.isEmpty ? "" : ", \(checks.count - failedChecks.count)/\(checks.count) checks hold") + ")"
        if !reasons.isEmpty { summary += ": " + reasons.joined(separator: "; ") }
        return Judgement(verdict: verdict, score: score, summary: summary, metrics: metrics, checks: checks)
    }

    /// Why judging may stop after `round` rounds, or nil to go on: every round metric is
    /// clear (Pass, High, Low or NoData), or a critical one has failed clearly. Sample
    /// metrics do not hold it up. Sound at every round because the intervals are
    /// confidence sequences (adr/0014).
    public static func stopReason(_ judgement: Judgement, round: Int) -> String? {
        let rounds = judgement.metrics.filter { $0.unit == CanaryConfig.Unit.round.rawValue }
        if let failed = rounds.first(where: { $0.critical && ($0.classification == .high || $0.classification == .low) }) {
            return "critical \(failed.name) was clearly \(failed.classification) after \(round) rounds"
        }
        guard !rounds.contains(where: { $0.classification == .inconclusive }) else { return nil }
        return "every round metric was clear after \(round) rounds"
    }

    /// Classifies one metric: by paired rounds (unit round) or Mann-Whitney (unit sample).
    static func judgeMetric(_ metric: CanaryConfig.Metric, baseline: SideSamples, candidate: SideSamples, config: CanaryConfig) -> MetricJudgement {
        guard metric.unit == .round else {
            var result = judgeSamples(metric, baseline: baseline.pooled(metric.name), candidate: candidate.pooled(metric.name), alpha: config.alpha)
            (result.unit, result.effect) = (metric.unit.rawValue, metric.effect.rawValue)
            return result
        }
        var result = judgeSamples(metric, baseline: [], candidate: [], alpha: config.alpha)
        (result.unit, result.effect) = (metric.unit.rawValue, metric.effect.rawValue)
        let counts = [baseline, candidate].map { side in side.values[metric.name]?.values.reduce(0) { $0 + $1.count } ?? 0 }
        (result.baseline.count, result.candidate.count) = (counts[0], counts[1])
        guard counts.allSatisfy({ $0 > 0 }) else {
            let missing = zip(["baseline", "candidate"], counts).filter { $0.1 == 0 }.map(\.0)
            result.reason = "no samples from the \(missing.joined(separator: " and "))"
            return result
        }
        result.method = "confidence-sequence"
        RoundJudge.judge(metric, baseline: baseline, candidate: candidate, config: config, into: &result)
        return result
    }

    /// Classifies one metric from pooled samples: Mann-Whitney and the median ratio.
    static func judgeSamples(_ metric: CanaryConfig.Metric, baseline: [Double], candidate: [Double], alpha: Double) -> MetricJudgement {
        var result = MetricJudgement(
            name: metric.name, classification: .noData, direction: metric.direction.rawValue, allowedChange: metric.allowedChange,
            critical: metric.isCritical, weight: metric.weight,
            baseline: SampleSummary(count: baseline.count, median: baseline.isEmpty ? nil : SampleStatistics.median(baseline)),
            candidate: SampleSummary(count: candidate.count, median: candidate.isEmpty ? nil : SampleStatistics.median(candidate)),
            change: nil, u: nil, p: nil, method: nil, reason: "")
        guard let before = result.baseline.median, let after = result.candidate.median else {
            let missing = [baseline.isEmpty ? "baseline" : nil, candidate.isEmpty ? "candidate" : nil].compactMap { $0 }
            result.reason = "no samples from the \(missing.joined(separator: " and "))"
            return result
        }
        let test = MannWhitney.test(candidate, baseline)
        result.u = test.u
        result.p = test.p
        result.method = test.method
        // The effect: the relative change of the median (a median ratio minus one).
        let change: Double = before != 0 ? (after - before) / abs(before) : (after == before ? 0 : after > before ? .infinity : -.infinity)
        result.change = change.isFinite ? change : nil
        let significant = test.p < alpha
        let movement = "median \(CanaryFormat.number(before)) → \(CanaryFormat.number(after)) (\(percent(change))), p=\(pValue(test.p)), n=\(baseline.count)/\(candidate.count)"
        let higher = significant && change > metric.allowedChange
        let lower = significant && change < -metric.allowedChange
        if higher && metric.direction != .decrease {
            result.classification = .high
            result.reason = "\(movement); more than +\(percent(metric.allowedChange, signed: false)) allowed"
        } else if lower && metric.direction != .increase {
            result.classification = .low
            result.reason = "\(movement); more than −\(percent(metric.allowedChange, signed: false)) allowed"
        } else {
            result.classification = .pass
            if higher || lower { result.reason = "\(movement); an improvement" }
            else if !significant { result.reason = "\(movement); not significant at α=\(CanaryFormat.number(alpha))" }
            else { result.reason = "\(movement); within ±\(percent(metric.allowedChange, signed: false))" }
        }
        return result
    }

    /// Evaluates one absolute check on the candidate's samples.
    static func check(_ check: CanaryCheck, _ samples: [Double]) -> CheckJudgement {
        guard let value = SampleStatistics.value(check.statistic, of: samples) else {
            return CheckJudgement(check: check.text, value: nil, ok: false, reason: "the candidate has no samples of \(check.metric)")
        }
        let ok = check.holds(value)
        return CheckJudgement(check: check.text, value: value, ok: ok,
                              reason: "\(check.statistic)(\(check.metric)) = \(CanaryFormat.number(value))\(ok ? "" : ", limit \(check.op) \(CanaryFormat.number(check.limit))")")
    }

    static func percent(_ value: Double, signed: Bool = true) -> String {
        if value.isInfinite { return value > 0 ? "+∞" : "−∞" }
        let text = CanaryFormat.number((value * 1000).rounded() / 10) + "%"
        return signed && value >= 0 ? "+" + text : text
    }

    static func pValue(_ p: Double) -> String { p < 0.0001 ? String(format: "%.1e", p) : CanaryFormat.number((p * 10000).rounded() / 10000) }
}

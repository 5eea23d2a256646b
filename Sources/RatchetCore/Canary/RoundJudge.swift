import Foundation

/// One side's samples of a canary run: per metric, per round (docs/canary.md).
public struct SideSamples: Sendable, Equatable {
    /// metric → round → values, in the order printed.
    public var values: [String: [Int: [Double]]] = [:]
    /// Exposition snapshots the module printed (`{"round": N, "exposition": TEXT}`), for
    /// `invariant:NAME` criteria (Observe/CandidateInvariants.swift); the judge ignores them.
    public var expositions: [ExpositionSnapshot] = []

    /// No samples.
    public init() {}

    /// Every value of `flat` in round 1 (for judges of samples printed without rounds).
    public init(flat: [String: [Double]]) {
        for (metric, list) in flat { values[metric] = [1: list] }
    }

    /// Adds one sample.
    public mutating func add(_ metric: String, round: Int, value: Double) {
        values[metric, default: [:]][round, default: []].append(value)
    }

    /// All samples of a metric, round by round.
    public func pooled(_ metric: String) -> [Double] {
        guard let rounds = values[metric] else { return [] }
        if rounds.count == 1 { return rounds.first!.value }  // samples printed without rounds: no copy
        return rounds.keys.sorted().flatMap { rounds[$0]! }
    }

    /// Each round's median of a metric.
    public func roundMedians(_ metric: String) -> [Int: Double] { roundValues(metric, quantile: 0.5) }

    /// Each round's `quantile` of a metric (0.5: the median, 0: the minimum; round 0 excluded).
    public func roundValues(_ metric: String, quantile: Double) -> [Int: Double] {
        (values[metric] ?? [:]).filter { $0.key > 0 }.compactMapValues { $0.isEmpty ? nil : SampleStatistics.quantile($0.sorted(), quantile) }
    }

    /// The samples of rounds `1...last` only.
    public func through(round last: Int) -> SideSamples {
        var copy = SideSamples()
        copy.values = values.mapValues { $0.filter { $0.key <= last } }
        return copy
    }
}

/// An anytime-valid confidence sequence for the mean of i.i.d. observations: the
/// asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas
/// ("Time-uniform central limit theory and asymptotic confidence sequences", 2021),
/// Gaussian-mixture boundary. Looking after every observation does not inflate the
/// error rate, which is what makes sequential stopping sound (adr/0014).
public enum ConfidenceSequence {
    /// The half-width after `count` observations with sample standard deviation `deviation`,
    /// at level `alpha` (two-sided), tightest near `tunedFor` observations. The deviation is
    /// widened by the small-sample factor `smallSample(count − 1)`: the boundary is
    /// asymptotic, and with 6 rounds an estimated deviation is itself uncertain.
    public static func radius(count: Int, deviation: Double, alpha: Double, tunedFor: Double) -> Double {
        guard count > 1 else { return .infinity }
        let t = Double(count)
        let rho2 = (-2 * log(alpha) + log(-2 * log(alpha) + 1)) / max(tunedFor, 1)
        let factor = 2 * (t * rho2 + 1) / (t * t * rho2) * log((t * rho2 + 1).squareRoot() / alpha)
        return deviation * smallSample(count - 1, alpha: alpha) * factor.squareRoot()
    }

    /// Student's t quantile over the normal one at 1 − α/2 for `freedom` degrees of freedom
    /// (Cornish-Fisher to the ν⁻² term; the normal quantile by Abramowitz-Stegun 26.2.23).
    /// 1.30 at 5, 1.14 at 10, 1.04 at 29 degrees of freedom for α = 0.05.
    public static func smallSample(_ freedom: Int, alpha: Double) -> Double {
        let nu = Double(max(freedom, 1))
        let w = (-2 * log(alpha / 2)).squareRoot()
        let z = w - (2.515517 + 0.802853 * w + 0.010328 * w * w) / (1 + 1.432788 * w + 0.189269 * w * w + 0.001308 * w * w * w)
        let t = z + (pow(z, 3) + z) / (4 * nu) + (5 * pow(z, 5) + 16 * pow(z, 3) + 3 * z) / (96 * nu * nu)
        return t / z
    }

    /// The running intersection of `intervals`: still a (1 − α) confidence sequence, and
    /// it only shrinks, so a metric that became clear stays clear. When the intersection
    /// would be empty (a miss of the sequence) the latest interval stands.
    public static func intersection(_ intervals: [(Double, Double)]) -> (Double, Double)? {
        guard var current = intervals.first else { return nil }
        for (low, high) in intervals.dropFirst() {
            let next = (max(current.0, low), min(current.1, high))
            current = next.0 <= next.1 ? next : (low, high)
        }
        return current
    }
}

/// The round-level judge of one metric: paired rounds, effect with its confidence
/// sequence, classified by the interval against `allowed_change`.
enum RoundJudge {
    /// The paired observations of a metric: per round present on both sides, the log ratio
    /// (effect `ratio`) or the difference (effect `difference`) of the round statistics
    /// (`statistic`, the median by default).
    /// Returns nil and a reason when a ratio is undefined (a round median of 0 or less).
    static func observations(_ metric: CanaryConfig.Metric, baseline: [Int: Double], candidate: [Int: Double]) -> (values: [Double], problem: String?) {
        var values: [Double] = []
        for round in baseline.keys.sorted() {
            guard let before = baseline[round], let after = candidate[round] else { continue }
            if metric.effect == .difference { values.append(after - before); continue }
            if before == after { values.append(0); continue }
            guard before > 0, after > 0 else {
                return ([], "round \(round) has a median of \(CanaryFormat.number(min(before, after))): a ratio needs positive values (declare effect: difference)")
            }
            values.append(log(after / before))
        }
        return (values, nil)
    }

    /// Classifies `result` (whose summaries are set) from the round medians of both sides.
    static func judge(_ metric: CanaryConfig.Metric, baseline: SideSamples, candidate: SideSamples, config: CanaryConfig,
                      into result: inout MetricJudgement) {
        let before = baseline.roundValues(metric.name, quantile: metric.quantile)
        let after = candidate.roundValues(metric.name, quantile: metric.quantile)
        // The report's medians are of all samples (what a reader expects of "median"); the
        // reason line shows the medians of the round statistics, which the judge compares.
        result.baseline.median = before.isEmpty ? nil : SampleStatistics.median(baseline.pooled(metric.name))
        result.candidate.median = after.isEmpty ? nil : SampleStatistics.median(candidate.pooled(metric.name))
        let typical = [before, after].map { $0.isEmpty ? 0 : SampleStatistics.median(Array($0.values)) }
        let (values, problem) = observations(metric, baseline: before, candidate: after)
        result.rounds = values.count
        result.observations = values.map { ($0 * 1e6).rounded() / 1e6 }
        if let problem {
            result.classification = .inconclusive
            result.reason = problem
            return
        }
        guard values.count >= config.minRounds else {
            result.classification = .inconclusive
            result.reason = "\(values.count) paired round(s); at least \(config.minRounds) are needed"
            return
        }
        let sequence = NoiseModel.intervals(values, metric: metric, config: config)
        guard let (low, high) = ConfidenceSequence.intersection(sequence) else { return }
        let bound = metric.clipBound ?? .infinity
        let mean = values.reduce(0) { $0 + min(max($1, -bound), bound) } / Double(values.count)
        let estimate = min(max(metric.effect == .ratio ? exp(mean) - 1 : mean, low), high)
        result.change = estimate
        result.interval = [low, high].map { $0.isFinite ? $0 : nil }
        classify(metric, estimate: estimate, low: low, high: high, typical: (typical[0], typical[1]), into: &result)
        let clipped = values.filter { abs($0) > bound }.count
        if clipped > 0 {
            let limit = metric.effect == .ratio ? CanaryJudge.percent(exp(bound) - 1, signed: false) : CanaryFormat.number(bound)
            result.reason += " (\(clipped) of \(values.count) rounds clipped at ±\(limit))"
        }
    }

    /// High / Low when the whole interval is beyond the allowance in a bad direction,
    /// Pass when it lies within (or on the good side), otherwise Inconclusive.
    static func classify(_ metric: CanaryConfig.Metric, estimate: Double, low: Double, high: Double, typical: (Double, Double),
                         into result: inout MetricJudgement) {
        let allowed = metric.allowedChange
        let show = { (x: Double) in metric.effect == .ratio ? CanaryJudge.percent(x) : CanaryFormat.signed(x) }
        let limit = metric.effect == .ratio ? CanaryJudge.percent(allowed, signed: false) : CanaryFormat.number(allowed)
        let movement = "round \(metric.statistic)s \(CanaryFormat.number(typical.0)) → \(CanaryFormat.number(typical.1))"
            + " (\(show(estimate)), interval \(show(low))…\(show(high))), \(result.rounds ?? 0) paired rounds"
        let watchesUp = metric.direction != .decrease, watchesDown = metric.direction != .increase
        let upOK = !watchesUp || high <= allowed, downOK = !watchesDown || low >= -allowed
        if watchesUp && low > allowed {
            result.classification = .high
            result.reason = "\(movement); more than +\(limit) allowed"
        } else if watchesDown && high < -allowed {
            result.classification = .low
            result.reason = "\(movement); more than −\(limit) allowed"
        } else if upOK && downOK {
            result.classification = .pass
            result.reason = "\(movement); within \(watchesUp && watchesDown ? "±" : watchesUp ? "+" : "−")\(limit)"
        } else {
            result.classification = .inconclusive
            result.reason = "\(movement); the interval straddles the allowance of \(limit)"
        }
    }
}

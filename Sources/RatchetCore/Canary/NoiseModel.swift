import Foundation

/// A small seeded generator (SplitMix64), so that resampled verdicts are reproducible.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// What the sequential judge of one round metric does with a stream of paired
/// observations, replayed without running anything: for calibration and the power study.
public enum NoiseModel {
    /// How a replayed metric ended.
    public struct Outcome: Sendable, Equatable {
        /// Pass, High, Low, or Inconclusive when no round was clear.
        public var classification: MetricClass
        /// Rounds used when it stopped.
        public var rounds: Int
    }

    /// The confidence sequence in effect space after each round from `minRounds` to the
    /// end of `observations`: (low, high) per round. For a metric with a direction each end
    /// is a one-sided bound at level α (a false High and a false Pass each have at most α);
    /// for `direction: either` the interval is two-sided at α (adr/0017). With `clip`, each
    /// observation is first clipped to ±`metric.clipBound` (adr/0035).
    public static func intervals(_ observations: [Double], metric: CanaryConfig.Metric, config: CanaryConfig) -> [(Double, Double)] {
        let alpha = metric.direction == .either ? config.alpha : 2 * config.alpha
        var sum = 0.0, squares = 0.0
        var result: [(Double, Double)] = []
        let bound = metric.clipBound ?? .infinity
        for (index, raw) in observations.enumerated() {
            let x = min(max(raw, -bound), bound)
            sum += x
            squares += x * x
            let n = Double(index + 1)
            guard index + 1 >= config.minRounds else { continue }
            let mean = sum / n
            let deviation = max(0, (squares - n * mean * mean) / (n - 1)).squareRoot()
            let r = ConfidenceSequence.radius(count: index + 1, deviation: deviation, alpha: alpha, tunedFor: Double(config.minRounds * 2))
            let map = { (v: Double) in metric.effect == .ratio ? exp(v) - 1 : v }
            result.append((map(mean - r), map(mean + r)))
        }
        return result
    }

    /// Replays the sequential judge on precomputed intervals for an allowance: the first
    /// round whose interval is clear decides (the judge's running intersection keeps it
    /// clear); none clear by the last is Inconclusive.
    public static func replay(_ intervals: [(Double, Double)], direction: CanaryConfig.Direction, allowed: Double, minRounds: Int) -> Outcome {
        let up = direction != .decrease, down = direction != .increase
        for (offset, (low, high)) in intervals.enumerated() {
            let round = minRounds + offset
            if up && low > allowed { return Outcome(classification: .high, rounds: round) }
            if down && high < -allowed { return Outcome(classification: .low, rounds: round) }
            if (!up || high <= allowed) && (!down || low >= -allowed) { return Outcome(classification: .pass, rounds: round) }
        }
        return Outcome(classification: .inconclusive, rounds: minRounds + max(0, intervals.count - 1))
    }

    /// `resamples` streams of `config.maxRounds` observations drawn with replacement from
    /// `pool`, as intervals (drawn once, replayed for any allowance).
    public static func resampledIntervals(_ pool: [Double], metric: CanaryConfig.Metric, config: CanaryConfig, resamples: Int,
                                          seed: UInt64 = 42) -> [[(Double, Double)]] {
        guard !pool.isEmpty else { return [] }
        var generator = SeededGenerator(seed: seed)
        return (0..<resamples).map { _ in
            let stream = (0..<config.maxRounds).map { _ in pool[Int(generator.next() % UInt64(pool.count))] }
            return intervals(stream, metric: metric, config: config)
        }
    }

    /// Whole verdicts replayed on identical-code rounds: `verdicts` streams of `config.maxRounds`
    /// rounds drawn with replacement from `rounds` (each row: one paired round, a column per
    /// metric of `metrics`, drawn together so a round keeps its metrics), each metric judged
    /// sequentially; an alarm is a verdict in which any metric does not pass (Inconclusive
    /// included: a marginal holds a landing). `shift` is added to every observation (a
    /// known effect in log space, for power). Returns the alarms and the rounds each verdict used.
    public static func replayVerdicts(_ rounds: [[Double]], metrics: [CanaryConfig.Metric], config: CanaryConfig, verdicts: Int,
                                      shift: [Double]? = nil, seed: UInt64 = 2026) -> (alarms: Int, rounds: [Int]) {
        guard !rounds.isEmpty, !metrics.isEmpty else { return (0, []) }
        var generator = SeededGenerator(seed: seed)
        var alarms = 0, used: [Int] = []
        for _ in 0..<verdicts {
            let drawn = (0..<config.maxRounds).map { _ in rounds[Int(generator.next() % UInt64(rounds.count))] }
            let outcomes = metrics.enumerated().map { column, metric in
                let stream = drawn.map { $0[column] + (shift?[column] ?? 0) }
                return replay(intervals(stream, metric: metric, config: config), direction: metric.direction,
                              allowed: metric.allowedChange, minRounds: config.minRounds)
            }
            if outcomes.contains(where: { $0.classification != .pass }) { alarms += 1 }
            // The judge stops at a critical metric's High or Low, else when every metric is clear.
            let failed = zip(metrics, outcomes).filter { $0.0.isCritical && [.high, .low].contains($0.1.classification) }.map(\.1.rounds)
            used.append(failed.min() ?? outcomes.map(\.rounds).max() ?? 0)
        }
        return (alarms, used)
    }

    /// The share of replays that do not pass (false alarms when the pool is identical code).
    public static func alarmRate(_ replays: [[(Double, Double)]], direction: CanaryConfig.Direction, allowed: Double, minRounds: Int) -> Double {
        guard !replays.isEmpty else { return 0 }
        let alarms = replays.filter { replay($0, direction: direction, allowed: allowed, minRounds: minRounds).classification != .pass }
        return Double(alarms.count) / Double(replays.count)
    }

    /// The smallest allowance (to 0.5 % for ratios, 1/200 of the spread for differences)
    /// whose alarm rate is at most `target`, by bisection (the rate falls as the allowance grows).
    public static func smallestAllowance(_ replays: [[(Double, Double)]], direction: CanaryConfig.Direction, minRounds: Int,
                                         target: Double, step: Double) -> Double {
        var low = 0.0, high = step
        while alarmRate(replays, direction: direction, allowed: high, minRounds: minRounds) > target && high < 1e6 { high *= 2 }
        while high - low > step {
            let middle = (low + high) / 2
            if alarmRate(replays, direction: direction, allowed: middle, minRounds: minRounds) > target { low = middle } else { high = middle }
        }
        return (high / step).rounded(.up) * step
    }

    /// A 95 % upper bound of a rate seen `count` times in `total` trials (Clopper-Pearson;
    /// for 0 seen it is the "rule of three" 3/n to within 1 %).
    public static func upperBound(_ count: Int, of total: Int) -> Double {
        guard total > 0 else { return 1 }
        // Bisection on the binomial tail P(X ≤ count; p) = 0.05.
        var low = Double(count) / Double(total), high = 1.0
        for _ in 0..<60 {
            let p = (low + high) / 2
            if binomialCDF(count, total, p) > 0.05 { low = p } else { high = p }
        }
        return high
    }

    private static func binomialCDF(_ k: Int, _ n: Int, _ p: Double) -> Double {
        var total = 0.0
        for i in 0...k {
            let logTerm = lgamma(Double(n + 1)) - lgamma(Double(i + 1)) - lgamma(Double(n - i + 1)) + Double(i) * log(p) + Double(n - i) * log1p(-p)
            total += exp(logTerm)
        }
        return total
    }
}

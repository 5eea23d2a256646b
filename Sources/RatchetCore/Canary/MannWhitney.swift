import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The Mann-Whitney U test (Wilcoxon rank-sum), two-sided, as SciPy's
/// `scipy.stats.mannwhitneyu(x, y, alternative="two-sided")` computes it.
public enum MannWhitney {
    /// The outcome of one test.
    public struct Result: Sendable, Equatable {
        /// U of the first sample: the number of pairs (x, y) with x > y, ties counting one half.
        public var u: Double
        /// The two-sided p-value.
        public var p: Double
        /// `exact` or `asymptotic`.
        public var method: String
    }

    /// The largest sample size for which the exact distribution is used (when there are no
    /// ties). Counts up to C(50, 25) ≈ 1.3e14 stay exact in a Double.
    public static let exactLimit = 25

    /// Tests `x` against `y`. Exact when neither sample has more than `exactLimit` values
    /// and there are no ties; otherwise the normal approximation with tie and continuity
    /// correction. Both samples must be non-empty.
    public static func test(_ x: [Double], _ y: [Double], method requested: String? = nil) -> Result {
        let n1 = x.count, n2 = y.count
        precondition(n1 > 0 && n2 > 0, "Mann-Whitney needs two non-empty samples")
        // Average ranks of the pooled sample, and the tie groups.
        var pooled = x.enumerated().map { ($0.element, true) } + y.map { ($0, false) }
        pooled.sort { $0.0 < $1.0 }
        var rankSumX = 0.0
        var tieTerm = 0.0
        var index = 0
        while index < pooled.count {
            var end = index
            while end + 1 < pooled.count && pooled[end + 1].0 == pooled[index].0 { end += 1 }
            let tied = Double(end - index + 1)
            let rank = Double(index + end) / 2 + 1
            for member in pooled[index...end] where member.1 { rankSumX += rank }
            if tied > 1 { tieTerm += tied * tied * tied - tied }
            index = end + 1
        }
        let u1 = rankSumX - Double(n1 * (n1 + 1)) / 2
        let u2 = Double(n1 * n2) - u1
        let u = max(u1, u2)
        let method = requested ?? (tieTerm == 0 && n1 <= exactLimit && n2 <= exactLimit ? "exact" : "asymptotic")
        var p: Double
        if method == "exact" {
            p = 2 * exactSurvival(Int(u.rounded()), n1, n2)
        } else {
            let n = Double(n1 + n2)
            let mu = Double(n1 * n2) / 2
            let sigma = (Double(n1 * n2) / 12 * ((n + 1) - tieTerm / (n * (n - 1)))).squareRoot()
            if sigma == 0 || !sigma.isFinite {
                p = 1  // every value tied: nothing to tell the samples apart
            } else {
                let z = (u - mu - 0.5) / sigma
                p = 2 * 0.5 * erfc(z / 2.0.squareRoot())
            }
        }
        p = min(max(p, 0), 1)
        return Result(u: u1, p: p, method: method)
    }

    /// P(U ≥ k) under the null hypothesis for sample sizes m and n (no ties).
    static func exactSurvival(_ k: Int, _ m: Int, _ n: Int) -> Double {
        let counts = frequencies(min(m, n), max(m, n))
        let total = counts.reduce(0, +)
        guard k > 0 else { return 1 }
        guard k < counts.count else { return 0 }
        // Sum the smaller tail for accuracy; the distribution is symmetric around m·n/2.
        let complement = m * n - k   // P(U ≥ k) = P(U ≤ m·n − k)
        var sum = 0.0
        for value in 0...complement { sum += counts[value] }
        return sum / total
    }

    /// How many arrangements of m x's and n y's give each U = 0 … m·n.
    /// f(m, n, u) = f(m − 1, n, u − n) + f(m, n − 1, u).
    static func frequencies(_ m: Int, _ n: Int) -> [Double] {
        // row[j] holds f(i, j, ·) for the current i.
        var previous = [[Double]](repeating: [1], count: n + 1)  // i = 0: U is always 0
        guard m > 0 else { return [1] }
        for i in 1...m {
            var current = [[Double]](repeating: [1], count: n + 1)  // j = 0: U is always 0
            if n > 0 {
                for j in 1...n {
                    var f = [Double](repeating: 0, count: i * j + 1)
                    for (u, count) in current[j - 1].enumerated() { f[u] += count }
                    for (u, count) in previous[j].enumerated() where u + j < f.count { f[u + j] += count }
                    current[j] = f
                }
            }
            previous = current
        }
        return previous[n]
    }
}

/// Descriptive statistics over one metric's samples.
public enum SampleStatistics {
    /// The q-quantile (0…1) by linear interpolation between closest ranks (NumPy's default).
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }

    /// The median.
    public static func median(_ values: [Double]) -> Double { quantile(values.sorted(), 0.5) }

    /// `STAT` of a check: mean min max p50 p90 p95 p99 count sum; nil without samples
    /// (except count and sum, which are 0).
    public static func value(_ statistic: String, of values: [Double]) -> Double? {
        switch statistic {
        case "count": return Double(values.count)
        case "sum": return values.reduce(0, +)
        default: break
        }
        guard !values.isEmpty else { return nil }
        switch statistic {
        case "mean": return values.reduce(0, +) / Double(values.count)
        case "min": return values.min()
        case "max": return values.max()
        case "p50": return quantile(values.sorted(), 0.50)
        case "p90": return quantile(values.sorted(), 0.90)
        case "p95": return quantile(values.sorted(), 0.95)
        case "p99": return quantile(values.sorted(), 0.99)
        default: return nil
        }
    }
}

import Foundation
import RatchetMetrics

/// One pair of the burn-rate policy, evaluated.
public struct BurnRateStatus: Codable, Sendable, Equatable {
    public var rule: BurnRateRule
    /// The error ratio over the long window divided by the error budget; nil when the window saw no events.
    public var longBurnRate: Double?
    public var shortBurnRate: Double?
    /// Both windows burn faster than `rule.factor`.
    public var isFiring: Bool
    enum CodingKeys: String, CodingKey {
        case rule, longBurnRate = "long_burn_rate", shortBurnRate = "short_burn_rate", isFiring = "firing"
    }
}

/// An SLO at one instant: its events over the window, the budget left and every burn-rate pair.
public struct SLOStatus: Codable, Sendable, Equatable {
    /// Events over the SLO window.
    public var good: Double
    public var total: Double
    /// Bad events / events over the SLO window; nil without events.
    public var errorRatio: Double?
    /// 1 − errorRatio / (1 − objective): 1 untouched, 0 spent, below 0 overspent; nil without events.
    public var budgetRemaining: Double?
    public var burnRates: [BurnRateStatus]
    enum CodingKeys: String, CodingKey {
        case good, total, errorRatio = "error_ratio", budgetRemaining = "budget_remaining", burnRates = "burn_rates"
    }

    /// The pair that fires, pages first; nil when the SLO holds.
    public var firing: BurnRateStatus? {
        burnRates.first { $0.isFiring && $0.rule.severity == "page" } ?? burnRates.first(where: \.isFiring)
    }
}

/// Error budgets and multi-window burn rates of an SLO, over any instant-query function.
public enum SLOEvaluator {
    /// In a non-counter query, where the window's PromQL duration goes (Sloth's placeholder).
    public static let windowPlaceholder = "{{.window}}"

    /// The sum of an instant query's result at a time; nil when it returned nothing.
    public typealias Sum = (_ expression: String, _ time: Date) throws -> Double?

    /// `query` with every `{{.window}}` replaced by `window` as a PromQL duration.
    public static func substitute(_ query: String, window: Double) -> String {
        query.replacingOccurrences(of: windowPlaceholder, with: ObserveFormat.duration(window))
    }

    /// Evaluates `slo` at `time`: events over its window, the budget left, and each pair of its policy.
    public static func evaluate(_ slo: SLO, at time: Date, sum: @escaping Sum) throws -> SLOStatus {
        let memo = Memo(sum)
        let events = try self.events(slo, window: slo.window, at: time, sum: memo.sum)
        let ratio = errorRatio(events)
        var status = SLOStatus(good: events.good, total: events.total, errorRatio: ratio,
                               budgetRemaining: ratio.map { 1 - $0 / slo.errorBudget }, burnRates: [])
        for rule in slo.policy {
            let long = try errorRatio(self.events(slo, window: rule.long, at: time, sum: memo.sum)).map { $0 / slo.errorBudget }
            let short = try errorRatio(self.events(slo, window: rule.short, at: time, sum: memo.sum)).map { $0 / slo.errorBudget }
            let firing = (long ?? 0) > rule.factor && (short ?? 0) > rule.factor
            status.burnRates.append(BurnRateStatus(rule: rule, longBurnRate: long, shortBurnRate: short, isFiring: firing))
        }
        return status
    }

    /// Bad events / events, or nil without events.
    static func errorRatio(_ events: (good: Double, total: Double)) -> Double? {
        guard events.total > 0 else { return nil }
        return min(1, max(0, 1 - events.good / events.total))
    }

    /// Good and total events over `window` ending at `time`. Counters: each query with every
    /// selector `s` read as `increase(s[window])` — per series, reset-aware and extrapolated as
    /// Prometheus does, then combined as written (adr/0061: `sum(x)` is `sum(increase(x[w]))`).
    /// Otherwise the queries are evaluated as written with the window substituted. A query that
    /// returns nothing counts as 0.
    static func events(_ slo: SLO, window: Double, at time: Date, sum: Sum) throws -> (good: Double, total: Double) {
        func measure(_ query: String) throws -> Double {
            try sum(counterQuery(query, window: window, isCounter: slo.isCounter), time) ?? 0
        }
        let total = try measure(slo.total)
        if let good = slo.good { return (try measure(good), total) }
        return (max(0, total - (try measure(slo.bad ?? "0"))), total)
    }

    /// The query evaluated for a window: a counter's increase over it, else the window substituted.
    public static func counterQuery(_ query: String, window: Double, isCounter: Bool) throws -> String {
        guard isCounter else { return substitute(query, window: window) }
        return try PromQL.increase(query, overMilliseconds: Int64((window * 1000).rounded()))
    }

    /// Remembers instant-query answers: a window can recur across pairs (6h is a long and a short one).
    private final class Memo {
        private let inner: Sum
        private var answers: [String: Double?] = [:]
        init(_ inner: @escaping Sum) { self.inner = inner }
        func sum(_ expression: String, _ time: Date) throws -> Double? {
            let key = "\(time.timeIntervalSince1970)\u{0}\(expression)"
            if let known = answers[key] { return known }
            let answer = try inner(expression, time)
            answers[key] = answer
            return answer
        }
    }
}

/// Numbers and durations as Ratchet prints them for observation.
public enum ObserveFormat {
    /// A PromQL duration: the largest unit that divides `seconds` (`30d`, `6h`, `5m`, `90s`, `250ms`).
    public static func duration(_ seconds: Double) -> String {
        let milliseconds = Int((seconds * 1000).rounded())
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where milliseconds >= size && milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }

    /// Up to 6 significant digits, no trailing zeros.
    public static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.6g", value)
    }
}

import Foundation

/// Flap-detection thresholds of one reflection pattern (as Nagios and Sensu do it): a
/// pattern is flagged when its count reaches `high`, and stops being flagged only when it
/// falls to `low` or below, so that a count wobbling around one value never flaps.
public struct FlapThresholds: Sendable, Equatable {
    /// The count that flags the pattern (and files a ticket).
    public var high: Int
    /// The count at or below which a flagged pattern is clear again.
    public var low: Int
    /// Makes thresholds.
    public init(high: Int, low: Int) {
        self.high = high
        self.low = low
    }
}

/// The thresholds under `reflect:` in ratchet.yaml, one pair per pattern.
public struct ReflectionThresholds: Sendable, Equatable {
    /// The same fingerprint fixed this many times in the window.
    public var hysteresis = FlapThresholds(high: 3, low: 1)
    /// A path's blob or a JSON config value returning to an earlier content this many times.
    public var oscillation = FlapThresholds(high: 1, low: 0)
    /// Failed week-over-week canary judgements of one service's main (drift).
    public var drift = FlapThresholds(high: 1, low: 0)
    /// Tickets of one service that used up their attempts.
    public var nonConvergence = FlapThresholds(high: 1, low: 0)
    /// Escalations of one service in the window.
    public var escalations = FlapThresholds(high: 3, low: 1)

    /// The defaults.
    public init() {}

    /// The pair for `kind` (`hysteresis`, `oscillation`, `drift`, `non-convergence`, `escalations`).
    public subscript(kind: String) -> FlapThresholds {
        switch kind {
        case "hysteresis": return hysteresis
        case "oscillation": return oscillation
        case "drift": return drift
        case "non-convergence": return nonConvergence
        default: return escalations
        }
    }

    /// Parses the `reflect:` mapping of ratchet.yaml.
    static func parse(_ fields: YAMLFields?) throws -> ReflectionThresholds {
        var result = ReflectionThresholds()
        guard let fields else { return result }
        try fields.rejectUnknown(["hysteresis", "oscillation", "drift", "non_convergence", "escalations"])
        func pair(_ key: String, _ value: inout FlapThresholds) throws {
            guard let nested = try fields.nested(key) else { return }
            try nested.rejectUnknown(["high", "low"])
            value.high = try nested.int("high", range: 1...10_000) ?? value.high
            value.low = try nested.int("low", range: 0...10_000) ?? value.low
            guard value.low < value.high else { throw nested.fail("low", "must be below high (\(value.high))") }
        }
        try pair("hysteresis", &result.hysteresis)
        try pair("oscillation", &result.oscillation)
        try pair("drift", &result.drift)
        try pair("non_convergence", &result.nonConvergence)
        try pair("escalations", &result.escalations)
        return result
    }
}

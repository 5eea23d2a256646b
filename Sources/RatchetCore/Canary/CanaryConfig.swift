import Foundation

/// `canary/canary.yaml`: how to run a service's canary and how to judge it (SPEC §7,
/// docs/canary.md). Always read from main's tree, never from the branch under test.
public struct CanaryConfig: Sendable, Equatable {
    /// Which change of a metric is bad.
    public struct Direction: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Bigger is worse (latency, errors).
        public static let increase = Direction(rawValue: "increase")
        /// Smaller is worse (throughput, hit ratio).
        public static let decrease = Direction(rawValue: "decrease")
        /// Any change beyond the allowance is bad.
        public static let either = Direction(rawValue: "either")
        public var description: String { rawValue }
    }

    /// One metric the judge compares.
    public struct Metric: Sendable, Equatable {
        public var name: String
        public var direction: Direction
        /// The relative effect tolerated before High or Low (0.10 = 10 %).
        public var allowedChange: Double
        /// A failed critical metric makes the score 0.
        public var isCritical: Bool
        /// The metric's share of the score.
        public var weight: Double
        /// What one observation is: a round (judged by paired round medians) or a sample
        /// (judged by Mann-Whitney over all samples).
        public var unit: Unit = .round
        /// How the effect is measured: a ratio of medians, or an absolute difference
        /// (for rates whose baseline is often 0).
        public var effect: Effect = .ratio
        /// What a round's samples come down to before the two sides are paired (unit round):
        /// `median` (the default), `min`, or a percentile `p1` … `p99`.
        public var statistic = "median"
        /// Winsorizing of the paired observations (unit round; nil: none): each round's
        /// observation is clipped to ±`clip` × the allowance (in log space for `effect: ratio`),
        /// so that one round wrecked by other work on a shared machine weighs no more than a
        /// round at twice the allowance (adr/0035).
        public var clip: Double?

        /// The clipping bound of one observation (ln(1 + allowance) × clip for a ratio), or nil.
        public var clipBound: Double? {
            guard let clip, allowedChange > 0 else { return nil }
            return clip * (effect == .ratio ? log1p(allowedChange) : allowedChange)
        }

        /// The statistic as a quantile: 0 for `min`, 0.5 for `median`, 0.1 for `p10`.
        public var quantile: Double { CanaryConfig.quantile(of: statistic) ?? 0.5 }
    }

    /// The quantile a round statistic names (`min`, `median`, `p1` … `p99`), or nil.
    static func quantile(of statistic: String) -> Double? {
        switch statistic {
        case "min": return 0
        case "median": return 0.5
        default:
            guard statistic.hasPrefix("p"), let percent = Int(statistic.dropFirst()), (1...99).contains(percent),
                  statistic == "p\(percent)" else { return nil }
            return Double(percent) / 100
        }
    }

    /// The unit of evidence of a metric (docs/canary.md).
    public struct Unit: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Each round's median is one observation; rounds are paired across the two sides.
        public static let round = Unit(rawValue: "round")
        /// Every sample is one independent observation (Mann-Whitney).
        public static let sample = Unit(rawValue: "sample")
        public var description: String { rawValue }
    }

    /// How the effect of a metric is measured.
    public struct Effect: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// candidate / baseline − 1; `allowed_change` is relative.
        public static let ratio = Effect(rawValue: "ratio")
        /// candidate − baseline; `allowed_change` is in the metric's own unit.
        public static let difference = Effect(rawValue: "difference")
        public var description: String { rawValue }
    }

    /// The program, relative to the canary folder (`./run`), then its arguments.
    public var command: [String]
    /// Wall-clock limit of one run, seconds.
    public var timeout: Double
    /// Whether baseline and candidate run at the same time.
    public var isParallel: Bool
    /// The significance level of the Mann-Whitney test.
    public var alpha: Double
    public var metrics: [Metric]
    /// Score at or above which the verdict is pass.
    public var passThreshold: Double
    /// Score at or above which the verdict is marginal (below: fail).
    public var marginalThreshold: Double
    /// Absolute limits on the candidate's samples.
    public var checks: [CanaryCheck]
    /// Rounds before the judge may stop (sequential stopping looks only from here).
    public var minRounds = 6
    /// Rounds after which the judge stops; a metric still inconclusive then makes the verdict marginal.
    public var maxRounds = 40

    /// Where the file lives in a service repo.
    public static let path = "canary/canary.yaml"

    /// Parses and validates `canary.yaml`; errors name the key that is wrong.
    public static func parse(_ text: String, file: String = "canary/canary.yaml") throws -> CanaryConfig {
        let fields = try YAMLFields.parse(text, file: file)
        try fields.rejectUnknown(["command", "timeout", "parallel", "alpha", "rounds", "metrics", "thresholds", "checks"])
        guard let command = try fields.stringList("command"), let program = command.first, !program.isEmpty else {
            throw fields.fail("command", "is required: the program relative to the canary folder, e.g. [\"./run\"]")
        }
        if program.hasPrefix("/") || program.split(separator: "/").contains("..") {
            throw fields.fail("command", "'\(Names.printable(program))' must be a program inside the canary folder (./run) or a name on PATH (python3)")
        }
        var config = CanaryConfig(command: command, timeout: 120, isParallel: true, alpha: 0.05, metrics: [],
                                  passThreshold: 95, marginalThreshold: 75, checks: [])
        if let timeout = try fields.duration("timeout") {
            guard timeout > 0, timeout <= 3600 else { throw fields.fail("timeout", "must be more than 0 and at most 1h") }
            config.timeout = timeout
        }
        config.isParallel = try fields.bool("parallel") ?? true
        if let alpha = try fields.number("alpha") {
            guard alpha > 0, alpha < 0.5 else { throw fields.fail("alpha", "must be between 0 and 0.5, got \(alpha)") }
            config.alpha = alpha
        }
        try parseRounds(fields, into: &config)
        guard let metrics = try fields.mappingList("metrics"), !metrics.isEmpty else {
            throw fields.fail("metrics", "is required: a list of {name, direction, allowed_change, critical, weight}")
        }
        var seen = Set<String>()
        for metric in metrics {
            try metric.rejectUnknown(["name", "direction", "allowed_change", "critical", "weight", "unit", "effect", "statistic", "clip"])
            let name = try metric.requiredString("name")
            guard name.range(of: #"^[A-Za-z_:][A-Za-z0-9_:.\-]{0,127}\z"#, options: .regularExpression) != nil else {
                throw metric.fail("name", "'\(Names.printable(name))' is not a metric name (letters, digits, _ : . -)")
            }
            guard seen.insert(name).inserted else { throw metric.fail("name", "metric '\(name)' is listed twice") }
            let direction = Direction(rawValue: try metric.string("direction") ?? "increase")
            guard [.increase, .decrease, .either].contains(direction) else {
                throw metric.fail("direction", "must be increase, decrease or either, not '\(Names.printable(direction.rawValue))'")
            }
            let allowed = try metric.number("allowed_change") ?? 0.1
            guard allowed >= 0, allowed <= 100 else { throw metric.fail("allowed_change", "must be between 0 and 100, got \(allowed)") }
            let weight = try metric.number("weight") ?? 1
            guard weight > 0, weight <= 1000 else { throw metric.fail("weight", "must be more than 0 and at most 1000, got \(weight)") }
            let unit = Unit(rawValue: try metric.string("unit") ?? "round")
            guard [.round, .sample].contains(unit) else {
                throw metric.fail("unit", "must be round or sample, not '\(Names.printable(unit.rawValue))'")
            }
            let effect = Effect(rawValue: try metric.string("effect") ?? "ratio")
            guard [.ratio, .difference].contains(effect) else {
                throw metric.fail("effect", "must be ratio or difference, not '\(Names.printable(effect.rawValue))'")
            }
            let statistic = try metric.string("statistic") ?? "median"
            guard quantile(of: statistic) != nil else {
                throw metric.fail("statistic", "must be median, min or a percentile p1 … p99, not '\(Names.printable(statistic))'")
            }
            guard unit == .round || statistic == "median" else { throw metric.fail("statistic", "applies to unit: round only") }
            let clip = try metric.number("clip")
            if let clip {
                guard unit == .round else { throw metric.fail("clip", "applies to unit: round only") }
                guard clip >= 1, clip <= 100 else { throw metric.fail("clip", "must be from 1 to 100 (a multiple of allowed_change), got \(clip)") }
                guard allowed > 0 else { throw metric.fail("clip", "needs an allowed_change above 0 (it clips at a multiple of it)") }
            }
            config.metrics.append(Metric(name: name, direction: direction, allowedChange: allowed,
                                         isCritical: try metric.bool("critical") ?? false, weight: weight, unit: unit, effect: effect,
                                         statistic: statistic, clip: clip))
        }
        if let thresholds = try fields.nested("thresholds") {
            try thresholds.rejectUnknown(["pass", "marginal"])
            config.passThreshold = try thresholds.number("pass") ?? config.passThreshold
            config.marginalThreshold = try thresholds.number("marginal") ?? config.marginalThreshold
            guard (0...100).contains(config.passThreshold) else { throw thresholds.fail("pass", "must be between 0 and 100") }
            guard (0...100).contains(config.marginalThreshold), config.marginalThreshold <= config.passThreshold else {
                throw thresholds.fail("marginal", "must be between 0 and the pass threshold (\(config.passThreshold))")
            }
        }
        for (index, text) in (try fields.stringList("checks") ?? []).enumerated() {
            do { config.checks.append(try CanaryCheck.parse(text)) } catch {
                throw fields.fail("checks[\(index)]", describe(error))
            }
        }
        return config
    }
}

extension CanaryConfig {
    /// Reads `rounds: {min, max}`.
    static func parseRounds(_ fields: YAMLFields, into config: inout CanaryConfig) throws {
        guard let rounds = try fields.nested("rounds") else { return }
        try rounds.rejectUnknown(["min", "max"])
        let low = try rounds.number("min") ?? Double(config.minRounds)
        let high = try rounds.number("max") ?? Double(max(config.maxRounds, Int(low)))
        guard low >= 2, low <= 10_000, low == low.rounded() else { throw rounds.fail("min", "must be a whole number from 2 to 10000") }
        guard high >= low, high <= 10_000, high == high.rounded() else {
            throw rounds.fail("max", "must be a whole number from min (\(Int(low))) to 10000")
        }
        config.minRounds = Int(low)
        config.maxRounds = Int(high)
    }
}

/// An absolute limit on the candidate's samples: `STAT(METRIC) OP NUMBER`.
public struct CanaryCheck: Sendable, Equatable, Codable {
    /// The statistics a check may use.
    public static let statistics = ["mean", "min", "max", "p50", "p90", "p95", "p99", "count", "sum"]
    /// The comparison operators a check may use.
    public static let operators = ["<=", ">=", "==", "!=", "<", ">"]
    public var statistic: String
    public var metric: String
    public var op: String
    public var limit: Double
    /// The check as written (normalised spacing).
    public var text: String { "\(statistic)(\(metric)) \(op) \(CanaryFormat.number(limit))" }

    /// Parses `p99(latency_ms) < 250`.
    public static func parse(_ raw: String) throws -> CanaryCheck {
        let pattern = #"^\s*([a-z0-9]+)\s*\(\s*([A-Za-z_:][A-Za-z0-9_:.\-]*)\s*\)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*\z"#
        guard let regex = try? NSRegularExpression(pattern: pattern),
              let match = regex.firstMatch(in: raw, range: NSRange(raw.startIndex..., in: raw)), match.numberOfRanges == 5 else {
            throw RatchetError("'\(Names.printable(raw))' is not STAT(METRIC) OP NUMBER, e.g. p99(latency_ms) < 250")
        }
        let part = { (index: Int) in String(raw[Range(match.range(at: index), in: raw)!]) }
        let statistic = part(1)
        guard statistics.contains(statistic) else {
            throw RatchetError("unknown statistic '\(statistic)' (known: \(statistics.joined(separator: ", ")))")
        }
        guard let limit = Double(part(4)), limit.isFinite else { throw RatchetError("'\(Names.printable(part(4)))' is not a number") }
        return CanaryCheck(statistic: statistic, metric: part(2), op: part(3), limit: limit)
    }

    /// Whether `value OP limit` holds.
    public func holds(_ value: Double) -> Bool {
        switch op {
        case "<": return value < limit
        case "<=": return value <= limit
        case ">": return value > limit
        case ">=": return value >= limit
        case "==": return value == limit
        default: return value != limit
        }
    }
}

/// Number formatting shared by reports, trailers and tables.
public enum CanaryFormat {
    /// `+0.02`, `−0.5`, `0`: a difference with its sign.
    public static func signed(_ value: Double) -> String {
        value > 0 ? "+" + number(value) : value < 0 ? "−" + number(-value) : "0"
    }

    /// `12`, `12.5`, `0.0031`: at most 4 significant decimals, no trailing zeros.
    public static func number(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        var text = String(format: abs(value) >= 1 ? "%.3f" : "%.4g", value)
        if text.contains("."), !text.contains("e") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }
}

extension YAMLFields {
    /// A number (integer or decimal).
    func number(_ key: String) throws -> Double? {
        guard let text = try string(key) else { return nil }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
            throw fail(key, "expected a number, got '\(Names.printable(text))'")
        }
        return value
    }

    /// A list of mappings, each with its own path (`metrics[2]`).
    func mappingList(_ key: String) throws -> [YAMLFields]? {
        guard has(key), let node = mapping[key] else { return nil }
        guard let sequence = node.sequence else { throw fail(key, "expected a list of mappings") }
        return try sequence.enumerated().map { index, item in
            guard let mapping = item.mapping else { throw fail("\(key)[\(index)]", "expected a mapping") }
            return YAMLFields(file: file, path: path.isEmpty ? "\(key)[\(index)]" : "\(path).\(key)[\(index)]", mapping: mapping)
        }
    }
}

import Foundation

/// One pair of the multi-window, multi-burn-rate policy (Google SRE workbook, ch. 5; Sloth):
/// it fires when both the long and the short window burn the error budget more than
/// `factor` times faster than the rate that would spend it exactly over the SLO window.
public struct BurnRateRule: Codable, Sendable, Equatable {
    /// Seconds.
    public var long: Double
    public var short: Double
    public var factor: Double
    /// `ticket` or `page`.
    public var severity: String

    public init(long: Double, short: Double, factor: Double, severity: String) {
        self.long = long; self.short = short; self.factor = factor; self.severity = severity
    }

    /// 14.4×1h/5m and 6×6h/30m page, 3×1d/2h and 1×3d/6h ticket: the workbook's numbers for a 30-day window.
    public static let standard = [
        BurnRateRule(long: 3600, short: 300, factor: 14.4, severity: "page"),
        BurnRateRule(long: 6 * 3600, short: 1800, factor: 6, severity: "page"),
        BurnRateRule(long: 86400, short: 2 * 3600, factor: 3, severity: "ticket"),
        BurnRateRule(long: 3 * 86400, short: 6 * 3600, factor: 1, severity: "ticket"),
    ]

    /// `14.4x 1h/5m`.
    public var label: String { "\(ObserveFormat.number(factor))x \(ObserveFormat.duration(long))/\(ObserveFormat.duration(short))" }
}

/// One SLO of `slos.yaml` (SPEC §3, §8): a ratio of good to total events over a rolling
/// window, with an objective, an error budget and a burn-rate policy.
public struct SLO: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    /// The target ratio of good events, 0 < objective < 1 (0.999).
    public var objective: Double
    /// The rolling window, seconds (30d).
    public var window: Double
    /// Good events; nil when the file gives `bad` instead.
    public var good: String?
    /// Bad events (OpenSLO's `ratioMetric.bad`); nil when the file gives `good`.
    public var bad: String?
    public var total: String
    /// True (the default): `good`/`bad`/`total` are counters and Ratchet takes their increase over
    /// each window. False: they are evaluated as written, with `{{.window}}` replaced by the window.
    public var isCounter: Bool
    public var policy: [BurnRateRule]

    public init(name: String, description: String, objective: Double, window: Double, good: String?, bad: String?, total: String,
                isCounter: Bool, policy: [BurnRateRule]) {
        self.name = name; self.description = description; self.objective = objective; self.window = window
        self.good = good; self.bad = bad; self.total = total; self.isCounter = isCounter; self.policy = policy
    }

    /// 1 − objective: the share of events allowed to be bad.
    public var errorBudget: Double { 1 - objective }
}

/// Reads `slos.yaml`: Ratchet's own shape (`slos: [...]`, as in templates/kv-cache) or
/// OpenSLO v1 documents (`apiVersion: openslo/v1`, `kind: SLO` with a ratioMetric indicator,
/// inline or by `indicatorRef` to a `kind: SLI` document of the same file).
public enum SLOsFile {
    /// Where the file lives in a service repo.
    public static let path = "slos.yaml"

    /// Parses and validates the file; throws its first problem.
    public static func parse(_ text: String, file: String = path) throws -> [SLO] {
        let read = try read(text, file: file)
        if let first = read.problems.first { throw first }
        return read.slos
    }

    /// Every valid SLO and one problem per invalid one. Only a file that is not YAML, or
    /// is neither shape, throws.
    static func read(_ text: String, file: String) throws -> (slos: [SLO], names: Set<String>, problems: [RatchetError]) {
        let documents = try YAMLFields.documents(text, file: file)
        var found: [Result<SLO, RatchetError>] = []
        var names: Set<String> = []
        if documents.count == 1, documents[0].has("slos") {
            let fields = documents[0]
            try fields.rejectUnknown(["slos"])
            let items = try fields.mappingList("slos") ?? []
            names = Set(items.compactMap { try? $0.string("name") })
            found = items.map { item in Result { try parseOwn(item) }.mapError(asRatchetError) }
        } else {
            names = Set(documents.compactMap { try? $0.string("kind") == "SLO" ? $0.nested("metadata")?.string("name") : nil })
            found = try OpenSLO.slos(documents)
        }
        var slos: [SLO] = []
        var problems: [RatchetError] = []
        var seen: Set<String> = []
        for result in found {
            switch result {
            case .success(let slo) where !seen.insert(slo.name).inserted:
                problems.append(RatchetError("\(file): SLO '\(slo.name)' is defined twice"))
            case .success(let slo): slos.append(slo)
            case .failure(let problem): problems.append(problem)
            }
        }
        return (slos, names, problems)
    }

    /// `{name, description, objective, window, good|bad, total, counter, burn_rate_policy}`.
    private static func parseOwn(_ item: YAMLFields) throws -> SLO {
        try item.rejectUnknown(["name", "description", "objective", "window", "good", "bad", "total", "counter", "burn_rate_policy"])
        var slo = SLO(name: try CheckName.parse(item, "name"), description: try item.string("description") ?? "",
                      objective: try objective(item, "objective"), window: try window(item, "window"),
                      good: try item.string("good"), bad: try item.string("bad"), total: try item.requiredString("total"),
                      isCounter: try item.bool("counter") ?? true, policy: BurnRateRule.standard)
        try checkQueries(slo, item, good: "good", bad: "bad", total: "total")
        if let rules = try item.mappingList("burn_rate_policy") {
            guard !rules.isEmpty else { throw item.fail("burn_rate_policy", "needs at least one {long, short, factor} entry") }
            slo.policy = try rules.map(parseRule)
        }
        return slo
    }

    private static func parseRule(_ rule: YAMLFields) throws -> BurnRateRule {
        try rule.rejectUnknown(["long", "short", "factor", "severity"])
        let parsed = BurnRateRule(long: try window(rule, "long"), short: try window(rule, "short"),
                                  factor: try rule.number("factor") ?? 0, severity: try rule.string("severity") ?? "ticket")
        guard parsed.factor > 0 else { throw rule.fail("factor", "is required and must be more than 0") }
        guard parsed.short < parsed.long else { throw rule.fail("short", "must be shorter than long") }
        guard BreachSeverity.all.contains(parsed.severity) else {
            throw rule.fail("severity", "expected \(BreachSeverity.all.joined(separator: " or ")), got '\(Names.printable(parsed.severity))'")
        }
        return parsed
    }

    /// An objective between 0 and 1, exclusive.
    static func objective(_ fields: YAMLFields, _ key: String, percent: Bool = false) throws -> Double {
        guard let raw = try fields.number(key) else { throw fields.fail(key, "is required") }
        let value = percent ? raw / 100 : raw
        guard value > 0, value < 1 else { throw fields.fail(key, "must be between 0 and \(percent ? "100" : "1"), exclusive, got \(ObserveFormat.number(raw))") }
        return value
    }

    /// A required duration of more than 0 s.
    static func window(_ fields: YAMLFields, _ key: String) throws -> Double {
        guard let seconds = try fields.duration(key) else { throw fields.fail(key, "is required (a duration such as 30d)") }
        guard seconds > 0 else { throw fields.fail(key, "must be more than 0") }
        return seconds
    }

    /// Exactly one of good and bad, and every query parses.
    static func checkQueries(_ slo: SLO, _ fields: YAMLFields, good: String, bad: String, total: String) throws {
        guard (slo.good == nil) != (slo.bad == nil) else { throw fields.fail(good, "give exactly one of \(good) and \(bad)") }
        for (key, query) in [(good, slo.good), (bad, slo.bad), (total, Optional(slo.total))] {
            guard let query else { continue }
            if !slo.isCounter, !query.contains(SLOEvaluator.windowPlaceholder) {
                throw fields.fail(key, "is not a counter (counter: false), so it must contain \(SLOEvaluator.windowPlaceholder) where the window goes")
            }
            try PromQLCheck.require(SLOEvaluator.substitute(query, window: slo.window), fields, key)
        }
    }
}

func asRatchetError(_ error: any Error) -> RatchetError {
    (error as? RatchetError) ?? RatchetError(describe(error))
}

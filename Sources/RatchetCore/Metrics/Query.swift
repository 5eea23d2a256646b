import Foundation
import RatchetMetrics
import RatchetStore

/// What `ratchet metrics import` stored.
public struct ImportReport: Codable, Sendable, Equatable {
    public var service: String
    public var file: String
    /// `text` or `openMetrics`.
    public var format: String
    /// Sample lines in the file.
    public var samples: Int
    /// Samples written as raw samples.
    public var stored: Int
    /// Samples already present (same series and time).
    public var duplicates: Int
    /// Samples older than the raw retention, kept in rollups only.
    public var rolledUpOnly: Int
    /// Series seen for the first time.
    public var newSeries: Int
}

extension Workspace {
    /// Instant query for a service: the embedded store, or service.yaml's `metrics.prometheus` server.
    /// Throws `PromQLError` for a bad expression, `EvaluationError` when it cannot be evaluated, and a
    /// `RatchetError` when Prometheus cannot be reached (nothing is written either way).
    public func query(service: String, expression: String, at time: Date) throws -> QueryValue {
        let name = try self.service(service).name
        return try query(service: name, config: try serviceConfig(name), expression: expression, at: time)
    }

    /// The same for a service whose name and service.yaml the caller already holds (observe
    /// evaluates dozens of expressions per service).
    func query(service name: String, config: ServiceConfig, expression: String, at time: Date) throws -> QueryValue {
        let expr = try PromQL.parse(expression)
        if let server = config.metricsPrometheus {
            return try PrometheusClient(baseURL: server).query(expression, at: time)
        }
        return try Evaluator(source: StoreSource(database: database, service: name)).evaluate(expr, at: Self.milliseconds(time))
    }

    /// An instant query as an agent may make it (the `metrics` tool): over the service's own
    /// series only. The embedded store keeps each service's series apart; for a Prometheus server,
    /// every selector of the expression is narrowed by the service's scope (`metrics.scope`,
    /// default `{service="NAME"}`), and an expression that cannot be scoped is refused.
    public func scopedQuery(service: String, expression: String, at time: Date) throws -> QueryValue {
        let name = try self.service(service).name
        let config = try serviceConfig(name)
        guard config.metricsPrometheus != nil else { return try query(service: name, config: config, expression: expression, at: time) }
        let matchers = try config.metricsScope.map(Self.scopeMatchers) ?? [try LabelMatcher(name: "service", kind: .equal, value: name)]
        return try query(service: name, config: config, expression: try PromQL.scoped(expression, to: matchers), at: time)
    }

    /// The matchers of a `metrics.scope` selector: `{label="value", …}`, each rejecting series without its label.
    static func scopeMatchers(_ selector: String) throws -> [LabelMatcher] {
        guard case .vectorSelector(let parsed) = try PromQL.parse(selector), parsed.name == nil, parsed.offset == 0,
              !parsed.matchers.isEmpty, parsed.matchers.allSatisfy({ !$0.matchesEmpty && $0.name != Labels.metricName }) else {
            throw RatchetError("'\(selector)' is not a selector of labels every series of the service carries, such as {job=\"NAME\"}")
        }
        return parsed.matchers
    }

    /// The embedded store of `service` as a sample source (for evaluating expressions in place);
    /// `useRollups: false` reads raw samples wherever they are kept (to compare, and in benchmarks).
    public func metricSource(service: String, useRollups: Bool = true) throws -> any SampleSource {
        StoreSource(database: database, service: try self.service(service).name, useRollups: useRollups)
    }

    /// Backfills timestamped samples (OpenMetrics ending in `# EOF`, or text format 0.0.4 with
    /// millisecond timestamps) into the store. All or nothing: a malformed line, or a sample
    /// without a timestamp, rejects the file naming the line. `progress(done, total)` is called as samples are written.
    public func importMetrics(service: String, file: String, progress: ((Int, Int) -> Void)? = nil) throws -> ImportReport {
        let name = try self.service(service).name
        guard let data = FileManager.default.contents(atPath: file) else { throw RatchetError("cannot read \(file)") }
        let page = Exposition.parse(String(decoding: data, as: UTF8.self))
        if let first = page.errors.first {
            throw RatchetError("\(file): \(first)" + (page.errors.count > 1 ? " (and \(page.errors.count - 1) more malformed lines)" : ""))
        }
        if let untimed = page.samples.first(where: { $0.time == nil }) {
            throw RatchetError("\(file): line \(untimed.lineNumber): sample has no timestamp (import backfills timestamped samples)")
        }
        var report = ImportReport(service: name, file: file, format: page.format.rawValue, samples: page.samples.count,
                                  stored: 0, duplicates: 0, rolledUpOnly: 0, newSeries: 0)
        let now = Self.milliseconds(Date())
        try database.write { db in
            let samples = page.samples.map { ($0.labels, Sample(time: $0.time!, value: $0.value)) }
            let result = try MetricStore.append(db, service: name, samples: samples, now: now) { progress?($0, samples.count) }
            progress?(samples.count, samples.count)
            report.stored = result.stored
            report.duplicates = result.duplicates
            report.rolledUpOnly = result.rolledUpOnly
            report.newSeries = result.newSeries
            _ = try MetricStore.applyRetention(db, service: name, now: now)
            try Failpoints.hit("metrics.import-written")
            try RatchetDatabase.appendEvent(db, kind: "metrics.imported", service: name, data: [
                "file": .string(file), "samples": .number(Double(report.samples)), "stored": .number(Double(report.stored)),
                "series": .number(Double(report.newSeries)),
            ])
        }
        return report
    }
}

/// A real Prometheus server's `/api/v1/query`.
public struct PrometheusClient: Sendable {
    /// `http://host:port` (a path prefix is kept).
    public var baseURL: String
    /// Seconds before the query is abandoned.
    public var timeout: TimeInterval

    /// Makes a client.
    public init(baseURL: String, timeout: TimeInterval = 10) {
        self.baseURL = baseURL
        self.timeout = timeout
    }

    /// The instant query's value at `time`; throws a `RatchetError` naming the server when it cannot be reached or refuses.
    public func query(_ expression: String, at time: Date) throws -> QueryValue {
        var components = URLComponents(string: baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL)
        components?.path += "/api/v1/query"
        components?.queryItems = [URLQueryItem(name: "query", value: expression),
                                  URLQueryItem(name: "time", value: PrometheusJSON.timestamp(Workspace.milliseconds(time)))]
        // `+` in a query item is read as a space by Go's form parser.
        let encoded = components?.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        components?.percentEncodedQuery = encoded
        guard let url = components?.url else { throw RatchetError("metrics.prometheus '\(baseURL)' is not a valid URL") }
        let body: Data
        do {
            body = try MetricsHTTP.get(url, timeout: timeout, accept: "application/json", errorBodies: true)
        } catch let error as RatchetError {
            throw RatchetError("Prometheus at \(baseURL) unreachable: \(error.message)")
        }
        do { return try PrometheusJSON.parseResponse(body) } catch { throw RatchetError(describe(error)) }
    }
}

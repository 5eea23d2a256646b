import Foundation

/// One sample of an instant query's answer.
public struct ObservedSample: Codable, Sendable, Equatable {
    public var labels: [String: String]
    public var value: Double
}

/// An instant query's answer, as observation uses it.
enum ObservedValue {
    case vector([ObservedSample])
    case scalar(Double)

    /// Whether an invariant holds on it: a non-empty vector, or a scalar other than 0 and NaN.
    var isTruthy: Bool {
        switch self {
        case .vector(let samples): return !samples.isEmpty
        case .scalar(let value): return value != 0 && !value.isNaN
        }
    }

    /// The first sample's value (or the scalar); nil for an empty vector.
    var firstValue: Double? {
        switch self {
        case .vector(let samples): return samples.first?.value
        case .scalar(let value): return value
        }
    }

    /// Whether it holds a number other than NaN.
    var hasNumber: Bool {
        switch self {
        case .vector(let samples): return samples.contains { !$0.value.isNaN }
        case .scalar(let value): return !value.isNaN
        }
    }

    /// The sum of the finite values; nil when there are none. NaN and ±Inf samples are left out.
    var finiteSum: Double? {
        let values: [Double]
        switch self {
        case .vector(let samples): values = samples.map(\.value)
        case .scalar(let value): values = [value]
        }
        let finite = values.filter(\.isFinite)
        return finite.isEmpty ? nil : finite.reduce(0, +)
    }
}

/// What observation needs from the metrics layer for one service.
struct MetricsReader {
    /// Where the metrics come from (`scrape: URL` or `prometheus: URL`), for snapshots.
    var source: String
    /// Scrapes the service's target once into the store; throws when it did not answer.
    var scrape: () throws -> Void
    /// An instant query at a time.
    var query: (_ expression: String, _ time: Date) throws -> ObservedValue
    /// The left side of an expression whose top level is a filtering comparison (`A > 0.5` → `A`).
    var valueExpression: (_ expression: String) -> String?
    /// The metric names an expression selects.
    var metricNames: (_ expression: String) -> [String]
}

extension Workspace {
    /// Seconds a scrape may take before the target counts as down.
    static let observeScrapeTimeout: TimeInterval = 10

    /// The metrics of `service` as observation reads them: `Workspace.query` (embedded store
    /// or Prometheus) and, for a `metrics.scrape` target, one scrape per run.
    /// `config` is the service's configuration when the caller has read it already.
    func metricsReader(_ service: String, config known: ServiceConfig? = nil) throws -> MetricsReader {
        let config = try known ?? serviceConfig(service)
        let source = config.metricsScrape.map { "scrape: \($0)" } ?? config.metricsPrometheus.map { "prometheus: \($0)" } ?? "none"
        return MetricsReader(
            source: source,
            scrape: { [self] in
                guard config.metricsScrape != nil else { return }
                let report = try scrape(service: service, timeout: Self.observeScrapeTimeout)
                if !report.up { throw RatchetError("scrape of \(report.target) failed: \(report.error ?? "no answer")") }
            },
            query: { [self] expression, time in
                switch try query(service: service, config: config, expression: expression, at: time) {
                case .scalar(let value): return .scalar(value)
                case .vector(let samples): return .vector(samples.map { ObservedSample(labels: $0.labels.pairs, value: $0.value) })
                case .matrix: throw RatchetError("'\(Names.printable(expression))' returns a range vector; observation needs an instant vector")
                case .string: throw RatchetError("'\(Names.printable(expression))' returns a string; observation needs an instant vector")
                }
            },
            valueExpression: PromQLCheck.valueExpression,
            metricNames: PromQLCheck.metricNames)
    }
}

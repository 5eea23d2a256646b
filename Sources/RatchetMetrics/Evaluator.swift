import Foundation

/// An error while evaluating a parsed expression (many-to-many matching, an unsupported operator…).
public struct EvaluationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Evaluates instant queries over a `SampleSource` with Prometheus 2.x semantics (docs/promql.md).
public struct Evaluator {
    /// Where samples come from.
    public var source: any SampleSource
    /// How far back an instant selector looks for a sample (Prometheus: 5 minutes).
    public var lookbackDelta: Int64 = 5 * 60_000

    /// Makes an evaluator.
    public init(source: any SampleSource, lookbackDelta: Int64 = 5 * 60_000) {
        self.source = source
        self.lookbackDelta = lookbackDelta
    }

    /// Parses and evaluates `expression` at `time` (milliseconds since the epoch).
    public func query(_ expression: String, at time: Int64) throws -> QueryValue {
        try evaluate(try PromQL.parse(expression), at: time)
    }

    /// Evaluates a parsed expression at `time` (milliseconds since the epoch).
    public func evaluate(_ expr: Expr, at time: Int64) throws -> QueryValue {
        switch try value(expr, at: time) {
        case .scalar(let v): return .scalar(v)
        case .string(let s): return .string(s)
        case .vector(let samples): return .vector(samples)
        case .matrix(let series, _, _):
            return .matrix(series.map { RangeSeries(labels: $0.labels, samples: $0.points.map { Sample(time: $0.time, value: $0.value) }) })
        }
    }

    /// A value during evaluation; a matrix keeps its window for the range functions.
    enum Value {
        case scalar(Double)
        case string(String)
        case vector([InstantSample])
        case matrix([SeriesPoints], start: Int64, end: Int64)
    }

    func value(_ expr: Expr, at time: Int64) throws -> Value {
        switch expr {
        case .number(let v): return .scalar(v)
        case .string(let s): return .string(s)
        case .parenthesis(let inner): return try value(inner, at: time)
        case .vectorSelector(let selector): return .vector(try instant(selector, at: time))
        case .matrixSelector: return try range(expr, at: time, summaries: false)
        case .negation(let inner):
            switch try value(inner, at: time) {
            case .scalar(let v): return .scalar(-v)
            case .vector(let samples): return .vector(try requireUniqueLabels(samples.map { InstantSample(labels: $0.labels.droppingName(), value: -$0.value) }))
            default: throw EvaluationError("unary minus needs a scalar or an instant vector")
            }
        case .call(let function, let arguments):
            return try Functions.call(function, arguments, at: time, evaluator: self)
        case .aggregate(let op, let inner, let parameter, let grouping):
            guard case .vector(let samples) = try value(inner, at: time) else { throw EvaluationError("aggregation needs an instant vector") }
            let parameterValue = try parameter.map { try scalar($0, at: time) }
            return .vector(try Aggregation.apply(op, samples, parameter: parameterValue, grouping: grouping))
        case .binary(let op, let lhs, let rhs, let modifiers):
            return try Binary.apply(op, try value(lhs, at: time), try value(rhs, at: time), modifiers)
        }
    }

    /// A range vector for a range function; `summaries` lets the source answer with rollups
    /// where they stand exactly for the samples (`RangeFunctions.summarizable`).
    func range(_ expr: Expr, at time: Int64, summaries: Bool) throws -> Value {
        switch expr {
        case .parenthesis(let inner): return try range(inner, at: time, summaries: summaries)
        case .matrixSelector(let selector, let range):
            let end = time - selector.offset, start = end - range
            return .matrix(try source.select(selector.matchers, start: start, end: end, summaries: summaries), start: start, end: end)
        default: return try value(expr, at: time)
        }
    }

    func scalar(_ expr: Expr, at time: Int64) throws -> Double {
        guard case .scalar(let v) = try value(expr, at: time) else { throw EvaluationError("expected a scalar") }
        return v
    }

    /// The latest sample of each series within the lookback delta (both ends included, as in Prometheus 2.x).
    func instant(_ selector: VectorSelector, at time: Int64) throws -> [InstantSample] {
        let end = time - selector.offset
        return try source.select(selector.matchers, start: end - lookbackDelta, end: end).compactMap { series in
            guard let last = series.points.last(where: { $0.time <= end && $0.time >= end - lookbackDelta }) else { return nil }
            return InstantSample(labels: series.labels, value: last.value)
        }
    }
}

/// Checks that a vector holds each label set once (Prometheus: "vector cannot contain metrics with the same labelset").
func requireUniqueLabels(_ samples: [InstantSample]) throws -> [InstantSample] {
    var seen = Set<Labels>()
    for sample in samples where !seen.insert(sample.labels).inserted {
        throw EvaluationError("vector cannot contain metrics with the same labelset")
    }
    return samples
}

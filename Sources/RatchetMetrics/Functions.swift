import Foundation

/// The functions the embedded evaluator runs, with their argument types.
enum Functions {
    struct Signature {
        var arguments: [ValueType]
        /// How many trailing arguments may be left out.
        var optional = 0
        var returns: ValueType = .vector
    }

    static let rangeFunctions = ["rate", "irate", "increase", "delta", "idelta", "avg_over_time", "sum_over_time", "min_over_time",
                                 "max_over_time", "count_over_time", "last_over_time", "present_over_time",
                                 "stddev_over_time", "stdvar_over_time", "changes", "resets"]
    static let mathFunctions = ["abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn"]

    static let signatures: [String: Signature] = {
        var table: [String: Signature] = [:]
        for name in rangeFunctions { table[name] = Signature(arguments: [.matrix]) }
        for name in mathFunctions { table[name] = Signature(arguments: [.vector]) }
        table["quantile_over_time"] = Signature(arguments: [.scalar, .matrix])
        table["histogram_quantile"] = Signature(arguments: [.scalar, .vector])
        table["round"] = Signature(arguments: [.vector, .scalar], optional: 1)
        table["clamp"] = Signature(arguments: [.vector, .scalar, .scalar])
        table["clamp_min"] = Signature(arguments: [.vector, .scalar])
        table["clamp_max"] = Signature(arguments: [.vector, .scalar])
        table["scalar"] = Signature(arguments: [.vector], returns: .scalar)
        table["vector"] = Signature(arguments: [.scalar])
        table["time"] = Signature(arguments: [], returns: .scalar)
        table["absent"] = Signature(arguments: [.vector])
        table["absent_over_time"] = Signature(arguments: [.matrix])
        table["timestamp"] = Signature(arguments: [.vector])
        return table
    }()

    typealias Value = Evaluator.Value

    static func call(_ name: String, _ arguments: [Expr], at time: Int64, evaluator: Evaluator) throws -> Value {
        switch name {
        case "time": return .scalar(Double(time) / 1000)
        case "vector": return .vector([InstantSample(labels: Labels(), value: try evaluator.scalar(arguments[0], at: time))])
        case "scalar":
            guard case .vector(let samples) = try evaluator.value(arguments[0], at: time) else { throw EvaluationError("scalar() needs an instant vector") }
            return .scalar(samples.count == 1 ? samples[0].value : .nan)
        case "histogram_quantile":
            let q = try evaluator.scalar(arguments[0], at: time)
            guard case .vector(let samples) = try evaluator.value(arguments[1], at: time) else { throw EvaluationError("histogram_quantile needs an instant vector") }
            return .vector(try requireUniqueLabels(Histogram.quantiles(q, samples)))
        case "absent", "absent_over_time":
            return .vector(try absent(arguments[0], at: time, evaluator: evaluator))
        case "timestamp":
            throw EvaluationError("timestamp() is not supported by the embedded evaluator")
        default:
            break
        }
        if name == "quantile_over_time" || rangeFunctions.contains(name) {
            let parameter = name == "quantile_over_time" ? try evaluator.scalar(arguments[0], at: time) : 0
            guard case .matrix(let series, let start, let end) = try evaluator.range(arguments.last!, at: time, summaries: RangeFunctions.summarizable.contains(name)) else {
                throw EvaluationError("\(name) needs a range vector")
            }
            let out = series.compactMap { series -> InstantSample? in
                guard let value = RangeFunctions.apply(name, series.points, start: start, end: end, parameter: parameter) else { return nil }
                return InstantSample(labels: name == "last_over_time" ? series.labels : series.labels.droppingName(), value: value)
            }
            return .vector(try requireUniqueLabels(out))
        }
        guard case .vector(let samples) = try evaluator.value(arguments[0], at: time) else { throw EvaluationError("\(name) needs an instant vector") }
        let extra = try arguments.dropFirst().map { try evaluator.scalar($0, at: time) }
        let out = samples.map { InstantSample(labels: $0.labels.droppingName(), value: math(name, $0.value, extra)) }
        return .vector(try requireUniqueLabels(out))
    }

    /// The instant-vector math functions.
    static func math(_ name: String, _ v: Double, _ extra: [Double]) -> Double {
        switch name {
        case "abs": return Swift.abs(v)
        case "ceil": return v.rounded(.up)
        case "floor": return v.rounded(.down)
        case "exp": return Foundation.exp(v)
        case "ln": return Foundation.log(v)
        case "log2": return Foundation.log2(v)
        case "log10": return Foundation.log10(v)
        case "sqrt": return v.squareRoot()
        case "sgn": return v > 0 ? 1 : v < 0 ? -1 : v
        case "round":
            // Go: math.Floor(v*toNearestInverse+0.5) / toNearestInverse
            let inverse = 1 / (extra.first ?? 1)
            return (v * inverse + 0.5).rounded(.down) / inverse
        case "clamp": return extra[0] > extra[1] ? .nan : Swift.max(extra[0], Swift.min(extra[1], v))
        case "clamp_min": return Swift.max(extra[0], v)
        case "clamp_max": return Swift.min(extra[0], v)
        default: return .nan
        }
    }

    /// `absent(x)`: 1 with the selector's equality labels when x has no samples.
    private static func absent(_ argument: Expr, at time: Int64, evaluator: Evaluator) throws -> [InstantSample] {
        let present: Bool
        switch try evaluator.value(argument, at: time) {
        case .vector(let samples): present = !samples.isEmpty
        case .matrix(let series, _, _): present = series.contains { !$0.points.isEmpty }
        default: present = true
        }
        guard !present else { return [] }
        var pairs: [String: String] = [:]
        var selector: VectorSelector?
        if case .vectorSelector(let s) = argument { selector = s }
        if case .matrixSelector(let s, _) = argument { selector = s }
        for matcher in selector?.matchers ?? [] where matcher.kind == .equal && matcher.name != Labels.metricName {
            pairs[matcher.name] = matcher.value
        }
        return [InstantSample(labels: Labels(pairs), value: 1)]
    }

    /// Prometheus's quantile over a set of values (linear interpolation between closest ranks).
    static func quantile(_ q: Double, _ values: [Double]) -> Double {
        if values.isEmpty || q.isNaN { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        // NaN sorts first, as Prometheus's vectorByValueHeap orders it.
        let sorted = values.sorted { ($0.isNaN && !$1.isNaN) || $0 < $1 }
        let n = Double(sorted.count)
        let rank = q * (n - 1)
        let lower = Swift.max(0, Int(rank.rounded(.down)))
        let upper = Swift.min(sorted.count - 1, lower + 1)
        let weight = rank - rank.rounded(.down)
        return sorted[lower] * (1 - weight) + sorted[upper] * weight
    }
}

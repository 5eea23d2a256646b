import Foundation

/// `sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`, `topk`, `bottomk`, `quantile` by/without.
enum Aggregation {
    static func apply(_ op: AggregateOperator, _ samples: [InstantSample], parameter: Double?, grouping: Grouping) throws -> [InstantSample] {
        var groups: [Labels: [InstantSample]] = [:]
        var order: [Labels] = []
        for sample in samples {
            let key = groupLabels(sample.labels, grouping)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(sample)
        }
        switch op.name {
        case "topk", "bottomk":
            // As Prometheus: a k that is no int64 is an error (an agent's `topk(1e300, x)` must not trap).
            let f = parameter ?? 0
            guard f >= -9.223372036854774784e18 && f <= 9.223372036854774784e18 else {
                throw EvaluationError("Scalar value \(PromQL.number(f)) overflows int64")
            }
            let k = Int(f)
            guard k >= 1 else { return [] }
            return order.flatMap { key -> [InstantSample] in
                let sorted = groups[key]!.sorted { op.name == "topk" ? greater($0.value, $1.value) : greater($1.value, $0.value) }
                return Array(sorted.prefix(k))
            }
        case "count_values":
            throw EvaluationError("count_values is not supported by the embedded evaluator")
        default:
            return try order.map { key in InstantSample(labels: key, value: try reduce(op, groups[key]!.map(\.value), parameter: parameter)) }
        }
    }

    /// The output labels of a sample's group: `by` keeps the named labels, `without` drops them and the name.
    static func groupLabels(_ labels: Labels, _ grouping: Grouping) -> Labels {
        grouping.without ? labels.removing(Set(grouping.labels + [Labels.metricName])) : labels.keeping(Set(grouping.labels))
    }

    /// NaN sorts below everything for topk (as Prometheus does).
    private static func greater(_ a: Double, _ b: Double) -> Bool { a > b || (b.isNaN && !a.isNaN) }

    static func reduce(_ op: AggregateOperator, _ values: [Double], parameter: Double?) throws -> Double {
        switch op.name {
        case "sum": return values.reduce(0, +)
        case "count": return Double(values.count)
        case "group": return 1
        case "min": return values.dropFirst().reduce(values[0]) { $0 > $1 || $0.isNaN ? $1 : $0 }
        case "max": return values.dropFirst().reduce(values[0]) { $0 < $1 || $0.isNaN ? $1 : $0 }
        case "avg": return incrementalMean(values)
        case "stddev", "stdvar":
            var count = 0.0, mean = 0.0, m2 = 0.0
            for v in values { count += 1; let delta = v - mean; mean += delta / count; m2 += delta * (v - mean) }
            return op.name == "stdvar" ? m2 / count : (m2 / count).squareRoot()
        case "quantile": return Functions.quantile(parameter ?? .nan, values)
        default: throw EvaluationError("aggregation \(op) is not supported by the embedded evaluator")
        }
    }

    /// Prometheus's running mean for `avg` (it avoids overflow on large sums).
    static func incrementalMean(_ values: [Double]) -> Double {
        var mean = 0.0, count = 0.0
        for v in values {
            count += 1
            if mean.isInfinite {
                if v.isInfinite && (mean > 0) == (v > 0) { continue }
                if !v.isInfinite && !v.isNaN { continue }
            }
            mean += v / count - mean / count
        }
        return mean
    }
}

import Foundation

/// The functions over a range vector's points (raw samples or rollups), as Prometheus 2.x computes them.
enum RangeFunctions {
    /// The functions a rollup point answers exactly for the samples it stands for (docs/promql.md,
    /// Long windows); the others (`irate`, `idelta`, `stddev_*`, `stdvar_*`, `quantile_*`) read samples.
    static let summarizable: Set<String> = ["rate", "increase", "delta", "sum_over_time", "count_over_time", "avg_over_time",
                                            "min_over_time", "max_over_time", "last_over_time", "present_over_time", "changes", "resets"]

    /// The function's value for one series, or nil when the series drops out (too few points).
    static func apply(_ name: String, _ points: [Point], start: Int64, end: Int64, parameter: Double) -> Double? {
        guard !points.isEmpty else { return nil }
        switch name {
        case "rate": return extrapolatedDelta(points, start: start, end: end, isCounter: true, isRate: true)
        case "increase": return extrapolatedDelta(points, start: start, end: end, isCounter: true, isRate: false)
        case "delta": return extrapolatedDelta(points, start: start, end: end, isCounter: false, isRate: false)
        case "irate", "idelta": return instantDelta(points, isRate: name == "irate")
        case "sum_over_time": return kahanSum(points.map(\.sum))
        case "count_over_time": return Double(points.reduce(0) { $0 + $1.count })
        case "avg_over_time": return average(points)
        case "min_over_time": return points.dropFirst().reduce(points[0].min) { $1.min < $0 || $0.isNaN ? $1.min : $0 }
        case "max_over_time": return points.dropFirst().reduce(points[0].max) { $1.max > $0 || $0.isNaN ? $1.max : $0 }
        case "last_over_time": return points.last!.value
        case "present_over_time", "absent_over_time": return 1
        case "stddev_over_time", "stdvar_over_time":
            let variance = kahanVariance(points.map(\.value))
            return name == "stdvar_over_time" ? variance : variance.squareRoot()
        case "quantile_over_time": return Functions.quantile(parameter, points.map(\.value))
        case "changes":
            var count = 0
            for (previous, point) in zip(points, points.dropFirst()) where point.first != previous.value && !(point.first.isNaN && previous.value.isNaN) {
                count += 1
            }
            return Double(points.reduce(count) { $0 + $1.changes })
        case "resets":
            let count = zip(points, points.dropFirst()).filter { previous, point in point.first < previous.value }.count
            return Double(points.reduce(count) { $0 + $1.resets })
        default: return nil
        }
    }

    /// Prometheus's extrapolatedRate (promql/functions.go, 2.x): the change over the window,
    /// counter resets added back, extrapolated to the window's edges by at most half an interval.
    static func extrapolatedDelta(_ points: [Point], start: Int64, end: Int64, isCounter: Bool, isRate: Bool) -> Double? {
        let samples = points.reduce(0) { $0 + $1.count }
        guard samples >= 2, let firstPoint = points.first, let last = points.last else { return nil }
        let first = Point(time: firstPoint.firstTime, value: firstPoint.first)
        guard last.time > first.time else { return nil }
        var result = last.value - first.value
        if isCounter {
            var previous = first.value
            for (index, point) in points.enumerated() {
                if index > 0 && point.first < previous { result += previous }
                if point.resets > 0 { result += point.resetSum }
                previous = point.value
            }
        }
        var durationToStart = Double(first.time - start) / 1000
        let durationToEnd = Double(end - last.time) / 1000
        let sampledInterval = Double(last.time - first.time) / 1000
        let averageInterval = sampledInterval / Double(samples - 1)
        if isCounter && result > 0 && first.value >= 0 {
            // A counter does not go below zero: do not extrapolate past where it would reach it.
            let durationToZero = sampledInterval * (first.value / result)
            if durationToZero < durationToStart { durationToStart = durationToZero }
        }
        let threshold = averageInterval * 1.1
        var extrapolateTo = sampledInterval
        extrapolateTo += durationToStart < threshold ? durationToStart : averageInterval / 2
        extrapolateTo += durationToEnd < threshold ? durationToEnd : averageInterval / 2
        var factor = extrapolateTo / sampledInterval
        if isRate { factor /= Double(end - start) / 1000 }
        return result * factor
    }

    /// irate/idelta: from the last two points.
    static func instantDelta(_ points: [Point], isRate: Bool) -> Double? {
        guard points.count >= 2 else { return nil }
        let last = points[points.count - 1], previous = points[points.count - 2]
        var result = last.value - previous.value
        if isRate && last.value < previous.value { result = last.value }
        let interval = last.time - previous.time
        guard interval != 0 else { return nil }
        if isRate { result /= Double(interval) / 1000 }
        return result
    }

    /// avg_over_time: Prometheus's running mean with Kahan compensation over raw samples;
    /// sum/count where rollups stand in for samples.
    static func average(_ points: [Point]) -> Double {
        if points.contains(where: { $0.count != 1 }) {
            return kahanSum(points.map(\.sum)) / Double(points.reduce(0) { $0 + $1.count })
        }
        var mean = 0.0, compensation = 0.0, count = 0.0
        for v in points.map(\.value) {
            count += 1
            if mean.isInfinite {
                if v.isInfinite && (mean > 0) == (v > 0) { continue }
                if !v.isInfinite && !v.isNaN { continue }
            }
            (mean, compensation) = kahanStep(v / count - mean / count, mean, compensation)
        }
        return mean.isInfinite ? mean : mean + compensation
    }

    /// stdvar_over_time: Welford's update with Kahan compensation, as Prometheus.
    static func kahanVariance(_ values: [Double]) -> Double {
        var count = 0.0, mean = 0.0, cMean = 0.0, aux = 0.0, cAux = 0.0
        for v in values {
            count += 1
            let delta = v - (mean + cMean)
            (mean, cMean) = kahanStep(delta / count, mean, cMean)
            (aux, cAux) = kahanStep(delta * (v - (mean + cMean)), aux, cAux)
        }
        return (aux + cAux) / count
    }

    /// One Kahan–Babuška–Neumaier step (Prometheus's kahanSumInc).
    static func kahanStep(_ increment: Double, _ sum: Double, _ compensation: Double) -> (Double, Double) {
        let t = sum + increment
        let c = Swift.abs(sum) >= Swift.abs(increment) ? compensation + ((sum - t) + increment) : compensation + ((increment - t) + sum)
        return (t, c)
    }

    /// Kahan–Babuška–Neumaier summation, as Prometheus's sum_over_time and avg_over_time.
    static func kahanSum(_ values: [Double]) -> Double {
        var sum = 0.0, compensation = 0.0
        for v in values { (sum, compensation) = kahanStep(v, sum, compensation) }
        return sum.isInfinite ? sum : sum + compensation
    }
}

/// `histogram_quantile` over classic `_bucket` series (Prometheus's bucketQuantile).
enum Histogram {
    static func quantiles(_ q: Double, _ samples: [InstantSample]) throws -> [InstantSample] {
        var groups: [Labels: [(upper: Double, count: Double)]] = [:]
        var order: [Labels] = []
        for sample in samples {
            guard let le = sample.labels.pairs["le"], let upper = LineReader.parseFloat(le) else { continue }
            let key = sample.labels.droppingName().removing(["le"])
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append((upper, sample.value))
        }
        return order.map { InstantSample(labels: $0, value: bucketQuantile(q, groups[$0]!)) }
    }

    static func bucketQuantile(_ q: Double, _ unsorted: [(upper: Double, count: Double)]) -> Double {
        if q.isNaN { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        var buckets = unsorted.sorted { $0.upper < $1.upper }
        guard let top = buckets.last, top.upper == .infinity else { return .nan }
        buckets = coalesce(buckets)
        for i in buckets.indices.dropFirst() where buckets[i].count < buckets[i - 1].count { buckets[i].count = buckets[i - 1].count }
        guard buckets.count >= 2 else { return .nan }
        let observations = buckets[buckets.count - 1].count
        guard observations != 0 else { return .nan }
        var rank = q * observations
        let b = buckets.indices.dropLast().first { buckets[$0].count >= rank } ?? buckets.count - 1
        if b == buckets.count - 1 { return buckets[buckets.count - 2].upper }
        if b == 0 && buckets[0].upper <= 0 { return buckets[0].upper }
        var bucketStart = 0.0
        let bucketEnd = buckets[b].upper
        var count = buckets[b].count
        if b > 0 {
            bucketStart = buckets[b - 1].upper
            count -= buckets[b - 1].count
            rank -= buckets[b - 1].count
        }
        return bucketStart + (bucketEnd - bucketStart) * (rank / count)
    }

    /// Buckets with the same bound (e.g. `le="1"` and `le="1.0"`) summed.
    private static func coalesce(_ buckets: [(upper: Double, count: Double)]) -> [(upper: Double, count: Double)] {
        var out: [(upper: Double, count: Double)] = []
        for bucket in buckets {
            if let last = out.last, last.upper == bucket.upper { out[out.count - 1].count += bucket.count } else { out.append(bucket) }
        }
        return out
    }
}

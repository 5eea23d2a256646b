import Foundation
import GRDB
import RatchetMetrics
import RatchetStore

/// Which rows answer a window `start...end` of one series (docs/metrics.md, Reading a window).
///
/// Inside the raw retention, a range function that rollups answer exactly (`summaries`) reads
/// whole rollup buckets for the middle of a long window — 1-hour buckets, then 5-minute ones —
/// and raw samples only for the partial buckets at its edges: exact, and about 60 rows for a day
/// instead of 5,760. Beyond the raw retention only rollups are left, finest tier first; a bucket
/// the window cuts through there is an `edge`.
enum ReadPlan {
    enum Segment: Equatable {
        /// Raw samples in `from...to`.
        case raw(from: Int64, to: Int64)
        /// Whole buckets of `step` ms starting in `from...to`: each stands exactly for its samples.
        case buckets(step: Int64, from: Int64, to: Int64)
        /// The bucket of `step` at `bucket`, of which the window `start...end` holds a part and
        /// whose samples are gone: it counts when its last sample is in the window, and `rate`
        /// and `increase` see that sample only (an approximation).
        case edge(step: Int64, bucket: Int64, start: Int64, end: Int64)
    }

    /// A tier answers inside the raw retention only for windows of at least this many of its buckets.
    static let bucketsPerWindow: Int64 = 6

    /// The segments, oldest first, that answer `start...end` at `now`.
    static func segments(start: Int64, end: Int64, now: Int64, summaries: Bool) -> [Segment] {
        guard start <= end else { return [] }
        let steps = MetricStore.tiers.map(\.step)
        let rawStart = MetricStore.rawHorizon(now)
        var out: [Segment] = []
        // Beyond the raw retention: each tier serves from its horizon, coarser tiers the middle.
        var upper = min(end, rawStart - 1)
        var regions: [Segment] = []
        for (index, tier) in MetricStore.tiers.enumerated() where start <= upper {
            let lower = max(start, MetricStore.horizon(now, tier))
            let served = Array(steps[index...].reversed())
            regions = decompose(lower, upper, served[...]) { edges($0, $1, step: tier.step) } + regions
            upper = min(upper, lower - 1)
        }
        out += regions
        if end >= rawStart {
            let lower = max(start, rawStart)
            let served = summaries ? steps.reversed().filter { end - start >= bucketsPerWindow * $0 } : []
            out += decompose(lower, end, served[...]) { [.raw(from: $0, to: $1)] }
        }
        return out
    }

    /// `lower...upper` as whole buckets of the coarsest step that fits, the rest by finer steps,
    /// and what no step covers whole by `bottom`.
    static func decompose(_ lower: Int64, _ upper: Int64, _ steps: ArraySlice<Int64>,
                          _ bottom: (Int64, Int64) -> [Segment]) -> [Segment] {
        guard lower <= upper else { return [] }
        guard let step = steps.first else { return bottom(lower, upper) }
        let first = MetricStore.bucket(lower + step - 1, step), last = MetricStore.bucket(upper + 1, step) - step
        guard first <= last else { return decompose(lower, upper, steps.dropFirst(), bottom) }
        return decompose(lower, first - 1, steps.dropFirst(), bottom) + [.buckets(step: step, from: first, to: last)]
            + decompose(last + step, upper, steps.dropFirst(), bottom)
    }

    /// The buckets of `step` that `lower...upper` cuts through (at most two).
    private static func edges(_ lower: Int64, _ upper: Int64, step: Int64) -> [Segment] {
        stride(from: MetricStore.bucket(lower, step), through: upper, by: Int64.Stride(step)).map { Segment.edge(step: step, bucket: $0, start: lower, end: upper) }
    }
}

/// The store as a `SampleSource` for one service: raw samples where they are kept, rollups
/// where they stand for them (`ReadPlan`).
struct StoreSource: SampleSource {
    let database: RatchetDatabase
    let service: String
    /// The time retention is reckoned from (the query's wall clock).
    var now = Workspace.milliseconds(Date())
    /// false: inside the raw retention, read raw samples even where rollups would do (tests compare both).
    var useRollups = true

    func select(_ matchers: [LabelMatcher], start: Int64, end: Int64) throws -> [SeriesPoints] {
        try select(matchers, start: start, end: end, summaries: false)
    }

    func select(_ matchers: [LabelMatcher], start: Int64, end: Int64, summaries: Bool) throws -> [SeriesPoints] {
        let plan = ReadPlan.segments(start: start, end: end, now: now, summaries: summaries && useRollups)
        return try database.read { db in
            try series(db, matchers).compactMap { id, labels in
                let found = try plan.flatMap { try points(db, series: id, $0) }
                return found.isEmpty ? nil : SeriesPoints(labels: labels, points: found)
            }
        }
    }

    /// The service's series that satisfy `matchers` (the name's equality matcher narrows the read).
    private func series(_ db: Database, _ matchers: [LabelMatcher]) throws -> [(Int64, Labels)] {
        let rows: [Row]
        if let name = matchers.first(where: { $0.name == Labels.metricName && $0.kind == .equal }) {
            rows = try Row.fetchAll(db, sql: "SELECT id, labels FROM metricSeries WHERE service = ? AND name = ?", arguments: [service, name.value])
        } else {
            rows = try Row.fetchAll(db, sql: "SELECT id, labels FROM metricSeries WHERE service = ?", arguments: [service])
        }
        return rows.compactMap { row in
            let labels = MetricStore.labels(fromCanonical: row["labels"])
            return matchers.matches(labels) ? (row["id"], labels) : nil
        }
    }

    /// The points of one segment. Buckets inside the raw retention whose first sample is not known
    /// (written before migration `v11-metrics`, or merged out of order) are read as raw samples.
    private func points(_ db: Database, series: Int64, _ segment: ReadPlan.Segment) throws -> [Point] {
        switch segment {
        case .raw(let from, let to):
            return try rawPoints(db, series: series, from: from, to: to)
        case .buckets(let step, let from, let to):
            let rollups = try rollupPoints(db, series: series, step: step, from: from, to: to)
            if from >= MetricStore.rawHorizon(now) && rollups.contains(where: { $0.known == false }) {
                return try rawPoints(db, series: series, from: from, to: to + step - 1)
            }
            return rollups.map(\.point)
        case .edge(let step, let bucket, let start, let end):
            return try rollupPoints(db, series: series, step: step, from: bucket, to: bucket).compactMap { rollup in
                guard rollup.point.time >= start && rollup.point.time <= end else { return nil }
                guard !rollup.known || rollup.point.firstTime < start else { return rollup.point }
                let p = rollup.point
                return Point(time: p.time, value: p.value, count: p.count, sum: p.sum, min: p.min, max: p.max)
            }
        }
    }

    private func rawPoints(_ db: Database, series: Int64, from: Int64, to: Int64) throws -> [Point] {
        try SampleChunk.read(db, series: series, from: from, to: to).map { Point(time: $0.time, value: $0.value) }
    }

    /// Rollups of `step` with bucket starts in `from...to`; `known` when their first sample is.
    private func rollupPoints(_ db: Database, series: Int64, step: Int64, from: Int64, to: Int64) throws -> [(point: Point, known: Bool)] {
        let rows = try Row.fetchCursor(db.cachedStatement(sql: """
            SELECT time, last, samples, total, minimum, maximum, firstTime, firstValue, resets, resetSum, changes FROM metricRollup
            WHERE seriesId = ? AND step = ? AND bucket BETWEEN ? AND ? ORDER BY bucket
            """), arguments: [series, step, from, to])
        var out: [(point: Point, known: Bool)] = []
        while let row = try rows.next() {
            let firstTime = row[6] as Int64?
            out.append((Point(time: row[0], value: (row[1] as Double?) ?? .nan, count: row[2], sum: (row[3] as Double?) ?? .nan,
                              min: (row[4] as Double?) ?? .nan, max: (row[5] as Double?) ?? .nan, firstTime: firstTime,
                              first: (row[7] as Double?) ?? .nan, resets: (row[8] as Int?) ?? 0, resetSum: (row[9] as Double?) ?? .nan,
                              changes: (row[10] as Int?) ?? 0), firstTime != nil))
        }
        return out
    }
}

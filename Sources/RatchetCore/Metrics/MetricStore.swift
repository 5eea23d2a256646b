import Foundation
import GRDB
import RatchetMetrics
import RatchetStore

/// The embedded time-series store: raw samples for `rawRetention`, 5-minute rollups for
/// `rollupRetention` (docs/metrics.md has the numbers). All writes go through `append`,
/// inside the caller's transaction, so samples and their event commit together.
public enum MetricStore {
    /// Width of one rollup bucket, milliseconds.
    public static let rollupStep: Int64 = 5 * 60_000
    /// How long raw samples are kept behind the newest write.
    public static let rawRetention: Int64 = 2 * 86_400_000
    /// How long rollups are kept (SLO windows reach 30 days; 5 days of margin).
    public static let rollupRetention: Int64 = 35 * 86_400_000

    /// What one append stored.
    public struct AppendResult: Sendable, Equatable {
        /// Samples written (a sample already stored at the same time is not written again).
        public var stored = 0
        /// Samples already present.
        public var duplicates = 0
        /// Samples older than the raw retention (rolled up only).
        public var rolledUpOnly = 0
        /// New series.
        public var newSeries = 0
    }

    /// Appends samples of `service` (each at its time) and updates the rollups. Samples older
    /// than the raw retention go into rollups only.
    static func append(_ db: Database, service: String, samples: [(labels: Labels, sample: Sample)], now: Int64) throws -> AppendResult {
        var result = AppendResult()
        var ids: [Labels: Int64] = [:]
        var rollups: [RollupKey: Point] = [:]
        let horizon = rawHorizon(now)
        let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO metricSample (seriesId, time, value) VALUES (?, ?, ?)")
        for (labels, sample) in samples {
            let id = try ids[labels] ?? seriesID(db, service: service, labels: labels, created: &result.newSeries)
            ids[labels] = id
            if sample.time >= horizon {
                try insert.execute(arguments: [id, sample.time, sample.value.isNaN ? nil : sample.value])
                guard db.changesCount > 0 else { result.duplicates += 1; continue }
                result.stored += 1
            } else {
                result.rolledUpOnly += 1
            }
            merge(&rollups[RollupKey(series: id, bucket: bucket(sample.time)), default: Point(time: sample.time, value: .nan, count: 0, sum: 0, min: .nan, max: .nan)], sample)
        }
        try writeRollups(db, rollups)
        return result
    }

    struct RollupKey: Hashable { var series: Int64; var bucket: Int64 }

    /// The start of the rollup bucket holding `time`.
    static func bucket(_ time: Int64) -> Int64 { time - ((time % rollupStep) + rollupStep) % rollupStep }

    /// Raw samples before this time are deleted (aligned to a bucket, so a bucket is either raw or rolled up).
    static func rawHorizon(_ now: Int64) -> Int64 { bucket(now - rawRetention) }

    /// Adds a sample to a rollup point (NaN is kept out of min and max, as min_over_time does).
    static func merge(_ point: inout Point, _ sample: Sample) {
        if point.count == 0 || sample.time >= point.time { point.time = sample.time; point.value = sample.value }
        point.count += 1
        point.sum += sample.value
        if !sample.value.isNaN {
            point.min = point.min.isNaN ? sample.value : Swift.min(point.min, sample.value)
            point.max = point.max.isNaN ? sample.value : Swift.max(point.max, sample.value)
        }
    }

    private static func writeRollups(_ db: Database, _ rollups: [RollupKey: Point]) throws {
        let upsert = try db.cachedStatement(sql: """
            INSERT INTO metricRollup (seriesId, bucket, time, last, samples, total, minimum, maximum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (seriesId, bucket) DO UPDATE SET
              last = CASE WHEN excluded.time >= time THEN excluded.last ELSE last END,
              time = max(time, excluded.time),
              samples = samples + excluded.samples,
              total = total + excluded.total,
              minimum = CASE WHEN minimum IS NULL THEN excluded.minimum WHEN excluded.minimum IS NULL THEN minimum ELSE min(minimum, excluded.minimum) END,
              maximum = CASE WHEN maximum IS NULL THEN excluded.maximum WHEN excluded.maximum IS NULL THEN maximum ELSE max(maximum, excluded.maximum) END
            """)
        for (key, point) in rollups {
            try upsert.execute(arguments: [key.series, key.bucket, point.time, nullable(point.value), point.count,
                                           nullable(point.sum), nullable(point.min), nullable(point.max)])
        }
    }

    private static func nullable(_ value: Double) -> Double? { value.isNaN ? nil : value }

    /// The id of a series, created when new.
    private static func seriesID(_ db: Database, service: String, labels: Labels, created: inout Int) throws -> Int64 {
        let key = canonical(labels)
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM metricSeries WHERE service = ? AND labels = ?", arguments: [service, key]) {
            return id
        }
        try db.execute(sql: "INSERT INTO metricSeries (service, name, labels) VALUES (?, ?, ?)", arguments: [service, labels.name ?? "", key])
        created += 1
        return db.lastInsertedRowID
    }

    /// The label set as JSON with sorted keys: one spelling per series.
    static func canonical(_ labels: Labels) -> String {
        "{" + labels.sorted.map { "\(jsonString($0.name)):\(jsonString($0.value))" }.joined(separator: ",") + "}"
    }

    private static func jsonString(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self).dropFirst().dropLast().description
    }

    static func labels(fromCanonical text: String) -> Labels {
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String]
        return Labels(object ?? [:])
    }

    /// Deletes raw samples behind the raw retention and rollups behind the rollup retention.
    static func applyRetention(_ db: Database, service: String, now: Int64) throws -> (raw: Int, rollups: Int) {
        try db.execute(sql: """
            DELETE FROM metricSample WHERE seriesId IN (SELECT id FROM metricSeries WHERE service = ?) AND time < ?
            """, arguments: [service, rawHorizon(now)])
        let raw = db.changesCount
        try db.execute(sql: """
            DELETE FROM metricRollup WHERE seriesId IN (SELECT id FROM metricSeries WHERE service = ?) AND bucket < ?
            """, arguments: [service, bucket(now - rollupRetention)])
        return (raw, db.changesCount)
    }
}

/// The store as a `SampleSource` for one service: raw samples where they are kept, rollups before them.
struct StoreSource: SampleSource {
    let database: RatchetDatabase
    let service: String

    func select(_ matchers: [LabelMatcher], start: Int64, end: Int64) throws -> [SeriesPoints] {
        try database.read { db in
            try series(db, matchers).compactMap { id, labels in
                let points = try points(db, series: id, start: start, end: end)
                return points.isEmpty ? nil : SeriesPoints(labels: labels, points: points)
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

    /// Rollups before the first raw sample in the window, then the raw samples.
    private func points(_ db: Database, series: Int64, start: Int64, end: Int64) throws -> [Point] {
        let raw = try Row.fetchAll(db, sql: "SELECT time, value FROM metricSample WHERE seriesId = ? AND time BETWEEN ? AND ? ORDER BY time",
                                   arguments: [series, start, end]).map { row in
            Point(time: row["time"], value: (row["value"] as Double?) ?? .nan)
        }
        let rollupEnd = raw.first.map { $0.time - 1 } ?? end
        let rollups = try Row.fetchAll(db, sql: """
            SELECT time, last, samples, total, minimum, maximum FROM metricRollup
            WHERE seriesId = ? AND bucket BETWEEN ? AND ? AND time BETWEEN ? AND ? ORDER BY bucket
            """, arguments: [series, MetricStore.bucket(start), rollupEnd, start, rollupEnd]).map { row in
            Point(time: row["time"], value: (row["last"] as Double?) ?? .nan, count: row["samples"],
                  sum: (row["total"] as Double?) ?? .nan, min: (row["minimum"] as Double?) ?? .nan, max: (row["maximum"] as Double?) ?? .nan)
        }
        return rollups + raw
    }
}

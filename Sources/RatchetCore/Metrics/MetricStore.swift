import Foundation
import GRDB
import RatchetMetrics
import RatchetStore

/// The embedded time-series store: raw samples for `rawRetention`, then rollup tiers (5-minute
/// for 7 days, 1-hour for 35 days; docs/metrics.md has the numbers). All writes go through
/// `append`, inside the caller's transaction, so samples and their event commit together.
public enum MetricStore {
    /// A rollup resolution and how long it is kept.
    public struct Tier: Sendable, Equatable {
        /// Bucket width, milliseconds.
        public var step: Int64
        /// How long the tier is kept behind now, milliseconds.
        public var retention: Int64
    }

    /// How long raw samples are kept behind now (2 days: every window up to 1 day is raw).
    public static let rawRetention: Int64 = 2 * 86_400_000
    /// Rollup tiers, finest first: 5 minutes for 7 days (burn-rate windows up to 3 days),
    /// 1 hour for 35 days (30-day SLO windows with 5 days of margin).
    public static let tiers = [Tier(step: 5 * 60_000, retention: 7 * 86_400_000), Tier(step: 3_600_000, retention: 35 * 86_400_000)]
    /// The finest rollup step.
    public static var rollupStep: Int64 { tiers[0].step }
    /// How long the coarsest rollups are kept.
    public static var rollupRetention: Int64 { tiers[tiers.count - 1].retention }

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
    /// than the raw retention go into rollups only, and only into buckets that hold nothing yet:
    /// without their raw rows a repeated import could not tell them from samples rolled up before.
    /// `progress(done)` is called every 50,000 samples.
    static func append(_ db: Database, service: String, samples: [(labels: Labels, sample: Sample)], now: Int64,
                       progress: ((Int) -> Void)? = nil) throws -> AppendResult {
        var result = AppendResult()
        var ids: [Labels: Int64] = [:]
        var fresh: [RollupKey: Rollup] = [:], old: [RollupKey: Rollup] = [:]
        var chunks: [ChunkKey: OpenChunk] = [:]
        let rawStart = rawHorizon(now)
        for (index, (labels, sample)) in samples.enumerated() {
            if index % 50_000 == 0 && index > 0 { progress?(index) }
            let id = try ids[labels] ?? seriesID(db, service: service, labels: labels, created: &result.newSeries)
            ids[labels] = id
            let isRaw = sample.time >= rawStart
            if isRaw {
                let key = ChunkKey(series: id, start: SampleChunk.start(of: sample.time))
                if chunks[key] == nil { chunks[key] = try OpenChunk(db, key) }
                guard chunks[key]!.add(sample) else { result.duplicates += 1; continue }
                result.stored += 1
            } else {
                result.rolledUpOnly += 1
            }
            for tier in tiers where sample.time >= horizon(now, tier) {
                let key = RollupKey(series: id, step: tier.step, bucket: bucket(sample.time, tier.step))
                if isRaw { merge(&fresh[key, default: .empty], sample) } else { merge(&old[key, default: .empty], sample) }
            }
        }
        for (key, chunk) in chunks where chunk.isChanged { try SampleChunk.write(db, series: key.series, start: key.start, chunk.sorted) }
        try writeRollups(db, old, onlyNew: true)
        try writeRollups(db, fresh, onlyNew: false)
        return result
    }

    struct RollupKey: Hashable { var series: Int64; var step: Int64; var bucket: Int64 }
    struct ChunkKey: Hashable { var series: Int64; var start: Int64 }

    /// A stored chunk being extended: a sample already present (same series, same millisecond)
    /// is a duplicate and keeps the stored value, as `INSERT OR IGNORE` of a row per sample did.
    struct OpenChunk {
        private var samples: SampleChunk.Samples
        private var times: Set<Int64>
        private(set) var isChanged = false
        private var isOrdered = true

        init(_ db: Database, _ key: ChunkKey) throws {
            samples = try SampleChunk.read(db, series: key.series, from: key.start, to: key.start + SampleChunk.span - 1)
            times = Set(samples.map(\.time))
        }

        /// Adds `sample` unless its time is taken; whether it was added.
        mutating func add(_ sample: Sample) -> Bool {
            guard times.insert(sample.time).inserted else { return false }
            if let last = samples.last, last.time > sample.time { isOrdered = false }
            samples.append((sample.time, sample.value))
            isChanged = true
            return true
        }

        var sorted: SampleChunk.Samples { isOrdered ? samples : samples.sorted { $0.time < $1.time } }
    }

    /// The start of the `step` bucket holding `time`.
    static func bucket(_ time: Int64, _ step: Int64) -> Int64 { time - ((time % step) + step) % step }

    /// Raw samples before this time are deleted. It is aligned to the chunk span (1 hour, a
    /// multiple of every rollup step), and each tier's horizon to the next tier's step, so that
    /// neither a chunk nor a bucket is ever half pruned.
    static func rawHorizon(_ now: Int64) -> Int64 { bucket(now - rawRetention, SampleChunk.span) }

    /// Rollups of `tier` before this time are deleted.
    static func horizon(_ now: Int64, _ tier: Tier) -> Int64 {
        let index = tiers.firstIndex(of: tier)!
        return bucket(now - tier.retention, index + 1 < tiers.count ? tiers[index + 1].step : tier.step)
    }

    /// A rollup being accumulated: its point, and whether its samples came in time order (only
    /// then are its first sample, resets and changes known).
    struct Rollup {
        var point = Point(time: 0, value: .nan, count: 0, sum: 0, min: .nan, max: .nan)
        var ordered = true
        static let empty = Rollup()
    }

    /// Adds a sample to a rollup (NaN is kept out of min and max, as min_over_time does).
    /// A sample after the last one extends the first/last/resets/changes summary as `resets()`,
    /// `rate()` and `changes()` would walk it; any other order leaves them unknown.
    static func merge(_ rollup: inout Rollup, _ sample: Sample) {
        var point = rollup.point
        defer { rollup.point = point }
        guard point.count > 0 else { point = Point(time: sample.time, value: sample.value); return }
        if sample.time > point.time {
            if sample.value < point.value { point.resets += 1; point.resetSum += point.value }
            if sample.value != point.value && !(sample.value.isNaN && point.value.isNaN) { point.changes += 1 }
            point.time = sample.time
            point.value = sample.value
        } else {
            rollup.ordered = false
            if sample.time == point.time { point.value = sample.value }
        }
        point.count += 1
        point.sum += sample.value
        if !sample.value.isNaN {
            point.min = point.min.isNaN ? sample.value : Swift.min(point.min, sample.value)
            point.max = point.max.isNaN ? sample.value : Swift.max(point.max, sample.value)
        }
    }

    /// Writes rollups: merged into existing buckets, or (`onlyNew`) only where no bucket exists.
    /// Samples merged after a bucket's last one keep its summary exact (SQLite's SET reads the
    /// row as it was); samples that land before it make the bucket's first sample unknown.
    private static func writeRollups(_ db: Database, _ rollups: [RollupKey: Rollup], onlyNew: Bool) throws {
        let upsert = try db.cachedStatement(sql: onlyNew ? """
            INSERT OR IGNORE INTO metricRollup (seriesId, step, bucket, time, last, samples, total, minimum, maximum,
                                                firstTime, firstValue, resets, resetSum, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """ : """
            INSERT INTO metricRollup (seriesId, step, bucket, time, last, samples, total, minimum, maximum,
                                      firstTime, firstValue, resets, resetSum, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (seriesId, step, bucket) DO UPDATE SET
              last = CASE WHEN excluded.time >= time THEN excluded.last ELSE last END,
              time = max(time, excluded.time),
              samples = samples + excluded.samples,
              total = total + excluded.total,
              minimum = CASE WHEN minimum IS NULL THEN excluded.minimum WHEN excluded.minimum IS NULL THEN minimum ELSE min(minimum, excluded.minimum) END,
              maximum = CASE WHEN maximum IS NULL THEN excluded.maximum WHEN excluded.maximum IS NULL THEN maximum ELSE max(maximum, excluded.maximum) END,
              firstTime = CASE WHEN excluded.firstTime > time THEN firstTime END,
              resets = resets + excluded.resets + coalesce(excluded.firstValue < last, 0),
              resetSum = resetSum + excluded.resetSum + CASE WHEN excluded.firstValue < last THEN last ELSE 0 END,
              changes = changes + excluded.changes + (excluded.firstValue IS NOT last)
            """)
        for (key, rollup) in rollups {
            let point = rollup.point
            try upsert.execute(arguments: [key.series, key.step, key.bucket, point.time, nullable(point.value), point.count,
                                           nullable(point.sum), nullable(point.min), nullable(point.max),
                                           rollup.ordered ? point.firstTime : nil, nullable(point.first), point.resets,
                                           nullable(point.resetSum), point.changes])
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

    /// Deletes raw samples behind the raw retention and each tier's rollups behind its retention.
    static func applyRetention(_ db: Database, service: String, now: Int64) throws -> (raw: Int, rollups: Int) {
        let expired = "FROM metricChunk WHERE seriesId IN (SELECT id FROM metricSeries WHERE service = ?) AND start < ?"
        let raw = try Int.fetchOne(db, sql: "SELECT coalesce(sum(samples), 0) " + expired, arguments: [service, rawHorizon(now)]) ?? 0
        try db.execute(sql: "DELETE " + expired, arguments: [service, rawHorizon(now)])
        var rollups = 0
        for tier in tiers {
            try db.execute(sql: """
                DELETE FROM metricRollup WHERE seriesId IN (SELECT id FROM metricSeries WHERE service = ?) AND step = ? AND bucket < ?
                """, arguments: [service, tier.step, horizon(now, tier)])
            rollups += db.changesCount
        }
        return (raw, rollups)
    }
}

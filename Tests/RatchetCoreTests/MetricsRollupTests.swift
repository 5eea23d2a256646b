import Foundation
@testable import RatchetCore
import RatchetMetrics
import RatchetTestSupport
import Testing

/// Long windows read whole rollup buckets (ReadPlan): inside the raw retention they must give
/// what the raw samples give, for every function rollups answer (adr/0044).
@Suite("Metrics rollups stand for their samples")
struct MetricsRollupTests {
    static let functions = ["rate", "increase", "delta", "changes", "resets", "sum_over_time", "count_over_time",
                            "avg_over_time", "min_over_time", "max_over_time", "last_over_time"]
    static let windows = ["31m", "1h", "2h", "7h", "1d", "27h"]

    @Test func rollupsAndRawSamplesGiveTheSameAnswersInsideTheRawRetention() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let now = Workspace.milliseconds(Date())
        let data = RollupDataSet(end: now - 60_000)
        // Three imports: two halves split inside a bucket (the second merges into buckets the
        // first wrote, one of them out of order), then the last samples, as scrapes would add them.
        for (index, part) in data.parts.enumerated() {
            try Data(part.utf8).write(to: URL(fileURLWithPath: folder("part\(index).prom")))
            let report = try workspace.importMetrics(service: "svc", file: folder("part\(index).prom"))
            #expect(report.rolledUpOnly == 0 && report.duplicates == 0)
        }
        let unknown = try workspace.database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM metricRollup WHERE firstTime IS NULL") ?? 0 }
        #expect(unknown == 2, "the out-of-order sample leaves its 5-minute and 1-hour buckets without a known first sample")

        let rollups = Evaluator(source: StoreSource(database: workspace.database, service: "svc", now: now))
        let raw = Evaluator(source: StoreSource(database: workspace.database, service: "svc", now: now, useRollups: false))
        var compared = 0
        for time in [now - 60_000, now - 3 * 3_600_000 + 12_345, now - 5 * 3_600_000 - 777] {
            for function in Self.functions {
                for window in Self.windows {
                    for metric in ["c_total", "g"] {
                        let expression = "\(function)(\(metric)[\(window)])"
                        let a = try Self.values(rollups.query(expression, at: time)), b = try Self.values(raw.query(expression, at: time))
                        #expect(Set(a.keys) == Set(b.keys) && !a.isEmpty, "\(expression) @\(time)")
                        for (labels, x) in a {
                            let y = b[labels] ?? -1
                            #expect(x == y || (x.isNaN && y.isNaN) || abs(x - y) <= 1e-9 * max(abs(x), abs(y)), "\(expression) @\(time) \(labels): \(x) vs \(y)")
                        }
                        compared += 1
                    }
                }
            }
        }
        #expect(compared == 3 * Self.functions.count * Self.windows.count * 2)
    }

    @Test func longWindowsReadBucketsAndShortOnesRawSamples() {
        let now: Int64 = 1_764_000_000_000 + 123_456
        let day = ReadPlan.segments(start: now - 86_400_000, end: now, now: now, summaries: true)
        #expect(day.contains { if case .buckets(3_600_000, _, _) = $0 { return true } else { return false } })
        #expect(day.contains { if case .buckets(300_000, _, _) = $0 { return true } else { return false } })
        // The segments cover the window once, in order.
        var next = now - 86_400_000
        for segment in day {
            switch segment {
            case .raw(let from, let to): #expect(from == next); next = to + 1
            case .buckets(let step, let from, let to): #expect(from == next); next = to + step
            case .edge: Issue.record("no edge inside the raw retention")
            }
        }
        #expect(next == now + 1)
        #expect(ReadPlan.segments(start: now - 300_000, end: now, now: now, summaries: true) == [.raw(from: now - 300_000, to: now)])
        #expect(ReadPlan.segments(start: now - 86_400_000, end: now, now: now, summaries: false) == [.raw(from: now - 86_400_000, to: now)])
        // Thirty days: 1-hour buckets, 5-minute ones from their horizon, raw samples last; the first bucket is an edge.
        let month = ReadPlan.segments(start: now - 30 * 86_400_000, end: now, now: now, summaries: false)
        guard case .edge(3_600_000, _, _, _) = month.first, case .raw = month.last else { Issue.record("\(month)"); return }
    }

    static func values(_ value: QueryValue) -> [String: Double] {
        guard case .vector(let samples) = value else { return [:] }
        return Dictionary(uniqueKeysWithValues: samples.map { ($0.labels.description, $0.value) })
    }
}

/// 28 hours of a counter with resets and a NaN and of a gauge with repeats, NaN and +Inf, every
/// 15 s with jitter, in text format with millisecond timestamps, cut into three imports.
struct RollupDataSet {
    var parts: [String] = []

    init(end: Int64) {
        var random = SplitMix(state: 20261202)
        let start = end - 28 * 3_600_000
        let steps = Int((end - start) / 15_000)
        var lines: [(time: Int64, line: String)] = []
        var counter = [100.0, 5.0]
        for step in 0..<steps {
            let time = start + Int64(step) * 15_000 + Int64(random.next() % 8) * 125
            for (index, instance) in ["a", "b"].enumerated() {
                counter[index] += Double(random.next() % 50) / 4
                if random.next() % 700 == 0 { counter[index] = Double(random.next() % 10) }   // a restart
                let c = index == 1 && step == steps / 3 ? "NaN" : "\(counter[index])"
                let draw = random.next() % 100
                let g = draw == 0 ? "NaN" : draw == 1 ? "+Inf" : draw < 40 ? "7" : "\(Double(random.next() % 10_000) / 8)"
                lines.append((time, "c_total{instance=\"\(instance)\"} \(c) \(time)"))
                lines.append((time, "g{instance=\"\(instance)\"} \(g) \(time)"))
            }
        }
        // Split inside a 5-minute bucket; one sample from the middle of an earlier bucket moves to
        // the second half, so it arrives after the samples that follow it (out of order).
        let split = start + 11 * 3_600_000 + 137_000
        let middle = MetricStore.bucket(split - 600_000, 300_000) + 150_000
        let late = lines.firstIndex { $0.time >= middle && $0.line.hasPrefix("c_total{instance=\"a\"}") }!
        let lateLine = lines.remove(at: late)
        let tail = lines.count - 4
        parts = [lines[..<tail].filter { $0.time < split }.map(\.line),
                 [lateLine.line] + lines[..<tail].filter { $0.time >= split }.map(\.line),
                 lines[tail...].map(\.line)].map { $0.joined(separator: "\n") + "\n" }
    }
}

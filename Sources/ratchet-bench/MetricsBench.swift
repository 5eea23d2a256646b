import Foundation
import RatchetCore
import RatchetMetrics
import RatchetStore

/// Issue 14's metrics figures, side by side with Prometheus 2.42 where it does the same work:
/// parsing a 100,000-sample exposition (promtool check metrics), backfilling a week of one
/// service's 100 series at 15 s (promtool tsdb create-blocks-from openmetrics), the store's
/// size, and evaluating invariant and SLO expressions over that week (Prometheus's HTTP API).
enum MetricsBench {
    static let expressions = [
        "up == 0",
        #"sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.01"#,
        "histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[5m]))) > 0.5",
        "max_over_time(memory_bytes[1h]) > 9e8",
    ] + ["1h", "5m", "6h", "30m", "1d", "2h", "3d", "7d"].map {
        #"sum(rate(http_requests_total{code=~"5.."}[\#($0)])) / sum(rate(http_requests_total[\#($0)]))"#
    }

    static func measure(quick: Bool, runs: Int, scratch: String) throws {
        let parse = try parseFigures(runs: runs, scratch: scratch)
        let days = quick ? 1 : 7
        let week = try weekFigures(days: days, runs: quick ? 3 : runs, scratch: scratch)
        print("")
        print("figure                                   Ratchet median / p90 ms   Prometheus median / p90 ms")
        for (name, ours, theirs) in parse + week {
            print(name.padding(toLength: 41, withPad: " ", startingAt: 0)
                  + "\(Format.ms(ours.median)) / \(Format.ms(ours.p90))".leftPadded(24)
                  + (theirs.map { "\(Format.ms($0.median)) / \(Format.ms($0.p90))" } ?? "–").leftPadded(29))
        }
    }

    typealias Row = (String, Figure, Figure?)

    /// 100,000 samples: 100 metrics × 1,000 label sets, with HELP and TYPE.
    private static func parseFigures(runs: Int, scratch: String) throws -> [Row] {
        var text = ""
        for metric in 0..<100 {
            text += "# HELP bench_metric_\(metric)_total A benchmark counter.\n# TYPE bench_metric_\(metric)_total counter\n"
            for series in 0..<1000 {
                text += "bench_metric_\(metric)_total{handler=\"/api/v\(series % 10)/items\",instance=\"10.0.\(series / 250).\(series % 250):9100\",code=\"\(200 + series % 5)\"} \(series * 7 + metric)\n"
            }
        }
        let file = scratch + "/page-100k.prom"
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        progress("parse: 100,000-sample exposition (\(text.utf8.count / 1024) KiB)")
        var ours: [Double] = []
        for _ in 0..<runs {
            ours.append(milliseconds { precondition(Exposition.parse(text).samples.count == 100_000) })
        }
        var theirs: [Double] = []
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            for _ in 0..<min(runs, 11) { theirs.append(try milliseconds { try runTool(["/usr/bin/promtool", "check", "metrics"], stdin: file) }) }
        }
        return [("parse 100k samples (promtool: process)", Figure(name: "parse", size: "100k", pipeline: "ratchet", samples: ours),
                 theirs.isEmpty ? nil : Figure(name: "parse", size: "100k", pipeline: "promtool", samples: theirs))]
    }

    /// One service, 100 series at 15 s for `days` days ending now: import, size, evaluation.
    private static func weekFigures(days: Int, runs: Int, scratch: String) throws -> [Row] {
        let now = Int64(Date().timeIntervalSince1970) * 1000 / 15_000 * 15_000
        let file = scratch + "/week.om"
        let samples = try writeWeek(file, days: days, end: now)
        progress("week: \(samples) samples of 100 series over \(days) d (\(fileSize(file) / 1_048_576) MiB of OpenMetrics)")
        let workspace = try Workspace.create(at: scratch + "/metrics-ws")
        _ = try workspace.addService(name: "svc", template: "kv-cache")
        var rows: [Row] = []
        let imported = try milliseconds { _ = try workspace.importMetrics(service: "svc", file: file) }
        var promtool: Figure?
        let blocks = scratch + "/prometheus-data"
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            let time = try milliseconds { try runTool(["/usr/bin/promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", file, blocks]) }
            promtool = Figure(name: "import", size: "", pipeline: "promtool", samples: [time])
        }
        rows.append(("import \(days) d × 100 series (1 run)", Figure(name: "import", size: "", pipeline: "ratchet", samples: [imported]), promtool))
        // The database's size as its pages say (the WAL's newer pages included).
        let (storeBytes, counts) = try workspace.database.read { db in
            ((try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0) * (try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0),
             (try Int.fetchOne(db, sql: "SELECT count(*) FROM metricSample") ?? 0, try Int.fetchOne(db, sql: "SELECT count(*) FROM metricRollup") ?? 0))
        }
        print("store: \(storeBytes / 1_048_576) MiB for \(counts.0) raw samples and \(counts.1) rollups of 100 series (×20 services: \(storeBytes * 20 / 1_048_576) MiB);"
              + (promtool != nil ? " Prometheus blocks: \(folderSize(blocks) / 1_048_576) MiB for all \(samples) samples" : ""))
        let server = promtool != nil ? try BenchPrometheus(data: blocks, scratch: scratch) : nil
        defer { server?.stop() }
        let at = Date(timeIntervalSince1970: Double(now) / 1000)
        for expression in expressions {
            var ours: [Double] = [], theirs: [Double] = []
            for _ in 0..<runs { ours.append(try milliseconds { _ = try workspace.query(service: "svc", expression: expression, at: at) }) }
            if let server {
                let client = PrometheusClient(baseURL: server.url, timeout: 60)
                for _ in 0..<runs { theirs.append(try milliseconds { _ = try client.query(expression, at: at) }) }
            }
            let short = expression.count > 38 ? String(expression.prefix(36)) + "…" + String(expression.suffix(3)) : expression
            rows.append((short, Figure(name: expression, size: "", pipeline: "ratchet", samples: ours),
                         theirs.isEmpty ? nil : Figure(name: expression, size: "", pipeline: "prometheus", samples: theirs)))
        }
        return rows
    }

    /// 40 request counters, 5 histograms (8 buckets, sum, count), 9 gauges and `up`: 100 series.
    private static func writeWeek(_ path: String, days: Int, end: Int64) throws -> Int {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let steps = days * 86_400 / 15
        let start = end - Int64(steps) * 15_000
        var count = 0
        var random = SystemRandomNumberGenerator()
        func family(_ header: String, _ series: [String], _ value: (Int, Int) -> Double) throws {
            var chunk = header + "\n"
            for (index, labels) in series.enumerated() {
                for step in 0..<steps {
                    let t = start + Int64(step) * 15_000
                    chunk += "\(labels) \(value(index, step)) \(t / 1000)\n"
                    count += 1
                    if chunk.utf8.count > 1 << 20 { handle.write(Data(chunk.utf8)); chunk = "" }
                }
            }
            handle.write(Data(chunk.utf8))
        }
        var counters: [String] = []
        for code in ["200", "404", "500", "503"] { for method in ["GET", "POST"] { for handler in 0..<5 {
            counters.append("http_requests_total{code=\"\(code)\",handler=\"h\(handler)\",method=\"\(method)\"}")
        } } }
        try family("# TYPE http_requests counter", counters) { index, step in Double(step * (index % 8 == 0 ? 20 : 1 + index % 3)) }
        var histogram: [String] = []
        let bounds = ["0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
        for handler in 0..<5 {
            histogram += bounds.map { "request_duration_seconds_bucket{handler=\"h\(handler)\",le=\"\($0)\"}" }
            histogram += ["request_duration_seconds_sum{handler=\"h\(handler)\"}", "request_duration_seconds_count{handler=\"h\(handler)\"}"]
        }
        try family("# TYPE request_duration_seconds histogram", histogram) { index, step in
            let position = index % 10
            return position == 8 ? Double(step) * 1.7 : Double(step * 10) * min(1, Double(position + 1) / 7)
        }
        let gauges = (0..<9).map { "memory_bytes{instance=\"i\($0)\"}" }
        try family("# TYPE memory_bytes gauge", gauges) { _, _ in 4e8 + Double(random.next() % 600_000_000) }
        try family("# TYPE up gauge", ["up{instance=\"i0\",job=\"svc\"}"]) { _, _ in 1 }
        handle.write(Data("# EOF\n".utf8))
        return count
    }

    private static func runTool(_ arguments: [String], stdin: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if let stdin { process.standardInput = FileHandle(forReadingAtPath: stdin) }
        try process.run()
        process.waitUntilExit()
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func folderSize(_ path: String) -> Int {
        let files = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
        return files.reduce(0) { $0 + fileSize(path + "/" + $1) }
    }
}

/// Prometheus over the backfilled blocks, on a free loopback port, ready when `/-/ready` answers.
final class BenchPrometheus {
    let url: String
    private let process = Process()

    init(data: String, scratch: String) throws {
        let port = 20_000 + Int(getpid() % 20_000)
        url = "http://127.0.0.1:\(port)"
        let config = scratch + "/prometheus.yml"
        try Data("global:\n  scrape_interval: 1h\nscrape_configs: []\n".utf8).write(to: URL(fileURLWithPath: config))
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        process.arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(data)", "--storage.tsdb.retention.time=15d",
                             "--web.listen-address=127.0.0.1:\(port)", "--log.level=error"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let client = PrometheusClient(baseURL: url, timeout: 2)
        for _ in 0..<1200 {
            if (try? client.query("1", at: Date())) != nil { return }
            usleep(100_000)
        }
        throw RatchetError("prometheus at \(url) not ready")
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }
}

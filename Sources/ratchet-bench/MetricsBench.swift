import Foundation
import RatchetCore
import RatchetMetrics
import RatchetStore
import GRDB

/// Issue 14's metrics figures, side by side with Prometheus 2.42 doing the same work on the same
/// data: parsing a 100,000-sample exposition (promtool check metrics); a week of 100 series at
/// 15 s in kv-cache's metric names, backfilled (promtool tsdb create-blocks-from openmetrics) and
/// copied to 20 services; the store's size; single expressions (the template's invariants and
/// burn-rate ratios, rollups and raw-only); and one pass over every invariant and SLO of the 20
/// services, as `observe` evaluates them, against the store and against Prometheus (a service
/// whose service.yaml names it). Wall time, CPU time (ours: this process; Prometheus's: its
/// process plus our client) and the load average.
enum MetricsBench {
    static let services = 20
    static let burnRateWindows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "7d"]
    static let invariants = [
        "sum(rate(kvcache_hits_total[5m])) / (sum(rate(kvcache_hits_total[5m])) + sum(rate(kvcache_misses_total[5m]))) > 0.5",
        #"(sum(rate(kvcache_requests_total{code=~"5.."}[5m])) or vector(0)) / sum(rate(kvcache_requests_total[5m])) < 0.01"#,
        #"histogram_quantile(0.99, sum by (le) (rate(kvcache_request_duration_seconds_bucket{op=~"get|put|delete"}[5m]))) < 0.25"#,
        "kvcache_items <= kvcache_capacity",
    ]
    static let expressions = invariants.map { (short($0), $0) } + burnRateWindows.map {
        ("burn-rate ratio, W = \($0)", #"sum(rate(kvcache_requests_total{code=~"5.."}[\#($0)])) / sum(rate(kvcache_requests_total[\#($0)]))"#)
    }

    static func measure(quick: Bool, runs: Int, scratch: String) throws {
        print("load average at start: \(loadAverage())")
        let parse = try parseFigures(runs: runs, scratch: scratch)
        let week = try weekFigures(days: quick ? 1 : 7, runs: quick ? 3 : runs, scratch: scratch)
        print("")
        print("figure                                   Ratchet wall med / p90 ms (CPU med)   Prometheus wall med / p90 ms (CPU med)")
        for row in parse + week {
            print(row.name.padding(toLength: 41, withPad: " ", startingAt: 0) + cell(row.ours, row.oursCPU).leftPadded(36)
                  + (row.theirs.map { cell($0, row.theirsCPU) } ?? "–").leftPadded(41))
        }
        print("load average at end: \(loadAverage())")
    }

    struct BenchRow {
        var name: String
        var ours: Figure
        var oursCPU: [Double] = []
        var theirs: Figure?
        var theirsCPU: [Double] = []
    }

    private static func cell(_ figure: Figure, _ cpu: [Double]) -> String {
        "\(Format.ms(figure.median)) / \(Format.ms(figure.p90))" + (cpu.isEmpty ? "" : " (\(Format.ms(Figure(name: "", size: "", pipeline: "", samples: cpu).median)))")
    }

    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    }

    /// 100,000 samples: 100 metrics × 1,000 label sets, with HELP and TYPE.
    private static func parseFigures(runs: Int, scratch: String) throws -> [BenchRow] {
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
        var ours: [Double] = [], oursCPU: [Double] = []
        for _ in 0..<runs {
            let (wall, cpu) = wallAndCPUMilliseconds { precondition(Exposition.parse(text).samples.count == 100_000) }
            ours.append(wall); oursCPU.append(cpu)
        }
        var theirs: [Double] = [], theirsCPU: [Double] = []
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            for _ in 0..<min(runs, 11) {
                let (wall, cpu) = try runTool(["/usr/bin/promtool", "check", "metrics"], stdin: file)
                theirs.append(wall); theirsCPU.append(cpu)
            }
        }
        return [BenchRow(name: "parse 100k samples (promtool: process)", ours: Figure(name: "parse", size: "100k", pipeline: "ratchet", samples: ours),
                    oursCPU: oursCPU, theirs: theirs.isEmpty ? nil : Figure(name: "parse", size: "100k", pipeline: "promtool", samples: theirs),
                    theirsCPU: theirsCPU)]
    }

    /// 100 series at 15 s for `days` days ending now, for 20 services: import, size, evaluation.
    private static func weekFigures(days: Int, runs: Int, scratch: String) throws -> [BenchRow] {
        let now = Int64(Date().timeIntervalSince1970) * 1000 / 15_000 * 15_000
        let at = Date(timeIntervalSince1970: Double(now) / 1000)
        let file = scratch + "/week.om"
        let samples = try writeWeek(file, days: days, end: now)
        progress("week: \(samples) samples of 100 series over \(days) d (\(fileSize(file) / 1_048_576) MiB of OpenMetrics)")
        let workspace = try Workspace.create(at: scratch + "/metrics-ws")
        for index in 0..<services { _ = try workspace.addService(name: "svc\(index)", template: "kv-cache") }
        var rows: [BenchRow] = []
        let imported = try wallAndCPUMilliseconds { _ = try workspace.importMetrics(service: "svc0", file: file) }
        var promtool: (wall: Double, cpu: Double)?
        let blocks = scratch + "/prometheus-data"
        let hasPrometheus = FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool")
        if hasPrometheus {
            progress("promtool tsdb create-blocks-from openmetrics (minutes)")
            promtool = try runTool(["/usr/bin/promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", file, blocks])
        }
        rows.append(BenchRow(name: "import \(days) d × 100 series (1 run)", ours: Figure(name: "import", size: "", pipeline: "ratchet", samples: [imported.wall]),
                        oursCPU: [imported.cpu], theirs: promtool.map { Figure(name: "import", size: "", pipeline: "promtool", samples: [$0.wall]) },
                        theirsCPU: promtool.map { [$0.cpu] } ?? []))
        progress("copying svc0's samples to \(services - 1) more services")
        try copyMetrics(workspace, from: "svc0", to: (1..<services).map { "svc\($0)" })
        try reportSize(workspace, days: days, promtoolBlocks: hasPrometheus ? blocks : nil, samples: samples)

        let server = hasPrometheus ? try BenchPrometheus(data: blocks, scratch: scratch) : nil
        defer { server?.stop() }
        if let server { try pointAtPrometheus(workspace, service: "prom", url: server.url) }
        rows.append(try overheadRow(workspace, at: at, runs: runs))
        for (name, expression) in expressions {
            progress(expression)
            var row = BenchRow(name: name, ours: Figure(name: "", size: "", pipeline: "", samples: []))
            var ours: [Double] = [], raw: [Double] = [], rawCPU: [Double] = [], theirs: [Double] = []
            let rawOnly = Evaluator(source: try workspace.metricSource(service: "svc0", useRollups: false))
            for _ in 0..<runs {
                let (wall, cpu) = try wallAndCPUMilliseconds { _ = try workspace.query(service: "svc0", expression: expression, at: at) }
                ours.append(wall); row.oursCPU.append(cpu)
                let (rawWall, rawCPUTime) = try wallAndCPUMilliseconds { _ = try rawOnly.query(expression, at: now) }
                raw.append(rawWall); rawCPU.append(rawCPUTime)
            }
            if let server {
                let client = PrometheusClient(baseURL: server.url, timeout: 120)
                for _ in 0..<runs {
                    let (wall, cpu) = try server.measure { _ = try client.query(expression, at: at) }
                    theirs.append(wall); row.theirsCPU.append(cpu)
                }
            }
            row.ours = Figure(name: expression, size: "", pipeline: "ratchet", samples: ours)
            row.theirs = theirs.isEmpty ? nil : Figure(name: expression, size: "", pipeline: "prometheus", samples: theirs)
            rows.append(row)
            rows.append(BenchRow(name: "  evaluation only, raw samples only", ours: Figure(name: expression, size: "", pipeline: "ratchet-raw", samples: raw), oursCPU: rawCPU))
        }
        rows.append(try observeRow(workspace, server: server, at: at, runs: max(3, runs / 3)))
        return rows
    }

    /// Every invariant and SLO of the 20 services, as observe evaluates them (nothing filed);
    /// Prometheus answers the same queries for one service's data, asked 20 times.
    private static func observeRow(_ workspace: Workspace, server: BenchPrometheus?, at: Date, runs: Int) throws -> BenchRow {
        progress("observe pass: every invariant and SLO of \(services) services")
        func pass(_ names: [String]) throws {
            for name in names {
                let checks = try workspace.invariantStatus(service: name, at: at) + workspace.sloStatus(service: name, at: at)
                if let failed = checks.first(where: { $0.error != nil }) { throw RatchetError("\(name) \(failed.name): \(failed.error!)") }
            }
        }
        var row = BenchRow(name: "observe pass: \(services) services (1 service × 20 for Prometheus)", ours: Figure(name: "", size: "", pipeline: "", samples: []))
        var ours: [Double] = [], theirs: [Double] = []
        for _ in 0..<runs {
            let (wall, cpu) = try wallAndCPUMilliseconds { try pass((0..<services).map { "svc\($0)" }) }
            ours.append(wall); row.oursCPU.append(cpu)
            if let server {
                let (wall, cpu) = try server.measure { try pass(Array(repeating: "prom", count: services)) }
                theirs.append(wall); row.theirsCPU.append(cpu)
            }
        }
        row.ours = Figure(name: "observe", size: "", pipeline: "ratchet", samples: ours)
        row.theirs = theirs.isEmpty ? nil : Figure(name: "observe", size: "", pipeline: "prometheus", samples: theirs)
        return row
    }

    /// What `Workspace.query` costs around the evaluation (service lookup, service.yaml, parse).
    private static func overheadRow(_ workspace: Workspace, at: Date, runs: Int) throws -> BenchRow {
        var row = BenchRow(name: "query overhead: vector(1)", ours: Figure(name: "", size: "", pipeline: "", samples: []))
        var ours: [Double] = []
        for _ in 0..<runs {
            let (wall, cpu) = try wallAndCPUMilliseconds { _ = try workspace.query(service: "svc0", expression: "vector(1)", at: at) }
            ours.append(wall); row.oursCPU.append(cpu)
        }
        row.ours = Figure(name: "vector(1)", size: "", pipeline: "ratchet", samples: ours)
        return row
    }

    private static func short(_ expression: String) -> String {
        expression.count > 38 ? String(expression.prefix(36)) + "…" + String(expression.suffix(3)) : expression
    }

    /// Copies one service's series, samples and rollups to other services (same data, new series ids).
    private static func copyMetrics(_ workspace: Workspace, from source: String, to targets: [String]) throws {
        for target in targets {
            try workspace.database.write { db in
                try db.execute(sql: "INSERT INTO metricSeries (service, name, labels) SELECT ?, name, labels FROM metricSeries WHERE service = ?", arguments: [target, source])
                let map = "SELECT a.id AS old, b.id AS new FROM metricSeries a JOIN metricSeries b ON b.labels = a.labels AND b.service = ? WHERE a.service = ?"
                try db.execute(sql: "INSERT INTO metricChunk SELECT m.new, c.start, c.end, c.samples, c.data FROM metricChunk c JOIN (\(map)) m ON c.seriesId = m.old",
                               arguments: [target, source])
                try db.execute(sql: """
                    INSERT INTO metricRollup (seriesId, step, bucket, time, last, samples, total, minimum, maximum, firstTime, firstValue, resets, resetSum, changes)
                    SELECT m.new, step, bucket, time, last, samples, total, minimum, maximum, firstTime, firstValue, resets, resetSum, changes
                    FROM metricRollup r JOIN (\(map)) m ON r.seriesId = m.old
                    """, arguments: [target, source])
            }
        }
    }

    /// The store's size by table (dbstat), per service and per day of raw samples, beside Prometheus's blocks.
    private static func reportSize(_ workspace: Workspace, days: Int, promtoolBlocks: String?, samples: Int) throws {
        let (pages, tables, counts) = try workspace.database.read { db in
            ((try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0) * (try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0),
             (try? Row.fetchAll(db, sql: "SELECT name, sum(pgsize) AS bytes FROM dbstat WHERE name LIKE 'metric%' GROUP BY name")) ?? [],
             (try Int.fetchOne(db, sql: "SELECT coalesce(sum(samples), 0) FROM metricChunk") ?? 0, try Int.fetchOne(db, sql: "SELECT count(*) FROM metricRollup") ?? 0))
        }
        let byTable = Dictionary(uniqueKeysWithValues: tables.map { ($0["name"] as String, $0["bytes"] as Int) })
        let rawBytes = byTable["metricChunk"] ?? 0
        print("store of \(services) services × 100 series: \(pages / 1_048_576) MiB (\(counts.0) raw samples, \(counts.1) rollups); by table: "
              + byTable.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value / 1_048_576) MiB" }.joined(separator: ", "))
        if counts.0 > 0 {
            let perSample = Double(rawBytes) / Double(counts.0)
            print(String(format: "raw: %.1f bytes a sample; a day of 20 × 100 series at 15 s (11.52 M samples): %.0f MiB", perSample, perSample * 11_520_000 / 1_048_576))
        }
        if let blocks = promtoolBlocks {
            let bytes = folderSize(blocks)
            print(String(format: "Prometheus blocks for all %d samples of one service: %d MiB (%.2f bytes a sample; a day of 20 × 100 series: %.0f MiB)",
                         samples, bytes / 1_048_576, Double(bytes) / Double(samples), Double(bytes) / Double(samples) * 11_520_000 / 1_048_576))
        }
    }

    /// A service whose service.yaml names the Prometheus server, committed on its main.
    private static func pointAtPrometheus(_ workspace: Workspace, service: String, url: String) throws {
        _ = try workspace.addService(name: service, template: "kv-cache")
        let path = workspace.servicePath(service)
        let text = try String(contentsOfFile: path + "/service.yaml", encoding: .utf8)
            .replacingOccurrences(of: "  scrape: http://127.0.0.1:8080/metrics", with: "  prometheus: \(url)")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path + "/service.yaml"))
        try Shell.run(["git", "commit", "-qam", "Query the benchmark's Prometheus"], in: path)
    }

    /// kv-cache's metrics (as its invariants.yaml and slos.yaml read them) for two instances: 100
    /// series. Counters restart once a day per instance (a deploy), at different times.
    private static func writeWeek(_ path: String, days: Int, end: Int64) throws -> Int {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let steps = days * 86_400 / 15
        let start = end - Int64(steps) * 15_000
        var count = 0
        var random = SystemRandomNumberGenerator()
        let instances = ["i0", "i1"]
        /// Steps since the instance last restarted.
        func uptime(_ instance: Int, _ step: Int) -> Int { (step + 1_000 + instance * 2_345) % 5_760 }
        func family(_ header: String, _ series: [(labels: String, instance: Int)], _ value: (Int, Int, Int) -> Double) {
            var chunk = header + "\n"
            for (index, item) in series.enumerated() {
                for step in 0..<steps {
                    chunk += "\(item.labels) \(value(index, item.instance, step)) \((start + Int64(step) * 15_000) / 1000)\n"
                    count += 1
                    if chunk.utf8.count > 1 << 20 { handle.write(Data(chunk.utf8)); chunk = "" }
                }
            }
            handle.write(Data(chunk.utf8))
        }
        let ops = [("get", 60), ("put", 20), ("delete", 5)]
        var requests: [(labels: String, instance: Int)] = [], perStep: [Double] = []
        for (i, instance) in instances.enumerated() { for (op, rate) in ops { for code in ["200", "404", "500", "503"] {
            requests.append(("kvcache_requests_total{code=\"\(code)\",instance=\"\(instance)\",op=\"\(op)\"}", i))
            perStep.append(code == "200" ? Double(rate) : code == "404" ? 3 : code == "500" ? 1.0 / 40 : 1.0 / 97)
        } } }
        family("# TYPE kvcache_requests counter", requests) { index, instance, step in (Double(uptime(instance, step)) * perStep[index]).rounded(.down) }
        family("# TYPE kvcache_hits counter", instances.enumerated().map { ("kvcache_hits_total{instance=\"\($1)\"}", $0) }) { _, i, step in Double(uptime(i, step) * 50) }
        family("# TYPE kvcache_misses counter", instances.enumerated().map { ("kvcache_misses_total{instance=\"\($1)\"}", $0) }) { _, i, step in Double(uptime(i, step) * 10) }
        let bounds = [("0.001", 0.2), ("0.005", 0.6), ("0.01", 0.85), ("0.025", 0.9995), ("0.05", 0.9998), ("0.1", 0.9999), ("0.25", 1.0), ("1", 1.0), ("+Inf", 1.0)]
        var histogram: [(labels: String, instance: Int)] = [], parts: [(Int, Double)] = []
        for (i, instance) in instances.enumerated() { for (o, (op, _)) in ops.enumerated() {
            for (le, share) in bounds {
                histogram.append(("kvcache_request_duration_seconds_bucket{instance=\"\(instance)\",le=\"\(le)\",op=\"\(op)\"}", i)); parts.append((o, share))
            }
            histogram.append(("kvcache_request_duration_seconds_sum{instance=\"\(instance)\",op=\"\(op)\"}", i)); parts.append((o, -1))
            histogram.append(("kvcache_request_duration_seconds_count{instance=\"\(instance)\",op=\"\(op)\"}", i)); parts.append((o, 1))
        } }
        family("# TYPE kvcache_request_duration_seconds histogram", histogram) { index, instance, step in
            let observed = Double(uptime(instance, step) * ops[parts[index].0].1)
            return parts[index].1 < 0 ? observed * 0.004 : (observed * parts[index].1).rounded(.down)
        }
        family("# TYPE kvcache_items gauge", instances.enumerated().map { ("kvcache_items{instance=\"\($1)\"}", $0) }) { _, _, _ in
            Double(500 + random.next() % 500)
        }
        family("# TYPE kvcache_capacity gauge", instances.enumerated().map { ("kvcache_capacity{instance=\"\($1)\"}", $0) }) { _, _, _ in 1024 }
        family("# TYPE up gauge", instances.enumerated().map { ("up{instance=\"\($1)\",job=\"kv-cache\"}", $0) }) { _, _, _ in 1 }
        handle.write(Data("# EOF\n".utf8))
        return count
    }

    /// Runs a tool to its end: wall and CPU (user + system of the child) milliseconds.
    @discardableResult
    private static func runTool(_ arguments: [String], stdin: String? = nil) throws -> (wall: Double, cpu: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if let stdin { process.standardInput = FileHandle(forReadingAtPath: stdin) }
        var children = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &children)
        let before = cpuMilliseconds(children)
        let wall = try milliseconds {
            try process.run()
            process.waitUntilExit()
        }
        getrusage(RUSAGE_CHILDREN.rawValue, &children)
        return (wall, cpuMilliseconds(children) - before)
    }

    static func cpuMilliseconds(_ usage: rusage) -> Double {
        Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
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

    /// Wall milliseconds of `body`, and CPU milliseconds of this process and the server together.
    func measure(_ body: () throws -> Void) throws -> (wall: Double, cpu: Double) {
        let before = serverCPU()
        let (wall, cpu) = try wallAndCPUMilliseconds(body)
        return (wall, cpu + serverCPU() - before)
    }

    /// The server process's user + system time, milliseconds (/proc/PID/stat, fields 14 and 15).
    private func serverCPU() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) * 1000 / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }
}

import Foundation
import RatchetCore
import RatchetMetrics
import RatchetStore
import RatchetTestSupport
import Testing

/// Rewrites `metrics:` in svc's service.yaml on main.
private func setMetrics(_ workspace: Workspace, _ yaml: String) throws {
    let path = workspace.servicePath("svc")
    let text = try String(contentsOfFile: path + "/service.yaml", encoding: .utf8)
        .replacingOccurrences(of: "metrics:                       # where observed metrics come from (one of scrape | prometheus)\n  scrape: http://127.0.0.1:8080/metrics   # Prometheus text exposition: an http(s) URL or a file\n", with: yaml)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path + "/service.yaml"))
    try git(["commit", "-qam", "Point metrics elsewhere"], in: path)
}

private func values(_ value: QueryValue) -> [String: Double] {
    guard case .vector(let samples) = value else { return [:] }
    return Dictionary(uniqueKeysWithValues: samples.map { ($0.labels.description, $0.value) })
}

@Suite("Metrics store")
struct MetricsStoreTests {
    @Test func scrapeKeepsGoodLinesRecordsUpAndNaN() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        try Data("# TYPE jobs gauge\njobs{queue=\"a\"} 3\njobs{queue=\"b\" 4\njobs{queue=\"c\"} NaN\ntemp +Inf\n".utf8)
            .write(to: URL(fileURLWithPath: folder("page.prom")))
        try setMetrics(workspace, "metrics:\n  scrape: \(folder("page.prom"))\n")
        let report = try workspace.scrape(service: "svc", timeout: 5)
        #expect(report.up && report.samplesScraped == 3 && report.lineErrors.count == 1 && report.lineErrors[0].hasPrefix("line 3: "))
        #expect(report.samplesStored == 6)   // 3 + up, scrape_duration_seconds, scrape_samples_scraped
        let now = Date()
        let jobs = values(try workspace.query(service: "svc", expression: "jobs", at: now))
        #expect(jobs.count == 2 && jobs[#"jobs{instance="\#(folder("page.prom"))", job="svc", queue="a"}"#] == 3)
        #expect(jobs.first { $0.key.contains("queue=\"c\"") }?.value.isNaN == true)
        #expect(values(try workspace.query(service: "svc", expression: "temp", at: now)).first?.value == .infinity)
        #expect(values(try workspace.query(service: "svc", expression: "up", at: now)).values.first == 1)
        #expect(try workspace.database.events().filter { $0.kind == "metrics.scraped" }.count == 1)
    }

    @Test func tenThousandLabelSetsOfOneMetricAreStoredAndQueried() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let page = (0..<10_000).map { "requests_total{path=\"/p/\($0)\",code=\"\($0 % 5)00\"} \($0)" }.joined(separator: "\n") + "\n"
        try Data(page.utf8).write(to: URL(fileURLWithPath: folder("page.prom")))
        try setMetrics(workspace, "metrics:\n  scrape: \(folder("page.prom"))\n")
        let report = try workspace.scrape(service: "svc", timeout: 5)
        #expect(report.up && report.samplesScraped == 10_000 && report.samplesStored == 10_003)
        let now = Date()
        #expect(values(try workspace.query(service: "svc", expression: "count(requests_total)", at: now)).values.first == 10_000)
        #expect(values(try workspace.query(service: "svc", expression: #"count(requests_total{path=~"/p/1.*"})"#, at: now)).values.first == 1111)
        let sums = values(try workspace.query(service: "svc", expression: "sum by (code) (max_over_time(requests_total[1h]))", at: now))
        #expect(sums.count == 5 && sums.values.reduce(0, +) == Double((0..<10_000).reduce(0, +)))
    }

    @Test func aMetricsScopeIsASelectorOfLabelsEverySeriesCarries() throws {
        let yaml = { (scope: String) in "name: svc\nmetrics:\n  prometheus: http://127.0.0.1:9090\n  scope: '\(scope)'\n" }
        #expect(try ServiceConfig.parse(yaml(#"{job="kv", env=~"prod|staging"}"#)).metricsScope == #"{job="kv", env=~"prod|staging"}"#)
        for bad in [#"{job=~".*"}"#, "up", #"{job="kv"} offset 5m"#, "{", #"{__name__="up"}"#] {
            #expect(throws: RatchetError.self, "\(bad)") { try ServiceConfig.parse(yaml(bad)) }
            do { _ = try ServiceConfig.parse(yaml(bad)) } catch { #expect(describe(error).contains("metrics.scope"), "\(error)") }
        }
    }

    @Test func aHangingEndpointIsUpZeroWithinTheTimeout() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        // Listens (connections complete in the backlog) and never answers.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        #expect(listen(listener, 8) == 0)
        let port = UInt16(bigEndian: address.sin_port)
        try setMetrics(workspace, "metrics:\n  scrape: http://127.0.0.1:\(port)/metrics\n")
        let report = try workspace.scrape(service: "svc", timeout: 1)
        #expect(!report.up && report.samplesScraped == 0)
        #expect(report.error?.contains("127.0.0.1:\(port)") == true, "\(report.error ?? "")")
        let up = values(try workspace.query(service: "svc", expression: "up == 0", at: Date()))
        #expect(up == [#"up{instance="127.0.0.1:\#(port)", job="svc"}"#: 0])
        let event = try #require(try workspace.database.events().last { $0.kind == "metrics.scraped" })
        #expect(event.data["up"] == .bool(false))
    }

    @Test func prometheusUnreachableIsAnErrorNamingTheServer() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        try setMetrics(workspace, "metrics:\n  prometheus: http://127.0.0.1:9/\n")
        #expect(throws: RatchetError.self) { try workspace.query(service: "svc", expression: "up", at: Date()) }
        do { _ = try workspace.query(service: "svc", expression: "up", at: Date()) } catch {
            #expect(describe(error).contains("Prometheus at http://127.0.0.1:9/ unreachable"), "\(error)")
        }
        // A bad expression fails before anything is asked.
        #expect(throws: PromQLError.self) { try workspace.query(service: "svc", expression: "sum(", at: Date()) }
    }

    @Test func oldSamplesLiveOnInRollupsThatServeThirtyDayWindows() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let now = Int64(Date().timeIntervalSince1970) * 1000 / 60_000 * 60_000
        let start = now - 31 * 86_400_000
        // A counter rising by 1 every 60 s for 31 days, and a gauge cycling 0…9.
        var lines = ["# TYPE c counter"]
        for step in 0..<(31 * 1440) { lines.append("c_total \(step) \(start + Int64(step) * 60_000)") }
        lines.append("# TYPE g gauge")
        for step in 0..<(31 * 1440) { lines.append("g \(step % 10) \(start + Int64(step) * 60_000)") }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: folder("backfill.prom")))
        let report = try workspace.importMetrics(service: "svc", file: folder("backfill.prom"))
        #expect(report.format == "text" && report.samples == 2 * 31 * 1440 && report.newSeries == 2)
        #expect(report.rolledUpOnly > 2 * 28 * 1440 && report.stored + report.rolledUpOnly == report.samples)
        let at = Date(timeIntervalSince1970: Double(now) / 1000)
        // Counts, sums, minima and maxima survive rollup exactly; the window's first bucket may
        // reach up to one 1-hour rollup step (60 samples here) before the window's start.
        let window = 30 * 1440
        let count = try #require(values(try workspace.query(service: "svc", expression: "count_over_time(g[30d])", at: at)).values.first)
        #expect(count >= Double(window) && count <= Double(window + 60), "\(count)")
        #expect(values(try workspace.query(service: "svc", expression: "max_over_time(g[30d])", at: at)).values.first == 9)
        let average = try #require(values(try workspace.query(service: "svc", expression: "avg_over_time(g[30d])", at: at)).values.first)
        #expect(abs(average - 4.5) < 0.01)
        // The increase over 30 days from hourly and 5-minute rollups is within one hour's increase of the truth (0.14 %).
        let increase = try #require(values(try workspace.query(service: "svc", expression: "increase(c_total[30d])", at: at)).values.first)
        #expect(abs(increase - Double(window)) <= 60, "\(increase)")
        // Three days: 5-minute rollups and raw samples, within one 5-minute step.
        let threeDays = try #require(values(try workspace.query(service: "svc", expression: "increase(c_total[3d])", at: at)).values.first)
        #expect(abs(threeDays - 3 * 1440) <= 5, "\(threeDays)")
        // Recent windows are raw: rate over 5 minutes is exact.
        let rate = try #require(values(try workspace.query(service: "svc", expression: "rate(c_total[5m])", at: at)).values.first)
        #expect(abs(rate - 1.0 / 60) < 1e-12)
        // Nothing raw is older than the raw retention; no rollup is older than the rollup retention.
        let (oldestRaw, oldestRollup) = try workspace.database.read { db in
            (try Int64.fetchOne(db, sql: "SELECT min(start) FROM metricChunk") ?? 0, try Int64.fetchOne(db, sql: "SELECT min(bucket) FROM metricRollup") ?? 0)
        }
        #expect(oldestRaw >= now - MetricStore.rawRetention - SampleChunk.span)
        #expect(oldestRollup >= now - MetricStore.rollupRetention - 3_600_000 && oldestRollup < now - 30 * 86_400_000)
        let oldestFine = try workspace.database.read { db in
            try Int64.fetchOne(db, sql: "SELECT min(bucket) FROM metricRollup WHERE step = ?", arguments: [MetricStore.rollupStep]) ?? 0
        }
        #expect(oldestFine >= now - 7 * 86_400_000 - 3_600_000)
        // Importing the same file again writes nothing new, raw or rolled up.
        let rollupTotals = { try workspace.database.read { db in try Double.fetchOne(db, sql: "SELECT sum(samples) FROM metricRollup") ?? 0 } }
        let before = try rollupTotals()
        let again = try workspace.importMetrics(service: "svc", file: folder("backfill.prom"))
        #expect(again.stored == 0 && again.duplicates > 2 * 1440 && again.newSeries == 0)
        #expect(try rollupTotals() <= before, "a repeated import counted samples twice")
    }

    @Test func aMalformedImportStoresNothing() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        try Data("a 1 1000\nb{ 2 2000\nd x 3000\n".utf8).write(to: URL(fileURLWithPath: folder("bad.prom")))
        #expect(throws: RatchetError("\(folder("bad.prom")): line 2: expected a label name (and 1 more malformed lines)")) {
            try workspace.importMetrics(service: "svc", file: folder("bad.prom"))
        }
        try Data("a 1 1000\nc 3\n".utf8).write(to: URL(fileURLWithPath: folder("untimed.prom")))
        #expect(throws: RatchetError("\(folder("untimed.prom")): line 2: sample has no timestamp (import backfills timestamped samples)")) {
            try workspace.importMetrics(service: "svc", file: folder("untimed.prom"))
        }
        #expect(try workspace.database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM metricSeries") } == 0)
        #expect(try workspace.database.events().contains { $0.kind.hasPrefix("metrics.") } == false)
    }
}

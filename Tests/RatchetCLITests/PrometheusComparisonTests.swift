import Foundation
import RatchetTestSupport
import Testing

/// The embedded evaluator against a real Prometheus (Debian's `prometheus` 2.42, installed by
/// scripts/deps.sh): one generated data set, backfilled into Prometheus with `promtool tsdb
/// create-blocks-from openmetrics` and into Ratchet with `ratchet metrics import`; every
/// expression is asked of both at fixed times inside the raw retention (times relative to now,
/// so the blocks lie inside Prometheus's retention too) and must give the same series with values
/// within a relative 1e-9. The Prometheus answers come through `ratchet query` on a second
/// service whose service.yaml names the server (`metrics.prometheus`), so that path is checked too.
@Suite("Real Prometheus comparison")
struct PrometheusComparisonTests {
    static let expressions = [
        "http_requests_total",
        #"http_requests_total{code=~"5..", method!="GET"}"#,
        #"http_requests_total{code!~"2.*"}"#,
        "rate(http_requests_total[5m])",
        "rate(http_requests_total[1m])",
        "increase(http_requests_total[1h])",
        "irate(http_requests_total[5m])",
        "delta(memory_bytes[10m])",
        "idelta(memory_bytes[10m])",
        "sum by (code) (rate(http_requests_total[5m]))",
        "sum without (instance, method) (rate(http_requests_total[5m]))",
        "sum(rate(http_requests_total[1h])) by (instance)",
        #"sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))"#,
        "avg(memory_bytes)", "max by (instance) (memory_bytes)", "min(memory_bytes)", "count(http_requests_total)",
        "count by (code) (http_requests_total)", "group by (instance) (http_requests_total)",
        "stddev(memory_bytes)", "stdvar(memory_bytes)", "quantile(0.3, memory_bytes)", "topk(2, rate(http_requests_total[5m]))",
        "avg_over_time(memory_bytes[15m])", "sum_over_time(memory_bytes[15m])", "min_over_time(memory_bytes[15m])",
        "max_over_time(memory_bytes[15m])", "count_over_time(memory_bytes[15m])", "last_over_time(memory_bytes[15m])",
        "stddev_over_time(memory_bytes[30m])", "quantile_over_time(0.9, memory_bytes[30m])",
        "changes(memory_bytes[30m])", "resets(http_requests_total[3h])",
        "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.5, sum by (le, instance) (rate(request_duration_seconds_bucket[10m])))",
        "histogram_quantile(0.99, rate(request_duration_seconds_bucket[5m]))",
        "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
        "rate(http_requests_total[5m]) > 0.5", "rate(http_requests_total[5m]) > bool 0.5",
        "0.5 < rate(http_requests_total[5m])", "http_requests_total >= 100",
        "memory_bytes / on (instance) memory_limit_bytes", "memory_bytes > on (instance) memory_limit_bytes * 0.5",
        "memory_bytes / ignoring (zone) memory_limit_bytes",
        #"http_requests_total{code="200"} / on (instance, method) group_left http_requests_total{code="500"}"#,
        #"http_requests_total{code="500"} + on (instance, method) group_left (zone) memory_zone_info"#,
        #"http_requests_total{code="500"} and on (instance) memory_bytes > 5e8"#,
        #"http_requests_total{code="500"} or memory_bytes"#,
        #"http_requests_total unless on (code) http_requests_total{code="500"}"#,
        "1 + 2 * 3 ^ 2 ^ 0.5", "-2 ^ 2", "scalar(sum(memory_limit_bytes))", "time()", "vector(1) + 1",
        "-memory_bytes", "abs(-memory_bytes)", "clamp_max(memory_bytes, 6e8)", "clamp(memory_bytes, 4e8, 6e8)",
        "round(memory_bytes, 1000)", "sqrt(memory_bytes)", "ln(memory_bytes)",
        "memory_bytes offset 10m", "rate(http_requests_total[10m] offset 5m)",
        #"absent(nonexistent_metric{job="x"})"#, "absent(memory_bytes)",
        "memory_bytes % 7", "http_requests_total{method=\"GET\"} == bool http_requests_total{method=\"GET\"}",
        // Windows of 30 minutes and more are read as 5-minute rollups with raw edges (adr/0044).
        "increase(http_requests_total[2h])", "rate(http_requests_total[150m] offset 7m)", "delta(memory_bytes[2h])",
        "resets(http_requests_total[2h])", "changes(memory_bytes[2h])", "count_over_time(memory_bytes[2h])",
        "sum_over_time(memory_bytes[90m])", "avg_over_time(memory_bytes[2h])", "min_over_time(memory_bytes[2h])",
        "max_over_time(memory_bytes[2h])", "last_over_time(memory_bytes[45m])",
        #"sum(rate(http_requests_total{code="500"}[2h])) / sum(rate(http_requests_total[2h]))"#,
        #"sum(increase(http_requests_total{code!~"5.."}[2h])) / sum(increase(http_requests_total[2h]))"#,
        "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[1h])))",
    ]

    @Test func embeddedEvaluatorAgreesWithPrometheus() throws {
        let folder = ScratchFolder("prometheus-comparison")
        let now = Int64(Date().timeIntervalSince1970) * 1000
        let data = MetricsDataSet(end: now - 10 * 60_000)
        try Data(data.openMetrics.utf8).write(to: URL(fileURLWithPath: folder("data.om")))

        let blocks = try run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", folder("data.om"), folder("prometheus")])
        #expect(blocks.status == 0, "\(blocks.stderr)")
        let server = try PrometheusServer(dataFolder: folder("prometheus"), scratch: folder)
        defer { server.stop() }

        let root = folder("ws")
        #expect(try ratchet(["init", root], in: folder.path).status == 0)
        for name in ["local", "remote"] {
            #expect(try ratchet(["service", "add", name, "--template", "kv-cache"], in: root).status == 0)
        }
        try pointServiceAtPrometheus(root + "/services/remote", url: server.url)
        let imported = try ratchet(["metrics", "import", "--service", "local", folder("data.om"), "--json"], in: root)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("\"stored\" : \(data.sampleCount)"), "\(imported.stdout)")

        // Inside the data, near its start (windows reaching before the first sample), and at a jittered instant.
        let times = [now - 15 * 60_000, now - 60 * 60_000 + 3_500, data.start + 4 * 60_000 + 250]
        var compared = 0
        for expression in Self.expressions {
            for time in times {
                let at = String(format: "%.3f", Double(time) / 1000)
                let ours = try ratchet(["query", "--service", "local", "--time", at, "--json", "--", expression], in: root)
                let theirs = try ratchet(["query", "--service", "remote", "--time", at, "--json", "--", expression], in: root)
                #expect(ours.status == 0 && theirs.status == 0, "\(expression) @\(at): \(ours.stderr) | \(theirs.stderr)")
                guard ours.status == 0 && theirs.status == 0 else { continue }
                let difference = QueryData.difference(try QueryData(ours.stdout), try QueryData(theirs.stdout))
                #expect(difference == nil, "\(expression) @\(at): \(difference ?? "")\nratchet:    \(ours.stdout)prometheus: \(theirs.stdout)")
                compared += 1
            }
        }
        #expect(compared == Self.expressions.count * times.count)
    }

    /// An SLO over counters with a restart inside its window (series b/200/GET of the data set
    /// drops to 3 half-way): `observe` counts its events as Prometheus's
    /// `sum(increase(good[w])) / sum(increase(total[w]))` (adr/0061), on the embedded store and
    /// through `metrics.prometheus`. Every window of the SLO reaches before the data's first
    /// sample and past its last by more than a scrape interval, so each is the same at any
    /// instant of the test and the answers are compared within a relative 1e-9.
    @Test func sloEventsCountACounterResetAsPrometheusIncreaseDoes() throws {
        let folder = ScratchFolder("prometheus-slo")
        let data = MetricsDataSet(end: Int64(Date().timeIntervalSince1970) * 1000 - 10 * 60_000)
        try Data(data.openMetrics.utf8).write(to: URL(fileURLWithPath: folder("data.om")))
        #expect(try run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", folder("data.om"), folder("prometheus")]).status == 0)
        let server = try PrometheusServer(dataFolder: folder("prometheus"), scratch: folder)
        defer { server.stop() }
        let root = folder("ws")
        #expect(try ratchet(["init", root], in: folder.path).status == 0)
        let slos = """
            slos:
              - name: availability
                objective: 0.99
                window: 30d
                good: sum(http_requests_total{code!~"5.."})
                total: sum(http_requests_total)
                burn_rate_policy: [{long: 1d, short: 6h, factor: 1000, severity: ticket}]

            """
        for name in ["local", "remote"] {
            #expect(try ratchet(["service", "add", name, "--template", "kv-cache"], in: root).status == 0)
            try git(["rm", "-q", "invariants.yaml"], in: root + "/services/\(name)")
            try Data(slos.utf8).write(to: URL(fileURLWithPath: root + "/services/\(name)/slos.yaml"))
            try pointServiceAtPrometheus(root + "/services/\(name)", url: name == "remote" ? server.url : nil)
        }
        #expect(try ratchet(["metrics", "import", "--service", "local", folder("data.om")], in: root).status == 0)

        func prometheus(_ expression: String) throws -> Double {
            let answer = try ratchet(["query", "--service", "remote", "--json", "--", expression], in: root)
            return try #require(QueryData(answer.stdout).series.values.first?.first, "\(expression): \(answer.stdout)\(answer.stderr)")
        }
        let good = try prometheus(#"sum(increase(http_requests_total{code!~"5.."}[30d]))"#)
        let total = try prometheus("sum(increase(http_requests_total[30d]))")
        let ratio6h = try prometheus(#"sum(increase(http_requests_total{code!~"5.."}[6h])) / sum(increase(http_requests_total[6h]))"#)
        let restarted = try prometheus(#"increase(http_requests_total{instance="b", code="200", method="GET"}[30d])"#)
        let withoutReset = try prometheus(#"last_over_time(http_requests_total{instance="b", code="200", method="GET"}[1h])"#)
        #expect(restarted > withoutReset, "the restart is counted: \(restarted) vs its last value \(withoutReset)")
        func near(_ value: Any?, _ expected: Double) -> Bool { (value as? Double).map { abs($0 - expected) <= 1e-9 * abs(expected) } ?? false }
        for name in ["local", "remote"] {
            let observed = try ratchet(["observe", "--service", name, "--json", "--no-file"], in: root)
            #expect(observed.status == 0, "\(observed.stderr)")
            let check = try #require((try JSONSerialization.jsonObject(with: Data(observed.stdout.utf8)) as? [String: Any])?["checks"] as? [[String: Any]]).first
            let slo = check?["slo"] as? [String: Any] ?? [:]
            #expect(near(slo["good"], good) && near(slo["total"], total) && near(slo["error_ratio"], 1 - good / total), "\(name): \(slo)")
            let pair = (slo["burn_rates"] as? [[String: Any]])?.first ?? [:]
            #expect(near(pair["short_burn_rate"], (1 - ratio6h) / 0.01) && near(pair["long_burn_rate"], (1 - good / total) / 0.01), "\(name): \(pair)")
        }
    }

    /// Label values holding combining marks (U+0301) and a prepended character (U+0600) next to
    /// quotes and braces (adr/0066): our lexer reads scalars as Prometheus's reads runes, so every
    /// expression selects the same series from both, whether a value is written as its scalars or
    /// as the `\uXXXX` escapes `PromQL.render` writes; and the scoped rendering of the hostile
    /// review's query (as the `metrics` tool sends it) reads only the `svc` service from Prometheus.
    @Test func labelValuesWithCombiningMarksReadAlike() throws {
        let folder = ScratchFolder("prometheus-unicode")
        let (p, m) = ("\u{0600}", "\u{0301}")
        let values = [p, m, "\"" + m, p + "\"", "a" + m + "b", "}" + m + " or {", "x\u{1F600}", "e" + m]
        let end = Int64(Date().timeIntervalSince1970) - 600
        var text = "# TYPE unicode counter\n"
        for service in ["svc", "other"] {
            for (index, value) in values.enumerated() {
                // Scalar by scalar: Foundation's replacingOccurrences does not see a `"` that U+0301 joins.
                let escaped = String(String.UnicodeScalarView(value.unicodeScalars.flatMap { $0 == "\"" || $0 == "\\" ? ["\\", $0] : [$0] }))
                for t in stride(from: end - 1800, through: end, by: 15) { text += "unicode_total{service=\"\(service)\",v=\"\(escaped)\"} \(index + 1) \(t)\n" }
            }
        }
        try Data((text + "# EOF\n").utf8).write(to: URL(fileURLWithPath: folder("data.om")))
        #expect(try run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", folder("data.om"), folder("prometheus")]).status == 0)
        let server = try PrometheusServer(dataFolder: folder("prometheus"), scratch: folder)
        defer { server.stop() }
        let root = folder("ws")
        #expect(try ratchet(["init", root], in: folder.path).status == 0)
        for name in ["local", "remote"] { #expect(try ratchet(["service", "add", name, "--template", "kv-cache"], in: root).status == 0) }
        try pointServiceAtPrometheus(root + "/services/remote", url: server.url)
        #expect(try ratchet(["metrics", "import", "--service", "local", folder("data.om")], in: root).status == 0)

        let scoped = #"({job="\u0600", service="svc"} or {__name__=~"\u0301?.+|\u0600", service="svc"}) or {x!="\u0301", __name__=~"unicode.+", service="svc"}"#
        let expressions = [
            "unicode_total", "count by (v) (unicode_total)", "sum by (service) (unicode_total)",
            "unicode_total{v=\"\(p)\"}", #"unicode_total{v="\u0600"}"#, "unicode_total{v=\"\\\"\(m)\"}", #"unicode_total{v="\"\u0301"}"#,
            "unicode_total{v=\"}\(m) or {\"}", "unicode_total{v=\"e\(m)\"}", #"unicode_total{v="e\u0301"}"#, #"unicode_total{v="x\U0001F600"}"#,
            "unicode_total{v=~\"\(m).*|.*\(p)\"}", "unicode_total{v!~\".*\(m).*\"}", "unicode_total{v=\"x\u{1F600}\"}",
            "{job=\"\(p)\"} or {__name__=~\"\(m)?.+|\(p)\"} or {x!=\"\(m)\", __name__=~\"unicode.+\"}", scoped,
        ]
        let at = String(end)
        for expression in expressions {
            let ours = try ratchet(["query", "--service", "local", "--time", at, "--json", "--", expression], in: root)
            let theirs = try ratchet(["query", "--service", "remote", "--time", at, "--json", "--", expression], in: root)
            #expect(ours.status == 0 && theirs.status == 0, "\(expression): \(ours.stderr) | \(theirs.stderr)")
            guard ours.status == 0 && theirs.status == 0 else { continue }
            let (a, b) = (try QueryData(ours.stdout), try QueryData(theirs.stdout))
            #expect(QueryData.difference(a, b) == nil && !b.series.isEmpty, "\(expression): \(QueryData.difference(a, b) ?? "no series")")
            if expression == scoped { #expect(b.series.count == values.count && b.series.keys.allSatisfy { $0.contains("service=svc,") }, "\(b.series.keys)") }
        }
    }

    /// Commits `metrics: {prometheus: URL}` (or no metrics source) into the service's
    /// service.yaml on main (as a person would).
    private func pointServiceAtPrometheus(_ service: String, url: String?) throws {
        let file = service + "/service.yaml"
        var text = try String(contentsOfFile: file, encoding: .utf8)
        text = text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("metrics:") && !$0.hasPrefix("  scrape:") }
            .joined(separator: "\n")
        text += url.map { "\nmetrics:\n  prometheus: \($0)\n" } ?? ""
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        try git(["add", "-A"], in: service)
        try git(["commit", "-qm", "Query the test's Prometheus"], in: service)
    }
}

/// A deterministic data set: counters with a reset, gauges with a NaN, a classic histogram,
/// info-style series; one sample per series every 15 s with scrape jitter in 1/8 s steps
/// (exact in binary, so seconds → milliseconds is the same for promtool and for us).
struct MetricsDataSet {
    let start: Int64
    let end: Int64
    private(set) var openMetrics = ""
    private(set) var sampleCount = 0

    init(end: Int64, hours: Int64 = 3) {
        self.end = end
        start = end - hours * 3_600_000
        var random = SplitMix(state: 20261202)
        let steps = Int((end - start) / 15_000)
        var families: [(header: String, series: [(String, [(Int64, String)])])] = []
        let instances = ["a", "b"]
        var counters: [(String, [(Int64, String)])] = []
        for instance in instances {
            for code in ["200", "404", "500"] {
                for method in ["GET", "POST"] {
                    var value = Double(random.next() % 1000)
                    var samples: [(Int64, String)] = []
                    for step in 0...steps {
                        value += Double(random.next() % (code == "200" ? 40 : 4))
                        if instance == "b" && code == "200" && method == "GET" && step == steps / 2 { value = 3 }   // a restart
                        samples.append((time(step, &random), Self.format(value)))
                    }
                    counters.append(("http_requests_total{code=\"\(code)\",instance=\"\(instance)\",method=\"\(method)\"}", samples))
                }
            }
        }
        families.append(("# TYPE http_requests counter", counters))
        var gauges: [(String, [(Int64, String)])] = []
        var limits: [(String, [(Int64, String)])] = []
        var zones: [(String, [(Int64, String)])] = []
        for (index, instance) in instances.enumerated() {
            var samples: [(Int64, String)] = []
            for step in 0...steps {
                let value = 4e8 + Double(random.next() % 300_000_000) + Double(random.next() % 1000) / 7
                // One NaN in b, 30 minutes before the end: it shows in the windows that reach it.
                samples.append((time(step, &random), instance == "b" && step == steps - 120 ? "NaN" : Self.format(value)))
            }
            gauges.append(("memory_bytes{instance=\"\(instance)\",zone=\"z\(index)\"}", samples))
            limits.append(("memory_limit_bytes{instance=\"\(instance)\"}", (0...steps).map { (time($0, &random), Self.format(1e9 * Double(index + 1))) }))
            zones.append(("memory_zone_info{instance=\"\(instance)\",method=\"POST\",zone=\"z\(index)\"}", (0...steps).map { (time($0, &random), "1") }))
        }
        families.append(("# TYPE memory_bytes gauge", gauges))
        families.append(("# TYPE memory_limit_bytes gauge", limits))
        families.append(("# TYPE memory_zone_info gauge", zones))
        families.append(("# TYPE request_duration_seconds histogram", Self.histogram(instances, steps, &random, time)))
        for family in families {
            openMetrics += family.header + "\n"
            for (series, samples) in family.series {
                for (time, value) in samples {
                    openMetrics += "\(series) \(value) \(time / 1000).\(String(format: "%03d", time % 1000))\n"
                    sampleCount += 1
                }
            }
        }
        openMetrics += "# EOF\n"
    }

    /// Step `step`'s scrape time: every 15 s, late by 0–875 ms in 1/8 s steps.
    private func time(_ step: Int, _ random: inout SplitMix) -> Int64 {
        start + Int64(step) * 15_000 + Int64(random.next() % 8) * 125
    }

    private static func histogram(_ instances: [String], _ steps: Int, _ random: inout SplitMix,
                                  _ time: (Int, inout SplitMix) -> Int64) -> [(String, [(Int64, String)])] {
        let bounds = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf"]
        var out: [(String, [(Int64, String)])] = []
        for instance in instances {
            var counts = [Double](repeating: 0, count: bounds.count)
            var sum = 0.0
            var series = [[(Int64, String)]](repeating: [], count: bounds.count + 2)
            for step in 0...steps {
                let at = time(step, &random)
                for _ in 0..<Int(random.next() % 20) {
                    let observation = Double(random.next() % 1_200) / 1000
                    sum += observation
                    for (index, bound) in bounds.enumerated() where observation <= (Double(bound) ?? .infinity) { counts[index] += 1 }
                }
                for index in bounds.indices { series[index].append((at, format(counts[index]))) }
                series[bounds.count].append((at, format(sum)))
                series[bounds.count + 1].append((at, format(counts[bounds.count - 1])))
            }
            for (index, bound) in bounds.enumerated() {
                out.append(("request_duration_seconds_bucket{instance=\"\(instance)\",le=\"\(bound)\"}", series[index]))
            }
            out.append(("request_duration_seconds_sum{instance=\"\(instance)\"}", series[bounds.count]))
            out.append(("request_duration_seconds_count{instance=\"\(instance)\"}", series[bounds.count + 1]))
        }
        return out
    }

    /// Round-trippable decimal (Swift's shortest representation).
    static func format(_ value: Double) -> String { "\(value)" }
}

/// A `prometheus` process on a free loopback port, over a data folder, stopped by `stop()`.
final class PrometheusServer: @unchecked Sendable {
    let url: String
    private let process = Process()

    /// Starts on `port` (default: a free one) and returns once it is ready.
    init(dataFolder: String, scratch: ScratchFolder, port: Int? = nil) throws {
        let port = try port ?? freeLoopbackPort()
        url = "http://127.0.0.1:\(port)"
        let config = scratch("prometheus.yml")
        try Data("global:\n  scrape_interval: 1h\nscrape_configs: []\n".utf8).write(to: URL(fileURLWithPath: config))
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        process.arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(dataFolder)", "--storage.tsdb.retention.time=15d",
                             "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        try waitUntilReady()
    }

    /// Polls `/-/ready` until it answers 200 (Prometheus has opened its TSDB and the backfilled blocks).
    private func waitUntilReady() throws {
        for _ in 0..<600 {
            guard process.isRunning else { throw TestFailure("prometheus exited with status \(process.terminationStatus)") }
            if let status = httpStatus(url + "/-/ready"), status == 200 { return }
            usleep(100_000)   // polling interval, not synchronisation: the loop ends on the answer
        }
        throw TestFailure("prometheus at \(url) not ready after 60 s")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

/// The HTTP status of a GET, or nil when nothing answers.
func httpStatus(_ url: String) -> Int? {
    let output = try? run(["python3", "-c", """
        import sys, urllib.request
        try:
            print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
        except Exception as e:
            print(getattr(e, 'code', 0))
        """, url])
    return output.flatMap { Int($0.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) }.flatMap { $0 == 0 ? nil : $0 }
}

/// A port nothing listens on right now (bound to 0 and released).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw TestFailure("bind failed") }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A `/api/v1/query` data object, for comparing two answers.
struct QueryData {
    var resultType: String
    /// Series (labels as `k=v,…` sorted) → values (one for a vector or scalar).
    var series: [String: [Double]]

    init(_ json: String) throws {
        guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let type = object["resultType"] as? String else { throw TestFailure("not a data object: \(json)") }
        resultType = type
        series = [:]
        func value(_ any: Any?) -> Double {
            guard let pair = any as? [Any], let text = pair.last as? String else { return -.greatestFiniteMagnitude }
            switch text { case "NaN": return .nan; case "+Inf": return .infinity; case "-Inf": return -.infinity; default: return Double(text) ?? -.greatestFiniteMagnitude }
        }
        switch type {
        case "scalar", "string": series[""] = [value(object["result"])]
        default:
            for element in object["result"] as? [[String: Any]] ?? [] {
                let labels = ((element["metric"] as? [String: String]) ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                series[labels] = element["value"].map { [value($0)] } ?? ((element["values"] as? [Any]) ?? []).map(value)
            }
        }
    }

    /// Nil when both hold the same series with values within a relative 1e-9; else what differs.
    static func difference(_ a: QueryData, _ b: QueryData) -> String? {
        if a.resultType != b.resultType { return "resultType \(a.resultType) vs \(b.resultType)" }
        if Set(a.series.keys) != Set(b.series.keys) {
            return "series only in ratchet: \(Set(a.series.keys).subtracting(b.series.keys).sorted()); only in prometheus: \(Set(b.series.keys).subtracting(a.series.keys).sorted())"
        }
        for (labels, values) in a.series {
            let other = b.series[labels]!
            guard values.count == other.count else { return "\(labels): \(values.count) vs \(other.count) values" }
            for (x, y) in zip(values, other) where !(x == y || (x.isNaN && y.isNaN) || abs(x - y) <= 1e-9 * max(abs(x), abs(y))) {
                return "\(labels): \(x) vs \(y)"
            }
        }
        return nil
    }
}

import Foundation
import RatchetTestSupport
import Testing

/// The agent's `metrics` tool against a real Prometheus that holds two services' series: an
/// agent working on `svc` reads only series labelled `service="svc"` (docs/security.md), while
/// a person's `ratchet query` still reads the whole server.
@Suite("Metrics tool scope (hostile agent, real Prometheus)")
struct MetricsToolScopeTests {
    @Test func anAgentQueryingAnotherServicesSeriesGetsNothingOfIt() throws {
        let folder = ScratchFolder("metrics-scope")
        let now = Int64(Date().timeIntervalSince1970)
        // Samples every 15 s from an hour before now to an hour after (the attempt runs in between).
        var text = "# TYPE up gauge\n"
        for service in ["svc", "other"] { for t in stride(from: now - 3600, through: now + 3600, by: 15) { text += "up{service=\"\(service)\"} 1 \(t)\n" } }
        text += "# TYPE secret_total counter\n"
        for t in stride(from: now - 3600, through: now + 3600, by: 15) { text += "secret_total{service=\"other\"} 424242 \(t)\n" }
        text += "# TYPE own_total counter\n"
        for t in stride(from: now - 3600, through: now + 3600, by: 15) { text += "own_total{service=\"svc\"} 17 \(t)\n" }
        try Data((text + "# EOF\n").utf8).write(to: URL(fileURLWithPath: folder("data.om")))
        let blocks = try run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", folder("data.om"), folder("prometheus")])
        #expect(blocks.status == 0, "\(blocks.stderr)")
        let server = try PrometheusServer(dataFolder: folder("prometheus"), scratch: folder)
        defer { server.stop() }

        let ws = try Identity.caller.workspace(folder, edits: [("  scrape: http://127.0.0.1:8080/metrics", "  prometheus: \(server.url)")])
        // A person's query is not scoped: the other service's series is there to be stolen.
        #expect(try ws.expectOK(["query", "--service", "svc", "secret_total"]).stdout.contains("424242"))
        let queries = [
            "secret_total", #"secret_total{service="other"}"#, #"{__name__=~".+"}"#, #"{service=~".+"}"#, "sum by (service) (up)",
            #"up{service="other"} or secret_total"#, #"count({__name__=~"secret.*"})"#, "up", "own_total",
            #"label_replace(secret_total, "service", "svc", "", "")"#, "secret_total[10m:1m]",
            // The hostile review's query (adr/0066): U+0600 before a quote and U+0301 after one. Read as
            // Prometheus reads it, its last selector matches the empty value: refused. The variant
            // that parses is scoped in all three selectors.
            "{job=\"\u{0600}\"} or {__name__=~\"\u{0301}?.+|\u{0600}\"} or {x!=\"\u{0301}\"}",
            "{job=\"\u{0600}\"} or {__name__=~\"\u{0301}?.+|\u{0600}\"} or {x!=\"\u{0301}\", __name__=~\".+\"}",
        ]
        let agent = queries.map { "ratchet tool metrics '\($0)' || true" }.joined(separator: "; ") + "; echo x > x.txt; exit 0"
        _ = try ws.attack(agent)
        let trajectory = try JSONSerialization.jsonObject(with: Data(ws.expectOK(["trajectory", "show", "T-1", "--json"]).stdout.utf8)) as? [String: Any]
        let calls = (trajectory?["steps"] as? [[String: Any]] ?? []).filter { ($0["action"] as? [String: Any])?["tool"] as? String == "metrics" }
        #expect(calls.count == queries.count)
        for (query, call) in zip(queries, calls) {
            let observation = call["observation"] as? [String: Any] ?? [:]
            let seen = (observation["output"] as? String ?? "") + String(describing: observation["data"] ?? "")
            #expect(!seen.contains("424242") && !seen.contains("other"), "\(query): \(seen)")
        }
        let output = { (index: Int) in (calls[index]["observation"] as? [String: Any])?["output"] as? String ?? "" }
        // Its own series are there; what cannot be scoped is refused.
        #expect(output(2).contains("own_total") && output(2).contains("up{") && output(7).contains(#"service="svc""#) && output(8).contains("17"))
        #expect(output(0) == "no data" && output(1) == "no data")
        #expect(output(12).contains("own_total") && output(12).contains("up{"), "\(output(12))")
        for refused in [9, 10, 11] { #expect((calls[refused]["observation"] as? [String: Any])?["ok"] as? Bool == false, "\(output(refused))") }
    }
}

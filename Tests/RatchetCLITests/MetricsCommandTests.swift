import Foundation
import RatchetTestSupport
import Testing

/// A workspace with service `svc` whose metrics are scraped from the file `page.prom` beside it.
private func makeMetricsWorkspace(_ folder: ScratchFolder) throws -> String {
    let root = folder("ws")
    #expect(try ratchet(["init", root], in: folder.path).status == 0)
    #expect(try ratchet(["service", "add", "svc", "--template", "kv-cache"], in: root).status == 0)
    let service = root + "/services/svc"
    let text = try String(contentsOfFile: service + "/service.yaml", encoding: .utf8)
        .replacingOccurrences(of: "scrape: http://127.0.0.1:8080/metrics", with: "scrape: \(folder("page.prom"))")
    try Data(text.utf8).write(to: URL(fileURLWithPath: service + "/service.yaml"))
    try git(["commit", "-qam", "Scrape a file"], in: service)
    try Data("# TYPE queue_depth gauge\nqueue_depth{queue=\"a\"} 3\nqueue_depth{queue=\"b\" 4\nqueue_depth{queue=\"c\"} 5\n".utf8)
        .write(to: URL(fileURLWithPath: folder("page.prom")))
    return root
}

private func expectOneErrorLine(_ output: Output, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(output.status != 0, sourceLocation: sourceLocation)
    let lines = output.stderr.split(separator: "\n").filter { !$0.isEmpty }
    #expect(lines.count == 1 && lines[0].hasPrefix("error: ") && output.stderr.contains(text), "stderr was: \(output.stderr)", sourceLocation: sourceLocation)
}

private func count(_ root: String, _ sql: String) throws -> String {
    try run(["sqlite3", root + "/ratchet.sqlite", sql], in: root).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite("Metrics commands")
struct MetricsCommandTests {
    @Test func scrapeThenQueryPrintsPrometheusDataObject() throws {
        let folder = ScratchFolder()
        let root = try makeMetricsWorkspace(folder)
        let scrape = try ratchet(["metrics", "scrape", "--service", "svc", "--json"], in: root)
        #expect(scrape.status == 0, "\(scrape.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(scrape.stdout.utf8)) as? [String: Any])
        #expect(report["up"] as? Bool == true && report["samplesScraped"] as? Int == 2)
        #expect((report["lineErrors"] as? [String])?.first?.hasPrefix("line 3: ") == true)
        let now = Int(Date().timeIntervalSince1970) + 1
        let query = try ratchet(["query", "--service", "svc", "--time", "\(now)", "--json", "sum by (job) (queue_depth) * 2"], in: root)
        #expect(query.status == 0, "\(query.stderr)")
        #expect(query.stdout == #"{"resultType":"vector","result":[{"metric":{"job":"svc"},"value":[\#(now),"16"]}]}"# + "\n")
        let scalar = try ratchet(["query", "--service", "svc", "--time", "2026-12-02T00:00:00.5Z", "--json", "1 / 0"], in: root)
        #expect(scalar.stdout == #"{"resultType":"scalar","result":[1796169600.5,"+Inf"]}"# + "\n")
        let table = try ratchet(["query", "--service", "svc", "up"], in: root)
        #expect(table.stdout.contains(#"up{instance="\#(folder("page.prom"))", job="svc"} => 1"#), "\(table.stdout)")
    }

    @Test func badExpressionsAndTimesAreOneErrorLine() throws {
        let folder = ScratchFolder()
        let root = try makeMetricsWorkspace(folder)
        expectOneErrorLine(try ratchet(["query", "--service", "svc", "rate(queue_depth[5m]) + nosuch(1)"], in: root),
                           containing: #"parse error at char 25: unknown function with name "nosuch""#)
        expectOneErrorLine(try ratchet(["query", "--service", "svc", "sum(rate(x[5m])"], in: root), containing: "parse error at char 16: unexpected end of input")
        expectOneErrorLine(try ratchet(["query", "--service", "svc", "x{a=}"], in: root), containing: "parse error at char 5:")
        expectOneErrorLine(try ratchet(["query", "--service", "svc", "--time", "yesterday", "x"], in: root), containing: "invalid time 'yesterday'")
        expectOneErrorLine(try ratchet(["query", "--service", "nosuch", "x"], in: root), containing: "no service named 'nosuch'")
        expectOneErrorLine(try ratchet(["metrics", "scrape", "--service", "svc", "--timeout", "0"], in: root), containing: "invalid timeout")
    }

    @Test func importIsAllOrNothing() throws {
        let folder = ScratchFolder()
        let root = try makeMetricsWorkspace(folder)
        try Data("# TYPE a counter\na_total 1 1700000000\na_total{x=\"1\" 2 1700000015\n# EOF\n".utf8).write(to: URL(fileURLWithPath: folder("bad.om")))
        expectOneErrorLine(try ratchet(["metrics", "import", "--service", "svc", folder("bad.om")], in: root), containing: "bad.om: line 3: ")
        expectOneErrorLine(try ratchet(["metrics", "import", "--service", "svc", folder("missing.om")], in: root), containing: "cannot read")
        #expect(try count(root, "SELECT count(*) FROM metricSample") == "0")
        #expect(try count(root, "SELECT count(*) FROM event WHERE kind LIKE 'metrics.%'") == "0")
        let now = Int(Date().timeIntervalSince1970)
        try Data("# TYPE a counter\na_total 1 \(now - 30)\na_total 4 \(now - 15)\n# EOF\n".utf8).write(to: URL(fileURLWithPath: folder("good.om")))
        let imported = try ratchet(["metrics", "import", "--service", "svc", folder("good.om")], in: root)
        #expect(imported.status == 0 && imported.stdout.contains("imported 2 samples (openMetrics) into svc: 2 stored"), "\(imported.stdout)\(imported.stderr)")
        #expect(try count(root, "SELECT count(*) FROM event WHERE kind = 'metrics.imported'") == "1")
    }

    /// The crash suite's metrics part: killed at either failpoint, nothing of the write remains
    /// and the store is sound; run again, it completes.
    @Test func killedWhileWritingSamplesLeavesNothingHalfWritten() throws {
        let folder = ScratchFolder()
        let root = try makeMetricsWorkspace(folder)
        let now = Int(Date().timeIntervalSince1970)
        try Data("b 1 \(now - 15)000\nb 2 \(now)000\n".utf8).write(to: URL(fileURLWithPath: folder("good.prom")))
        let commands: [(String, [String])] = [
            ("metrics.scrape-written", ["metrics", "scrape", "--service", "svc"]),
            ("metrics.import-written", ["metrics", "import", "--service", "svc", folder("good.prom")]),
        ]
        for (failpoint, command) in commands {
            let killed = try ratchet(command, in: root, environment: ["RATCHET_FAILPOINTS": "\(failpoint)=crash"])
            #expect(killed.status != 0, "\(failpoint)")
            #expect(try count(root, "PRAGMA integrity_check") == "ok")
            #expect(try count(root, "SELECT count(*) FROM metricSample") == "0", "\(failpoint)")
            #expect(try count(root, "SELECT count(*) FROM metricRollup") == "0", "\(failpoint)")
            #expect(try count(root, "SELECT count(*) FROM event WHERE kind LIKE 'metrics.%'") == "0", "\(failpoint)")
        }
        for (_, command) in commands { #expect(try ratchet(command, in: root).status == 0) }
        #expect(try count(root, "SELECT count(*) FROM event WHERE kind LIKE 'metrics.%'") == "2")
    }
}

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
        #expect(try count(root, "SELECT count(*) FROM metricChunk") == "0")
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
            #expect(try count(root, "SELECT count(*) FROM metricChunk") == "0", "\(failpoint)")
            #expect(try count(root, "SELECT count(*) FROM metricRollup") == "0", "\(failpoint)")
            #expect(try count(root, "SELECT count(*) FROM event WHERE kind LIKE 'metrics.%'") == "0", "\(failpoint)")
        }
        for (_, command) in commands { #expect(try ratchet(command, in: root).status == 0) }
        #expect(try count(root, "SELECT count(*) FROM event WHERE kind LIKE 'metrics.%'") == "2")
    }

    /// A target is landed code: a page without end costs a bounded amount of memory and time,
    /// and a page over the sample limit fails whole; either way `up` is 0 and the reason is kept.
    @Test func aHostileTargetCannotExhaustTheScraper() throws {
        let folder = ScratchFolder()
        let root = try makeMetricsWorkspace(folder)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-c", """
            import socket, threading, sys
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
            print(s.getsockname()[1], flush=True)
            chunk = b"kvcache_hits_total 1\\n" * 50000
            def serve(c):
                try:
                    c.recv(65536)
                    c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nConnection: close\\r\\n\\r\\n")
                    while True: c.sendall(chunk)
                except Exception: pass
            while True:
                c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
            """]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() } // SIGTERM may be masked in the child
        // The port line is printed once the socket listens: reading it is the synchronisation.
        let port = try #require(Int(try firstLine(of: output)))
        let yaml = root + "/services/svc/service.yaml"
        try String(contentsOfFile: yaml, encoding: .utf8).replacingOccurrences(of: "scrape: \(folder("page.prom"))", with: "scrape: http://127.0.0.1:\(port)/metrics")
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        try git(["commit", "-qam", "Scrape a hostile target"], in: root + "/services/svc")
        let scraped = try run(["/usr/bin/time", "-f", "peak-kib %M", ratchetBinary, "metrics", "scrape", "--service", "svc", "--timeout", "30", "--json"], in: root)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(scraped.stdout.utf8)) as? [String: Any], "\(scraped.stderr)")
        #expect(report["up"] as? Bool == false && (report["error"] as? String)?.contains("larger than 16777216 bytes") == true, "\(report)")
        let peak = try #require(scraped.stderr.split(separator: "\n").last { $0.hasPrefix("peak-kib ") }.flatMap { Int($0.dropFirst(9)) })
        // Unbounded, this took 1.3 GB; through URLSession's cancel, 0.25-1.2 GB (its queue
        // fell behind a fast stream); read by Ratchet itself (adr/0072), 65 MB.
        #expect(peak < 200_000, "peak memory \(peak) KiB for a 16 MiB page limit")

        // The same over https (the curl tool, adr/0073): curl is killed at the limit, without a length.
        let tls = try HTTPSServer(folder)
        defer { tls.stop() }
        try String(contentsOfFile: yaml, encoding: .utf8).replacingOccurrences(of: "scrape: http://127.0.0.1:\(port)/metrics", with: "scrape: \(tls.url("/endless"))")
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        try git(["commit", "-qam", "Scrape a hostile https target"], in: root + "/services/svc")
        let overTLS = try run(["/usr/bin/time", "-f", "peak-kib %M", ratchetBinary, "metrics", "scrape", "--service", "svc", "--timeout", "30", "--json"],
                              in: root, environment: ["CURL_CA_BUNDLE": tls.certificate])
        let tlsReport = try #require(try JSONSerialization.jsonObject(with: Data(overTLS.stdout.utf8)) as? [String: Any], "\(overTLS.stderr)")
        #expect(tlsReport["up"] as? Bool == false && (tlsReport["error"] as? String) == "GET \(tls.url("/endless")): answer larger than 16777216 bytes", "\(tlsReport)")
        let tlsPeak = try #require(overTLS.stderr.split(separator: "\n").last { $0.hasPrefix("peak-kib ") }.flatMap { Int($0.dropFirst(9)) })
        #expect(tlsPeak < 200_000, "peak memory \(tlsPeak) KiB for a 16 MiB page limit over https")

        // A page over the sample limit: nothing of it is stored.
        let many = (0..<200_001).map { "flood{i=\"\($0)\"} 1" }.joined(separator: "\n") + "\n"
        try Data(many.utf8).write(to: URL(fileURLWithPath: folder("page.prom")))
        try String(contentsOfFile: yaml, encoding: .utf8).replacingOccurrences(of: "scrape: \(tls.url("/endless"))", with: "scrape: \(folder("page.prom"))")
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        try git(["commit", "-qam", "Scrape the file again"], in: root + "/services/svc")
        let flooded = try #require(try JSONSerialization.jsonObject(with: Data(try ratchet(["metrics", "scrape", "--service", "svc", "--json"], in: root).stdout.utf8)) as? [String: Any])
        #expect(flooded["up"] as? Bool == false && (flooded["error"] as? String)?.contains("over the limit of 200000") == true, "\(flooded)")
        #expect(try count(root, "SELECT COUNT(*) FROM metricSeries WHERE name = 'flood'") == "0")

        // A file target that is a link (to a device without end) is refused, not followed.
        try FileManager.default.removeItem(atPath: folder("page.prom"))
        try FileManager.default.createSymbolicLink(atPath: folder("page.prom"), withDestinationPath: "/dev/zero")
        let linked = try #require(try JSONSerialization.jsonObject(with: Data(try ratchet(["metrics", "scrape", "--service", "svc", "--json"], in: root).stdout.utf8)) as? [String: Any])
        #expect(linked["up"] as? Bool == false && (linked["error"] as? String)?.contains("symbolic link") == true, "\(linked)")
    }
}

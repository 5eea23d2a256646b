import Foundation
import RatchetTestSupport
import Testing

@Suite("Review commands")
struct ReviewCommandTests {
    /// A workspace with one landed ticket, made through the binary.
    private func landedWorkspace(_ folder: ScratchFolder) throws -> String {
        let root = folder("ws")
        #expect(try ratchet(["init", root], in: folder.path).status == 0)
        #expect(try ratchet(["service", "add", "svc", "--template", "kv-cache"], in: root).status == 0)
        try judgeCanaryWithoutTiming(service: root + "/services/svc")
        try git(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-qa", "--amend", "--no-edit"], in: root + "/services/svc")
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Raise <b>capacity</b> & more", "--objective", "Serve more keys"], in: root).status == 0)
        #expect(try ratchet(["work", "T-1", "--agent", "command:sed -i s/1024/2048/ config/cache.json"], in: root).status == 0)
        let merged = try ratchet(["merge", "T-1"], in: root)
        #expect(merged.status == 0, "\(merged.stderr)")
        return root
    }

    private func expectOneErrorLine(_ output: Output, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(output.status != 0 && output.stdout.isEmpty, sourceLocation: sourceLocation)
        #expect(output.stderr.hasPrefix("error: ") && output.stderr.filter { $0 == "\n" }.count == 1 && output.stderr.contains(text),
                "stderr: \(output.stderr)", sourceLocation: sourceLocation)
    }

    @Test func summaryRefusesBadWeeksAndPrintsEveryFormat() throws {
        let folder = ScratchFolder()
        let root = try landedWorkspace(folder)
        expectOneErrorLine(try ratchet(["summary", "--week", "2026-13"], in: root), "invalid week '2026-13'")
        expectOneErrorLine(try ratchet(["summary", "--week", "2999-W01"], in: root), "has not started yet")
        expectOneErrorLine(try ratchet(["summary", "--format", "pdf"], in: root), "invalid format 'pdf'")
        expectOneErrorLine(try ratchet(["summary", "--output", folder("missing/summary.md")], in: root), "cannot write")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/reports").isEmpty)

        let json = try ratchet(["summary", "--json"], in: root)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(document["schema"] as? String == "ratchet.summary/v1")
        let landing = try #require(((document["services"] as? [[String: Any]])?.first?["landings"] as? [[String: Any]])?.first)
        #expect(landing["ticket"] as? String == "T-1" && landing["objective"] as? String == "Serve more keys")
        #expect(try git(["rev-parse", "main"], in: root + "/services/svc") == landing["sha"] as? String)

        let markdown = try ratchet(["summary"], in: root)
        #expect(markdown.status == 0 && markdown.stdout.contains("- **T-1** Raise <b>capacity</b> & more"))
        let week = try #require(document["week"] as? String)
        #expect(try String(contentsOfFile: root + "/reports/\(week).md", encoding: .utf8) == markdown.stdout)
        #expect(FileManager.default.fileExists(atPath: root + "/reports/\(week).json"))
    }

    @Test func theHTMLSummaryReadsWellInHeadlessChromium() throws {
        let folder = ScratchFolder()
        let root = try landedWorkspace(folder)
        let page = folder("summary.html")
        let written = try ratchet(["summary", "--format", "html", "--output", page], in: root)
        #expect(written.status == 0 && written.stdout.isEmpty, "\(written.stderr)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        // Self-contained: no scripts, no links to anything outside the file.
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("href="))
        #expect(html.contains("Raise &lt;b&gt;capacity&lt;/b&gt; &amp; more"))
        let chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(folder("chromium-profile"))"]
        let shot = try run(chromium + ["--window-size=1200,1600", "--screenshot=\(folder("summary.png"))", "file://\(page)"], in: folder.path)
        #expect(shot.status == 0, "\(shot.stderr)")
        let png = try Data(contentsOf: URL(fileURLWithPath: folder("summary.png")))
        #expect(png.count > 1000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        let dom = try run(chromium + ["--dump-dom", "file://\(page)"], in: folder.path)
        #expect(dom.status == 0)
        for text in ["<h1>Ratchet weekly summary", "<h2>svc</h2>", "Landed (1)", "Raise &lt;b&gt;capacity&lt;/b&gt; &amp; more",
                     "objective: Serve more keys", "Error budget left: availability no data yet, latency no data yet", "git -C \(root)/services/svc show "] {
            #expect(dom.stdout.contains(text), "page text lacks: \(text)")
        }
    }

    @Test func reindexPrintsWhatItReadAsJSON() throws {
        let folder = ScratchFolder()
        let root = try landedWorkspace(folder)
        let output = try ratchet(["reindex", "--json"], in: root)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(report["landings"] as? Int == 1 && report["updated"] as? Int == 0 && report["services"] as? [String] == ["svc"])
    }

    @Test func reflectAndResolveThroughTheBinary() throws {
        let folder = ScratchFolder()
        let root = try landedWorkspace(folder)
        expectOneErrorLine(try ratchet(["reflect", "--window", "soon"], in: root), "invalid window 'soon'")
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Never works"], in: root).stdout == "T-2\n")
        for _ in 0..<3 { _ = try ratchet(["work", "T-2", "--agent", "command:exit 1"], in: root) }
        let output = try ratchet(["reflect", "--json"], in: root)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(report["filed"] as? [String] == ["T-3"])
        let drift = try #require((report["drift"] as? [[String: Any]])?.first)
        #expect(drift["status"] as? String == "skipped" && drift["reason"] as? String == "main's history is shorter than a week")
        expectOneErrorLine(try ratchet(["ticket", "resolve", "T-1", "--note", "done"], in: root), "T-1 is merged and cannot become resolved")
        let resolved = try ratchet(["ticket", "resolve", "T-3", "--note", "the agent needs a runbook", "--by", "alice"], in: root)
        #expect(resolved.status == 0 && resolved.stdout == "T-3 resolved\n")
        #expect(try ratchet(["ticket", "list", "--state", "resolved"], in: root).stdout.hasPrefix("T-3\tresolved"))
        let quiet = try ratchet(["reflect"], in: root)
        #expect(quiet.stdout.contains("quiet\tnon-convergence\tT-2"))
    }

    @Test func reviewStepsKilledAtTheirFailpointsConverge() throws {
        let folder = ScratchFolder()
        let root = try landedWorkspace(folder)
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Never works"], in: root).stdout == "T-2\n")
        for _ in 0..<3 { _ = try ratchet(["work", "T-2", "--agent", "command:exit 1"], in: root) }
        // reflect killed after filing its ticket, before saving the finding.
        let killed = try ratchet(["reflect"], in: root, environment: ["RATCHET_FAILPOINTS": "reflect.filed=crash"])
        #expect(killed.status == SIGKILL, "\(killed.stderr)")
        let again = try #require(try JSONSerialization.jsonObject(with: Data(try ratchet(["reflect", "--json"], in: root).stdout.utf8)) as? [String: Any])
        let finding = try #require((again["findings"] as? [[String: Any]])?.first { $0["kind"] as? String == "non-convergence" })
        #expect(finding["ticket"] as? String == "T-3" && finding["status"] as? String == "filed")
        #expect(try ratchet(["ticket", "list"], in: root).stdout.split(separator: "\n").count == 3, "a second reflection ticket was filed")

        // reindex killed after restoring the first of the landings the store lost.
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Second landing"], in: root).stdout == "T-4\n")
        #expect(try ratchet(["work", "T-4", "--agent", "command:echo two > two.txt"], in: root).status == 0)
        #expect(try ratchet(["merge", "T-4"], in: root).status == 0)
        let shown = { (id: String) throws -> [String: Any] in
            try #require(try JSONSerialization.jsonObject(with: Data(try ratchet(["ticket", "show", id, "--json"], in: root).stdout.utf8)) as? [String: Any])
        }
        let landings = try ["T-1", "T-4"].map { try shown($0)["landing"] as? String }
        let forget = "UPDATE attempt SET landing = NULL, state = 'failed' WHERE state = 'landed'; UPDATE ticket SET state = 'open' WHERE state = 'merged';"
        #expect(try run(["sqlite3", root + "/ratchet.sqlite", forget], in: root).status == 0)
        let crashed = try ratchet(["reindex"], in: root, environment: ["RATCHET_FAILPOINTS": "reindex.attempt=crash"])
        #expect(crashed.status == SIGKILL, "\(crashed.stderr)")
        #expect(try ["T-1", "T-4"].filter { try shown($0)["landing"] as? String != nil }.count == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(try ratchet(["reindex", "--json"], in: root).stdout.utf8)) as? [String: Any])
        #expect(report["updated"] as? Int == 1 && report["landings"] as? Int == 2)
        #expect(try ["T-1", "T-4"].map { try shown($0)["landing"] as? String } == landings)
        #expect(try ["T-1", "T-4"].map { try shown($0)["state"] as? String } == ["merged", "merged"])
        #expect(try ratchet(["doctor"], in: root).status == 0)
        #expect(try run(["git", "fsck", "--strict"], in: root + "/services/svc").status == 0)
    }

    /// A kv-cache service adopted from a repo whose first commit is ten days old and whose
    /// second (two days old) doubles the cache: a week of history for drift to judge.
    private func adoptedWeekOldWorkspace(_ folder: ScratchFolder) throws -> String {
        let source = folder("src")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try git(["init", "-q", "-b", "main"], in: source)
        #expect(try run(["cp", "-R", repositoryRoot + "/templates/kv-cache/.", source], in: source).status == 0)
        #expect(try run(["cp", "-R", repositoryRoot + "/canaries/kv-cache", source + "/canary"], in: source).status == 0)
        try judgeCanaryWithoutTiming(service: source)
        try String(contentsOfFile: source + "/service.yaml", encoding: .utf8)
            .replacingOccurrences(of: "name: kv-cache", with: "name: svc").write(toFile: source + "/service.yaml", atomically: true, encoding: .utf8)
        func commit(_ message: String, daysAgo: Double) throws {
            let date = "@\(Int(Date().timeIntervalSince1970 - daysAgo * 86400)) +0000"
            try git(["add", "-A"], in: source)
            let output = try run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-qm", message, "--date", date],
                                 in: source, environment: ["GIT_COMMITTER_DATE": date])
            #expect(output.status == 0, "\(output.stderr)")
        }
        try commit("The service as it was", daysAgo: 10)
        #expect(try run(["sed", "-i", "s/1024/2048/", "config/cache.json"], in: source).status == 0)
        try commit("Double the cache", daysAgo: 2)
        let root = folder("ws")
        #expect(try ratchet(["init", root], in: folder.path).status == 0)
        let added = try ratchet(["service", "add", "svc", "--from", source], in: root)
        #expect(added.status == 0, "\(added.stderr)")
        return root
    }

    @Test func driftKilledAfterItsJudgementIsJudgedAgainOnce() throws {
        let folder = ScratchFolder()
        let root = try adoptedWeekOldWorkspace(folder)
        let reports = { () throws -> String in
            try run(["sqlite3", root + "/ratchet.sqlite", "SELECT COUNT(*) FROM canaryReport"], in: root).stdout
        }
        let drift = { (output: Output) throws -> [String: Any] in
            let document = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any], "\(output.stderr)")
            return try #require((document["drift"] as? [[String: Any]])?.first)
        }
        // Killed after the report is stored, before the week is marked judged.
        let killed = try ratchet(["reflect"], in: root, environment: ["RATCHET_FAILPOINTS": "drift.judged=crash"])
        #expect(killed.status == SIGKILL, "\(killed.stderr)")
        #expect(try reports() == "1\n")
        // The next run judges the week again; the one after that does not.
        let again = try drift(try ratchet(["reflect", "--json"], in: root))
        #expect(again["status"] as? String == "judged" && again["verdict"] as? String == "pass", "\(again)")
        #expect(try reports() == "2\n")
        let third = try drift(try ratchet(["reflect", "--json"], in: root))
        #expect(third["status"] as? String == "skipped" && (third["reason"] as? String)?.hasPrefix("judged ") == true, "\(third)")
        #expect(try reports() == "2\n")
        #expect(try ratchet(["doctor"], in: root).status == 0)
        #expect(try run(["git", "fsck", "--strict"], in: root + "/services/svc").status == 0)
    }

    @Test func notificationsAreDeliveredAtLeastOnceAcrossACrash() throws {
        let folder = ScratchFolder()
        let receiver = try LoopbackReceiver(folder, failures: 0)
        defer { receiver.stop() }
        let root = try landedWorkspace(folder)
        let config = root + "/ratchet.yaml"
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "notify: []", with: "notify: [\"http://127.0.0.1:\(receiver.port)/hook\"]")
        try Data(text.utf8).write(to: URL(fileURLWithPath: config))
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Never works"], in: root).stdout == "T-2\n")
        for _ in 0..<2 { _ = try ratchet(["work", "T-2", "--agent", "command:exit 1"], in: root) }
        // The third failure escalates T-2; the process dies after the post, before its cursor moves.
        let killed = try ratchet(["work", "T-2", "--agent", "command:exit 1"], in: root, environment: ["RATCHET_FAILPOINTS": "notify.posted=crash"])
        #expect(killed.status == SIGKILL, "\(killed.stderr)")
        #expect(receiver.received().count == 1)
        // The next command that notifies posts it again: at least once, never lost.
        #expect(try ratchet(["reflect", "--drift", "never"], in: root).status == 0)
        let bodies = receiver.received()
        #expect(bodies.filter { $0.contains("T-2 (svc) is escalated") }.count == 2, "\(bodies)")
        // ...and then never again.
        #expect(try ratchet(["reflect", "--drift", "never"], in: root).status == 0)
        #expect(receiver.received().count == bodies.count)
    }

    /// A real https webhook: the curl command-line tool (adr/0073) posts to a TLS receiver on
    /// loopback. The receiver's self-signed certificate is trusted through curl's own
    /// `CURL_CA_BUNDLE` in ratchet's environment: nothing of the machine's trust store changes.
    /// Untrusted, the post fails and the failure is recorded.
    @Test func notificationsArePostedOverHTTPS() throws {
        let folder = ScratchFolder()
        let receiver = try LoopbackReceiver(folder, failures: 0, tls: true)
        defer { receiver.stop() }
        let certificate = try #require(receiver.certificate)
        let root = try landedWorkspace(folder)
        let config = root + "/ratchet.yaml"
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "notify: []", with: "notify: [\"https://127.0.0.1:\(receiver.port)/hook\"]")
        try Data(text.utf8).write(to: URL(fileURLWithPath: config))
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Never works"], in: root).stdout == "T-2\n")
        for _ in 0..<3 {
            let work = try ratchet(["work", "T-2", "--agent", "command:exit 1"], in: root, environment: ["CURL_CA_BUNDLE": certificate])
            #expect(work.stderr.contains("T-2/"))
        }
        let bodies = receiver.received()
        #expect(bodies.filter { $0.contains("T-2 (svc) is escalated") }.count == 1, "\(bodies)")
        // An untrusted certificate: the post fails (no bytes reach the receiver) and the failure is an event.
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Never works either"], in: root).stdout == "T-3\n")
        for _ in 0..<3 { _ = try ratchet(["work", "T-3", "--agent", "command:exit 1"], in: root) }
        #expect(receiver.received().count == bodies.count)
        let events = try ratchet(["events", "--json"], in: root).stdout
        #expect(events.contains("notify.failed") && events.contains("T-3") && events.contains("certificate"), "\(events.suffix(600))")
    }
}

import Foundation
import RatchetCore
import RatchetStore
import RatchetTestSupport
import Testing

/// A webhook receiver on loopback (Python's http.server): answers 500 to the first `failures`
/// posts, then 200, and appends every body as one line to a file. Stopped by `stop()`.
final class LoopbackReceiver {
    let process = Process()
    let port: Int
    let bodies: String

    init(_ folder: ScratchFolder, failures: Int) throws {
        bodies = folder("bodies.txt")
        let script = """
            import http.server, sys
            failures, out, seen = int(sys.argv[1]), sys.argv[2], [0]
            class Hook(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    seen[0] += 1
                    with open(out, 'ab') as f: f.write(body + b'\\n')
                    self.send_response(500 if seen[0] <= failures else 200)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                def log_message(self, *args): pass
            server = http.server.HTTPServer(('127.0.0.1', 0), Hook)
            print(server.server_port, flush=True)
            server.serve_forever()
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, "\(failures)", bodies]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // The port line is printed once the socket listens: reading it is the synchronisation.
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line += byte }
        port = Int(String(decoding: line, as: UTF8.self)) ?? 0
    }

    /// Every body received, one per line.
    func received() -> [String] {
        ((try? String(contentsOfFile: bodies, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Kills it (SIGKILL: the child may inherit a mask that blocks SIGTERM) and waits.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

@Suite("Notify")
struct NotifyTests {
    /// Reopens `workspace` with `notify: [url]` in its ratchet.yaml.
    private func withWebhook(_ workspace: Workspace, _ url: String) throws -> Workspace {
        let path = workspace.root.appendingPathComponent("ratchet.yaml").path
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "notify: []", with: "notify: [\"\(url)\"]")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return try Workspace.locate(explicit: workspace.root.path)
    }

    @Test func escalationsAndFindingsArePostedRetriedAndFailuresRecorded() throws {
        let folder = ScratchFolder()
        let receiver = try LoopbackReceiver(folder, failures: 1)
        defer { receiver.stop() }
        #expect(receiver.port > 0)
        let workspace = try withWebhook(try makeWorkspace(folder), "http://127.0.0.1:\(receiver.port)/hook")
        let id = try file(workspace, "Never <works> & fails")
        for _ in 0..<3 { _ = message { try workspace.work(ticket: id, agent: "command:exit 1") } }
        var notifier = Notifier()
        notifier.backoff = 0.01
        #expect(try workspace.deliverNotifications(notifier) == 1)
        let bodies = receiver.received()
        #expect(bodies.count == 2, "the first post got a 500 and was retried")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(bodies[1].utf8)) as? [String: String])
        #expect(json.keys.sorted() == ["text"])
        #expect(json["text"]?.hasPrefix("Ratchet: T-1 (svc) is escalated: ") == true)
        #expect(try workspace.deliverNotifications(notifier) == 0, "each event is posted once")

        // The finding reflect files is posted too; with the receiver gone, the failure is an event.
        receiver.stop()
        _ = try workspace.reflect()
        #expect(try workspace.deliverNotifications(notifier) == 0)
        let failed = try workspace.database.events(since: 0).filter { $0.kind == "notify.failed" }
        #expect(failed.count == 1 && failed.first?.data["attempts"] == JSONValue.number(3) && failed.first?.ticketId == "T-2")
    }

    @Test func messagesAreEscapedForSlackAndWebhooksMustBeURLs() throws {
        #expect(Notifier.slackText("a <b> & c\u{1B}[2J") == "a &lt;b&gt; &amp; c\\u{1B}[2J")
        #expect(message { _ = try WorkspaceConfig.parse("notify: [\"ftp://x\"]") }?.contains("not an http or https URL") == true)
        #expect(try WorkspaceConfig.parse("notify: https://hooks.example.invalid/T1").notify == ["https://hooks.example.invalid/T1"])
    }
}

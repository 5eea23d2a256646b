import Foundation
import RatchetCore
import RatchetStore
import RatchetTestSupport
import Testing

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
        #expect(failed.first?.data["error"]?.stringValue?.hasPrefix("POST http://127.0.0.1:\(receiver.port)/hook: cannot connect: ") == true, "\(failed)")
    }

    /// An https webhook goes through the curl tool (adr/0073), trusting the receiver's
    /// certificate through curl's `CURL_CA_BUNDLE`; refused by an untrusting curl, the failure
    /// is recorded in the http path's line shape.
    @Test func anHTTPSWebhookIsDeliveredThroughCurl() throws {
        let folder = ScratchFolder()
        let server = try HTTPSServer(folder)
        defer { server.stop() }
        let workspace = try withWebhook(try makeWorkspace(folder), server.url("/hook"))
        let id = try file(workspace, "Never works")
        for _ in 0..<3 { _ = message { try workspace.work(ticket: id, agent: "command:exit 1") } }
        var notifier = Notifier()
        notifier.backoff = 0.01
        notifier.environment = ["CURL_CA_BUNDLE": server.certificate]
        #expect(try workspace.deliverNotifications(notifier) == 1)
        let posted = server.posted()
        #expect(posted.count == 1 && posted[0].hasPrefix(#"{"text":"Ratchet: T-1 (svc) is escalated: "#), "\(posted)")

        let other = try file(workspace, "Never works either")
        for _ in 0..<3 { _ = message { try workspace.work(ticket: other, agent: "command:exit 1") } }
        notifier.environment = [:]
        #expect(try workspace.deliverNotifications(notifier) == 0)
        #expect(server.posted().count == 1)
        let failed = try workspace.database.events(since: 0).filter { $0.kind == "notify.failed" }
        let error = failed.first?.data["error"]?.stringValue ?? ""
        #expect(failed.count == 1 && error.hasPrefix("POST \(server.url("/hook")): ") && error.contains("certificate"), "\(error)")
    }

    @Test func messagesAreEscapedForSlackAndWebhooksMustBeURLs() throws {
        #expect(Notifier.slackText("a <b> & c\u{1B}[2J") == "a &lt;b&gt; &amp; c\\u{1B}[2J")
        #expect(message { _ = try WorkspaceConfig.parse("notify: [\"ftp://x\"]") }?.contains("not an http or https URL") == true)
        #expect(try WorkspaceConfig.parse("notify: https://hooks.example.invalid/T1").notify == ["https://hooks.example.invalid/T1"])
    }
}

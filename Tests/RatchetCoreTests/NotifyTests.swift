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
    }

    @Test func messagesAreEscapedForSlackAndWebhooksMustBeURLs() throws {
        #expect(Notifier.slackText("a <b> & c\u{1B}[2J") == "a &lt;b&gt; &amp; c\\u{1B}[2J")
        #expect(message { _ = try WorkspaceConfig.parse("notify: [\"ftp://x\"]") }?.contains("not an http or https URL") == true)
        #expect(try WorkspaceConfig.parse("notify: https://hooks.example.invalid/T1").notify == ["https://hooks.example.invalid/T1"])
    }
}

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRDB
import RatchetStore

/// Posts escalations, needs-approval tickets and reflection findings to the webhooks of
/// `notify` in ratchet.yaml as Slack-compatible JSON (`{"text": …}`). It reads the event
/// log from a cursor per webhook, so a notification is never lost to a crashed command
/// between the state change and the post; each is tried `attempts` times, and a delivery
/// that still fails is recorded as a `notify.failed` event.
public struct Notifier: Sendable {
    /// The event kinds that tell a person.
    public static let kinds = ["ticket.escalated", "ticket.needs_approval", "reflection.flagged"]
    /// Tries per delivery.
    public var attempts = 3
    /// Seconds before the second try, doubled for each next one.
    public var backoff: Double = 0.5
    /// Seconds before a post is given up.
    public var timeout: Double = 10

    /// Makes a notifier.
    public init() {}

    /// Checks `notify` entries: http or https URLs with a host.
    static func webhooks(_ list: [String], file: String) throws -> [String] {
        for entry in list {
            guard let url = URL(string: entry), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw RatchetError("\(file): notify: '\(Names.printable(entry))' is not an http or https URL")
            }
        }
        return list
    }

    /// The Slack-compatible body of one event, or nil when it tells nobody anything.
    static func message(for event: EventRecord, workspace: String) -> String? {
        let ticket = event.ticketId ?? "?"
        let service = event.service ?? "-"
        func text(_ key: String) -> String { event.data[key]?.stringValue ?? "" }
        switch event.kind {
        case "ticket.escalated":
            return "Ratchet: \(ticket) (\(service)) is escalated: \(text("reason")). It needs a person: ratchet ticket show \(ticket) --workspace \(workspace)"
        case "ticket.needs_approval":
            let reasons = (event.data["reasons"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: "; ")
            return "Ratchet: \(ticket) (\(service)) needs approval: \(reasons). Approve with ratchet approve \(ticket) --by NAME, or reject with ratchet reject \(ticket) --reason TEXT"
        case "reflection.flagged":
            return "Ratchet asks for help: \(ticket) (\(service)) reports \(text("kind")) (\(text("fingerprint"))). See ratchet ticket show \(ticket) --workspace \(workspace)"
        default: return nil
        }
    }

    /// `text` as Slack expects it: `&`, `<` and `>` escaped, control characters shown escaped.
    public static func slackText(_ text: String) -> String {
        Names.escapedForTerminal(text).replacingOccurrences(of: "&", with: "&amp;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// POSTs `{"text": text}` to `webhook`; nil when delivered, else why not.
    func post(_ text: String, to webhook: String) -> String? {
        guard let url = URL(string: webhook) else { return "invalid URL" }
        let body = (try? JSONSerialization.data(withJSONObject: ["text": Self.slackText(text)], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        if url.scheme == "http" { return HTTPPost.post(body, to: url, timeout: timeout) }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = body
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: String?
        URLSession.shared.dataTask(with: request) { _, response, error in
            if let error { failure = error.localizedDescription }
            else if let status = (response as? HTTPURLResponse)?.statusCode, !(200..<300).contains(status) { failure = "HTTP status \(status)" }
            done.signal()
        }.resume()
        done.wait()
        return failure
    }
}

extension Workspace {
    /// Delivers what the event log holds for each `notify` webhook since its cursor.
    /// Returns the number of messages delivered.
    @discardableResult
    public func deliverNotifications(_ notifier: Notifier = Notifier()) throws -> Int {
        var delivered = 0
        for webhook in config.notify {
            let events = try claimNotifications(for: webhook)
            for event in events {
                guard let text = Notifier.message(for: event, workspace: root.path) else { continue }
                var error: String?
                for attempt in 0..<notifier.attempts {
                    if attempt > 0 { Thread.sleep(forTimeInterval: notifier.backoff * Double(1 << (attempt - 1))) }
                    error = notifier.post(text, to: webhook)
                    if error == nil { break }
                }
                guard let error else { delivered += 1; continue }
                try database.write { db in
                    try RatchetDatabase.appendEvent(db, kind: "notify.failed", service: event.service, ticket: event.ticketId, data: [
                        "webhook": .string(webhook), "event": .number(Double(event.seq ?? 0)), "attempts": .number(Double(notifier.attempts)),
                        "error": .string(error)])
                }
            }
        }
        return delivered
    }

    /// Moves `webhook`'s cursor past the events to notify and returns them (a new webhook
    /// starts with the last hour), so that two processes never post the same event.
    private func claimNotifications(for webhook: String) throws -> [EventRecord] {
        try database.write { db in
            let cursor = try Int64.fetchOne(db, sql: "SELECT seq FROM notifyCursor WHERE webhook = ?", arguments: [webhook])
                ?? (try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event WHERE time < ?", arguments: [Date().addingTimeInterval(-3600)]) ?? 0)
            let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event") ?? cursor
            let events = try EventRecord.filter(EventRecord.Columns.seq > cursor && EventRecord.Columns.seq <= last)
                .filter(Notifier.kinds.contains(Column("kind"))).order(EventRecord.Columns.seq).fetchAll(db)
            try db.execute(sql: "INSERT INTO notifyCursor (webhook, seq) VALUES (?, ?) ON CONFLICT(webhook) DO UPDATE SET seq = excluded.seq",
                           arguments: [webhook, last])
            return events
        }
    }
}

import Foundation
import GRDB
import RatchetStore

/// Posts escalations, needs-approval tickets and reflection findings to the webhooks of
/// `notify` in ratchet.yaml as Slack-compatible JSON (`{"text": …}`). It reads the event
/// log from a cursor per webhook that moves only past what was posted (or given up), so a
/// notification is never lost to a crashed command: at least once. Each is tried
/// `attempts` times, and a delivery that still fails is recorded as a `notify.failed` event.
public struct Notifier: Sendable {
    /// The event kinds that tell a person.
    public static let kinds = ["ticket.escalated", "ticket.needs_approval", "reflection.flagged"]
    /// Tries per delivery.
    public var attempts = 3
    /// Seconds before the second try, doubled for each next one.
    public var backoff: Double = 0.5
    /// Seconds before a post is given up.
    public var timeout: Double = 10
    /// The environment https posts see (curl's trust and proxy variables, adr/0073).
    public var environment = ProcessInfo.processInfo.environment

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

    /// POSTs `{"text": text}` to `webhook` (`HTTPClient`: http over a socket, https through
    /// the curl tool); nil when delivered (2xx), else why not.
    func post(_ text: String, to webhook: String) -> String? {
        guard let url = URL(string: webhook) else { return "invalid URL" }
        let body = (try? JSONSerialization.data(withJSONObject: ["text": Self.slackText(text)], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        do {
            let status = try HTTPClient.postJSON(body, to: url, timeout: timeout, environment: environment).status
            return (200..<300).contains(status) ? nil : describe(HTTPClient.failure("POST", url, "HTTP status \(status)"))
        } catch {
            return describe(error)
        }
    }
}

extension Workspace {
    /// Delivers what the event log holds for each `notify` webhook past its cursor, at
    /// least once: the cursor passes an event only after its post (or its `notify.failed`,
    /// in the same transaction), so a process killed in between posts it again next time.
    /// One process delivers at a time (`.ratchet/notify.lock`); another finds it held and
    /// leaves its events to the holder, which reads the log again until nothing is left.
    /// Returns the number of messages delivered.
    @discardableResult
    public func deliverNotifications(_ notifier: Notifier = Notifier()) throws -> Int {
        guard !config.notify.isEmpty, let lock = try lockNotifications() else { return 0 }
        defer { Workspace.unlockAndClose(lock) }
        var delivered = 0
        for webhook in config.notify {
            while true {
                let (events, last) = try pendingNotifications(for: webhook)
                for event in events {
                    if try deliver(event, to: webhook, notifier) { delivered += 1 }
                }
                try moveNotifyCursor(webhook, to: last)
                if events.isEmpty { break }
            }
        }
        return delivered
    }

    /// Posts one event (with its tries); true when delivered. Moves the cursor past it,
    /// together with its `notify.failed` when it could not be delivered.
    private func deliver(_ event: EventRecord, to webhook: String, _ notifier: Notifier) throws -> Bool {
        guard let seq = event.seq, let text = Notifier.message(for: event, workspace: root.path) else { return false }
        var error: String?
        for attempt in 0..<notifier.attempts {
            if attempt > 0 { Thread.sleep(forTimeInterval: notifier.backoff * Double(1 << (attempt - 1))) }
            error = notifier.post(text, to: webhook)
            if error == nil { break }
        }
        // Killed here, the event is posted again by the next delivery (at least once).
        try Failpoints.hit("notify.posted")
        try database.write { db in
            if let error {
                try RatchetDatabase.appendEvent(db, kind: "notify.failed", service: event.service, ticket: event.ticketId, data: [
                    "webhook": .string(webhook), "event": .number(Double(seq)), "attempts": .number(Double(notifier.attempts)),
                    "error": .string(error)])
            }
            try Self.setNotifyCursor(db, webhook, seq)
        }
        return error == nil
    }

    /// The events to notify past `webhook`'s cursor (a new webhook starts with the last
    /// hour), and the log's last seq.
    private func pendingNotifications(for webhook: String) throws -> ([EventRecord], Int64) {
        try database.read { db in
            let cursor = try Int64.fetchOne(db, sql: "SELECT seq FROM notifyCursor WHERE webhook = ?", arguments: [webhook])
                ?? (try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event WHERE time < ?", arguments: [Date().addingTimeInterval(-3600)]) ?? 0)
            let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event") ?? cursor
            let events = try EventRecord.filter(EventRecord.Columns.seq > cursor && EventRecord.Columns.seq <= last)
                .filter(Notifier.kinds.contains(Column("kind"))).order(EventRecord.Columns.seq).fetchAll(db)
            return (events, max(cursor, last))
        }
    }

    private func moveNotifyCursor(_ webhook: String, to seq: Int64) throws {
        try database.write { db in try Self.setNotifyCursor(db, webhook, seq) }
    }

    /// Moves the cursor forward only.
    private static func setNotifyCursor(_ db: Database, _ webhook: String, _ seq: Int64) throws {
        try db.execute(sql: """
            INSERT INTO notifyCursor (webhook, seq) VALUES (?, ?)
            ON CONFLICT(webhook) DO UPDATE SET seq = MAX(seq, excluded.seq)
            """, arguments: [webhook, seq])
    }

    /// Holds `.ratchet/notify.lock` without waiting; nil when another process delivers.
    private func lockNotifications() throws -> Int32? {
        let path = root.appendingPathComponent(".ratchet/notify.lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RatchetError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { close(fd); return nil }
        return fd
    }
}

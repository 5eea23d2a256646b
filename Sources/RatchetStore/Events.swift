import Foundation
import GRDB

extension RatchetDatabase {
    /// Appends an event inside the caller's transaction. Call it in the same `write` as
    /// the state change it records.
    @discardableResult
    public static func appendEvent(_ db: Database, kind: String, service: String? = nil, ticket: String? = nil,
                                   attempt: Int? = nil, data: JSONValue = [:]) throws -> EventRecord {
        var event = EventRecord(time: Date(), kind: kind, service: service, ticketId: ticket, attemptNumber: attempt, data: data)
        try event.insert(db)
        return event
    }

    /// Events after cursor `since` (0: from the start), oldest first.
    public func events(since: Int64 = 0, limit: Int = 10_000) throws -> [EventRecord] {
        try read { db in
            try EventRecord.filter(EventRecord.Columns.seq > since).order(EventRecord.Columns.seq).limit(limit).fetchAll(db)
        }
    }
}

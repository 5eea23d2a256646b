import Foundation
import GRDB
import RatchetStore

extension Workspace {
    /// Closes a ticket that waits for a person (`open` or `escalated`) as `resolved`, with
    /// the person's note: one transaction with its `ticket.resolved` event. A resolved
    /// reflection finding stays quiet until its pattern recurs past the high threshold.
    @discardableResult
    public func resolveTicket(_ rawID: String, note rawNote: String, by person: String? = nil) throws -> TicketRecord {
        let id = try Names.ticketID(rawID)
        let note = try Names.line(redact(rawNote), what: "note")
        let by = try Names.line(person ?? ProcessInfo.processInfo.environment["USER"] ?? "operator", what: "name", limit: 200)
        return try database.write { db in
            guard var ticket = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("no ticket \(id)") }
            let from = ticket.state
            try StateChange.moveTicket(&ticket, to: .resolved, at: Date())
            try ticket.update(db)
            try RatchetDatabase.appendEvent(db, kind: "ticket.resolved", service: ticket.service, ticket: id,
                                            data: ["by": .string(by), "note": .string(note), "from": .string(from.rawValue)])
            return ticket
        }
    }
}

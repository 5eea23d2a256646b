import Foundation
import GRDB
import RatchetGit
import RatchetStore

extension Workspace {
    /// A person turns down ticket `id`'s proposed attempt (held in `needs-approval`, or still
    /// `proposed`): the attempt becomes `rejected`, a rejection label goes on its trajectory
    /// and the ticket is `open` again; one transaction with the events. Its worktree is
    /// removed; its branch and canary reports are kept.
    @discardableResult
    public func rejectTicket(_ rawID: String, reason rawReason: String? = nil, by person: String? = nil) throws -> TicketRecord {
        let id = try Names.ticketID(rawID)
        let by = try Names.line(person ?? ProcessInfo.processInfo.environment["USER"] ?? "operator", what: "name", limit: 200)
        let reason = try Names.line(rawReason ?? "rejected by \(by)", what: "reason")
        let (ticket, attempt) = try database.write { db -> (TicketRecord, AttemptRecord) in
            guard var ticket = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("no ticket \(id)") }
            guard ticket.state == .needsApproval || ticket.state == .proposed else {
                throw RatchetError("ticket \(id) is \(ticket.state); only a proposed or needs-approval ticket can be rejected")
            }
            guard var attempt = try AttemptRecord.filter(AttemptRecord.Columns.ticketId == id && AttemptRecord.Columns.state == AttemptState.proposed)
                .order(AttemptRecord.Columns.number.desc).fetchOne(db) else {
                throw RatchetError("ticket \(id) has no proposed attempt to reject")
            }
            let now = Date()
            if let owner = attempt.leaseOwner, let expiry = attempt.leaseExpiresAt, expiry > now, owner != Lease.owner {
                throw RatchetError("ticket \(id) is being merged by another Ratchet process (\(owner)); try again when it is done")
            }
            try TicketLifecycle.check(id, from: ticket.state, to: .open)
            attempt.state = .rejected
            attempt.error = "rejected by \(by): \(reason)"
            attempt.endedAt = now
            attempt.leaseOwner = nil
            attempt.leaseExpiresAt = nil
            try attempt.update(db)
            let at = ISO8601DateFormatter().string(from: now)
            if var trajectory = try TrajectoryRecord.fetchOne(db, key: attempt.trajectoryId) {
                var outcome: [String: JSONValue] = ["status": "rejected", "error": .string(attempt.error!),
                                                    "duration_s": .number(now.timeIntervalSince(attempt.startedAt))]
                // Keep what was verified while the ticket waited for a person.
                for key in ["verdict", "canary_report", "acceptance", "protected_paths"] { if let value = trajectory.outcome?[key] { outcome[key] = value } }
                trajectory.outcome = .object(outcome)
                trajectory.labels.append(["kind": "rejection", "by": .string(by), "at": .string(at), "reason": .string(reason)])
                try trajectory.update(db)
            }
            let from = ticket.state
            ticket.state = .open
            ticket.updatedAt = now
            try ticket.update(db)
            try RatchetDatabase.appendEvent(db, kind: "attempt.rejected", service: ticket.service, ticket: id, attempt: attempt.number,
                                            data: ["error": .string(attempt.error!), "by": .string(by)])
            try RatchetDatabase.appendEvent(db, kind: "ticket.rejected", service: ticket.service, ticket: id, attempt: attempt.number,
                                            data: ["by": .string(by), "reason": .string(reason), "from": .string(from.rawValue)])
            return (ticket, attempt)
        }
        try? removeWorktree(of: attempt)
        return ticket
    }
}

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
        let reason = try Names.line(redact(rawReason ?? "rejected by \(by)"), what: "reason")
        let (ticket, attempt) = try database.write { db -> (TicketRecord, AttemptRecord) in
            guard var ticket = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("no ticket \(id)") }
            guard ticket.state == .needsApproval || ticket.state == .proposed else {
                throw RatchetError("ticket \(id) is \(ticket.state); only a proposed or needs-approval ticket can be rejected")
            }
            guard var attempt = try StateChange.latestAttempt(db, ticket: id, in: .proposed) else {
                throw RatchetError("ticket \(id) has no proposed attempt to reject")
            }
            let now = Date()
            if let owner = attempt.leaseOwner, let expiry = attempt.leaseExpiresAt, expiry > now, owner != Lease.owner {
                throw RatchetError("ticket \(id) is being merged by another Ratchet process (\(owner)); try again when it is done")
            }
            let from = ticket.state
            try StateChange.moveTicket(&ticket, to: .open, at: now)
            StateChange.moveAttempt(&attempt, to: .rejected, error: "rejected by \(by): \(reason)", at: now)
            try attempt.update(db)
            try ticket.update(db)
            // Keep what was verified while the ticket waited for a person.
            let previous = try TrajectoryRecord.fetchOne(db, key: attempt.trajectoryId)?.outcome
            var outcome: [String: JSONValue] = ["status": "rejected", "error": .string(attempt.error!),
                                                "duration_s": .number(now.timeIntervalSince(attempt.startedAt))]
            for key in ["verdict", "canary_report", "acceptance", "protected_paths"] { if let value = previous?[key] { outcome[key] = value } }
            try StateChange.updateTrajectory(db, attempt.trajectoryId, outcome: .object(outcome),
                                             label: ["kind": "rejection", "by": .string(by), "at": .string(StateChange.stamp(now)), "reason": .string(reason)])
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

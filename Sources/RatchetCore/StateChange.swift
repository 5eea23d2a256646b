import Foundation
import GRDB
import RatchetStore

/// The one home of ticket and attempt state changes (SPEC §4). Each change is checked
/// against the lifecycle and stamped here; callers write the records in the same store
/// transaction as the events that record them.
enum StateChange {
    /// Loads an attempt and its ticket inside a transaction.
    static func load(_ db: Database, attempt id: Int64?) throws -> (AttemptRecord, TicketRecord) {
        guard let attempt = try AttemptRecord.fetchOne(db, key: id),
              let ticket = try TicketRecord.fetchOne(db, key: attempt.ticketId) else { throw RatchetError("attempt vanished") }
        return (attempt, ticket)
    }

    /// The latest attempt of ticket `id` in `state`, if any.
    static func latestAttempt(_ db: Database, ticket id: String, in state: AttemptState) throws -> AttemptRecord? {
        try AttemptRecord.filter(AttemptRecord.Columns.ticketId == id && AttemptRecord.Columns.state == state)
            .order(AttemptRecord.Columns.number.desc).fetchOne(db)
    }

    /// Moves `ticket` to `state` (refusing an illegal transition) at `now`.
    static func moveTicket(_ ticket: inout TicketRecord, to state: TicketState, at now: Date) throws {
        try TicketLifecycle.check(ticket.id, from: ticket.state, to: state)
        ticket.state = state
        ticket.updatedAt = now
    }

    /// Moves `attempt` to `state` and gives up its lease; a finished state also ends it at `now`.
    static func moveAttempt(_ attempt: inout AttemptRecord, to state: AttemptState, error: String? = nil, at now: Date) {
        attempt.state = state
        if let error { attempt.error = error }
        if TicketLifecycle.finishedAttemptStates.contains(state) && state != .reverted { attempt.endedAt = now }
        attempt.leaseOwner = nil
        attempt.leaseExpiresAt = nil
    }

    /// Whether this process still holds `attempt`'s lease.
    static func holdsLease(_ attempt: AttemptRecord, at now: Date = Date()) -> Bool {
        attempt.leaseOwner == Lease.owner && (attempt.leaseExpiresAt ?? .distantPast) > now
    }

    /// Sets the outcome of `trajectory` (when given) and appends `label` (when given).
    static func updateTrajectory(_ db: Database, _ trajectory: String, outcome: JSONValue? = nil, label: JSONValue? = nil) throws {
        guard var record = try TrajectoryRecord.fetchOne(db, key: trajectory) else { return }
        if let outcome { record.outcome = outcome }
        if let label { record.labels.append(label) }
        try record.update(db)
    }

    /// An ISO 8601 time stamp for labels (`ISO8601Format()`: swift-foundation's own formatter,
    /// where `ISO8601DateFormatter` starts ICU, about 1.5 ms of a command's start).
    static func stamp(_ date: Date) -> String { date.ISO8601Format() }
}

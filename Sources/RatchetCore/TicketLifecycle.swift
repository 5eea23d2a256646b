import Foundation
import RatchetStore

/// The ticket state machine of SPEC §4. Every state change goes through `check`.
public enum TicketLifecycle {
    /// The legal transitions: from a state to the states it may move to.
    public static let transitions: [TicketState: Set<TicketState>] = [
        .open: [.working, .cancelled, .resolved],
        .working: [.proposed, .open, .escalated, .cancelled],
        .proposed: [.merged, .needsApproval, .open, .escalated, .cancelled],
        .needsApproval: [.merged, .open, .escalated, .cancelled],
        // A landing reverted by the post-landing watch reopens the ticket; a person's revert leaves it reverted.
        .merged: [.reverted, .open],
        .reverted: [],
        .escalated: [.open, .cancelled, .resolved],
        .cancelled: [],
        // A person closed it with a note (reflection findings, escalations): final.
        .resolved: [],
    ]

    /// Refuses an illegal transition with a clear error.
    public static func check(_ ticket: String, from: TicketState, to: TicketState) throws {
        guard transitions[from]?.contains(to) == true else {
            let allowed = (transitions[from] ?? []).map(\.rawValue).sorted()
            throw RatchetError("ticket \(ticket) is \(from) and cannot become \(to)"
                + (allowed.isEmpty ? " (\(from) is final)" : " (from \(from) it can become: \(allowed.joined(separator: ", ")))"))
        }
    }

    /// Attempt states in which the attempt is over.
    public static let finishedAttemptStates: Set<AttemptState> = [.landed, .reverted, .failed, .rejected, .interrupted, .cancelled]
}

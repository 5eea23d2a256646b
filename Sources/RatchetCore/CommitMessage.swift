import Foundation
import RatchetGit
import RatchetStore

/// Builds the commit messages of SPEC §5. Every value that reaches a trailer has been
/// checked to be one line, so nothing a ticket says can add a trailer of its own.
public enum CommitMessage {
    /// `subject`, a blank line, `body` (if any), a blank line and the trailer block.
    public static func make(subject: String, body: String? = nil, trailers: [Trailer]) throws -> String {
        let subject = try Names.line(subject, what: "commit subject", limit: 300)
        var text = subject + "\n"
        if let body, !body.isEmpty { text += "\n" + body.trimmingCharacters(in: .whitespacesAndNewlines) + "\n" }
        if !trailers.isEmpty {
            text += "\n"
            for trailer in trailers {
                guard ASCII.isTrailerKey(trailer.key) else {
                    throw RatchetError("invalid trailer key '\(Names.printable(trailer.key))'")
                }
                text += "\(trailer.key): \(try Names.line(trailer.value, what: "\(trailer.key) trailer"))\n"
            }
        }
        return text
    }

    /// A step commit of an attempt: trailers `Ticket`, `Trajectory`, `Step`.
    static func step(ticket: TicketView, summary: String, trajectory: String, step: Int, attempt: Int) throws -> String {
        try make(subject: "\(ticket.id): \(summary)".prefix(72).description,
                 body: "Step \(step) of attempt \(attempt) at ticket \(ticket.id) (\(ticket.title.prefix(200))).",
                 trailers: [Trailer("Ticket", ticket.id), Trailer("Trajectory", trajectory), Trailer("Step", "\(step)")])
    }

    /// The landing merge commit: `Merge T-7: <title>` with `Ticket`, `Trajectory`, `Agent`, `Canary`, `Risk`, `Approved-By`.
    static func landing(ticket: TicketRecord, attempt: AttemptRecord, canary: String, approvedBy: String?) throws -> String {
        var trailers = [Trailer("Ticket", ticket.id), Trailer("Trajectory", attempt.trajectoryId), Trailer("Agent", attempt.agent),
                        Trailer("Canary", canary), Trailer("Risk", ticket.risk)]
        if let approvedBy { trailers.append(Trailer("Approved-By", approvedBy)) }
        return try make(subject: "Merge \(ticket.id): \(ticket.title)",
                        body: "Lands attempt \(attempt.number) of \(ticket.id) from branch \(attempt.branch).",
                        trailers: trailers)
    }

    /// The revert commit: `Revert T-7: <title>`, body `This reverts commit <sha>.`, trailers `Ticket`, `Reverts`, `Reason`.
    static func revert(ticket: TicketRecord, landing: String, reason: String) throws -> String {
        try make(subject: "Revert \(ticket.id): \(ticket.title)", body: "This reverts commit \(landing).",
                 trailers: [Trailer("Ticket", ticket.id), Trailer("Reverts", landing), Trailer("Reason", reason)])
    }
}

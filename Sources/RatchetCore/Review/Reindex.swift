import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// What `ratchet reindex` found and changed.
public struct ReindexReport: Codable, Sendable, Equatable {
    /// Services read.
    public var services: [String]
    /// Landing commits on main (`Merge T-n` with a `Trajectory` trailer).
    public var landings: Int
    /// Revert commits on main (`Revert T-n` with a `Reverts` trailer).
    public var reverts: Int
    /// Attempts whose landing or revert the store did not have right, now fixed.
    public var updated: Int
    /// Landings and reverts whose trajectory or landing the store does not know at all.
    public var unknown: [String]
}

extension Workspace {
    /// Rebuilds the store's view of landings and reverts (attempt `landing`/`revert`, attempt
    /// and ticket states) from the service repos' first-parent history and trailers alone.
    /// Each attempt it corrects is one transaction with its `reindex.attempt` event.
    public func reindex(service only: String? = nil) throws -> ReindexReport {
        let names = try only.map { [try service($0).name] } ?? services().map(\.name)
        var report = ReindexReport(services: names.sorted(), landings: 0, reverts: 0, updated: 0, unknown: [])
        for name in names.sorted() {
            let repository = try Repository.open(servicePath(name))
            guard let main = try repository.resolveReference("refs/heads/main") else { continue }
            var commits: [CommitInfo] = []
            try repository.walkFirstParents(from: main) { commits.append($0); return true }
            for commit in commits.reversed() {
                let trailers = TrailerValues(commit.message)
                guard let ticket = trailers["Ticket"] else { continue }
                if commit.parents.count == 2, let trajectory = trailers["Trajectory"] {
                    report.landings += 1
                    try reindexLanding(commit.id.hex, service: name, ticket: ticket, trajectory: trajectory, report: &report)
                } else if commit.parents.count == 1, let landing = trailers["Reverts"] {
                    report.reverts += 1
                    try reindexRevert(commit.id.hex, of: landing, service: name, ticket: ticket, report: &report)
                }
            }
        }
        return report
    }

    private func reindexLanding(_ sha: String, service: String, ticket: String, trajectory: String, report: inout ReindexReport) throws {
        let changed = try database.write { db -> Bool? in
            guard var attempt = try AttemptRecord.filter(Column("trajectoryId") == trajectory).fetchOne(db), attempt.ticketId == ticket else { return nil }
            guard attempt.landing != sha || ![AttemptState.landed, .reverted].contains(attempt.state) else { return false }
            attempt.landing = sha
            if attempt.state != .reverted { attempt.state = .landed }
            attempt.leaseOwner = nil
            attempt.leaseExpiresAt = nil
            try attempt.update(db)
            try db.execute(sql: "UPDATE ticket SET state = 'merged', updatedAt = ? WHERE id = ? AND state NOT IN ('merged', 'reverted')",
                           arguments: [Date(), ticket])
            try RatchetDatabase.appendEvent(db, kind: "reindex.attempt", service: service, ticket: ticket, attempt: attempt.number,
                                            data: ["landing": .string(sha), "revert": .optional(attempt.revert)])
            return true
        }
        try tally(changed, "\(service): landing \(sha.prefix(12)) of \(ticket) (trajectory \(trajectory) is not in the store)", &report)
    }

    private func reindexRevert(_ sha: String, of landing: String, service: String, ticket: String, report: inout ReindexReport) throws {
        let changed = try database.write { db -> Bool? in
            guard var attempt = try AttemptRecord.filter(Column("landing") == landing).fetchOne(db), attempt.ticketId == ticket else { return nil }
            guard attempt.revert != sha || attempt.state != .reverted else { return false }
            attempt.revert = sha
            attempt.state = .reverted
            try attempt.update(db)
            try db.execute(sql: "UPDATE ticket SET state = 'reverted', updatedAt = ? WHERE id = ? AND state = 'merged'", arguments: [Date(), ticket])
            try RatchetDatabase.appendEvent(db, kind: "reindex.attempt", service: service, ticket: ticket, attempt: attempt.number,
                                            data: ["landing": .string(landing), "revert": .string(sha)])
            return true
        }
        try tally(changed, "\(service): revert \(sha.prefix(12)) of \(ticket) (landing \(landing.prefix(12)) is not in the store)", &report)
    }

    private func tally(_ changed: Bool?, _ unknown: String, _ report: inout ReindexReport) throws {
        switch changed {
        case true?:
            report.updated += 1
            // Each attempt is its own transaction: killed here, a second run finishes the rest.
            try Failpoints.hit("reindex.attempt")
        case nil: report.unknown.append(unknown)
        default: break
        }
    }
}

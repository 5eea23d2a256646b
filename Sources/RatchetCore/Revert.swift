import Foundation
import GRDB
import RatchetGit
import RatchetStore

extension Workspace {
    /// Undoes ticket `id`'s landing with a commit on main (`git revert -m 1` semantics).
    /// `reopensTicket` is the post-landing watch's revert (SPEC §4, §8): the ticket returns to
    /// open instead of `reverted`, and the landed tree is recorded so that it lands again only
    /// with a person's approval.
    @discardableResult
    public func revert(ticket rawID: String, reason rawReason: String? = nil, by person: String? = nil, reopensTicket: Bool = false,
                       progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> ObjectID {
        let id = try Names.ticketID(rawID)
        let by = person ?? ProcessInfo.processInfo.environment["USER"] ?? "operator"
        let reason = try Names.line(redact(rawReason ?? "requested by \(by)"), what: "reason")
        let ticket = try ticket(id)
        try TicketLifecycle.check(id, from: ticket.state, to: reopensTicket ? .open : .reverted)
        guard let attempt = try database.read({ db in
            try StateChange.latestAttempt(db, ticket: id, in: .landed)
        }), let landingHex = attempt.landing, let landing = ObjectID(hex: landingHex) else {
            throw RatchetError("ticket \(id) has no landed attempt to revert")
        }
        // New objects are written as one pack per durable step, flushed before a ref moves to them.
        let batch = try serviceBatch(ticket.service)
        let repository = batch.repository
        try database.write { _ in try requireCleanMain(ticket.service, repository: repository) }
        for _ in 0...20 {
            guard let main = try repository.resolveReference("refs/heads/main") else { throw RatchetError("service has no main") }
            let revert = try makeRevertCommit(of: landing, onto: main, ticket: ticket, reason: reason, repository: repository)
            try batch.flush(roots: [revert])
            let checkoutWarning: String?
            do {
                checkoutWarning = try recordRevert(revert, of: landing, main: main, attempt: attempt, reason: reason, by: by, reopens: reopensTicket,
                                                   repository: repository)
            } catch is MainMoved {
                continue
            }
            try Failpoints.hit("revert.committed")
            progress("reverted \(id): \(revert.short) undoes \(landing.short)")
            try writeNote(on: revert, repository: repository, batch: batch, ticket: id, kind: "revert",
                          extra: ["reverts": .string(landing.hex), "reason": .string(reason)])
            try Failpoints.hit("revert.noted")
            startBackgroundPacking(repository, service: ticket.service)
            if let checkoutWarning { progress("warning: \(checkoutWarning)") }
            deployAfterChange(ticket.service, trigger: "revert \(id)", ticket: id, progress: progress)
            return revert
        }
        throw RatchetError("main of \(ticket.service) kept moving; gave up reverting \(id) after 20 tries")
    }

    /// The revert commit of `landing` on top of `main` (not yet on any ref).
    private func makeRevertCommit(of landing: ObjectID, onto main: ObjectID, ticket: TicketRecord, reason: String,
                                  repository: Repository) throws -> ObjectID {
        guard try repository.isAncestor(landing, of: main) else {
            throw RatchetError("landing \(landing.short) of \(ticket.id) is not on main; nothing to revert")
        }
        let tree: ObjectID
        switch try repository.revert(landing, onto: main) {
        case .conflicts(let paths):
            throw RatchetError("reverting \(ticket.id) conflicts with later changes in: \(paths.prefix(20).joined(separator: ", ")); revert those first or file a ticket")
        case .clean(let clean): tree = clean
        }
        let message = try CommitMessage.revert(ticket: ticket, landing: landing.hex, reason: reason)
        return try repository.createCommit(tree: tree, parents: [main], author: config.identity, committer: config.identity, message: message)
    }

    /// Moves main to `revert` by compare-and-swap and records it: attempt and ticket
    /// `reverted`, a revert label, the event; one transaction. Throws `MainMoved` when main
    /// moved; returns a warning when the checked-out main could not be updated.
    private func recordRevert(_ revert: ObjectID, of landing: ObjectID, main: ObjectID, attempt: AttemptRecord, reason: String,
                              by: String, reopens: Bool, repository: Repository) throws -> String? {
        let landedTree = try repository.commit(landing).tree
        return try database.write { db in
            var (current, ticket) = try StateChange.load(db, attempt: attempt.id)
            guard current.state == .landed else { throw RatchetError("attempt \(ticket.id)/\(current.number) is \(current.state), not landed") }
            let now = Date()
            try StateChange.moveTicket(&ticket, to: reopens ? .open : .reverted, at: now)
            try moveMain(repository, to: revert, from: main, message: "ratchet: revert \(ticket.id)")
            try Failpoints.hit("revert.ref-moved")
            StateChange.moveAttempt(&current, to: .reverted, at: now)
            current.revert = revert.hex
            try current.update(db)
            try ticket.update(db)
            try StateChange.updateTrajectory(db, current.trajectoryId, label: [
                "kind": "revert", "by": .string(by), "at": .string(StateChange.stamp(now)), "reason": .string(reason), "revert": .string(revert.hex)])
            try RatchetDatabase.appendEvent(db, kind: "ticket.reverted", service: ticket.service, ticket: ticket.id, attempt: current.number,
                                            data: ["landing": .string(landing.hex), "revert": .string(revert.hex), "reason": .string(reason),
                                                   "reopened": .bool(reopens)])
            if reopens {
                try db.execute(sql: "INSERT OR REPLACE INTO watchRevert (service, tree, ticketId, landing, revert, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               arguments: [ticket.service, landedTree.hex, ticket.id, landing.hex, revert.hex, reason, now])
                try RatchetDatabase.appendEvent(db, kind: "ticket.reopened", service: ticket.service, ticket: ticket.id,
                                                data: ["reason": .string(reason), "revert": .string(revert.hex)])
            }
            return updateCheckout(db, repository, service: ticket.service, ticket: ticket.id, from: main, to: revert)
        }
    }

    /// Moves main from `old` to `new` by compare-and-swap; `MainMoved` when another writer won.
    func moveMain(_ repository: Repository, to new: ObjectID, from old: ObjectID, message: String) throws {
        do {
            try repository.updateReference("refs/heads/main", to: new, expected: old, message: message)
        } catch let error as GitError where error.code == .modified || error.code == .locked {
            throw MainMoved()
        }
    }
}

/// A compare-and-swap on main lost because main moved: rebuild and try again.
struct MainMoved: Error {}

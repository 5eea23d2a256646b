import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The result of one acceptance criterion on a candidate.
public struct AcceptanceResult: Codable, Sendable, Equatable {
    /// The criterion as written.
    public var criterion: String
    /// `passed`, `failed`, or `not-evaluated` (free text: judged by a person; invariant and
    /// canary criteria until their issues land).
    public var status: String
    /// What the check printed or why it was not evaluated.
    public var detail: String
}

/// What `ratchet merge` did.
public struct LandingResult: Sendable, Equatable {
    /// The landing merge commit on main.
    public var landing: ObjectID
    /// The attempt that landed.
    public var attempt: AttemptRecord
    /// How many times the candidate was rebuilt because main moved.
    public var rebuilds: Int
    /// The acceptance results on the landed tree.
    public var acceptance: [AcceptanceResult]
    /// Set when the service's checked-out main could not be updated (local changes appeared).
    public var checkoutWarning: String?
}

/// A landing's compare-and-swap lost because main moved: rebuild and verify again.
private struct MainMoved: Error {}

extension Workspace {
    /// Refuses when the checked-out main of the service has local changes.
    func requireCleanMain(_ service: String, repository: Repository) throws {
        let changes = try repository.status()
        guard changes.isEmpty else {
            let paths = changes.prefix(5).map(\.path).joined(separator: ", ") + (changes.count > 5 ? ", …" : "")
            throw RatchetError("services/\(service) has uncommitted changes (\(paths)); Ratchet never overwrites local work: commit or remove them first")
        }
        guard try repository.headReferenceName() == "refs/heads/main" else {
            throw RatchetError("services/\(service) does not have main checked out; check out main first")
        }
    }

    /// Takes the merge lease of the ticket's proposed attempt so that one process at a time lands it.
    private func takeMergeLease(_ id: String) throws -> AttemptRecord {
        try database.write { db in
            guard let ticket = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("no ticket \(id)") }
            guard ticket.state == .proposed else {
                switch ticket.state {
                case .merged: throw RatchetError("ticket \(id) is already merged; nothing to merge")
                case .open: throw RatchetError("ticket \(id) is open: it has no proposed attempt; run 'ratchet work \(id)' first")
                default: throw RatchetError("ticket \(id) is \(ticket.state), not proposed; nothing to merge")
                }
            }
            if try ServiceRecord.fetchOne(db, key: ticket.service)?.isPaused == true {
                throw RatchetError("service \(ticket.service) is paused; landings resume with 'ratchet service resume \(ticket.service)'")
            }
            guard var attempt = try AttemptRecord.filter(AttemptRecord.Columns.ticketId == id && AttemptRecord.Columns.state == AttemptState.proposed)
                .order(AttemptRecord.Columns.number.desc).fetchOne(db) else {
                throw RatchetError("ticket \(id) has no proposed attempt")
            }
            let now = Date()
            if let owner = attempt.leaseOwner, let expiry = attempt.leaseExpiresAt, expiry > now, owner != Lease.owner {
                throw RatchetError("ticket \(id) is being merged by another Ratchet process (\(owner)); try again when it is done")
            }
            attempt.leaseOwner = Lease.owner
            attempt.leaseExpiresAt = now.addingTimeInterval(3600)
            try attempt.update(db)
            return attempt
        }
    }

    private func releaseLease(_ attempt: AttemptRecord) {
        _ = try? database.write { db in
            try db.execute(sql: "UPDATE attempt SET leaseOwner = NULL, leaseExpiresAt = NULL WHERE id = ? AND leaseOwner = ?",
                           arguments: [attempt.id, Lease.owner])
        }
    }

    /// Verifies and lands ticket `id`'s proposed attempt: builds the merge with current main
    /// in memory, runs the `command:` acceptance criteria on a checkout of that exact tree,
    /// and moves main to it by compare-and-swap; if main moved meanwhile, rebuilds and verifies again.
    @discardableResult
    public func merge(ticket rawID: String, progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> LandingResult {
        let id = try Names.ticketID(rawID)
        let ticket = try ticket(id)
        let serviceConfig = try serviceConfig(ticket.service)
        let repository = try Repository.open(servicePath(ticket.service))
        var attempt = try takeMergeLease(id)
        var leaseHeld = true
        defer { if leaseHeld { releaseLease(attempt) } }
        // Under the store's write lock, so that another process's landing checkout is never seen half done.
        try database.write { _ in try requireCleanMain(ticket.service, repository: repository) }
        guard let headHex = attempt.head, let head = ObjectID(hex: headHex) else { throw RatchetError("attempt \(id)/\(attempt.number) has no head commit") }
        let candidateRef = "refs/ratchet/candidates/\(id)/\(attempt.number)"
        defer { try? repository.deleteReference(candidateRef) }
        let criteria = try ticket.acceptance.map(Acceptance.parse)

        func fail(_ message: String, acceptance: [AcceptanceResult]? = nil) throws -> Never {
            try? repository.deleteReference(candidateRef)
            try? removeWorktree(of: attempt)
            leaseHeld = false
            var outcome: JSONValue?
            if let acceptance {
                outcome = ["status": "failed", "error": .string(message), "acceptance": try RatchetJSON.value(acceptance),
                           "duration_s": .number(Date().timeIntervalSince(attempt.startedAt))]
            }
            let next = try endAttempt(attempt, as: .failed, error: message, maxAttempts: serviceConfig.maxAttempts, outcome: outcome)
            throw RatchetError("\(message); attempt \(id)/\(attempt.number) failed and ticket \(id) is \(next)")
        }

        var rebuilds = 0
        var checkoutWarning: String?
        while true {
            guard let main = try repository.resolveReference("refs/heads/main") else { throw RatchetError("service \(ticket.service) has no main") }
            progress("building the candidate of \(id)/\(attempt.number) on main \(main.short)")
            if try repository.isAncestor(head, of: main) {
                try fail("\(attempt.branch) at \(head.short) is already contained in main; there is nothing to land")
            }
            let tree: ObjectID
            switch try repository.merge(ours: main, theirs: head) {
            case .conflicts(let paths):
                try fail("merging \(attempt.branch) into main conflicts in \(paths.count) path(s): \(paths.prefix(20).joined(separator: ", "))")
            case .clean(let clean):
                tree = clean
            }
            let message = try CommitMessage.landing(ticket: ticket, attempt: attempt, canary: "none", approvedBy: nil)
            let candidate = try repository.createCommit(tree: tree, parents: [main, head], author: config.identity,
                                                        committer: config.identity, message: message)
            try repository.updateReference(candidateRef, to: candidate, expected: try repository.resolveReference(candidateRef),
                                           message: "ratchet: candidate of \(id)/\(attempt.number)")

            // Verify the exact candidate tree.
            let results = try verify(criteria, candidate: candidate, repository: repository, service: ticket.service,
                                     config: serviceConfig, progress: progress)
            if let failed = results.first(where: { $0.status == "failed" }) {
                try fail("acceptance criterion '\(failed.criterion)' failed on candidate \(candidate.short): \(failed.detail.split(separator: "\n").last ?? "")",
                         acceptance: results)
            }

            // Land: fenced by the lease, compare-and-swap on main, store update: one transaction.
            do {
                attempt = try database.write { db in
                    guard var current = try AttemptRecord.fetchOne(db, key: attempt.id),
                          var ticketNow = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("attempt vanished") }
                    guard current.leaseOwner == Lease.owner, (current.leaseExpiresAt ?? .distantPast) > Date(),
                          current.state == .proposed, ticketNow.state == .proposed else {
                        throw RatchetError("lost the claim on \(id) before landing (ticket is \(ticketNow.state), attempt is \(current.state)); nothing landed")
                    }
                    do {
                        try repository.updateReference("refs/heads/main", to: candidate, expected: main,
                                                       message: "ratchet: land \(id)/\(current.number)")
                    } catch let error as GitError where error.code == .modified || error.code == .locked {
                        throw MainMoved()
                    }
                    let now = Date()
                    try TicketLifecycle.check(id, from: ticketNow.state, to: .merged)
                    current.state = .landed
                    current.candidate = candidate.hex
                    current.landing = candidate.hex
                    current.endedAt = now
                    current.leaseOwner = nil
                    current.leaseExpiresAt = nil
                    try current.update(db)
                    ticketNow.state = .merged
                    ticketNow.updatedAt = now
                    try ticketNow.update(db)
                    if var trajectory = try TrajectoryRecord.fetchOne(db, key: current.trajectoryId) {
                        trajectory.outcome = ["status": "landed", "landing": .string(candidate.hex), "verdict": nil,
                                              "acceptance": try RatchetJSON.value(results),
                                              "duration_s": .number(now.timeIntervalSince(current.startedAt))]
                        try trajectory.update(db)
                    }
                    try RatchetDatabase.appendEvent(db, kind: "attempt.landed", service: ticketNow.service, ticket: id, attempt: current.number,
                                                    data: ["landing": .string(candidate.hex), "main_before": .string(main.hex), "rebuilds": .number(Double(rebuilds))])
                    try RatchetDatabase.appendEvent(db, kind: "ticket.merged", service: ticketNow.service, ticket: id,
                                                    data: ["landing": .string(candidate.hex)])
                    // Still under the write lock: landings of one workspace update checkouts one at a time.
                    checkoutWarning = updateCheckout(db, repository, service: ticketNow.service, ticket: id)
                    return current
                }
            } catch is MainMoved {
                rebuilds += 1
                progress("main moved while verifying; rebuilding the candidate (\(rebuilds))")
                _ = try? database.write { db in
                    try RatchetDatabase.appendEvent(db, kind: "landing.rebuilt", service: ticket.service, ticket: id, attempt: attempt.number,
                                                    data: ["stale_candidate": .string(candidate.hex), "rebuilds": .number(Double(rebuilds))])
                }
                if rebuilds > 20 { throw RatchetError("main of \(ticket.service) kept moving; gave up landing \(id) after \(rebuilds) rebuilds") }
                continue
            }
            leaseHeld = false
            progress("landed \(id) on main as \(candidate.short)")
            try writeNote(on: candidate, repository: repository, ticket: id, kind: "landing", extra: ["acceptance": try RatchetJSON.value(results)])
            try? removeWorktree(of: attempt)
            try? repository.deleteReference(candidateRef)
            return LandingResult(landing: candidate, attempt: attempt, rebuilds: rebuilds, acceptance: results, checkoutWarning: checkoutWarning)
        }
    }

    /// Runs the acceptance criteria on a private checkout of `candidate`.
    private func verify(_ criteria: [Acceptance], candidate: ObjectID, repository: Repository, service: String,
                        config serviceConfig: ServiceConfig, progress: @Sendable (String) -> Void) throws -> [AcceptanceResult] {
        var results: [AcceptanceResult] = []
        var checkout: String?
        defer { if let checkout { try? FileManager.default.removeItem(atPath: checkout) } }
        for criterion in criteria {
            switch criterion {
            case .command(let command):
                if checkout == nil {
                    let folder = try makeScratchFolder("checkout")
                    try repository.materialize(candidate, into: folder)
                    checkout = folder
                }
                progress("acceptance: \(command)")
                let environment = childEnvironment(allowing: [], extra: ["RATCHET_WORKSPACE": root.path, "RATCHET_SERVICE": service,
                                                                         "RATCHET_CANDIDATE": candidate.hex])
                let run = try ProcessRunner.runShell(command, directory: checkout!, environment: environment,
                                                     limits: ProcessLimits(timeout: serviceConfig.agentTimeout, outputBytes: 64 * 1024))
                results.append(AcceptanceResult(criterion: criterion.text, status: run.succeeded ? "passed" : "failed",
                                                detail: run.succeeded ? redact(run.output) : "\(redact(run.output))\n\(run.summary)"))
            case .invariant:
                results.append(AcceptanceResult(criterion: criterion.text, status: "not-evaluated",
                                                detail: "invariants are evaluated once observation lands (SPEC §8)"))
            case .canary:
                results.append(AcceptanceResult(criterion: criterion.text, status: "not-evaluated",
                                                detail: "the canary gate lands with the canary issue (SPEC §7)"))
            case .text:
                results.append(AcceptanceResult(criterion: criterion.text, status: "not-evaluated", detail: "judged by a person"))
            }
        }
        return results
    }

    /// Writes the JSON note on a landing or revert commit: ticket, complete trajectory, canary report.
    func writeNote(on commit: ObjectID, repository: Repository, ticket id: String, kind: String, extra: [String: JSONValue]) throws {
        let view = try ticketView(id)
        let attempt = view.attempts.last { $0.landing != nil }
        var document: [String: JSONValue] = [
            "schema": "ratchet.note/v1", "kind": .string(kind),
            "ticket": try RatchetJSON.value(NoteTicket(view)),
            "attempt": attempt.map { .number(Double($0.number)) } ?? nil,
            "trajectory": try attempt.map { try RatchetJSON.value(trajectoryDocument($0.trajectory)) } ?? nil,
            "canary": nil,
        ]
        document.merge(extra) { $1 }
        let text = try RatchetJSON.string(JSONValue.object(document)) + "\n"
        try repository.setNote(text, on: commit, author: config.identity)
    }

    /// Safe-checks-out main in `services/NAME` after Ratchet moved it, inside the landing's
    /// transaction `db`. Returns a warning (and records an event) when local changes prevent it.
    func updateCheckout(_ db: Database, _ repository: Repository, service: String, ticket: String) -> String? {
        do {
            try repository.safeCheckoutHead()
            return nil
        } catch {
            let message = "services/\(service) was not updated to the new main (\(describe(error))); save your changes, then run 'git -C services/\(service) reset --hard main'"
            _ = try? RatchetDatabase.appendEvent(db, kind: "service.checkout_skipped", service: service, ticket: ticket, data: ["reason": .string(describe(error))])
            return message
        }
    }

    /// Undoes ticket `id`'s landing with a commit on main (`git revert -m 1` semantics).
    @discardableResult
    public func revert(ticket rawID: String, reason rawReason: String? = nil, by person: String? = nil,
                       progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> ObjectID {
        let id = try Names.ticketID(rawID)
        let reason = try Names.line(rawReason ?? "requested by \(person ?? ProcessInfo.processInfo.environment["USER"] ?? "operator")", what: "reason")
        let ticket = try ticket(id)
        try TicketLifecycle.check(id, from: ticket.state, to: .reverted)
        guard let attempt = try database.read({ db in
            try AttemptRecord.filter(AttemptRecord.Columns.ticketId == id && AttemptRecord.Columns.state == AttemptState.landed)
                .order(AttemptRecord.Columns.number.desc).fetchOne(db)
        }), let landingHex = attempt.landing, let landing = ObjectID(hex: landingHex) else {
            throw RatchetError("ticket \(id) has no landed attempt to revert")
        }
        let repository = try Repository.open(servicePath(ticket.service))
        try database.write { _ in try requireCleanMain(ticket.service, repository: repository) }
        var checkoutWarning: String?
        for _ in 0...20 {
            guard let main = try repository.resolveReference("refs/heads/main") else { throw RatchetError("service has no main") }
            guard try repository.isAncestor(landing, of: main) else {
                throw RatchetError("landing \(landing.short) of \(id) is not on main; nothing to revert")
            }
            let tree: ObjectID
            switch try repository.revert(landing, onto: main) {
            case .conflicts(let paths):
                throw RatchetError("reverting \(id) conflicts with later changes in: \(paths.prefix(20).joined(separator: ", ")); revert those first or file a ticket")
            case .clean(let clean): tree = clean
            }
            let message = try CommitMessage.revert(ticket: ticket, landing: landing.hex, reason: reason)
            let revert = try repository.createCommit(tree: tree, parents: [main], author: config.identity, committer: config.identity, message: message)
            do {
                try database.write { db in
                    guard var current = try AttemptRecord.fetchOne(db, key: attempt.id),
                          var ticketNow = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("attempt vanished") }
                    try TicketLifecycle.check(id, from: ticketNow.state, to: .reverted)
                    guard current.state == .landed else { throw RatchetError("attempt \(id)/\(current.number) is \(current.state), not landed") }
                    do {
                        try repository.updateReference("refs/heads/main", to: revert, expected: main, message: "ratchet: revert \(id)")
                    } catch let error as GitError where error.code == .modified || error.code == .locked {
                        throw MainMoved()
                    }
                    let now = Date()
                    current.state = .reverted
                    current.revert = revert.hex
                    try current.update(db)
                    ticketNow.state = .reverted
                    ticketNow.updatedAt = now
                    try ticketNow.update(db)
                    if var trajectory = try TrajectoryRecord.fetchOne(db, key: current.trajectoryId) {
                        trajectory.labels.append(["kind": "revert", "by": .string(person ?? ProcessInfo.processInfo.environment["USER"] ?? "operator"),
                                                  "at": .string(ISO8601DateFormatter().string(from: now)), "reason": .string(reason),
                                                  "revert": .string(revert.hex)])
                        try trajectory.update(db)
                    }
                    try RatchetDatabase.appendEvent(db, kind: "ticket.reverted", service: ticketNow.service, ticket: id, attempt: current.number,
                                                    data: ["landing": .string(landing.hex), "revert": .string(revert.hex), "reason": .string(reason)])
                    checkoutWarning = updateCheckout(db, repository, service: ticketNow.service, ticket: id)
                }
            } catch is MainMoved {
                continue
            }
            progress("reverted \(id): \(revert.short) undoes \(landing.short)")
            try writeNote(on: revert, repository: repository, ticket: id, kind: "revert",
                          extra: ["reverts": .string(landing.hex), "reason": .string(reason)])
            if let checkoutWarning { progress("warning: \(checkoutWarning)") }
            return revert
        }
        throw RatchetError("main of \(ticket.service) kept moving; gave up reverting \(id) after 20 tries")
    }
}

/// The ticket as a note carries it.
private struct NoteTicket: Codable {
    var id, service, title, objective, source, risk: String
    var acceptance, constraints: [String]
    init(_ view: TicketView) {
        id = view.id; service = view.service; title = view.title; objective = view.objective; source = view.source
        risk = view.risk; acceptance = view.acceptance; constraints = view.constraints
    }
}

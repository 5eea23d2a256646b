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

/// What `ratchet merge` or `ratchet approve` did.
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
    /// The canary report of the landed tree; nil when main has no `canary/canary.yaml`.
    public var canary: CanaryReport? = nil
    /// Protected paths the landing changes (approved by a person).
    public var protectedPaths: [String] = []
    /// What the service's `deploy` did after the landing (nil: the service has none).
    public var deploy: DeployOutcome? = nil
}

/// A merge that verified the candidate but did not land it: the gate held it for a
/// person (`needs-approval`) or the canary rejected it. Carries the report for display.
public struct GateStop: Error, CustomStringConvertible, Sendable {
    /// `needs-approval` or `rejected`.
    public var outcome: String
    /// The one-line message.
    public var message: String
    /// The canary report, when a canary ran.
    public var report: CanaryReport?
    /// The acceptance results.
    public var acceptance: [AcceptanceResult]
    public var description: String { message }
}

/// A person's approval of a held attempt.
struct Approval {
    var by: String
    var note: String?
}

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

    /// Takes the merge lease of the ticket's proposed attempt so that one process at a time
    /// lands it; the ticket must be in `state` (`proposed` for merge, `needs-approval` for approve).
    func takeMergeLease(_ id: String, state expected: TicketState) throws -> AttemptRecord {
        try database.write { db in
            guard let ticket = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("no ticket \(id)") }
            guard ticket.state == expected else {
                switch (ticket.state, expected) {
                case (.merged, _): throw RatchetError("ticket \(id) is already merged; nothing to \(expected == .proposed ? "merge" : "approve")")
                case (.open, .proposed): throw RatchetError("ticket \(id) is open: it has no proposed attempt; run 'ratchet work \(id)' first")
                case (.needsApproval, .proposed):
                    throw RatchetError("ticket \(id) needs approval; a person lands it with 'ratchet approve \(id)' or turns it down with 'ratchet reject \(id)'")
                case (.proposed, .needsApproval):
                    throw RatchetError("ticket \(id) is proposed, not needs-approval; there is nothing to approve (land it with 'ratchet merge \(id)')")
                default: throw RatchetError("ticket \(id) is \(ticket.state), not \(expected); nothing to \(expected == .proposed ? "merge" : "approve")")
                }
            }
            if try ServiceRecord.fetchOne(db, key: ticket.service)?.isPaused == true {
                throw RatchetError("service \(ticket.service) is paused; landings resume with 'ratchet service resume \(ticket.service)'")
            }
            guard var attempt = try StateChange.latestAttempt(db, ticket: id, in: .proposed) else {
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

    func releaseLease(_ attempt: AttemptRecord) {
        _ = try? database.write { db in
            try db.execute(sql: "UPDATE attempt SET leaseOwner = NULL, leaseExpiresAt = NULL WHERE id = ? AND leaseOwner = ?",
                           arguments: [attempt.id, Lease.owner])
        }
    }

    /// Verifies and lands ticket `id`'s proposed attempt: builds the merge with current main
    /// in memory, runs the `command:` acceptance criteria and then main's canary on that exact
    /// tree, and moves main to it by compare-and-swap; if main moved meanwhile, rebuilds and
    /// verifies again. The canary gate: pass lands; marginal, or a change to a protected path,
    /// holds the ticket for a person (`needs-approval`, throws `GateStop`); fail rejects the
    /// attempt (throws `GateStop`).
    /// The landing gates (`max_landings_per_hour`, the error budget) refuse first, unless
    /// `overrideGate` gives a person's reason to land anyway.
    @discardableResult
    public func merge(ticket rawID: String, overrideGate: String? = nil,
                      progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> LandingResult {
        try land(ticket: rawID, approval: nil, override: try gateOverride(overrideGate, by: nil), watch: nil, progress: progress)
    }

    /// The pump's merge: the landing's transaction also opens its watch window (adr/0048).
    func merge(ticket rawID: String, watch: WatchRequest, progress: @escaping @Sendable (String) -> Void) throws -> LandingResult {
        try land(ticket: rawID, approval: nil, override: nil, watch: watch, progress: progress)
    }

    /// Lands ticket `id` held in `needs-approval` on a person's word: `Approved-By: by` and an
    /// approval label on the trajectory. The approval covers the canary verdict and the
    /// protected paths; what lands is still verified: if main moved since the candidate was
    /// judged, it is rebuilt and the acceptance criteria and the canary run again.
    @discardableResult
    public func approve(ticket rawID: String, by person: String? = nil, note: String? = nil, overrideGate: String? = nil,
                        progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> LandingResult {
        let by = try Names.line(person ?? ProcessInfo.processInfo.environment["USER"] ?? "operator", what: "approver", limit: 200)
        let note = try note.map { try Names.line(redact($0), what: "note") }
        return try land(ticket: rawID, approval: Approval(by: by, note: note), override: try gateOverride(overrideGate, by: by), watch: nil,
                        progress: progress)
    }

    private func land(ticket rawID: String, approval: Approval?, override: GateOverride?, watch: WatchRequest?,
                      progress: @escaping @Sendable (String) -> Void) throws -> LandingResult {
        let id = try Names.ticketID(rawID)
        let run = try LandingRun(workspace: self, ticket: ticket(id), approval: approval, progress: progress)
        defer { run.release() }
        try Failpoints.hit("merge.leased")
        // Under the store's write lock, so that another process's landing checkout is never seen half done.
        try database.write { _ in try requireCleanMain(run.ticket.service, repository: run.repository) }
        // The landing gates, before any verification; the rate is checked again as it lands.
        run.gateOverride = override
        run.watch = watch
        run.overriddenGates = try checkLandingGates(run.ticket, config: run.serviceConfig, override: override)
        while true {
            let candidate = try run.build()
            let verification = try run.verify(candidate)
            try run.gate(candidate, verification)
            guard let landing = try run.commit(candidate, verification) else { continue }
            var result = try run.finish(landing, candidate: candidate, verification: verification)
            result.deploy = deployAfterChange(run.ticket.service, trigger: "landing \(id)", ticket: id, progress: progress)
            return result
        }
    }

    /// The acceptance results and canary report recorded when `attempt` was held for approval
    /// with `candidate`; nil when they cannot be found (then everything is verified again).
    func heldVerification(of attempt: AttemptRecord, candidate: ObjectID) throws -> ([AcceptanceResult], CanaryReport?)? {
        guard let outcome = try database.read({ db in try TrajectoryRecord.fetchOne(db, key: attempt.trajectoryId)?.outcome }),
              outcome["status"]?.stringValue == "needs-approval", outcome["candidate"]?.stringValue == candidate.hex,
              let acceptance = outcome["acceptance"] else { return nil }
        let results = try RatchetJSON.decoder().decode([AcceptanceResult].self, from: Data(RatchetJSON.string(acceptance).utf8))
        var report: CanaryReport?
        if case .number(let number)? = outcome["canary_report"] {
            report = try canaryReports(String(Int64(number))).first
            guard report?.candidate == candidate.hex else { return nil }
        }
        return (results, report)
    }

    /// Holds a verified attempt for a person: ticket `needs-approval`, the attempt stays
    /// proposed with its candidate and worktree; one transaction with its event.
    func hold(_ attempt: AttemptRecord, candidate: ObjectID, report: CanaryReport?, acceptance: [AcceptanceResult],
                      protected: [String], reasons: [String]) throws {
        try database.write { db in
            var (current, ticket) = try StateChange.load(db, attempt: attempt.id)
            guard StateChange.holdsLease(current), current.state == .proposed, ticket.state == .proposed || ticket.state == .needsApproval else {
                throw RatchetError("lost the claim on \(ticket.id) before holding it for approval (ticket is \(ticket.state), attempt is \(current.state))")
            }
            // Held again (an approval that no longer covers a rebuilt candidate) stays needs-approval.
            let now = Date()
            if ticket.state != .needsApproval { try StateChange.moveTicket(&ticket, to: .needsApproval, at: now) }
            StateChange.moveAttempt(&current, to: .proposed, at: now)
            current.candidate = candidate.hex
            try current.update(db)
            try ticket.update(db)
            try StateChange.updateTrajectory(db, current.trajectoryId, outcome: [
                "status": "needs-approval", "candidate": .string(candidate.hex), "verdict": .optional(report?.verdict.rawValue),
                "canary_report": report.map { .number(Double($0.id ?? 0)) } ?? nil, "acceptance": try RatchetJSON.value(acceptance),
                "protected_paths": .array(protected.map { .string($0) }), "reasons": .array(reasons.map { .string($0) })])
            try RatchetDatabase.appendEvent(db, kind: "ticket.needs_approval", service: ticket.service, ticket: ticket.id, attempt: current.number,
                                            data: ["candidate": .string(candidate.hex), "verdict": .optional(report?.verdict.rawValue),
                                                   "score": report.map { .number($0.score) } ?? nil,
                                                   "report": report.map { .number(Double($0.id ?? 0)) } ?? nil,
                                                   "protected_paths": .array(protected.map { .string($0) }),
                                                   "reasons": .array(reasons.map { .string($0) })])
        }
    }

    /// Ends an attempt the canary failed: `rejected`, report kept, ticket open or escalated.
    func rejectByCanary(_ attempt: AttemptRecord, report: CanaryReport, acceptance: [AcceptanceResult], maxAttempts: Int) throws {
        let message = "canary \(report.summary)"
        let outcome: JSONValue = ["status": "rejected", "error": .string(message), "verdict": .string(report.verdict.rawValue),
                                  "canary": ["report": .number(Double(report.id ?? 0)), "verdict": .string(report.verdict.rawValue), "score": .number(report.score)],
                                  "acceptance": try RatchetJSON.value(acceptance),
                                  "duration_s": .number(Date().timeIntervalSince(attempt.startedAt))]
        try endAttempt(attempt, as: .rejected, error: message, maxAttempts: maxAttempts, outcome: outcome)
    }

    /// Writes the JSON note on a landing or revert commit: ticket, complete trajectory, canary report.
    /// With `batch` (whose handle `repository` must be), the note's objects are flushed as one
    /// pack before the notes reference moves.
    func writeNote(on commit: ObjectID, repository: Repository, batch: ObjectBatch? = nil, ticket id: String, kind: String,
                   extra: [String: JSONValue]) throws {
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
        guard let batch else { return try repository.setNote(text, on: commit, author: config.identity) }
        try batch.publishNote(text, on: commit, author: config.identity)
    }

    /// Brings the checked-out main of `services/NAME` from commit `old` to `new` after Ratchet
    /// moved main, inside the landing's transaction `db`: by applying only their difference
    /// where that is provably safe, else by a safe checkout. Returns a warning (and records an
    /// event) when local changes prevent it.
    func updateCheckout(_ db: Database, _ repository: Repository, service: String, ticket: String, from old: ObjectID, to new: ObjectID) -> String? {
        do {
            if try repository.applyCheckoutDifference(from: try repository.commit(old).tree, to: try repository.commit(new).tree,
                                                      afterFiles: { try Failpoints.hit("checkout.files-written") }) { return nil }
            try repository.safeCheckoutHead()
            return nil
        } catch {
            let message = "services/\(service) was not updated to the new main (\(describe(error))); save your changes, then run 'git -C services/\(service) reset --hard main'"
            _ = try? RatchetDatabase.appendEvent(db, kind: "service.checkout_skipped", service: service, ticket: ticket, data: ["reason": .string(describe(error))])
            return message
        }
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

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

    /// Takes the merge lease of the ticket's proposed attempt so that one process at a time
    /// lands it; the ticket must be in `state` (`proposed` for merge, `needs-approval` for approve).
    private func takeMergeLease(_ id: String, state expected: TicketState) throws -> AttemptRecord {
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
    /// in memory, runs the `command:` acceptance criteria and then main's canary on that exact
    /// tree, and moves main to it by compare-and-swap; if main moved meanwhile, rebuilds and
    /// verifies again. The canary gate: pass lands; marginal, or a change to a protected path,
    /// holds the ticket for a person (`needs-approval`, throws `GateStop`); fail rejects the
    /// attempt (throws `GateStop`).
    @discardableResult
    public func merge(ticket rawID: String, progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> LandingResult {
        try land(ticket: rawID, approval: nil, progress: progress)
    }

    /// Lands ticket `id` held in `needs-approval` on a person's word: `Approved-By: by` and an
    /// approval label on the trajectory. The approval covers the canary verdict and the
    /// protected paths; what lands is still verified: if main moved since the candidate was
    /// judged, it is rebuilt and the acceptance criteria and the canary run again.
    @discardableResult
    public func approve(ticket rawID: String, by person: String? = nil, note: String? = nil,
                        progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> LandingResult {
        let by = try Names.line(person ?? ProcessInfo.processInfo.environment["USER"] ?? "operator", what: "approver", limit: 200)
        let note = try note.map { try Names.line($0, what: "note") }
        return try land(ticket: rawID, approval: Approval(by: by, note: note), progress: progress)
    }

    private func land(ticket rawID: String, approval: Approval?, progress: @escaping @Sendable (String) -> Void) throws -> LandingResult {
        let id = try Names.ticketID(rawID)
        let ticket = try ticket(id)
        let serviceConfig = try serviceConfig(ticket.service)
        // New objects are written as one pack per durable step, flushed before a ref moves to them.
        let batch = try ObjectBatch(path: servicePath(ticket.service))
        let repository = batch.repository
        let expectedState: TicketState = approval == nil ? .proposed : .needsApproval
        var attempt = try takeMergeLease(id, state: expectedState)
        try Failpoints.hit("merge.leased")
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
            let protected = try repository.changedPaths(from: try repository.commit(main).tree, to: tree).filter(serviceConfig.isProtected)

            // A held candidate judged on this very main is not verified again on approval.
            var verified: (results: [AcceptanceResult], report: CanaryReport?)?
            if approval != nil, let held = attempt.candidate.flatMap(ObjectID.init(hex:)),
               let info = try? repository.commit(held), info.parents == [main, head], info.tree == tree {
                verified = try heldVerification(of: attempt, candidate: held)
                if verified != nil { progress("the approved candidate \(held.short) was judged on this main; landing it") }
            }
            let results: [AcceptanceResult]
            let report: CanaryReport?
            var candidate: ObjectID
            if let verified {
                (results, report) = verified
                candidate = ObjectID(hex: attempt.candidate!)!
            } else {
                let message = try CommitMessage.landing(ticket: ticket, attempt: attempt, canary: "pending", approvedBy: approval?.by)
                candidate = try repository.createCommit(tree: tree, parents: [main, head], author: config.identity,
                                                        committer: config.identity, message: message)
                try batch.flush(roots: [candidate])
                try Failpoints.hit("candidate.flushed")
                try repository.updateReference(candidateRef, to: candidate, expected: try repository.resolveReference(candidateRef),
                                               message: "ratchet: candidate of \(id)/\(attempt.number)")
                try Failpoints.hit("candidate.written")

                // Verify the exact candidate tree: the commands first (cheap), then the canary.
                var checked = try verify(criteria, candidate: candidate, repository: repository, service: ticket.service,
                                         config: serviceConfig, progress: progress)
                if let failed = checked.first(where: { $0.status == "failed" }) {
                    try fail("acceptance criterion '\(failed.criterion)' failed on candidate \(candidate.short): \(failed.detail.split(separator: "\n").last ?? "")",
                             acceptance: checked)
                }
                try Failpoints.hit("acceptance.done")
                report = try judgeCanary(service: ticket.service, repository: repository, baseline: main, candidate: candidate,
                                         ticket: id, attempt: attempt.number, progress: progress)
                try Failpoints.hit("canary.judged")
                for index in checked.indices where checked[index].criterion == Acceptance.canary.text {
                    checked[index].status = report?.verdict == .pass ? "passed" : "failed"
                    checked[index].detail = report.map { "canary report #\($0.id ?? 0): \($0.summary)" }
                        ?? "service \(ticket.service) has no \(CanaryConfig.path) on main"
                }
                results = checked
                if report == nil, let failed = results.first(where: { $0.status == "failed" }) {
                    try fail("acceptance criterion '\(failed.criterion)' failed: \(failed.detail)", acceptance: results)
                }
            }

            // The gate. An approval covers what the person saw; a candidate rebuilt because main
            // moved that now fails the canary is held again for a second, explicit approval.
            let approvalCovers = approval != nil && (verified != nil || report?.verdict != .fail)
            if !approvalCovers {
                if approval == nil, let report, report.verdict == .fail, protected.isEmpty {
                    try rejectByCanary(attempt, report: report, acceptance: results, maxAttempts: serviceConfig.maxAttempts)
                    leaseHeld = false
                    try? repository.deleteReference(candidateRef)
                    try? removeWorktree(of: attempt)
                    let next = try self.ticket(id).state
                    throw GateStop(outcome: "rejected",
                                   message: "the canary rejected \(id)/\(attempt.number): \(report.summary); attempt \(id)/\(attempt.number) is rejected and ticket \(id) is \(next)",
                                   report: report, acceptance: results)
                }
                if approval != nil || report?.verdict == .marginal || !protected.isEmpty {
                    var reasons: [String] = []
                    if approval != nil { reasons.append("main moved since the approval and the rebuilt candidate fails the canary (approve again to land this exact candidate)") }
                    if let report, report.verdict != .pass { reasons.append("canary \(report.summary)") }
                    if !protected.isEmpty { reasons.append("it changes protected path(s) \(protected.prefix(10).joined(separator: ", "))") }
                    try hold(attempt, candidate: candidate, report: report, acceptance: results, protected: protected, reasons: reasons)
                    leaseHeld = false
                    throw GateStop(outcome: "needs-approval",
                                   message: "\(id) needs approval because \(reasons.joined(separator: " and ")); land it with 'ratchet approve \(id)' or turn it down with 'ratchet reject \(id)'",
                                   report: report, acceptance: results)
                }
            }

            // The landing commit: the verified tree and parents, with the final trailers.
            let landingMessage = try CommitMessage.landing(ticket: ticket, attempt: attempt, canary: report?.trailer ?? "none", approvedBy: approval?.by)
            let landing = try repository.createCommit(tree: tree, parents: [main, head], author: config.identity,
                                                      committer: config.identity, message: landingMessage)
            try batch.flush(roots: [landing])
            try Failpoints.hit("land.flushed")

            // Land: fenced by the lease, compare-and-swap on main, store update: one transaction.
            do {
                attempt = try database.write { db in
                    guard var current = try AttemptRecord.fetchOne(db, key: attempt.id),
                          var ticketNow = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("attempt vanished") }
                    guard current.leaseOwner == Lease.owner, (current.leaseExpiresAt ?? .distantPast) > Date(),
                          current.state == .proposed, ticketNow.state == expectedState else {
                        throw RatchetError("lost the claim on \(id) before landing (ticket is \(ticketNow.state), attempt is \(current.state)); nothing landed")
                    }
                    do {
                        try repository.updateReference("refs/heads/main", to: landing, expected: main,
                                                       message: "ratchet: land \(id)/\(current.number)")
                    } catch let error as GitError where error.code == .modified || error.code == .locked {
                        throw MainMoved()
                    }
                    try Failpoints.hit("land.ref-moved")
                    let now = Date()
                    try TicketLifecycle.check(id, from: ticketNow.state, to: .merged)
                    current.state = .landed
                    current.candidate = candidate.hex
                    current.landing = landing.hex
                    current.endedAt = now
                    current.leaseOwner = nil
                    current.leaseExpiresAt = nil
                    try current.update(db)
                    ticketNow.state = .merged
                    ticketNow.updatedAt = now
                    try ticketNow.update(db)
                    if var trajectory = try TrajectoryRecord.fetchOne(db, key: current.trajectoryId) {
                        trajectory.outcome = ["status": "landed", "landing": .string(landing.hex),
                                              "verdict": report.map { .string($0.verdict.rawValue) } ?? nil,
                                              "canary": report.map { ["report": .number(Double($0.id ?? 0)), "verdict": .string($0.verdict.rawValue),
                                                                      "score": .number($0.score)] } ?? nil,
                                              "acceptance": try RatchetJSON.value(results),
                                              "duration_s": .number(now.timeIntervalSince(current.startedAt))]
                        if let approval {
                            trajectory.labels.append(["kind": "approval", "by": .string(approval.by), "at": .string(ISO8601DateFormatter().string(from: now)),
                                                      "note": .optional(approval.note), "verdict": .optional(report?.verdict.rawValue),
                                                      "score": report.map { .number($0.score) } ?? nil,
                                                      "protected_paths": .array(protected.map { .string($0) }), "landing": .string(landing.hex)])
                        }
                        try trajectory.update(db)
                    }
                    if let approval {
                        try RatchetDatabase.appendEvent(db, kind: "ticket.approved", service: ticketNow.service, ticket: id, attempt: current.number,
                                                        data: ["by": .string(approval.by), "note": .optional(approval.note), "landing": .string(landing.hex),
                                                               "verdict": .optional(report?.verdict.rawValue)])
                    }
                    try RatchetDatabase.appendEvent(db, kind: "attempt.landed", service: ticketNow.service, ticket: id, attempt: current.number,
                                                    data: ["landing": .string(landing.hex), "main_before": .string(main.hex), "rebuilds": .number(Double(rebuilds)),
                                                           "canary": .optional(report?.trailer)])
                    try RatchetDatabase.appendEvent(db, kind: "ticket.merged", service: ticketNow.service, ticket: id,
                                                    data: ["landing": .string(landing.hex)])
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
            try Failpoints.hit("land.committed")
            progress("landed \(id) on main as \(landing.short)")
            var extra: [String: JSONValue] = ["acceptance": try RatchetJSON.value(results), "canary": try report.map { try RatchetJSON.value($0) } ?? nil]
            if let approval {
                extra["approval"] = ["by": .string(approval.by), "note": .optional(approval.note), "protected_paths": .array(protected.map { .string($0) })]
            }
            try writeNote(on: landing, repository: repository, batch: batch, ticket: id, kind: "landing", extra: extra)
            try Failpoints.hit("note.written")
            try? removeWorktree(of: attempt)
            try? repository.deleteReference(candidateRef)
            try Failpoints.hit("merge.cleaned")
            startBackgroundPacking(repository, service: ticket.service)
            return LandingResult(landing: landing, attempt: attempt, rebuilds: rebuilds, acceptance: results, checkoutWarning: checkoutWarning,
                                 canary: report, protectedPaths: protected)
        }
    }

    /// The acceptance results and canary report recorded when `attempt` was held for approval
    /// with `candidate`; nil when they cannot be found (then everything is verified again).
    private func heldVerification(of attempt: AttemptRecord, candidate: ObjectID) throws -> ([AcceptanceResult], CanaryReport?)? {
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
    private func hold(_ attempt: AttemptRecord, candidate: ObjectID, report: CanaryReport?, acceptance: [AcceptanceResult],
                      protected: [String], reasons: [String]) throws {
        try database.write { db in
            guard var current = try AttemptRecord.fetchOne(db, key: attempt.id),
                  var ticket = try TicketRecord.fetchOne(db, key: attempt.ticketId) else { throw RatchetError("attempt vanished") }
            guard current.leaseOwner == Lease.owner, (current.leaseExpiresAt ?? .distantPast) > Date(),
                  current.state == .proposed, ticket.state == .proposed || ticket.state == .needsApproval else {
                throw RatchetError("lost the claim on \(ticket.id) before holding it for approval (ticket is \(ticket.state), attempt is \(current.state))")
            }
            // Held again (an approval that no longer covers a rebuilt candidate) stays needs-approval.
            if ticket.state != .needsApproval { try TicketLifecycle.check(ticket.id, from: ticket.state, to: .needsApproval) }
            let now = Date()
            current.candidate = candidate.hex
            current.leaseOwner = nil
            current.leaseExpiresAt = nil
            try current.update(db)
            ticket.state = .needsApproval
            ticket.updatedAt = now
            try ticket.update(db)
            if var trajectory = try TrajectoryRecord.fetchOne(db, key: current.trajectoryId) {
                trajectory.outcome = ["status": "needs-approval", "candidate": .string(candidate.hex),
                                      "verdict": .optional(report?.verdict.rawValue),
                                      "canary_report": report.map { .number(Double($0.id ?? 0)) } ?? nil,
                                      "acceptance": try RatchetJSON.value(acceptance),
                                      "protected_paths": .array(protected.map { .string($0) }),
                                      "reasons": .array(reasons.map { .string($0) })]
                try trajectory.update(db)
            }
            try RatchetDatabase.appendEvent(db, kind: "ticket.needs_approval", service: ticket.service, ticket: ticket.id, attempt: current.number,
                                            data: ["candidate": .string(candidate.hex), "verdict": .optional(report?.verdict.rawValue),
                                                   "score": report.map { .number($0.score) } ?? nil,
                                                   "report": report.map { .number(Double($0.id ?? 0)) } ?? nil,
                                                   "protected_paths": .array(protected.map { .string($0) }),
                                                   "reasons": .array(reasons.map { .string($0) })])
        }
    }

    /// Ends an attempt the canary failed: `rejected`, report kept, ticket open or escalated.
    private func rejectByCanary(_ attempt: AttemptRecord, report: CanaryReport, acceptance: [AcceptanceResult], maxAttempts: Int) throws {
        let message = "canary \(report.summary)"
        let outcome: JSONValue = ["status": "rejected", "error": .string(message), "verdict": .string(report.verdict.rawValue),
                                  "canary": ["report": .number(Double(report.id ?? 0)), "verdict": .string(report.verdict.rawValue), "score": .number(report.score)],
                                  "acceptance": try RatchetJSON.value(acceptance),
                                  "duration_s": .number(Date().timeIntervalSince(attempt.startedAt))]
        try endAttempt(attempt, as: .rejected, error: message, maxAttempts: maxAttempts, outcome: outcome)
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
                results.append(AcceptanceResult(criterion: criterion.text, status: "not-evaluated", detail: "judged by the canary after the commands"))
            case .text:
                results.append(AcceptanceResult(criterion: criterion.text, status: "not-evaluated", detail: "judged by a person"))
            }
        }
        return results
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
        // New objects are written as one pack per durable step, flushed before a ref moves to them.
        let batch = try ObjectBatch(path: servicePath(ticket.service))
        let repository = batch.repository
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
            try batch.flush(roots: [revert])
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
                    try Failpoints.hit("revert.ref-moved")
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
            try Failpoints.hit("revert.committed")
            progress("reverted \(id): \(revert.short) undoes \(landing.short)")
            try writeNote(on: revert, repository: repository, batch: batch, ticket: id, kind: "revert",
                          extra: ["reverts": .string(landing.hex), "reason": .string(reason)])
            try Failpoints.hit("revert.noted")
            startBackgroundPacking(repository, service: ticket.service)
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

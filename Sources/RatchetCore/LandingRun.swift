import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The merge of one candidate: main and the attempt's head, merged in memory.
struct Candidate {
    var main: ObjectID
    var tree: ObjectID
    /// What the change touches that a person must see (protected paths, tests, secrets).
    var review: ChangeReview
}

/// What verification found on one candidate commit.
struct Verification {
    var results: [AcceptanceResult]
    var report: CanaryReport?
    /// The candidate merge commit that was verified.
    var commit: ObjectID
    /// Whether these are the results a person saw when approving (not verified again).
    var isReused: Bool
}

/// One `merge` or `approve` of a ticket, in phases: build the candidate on current main,
/// verify that exact tree, gate it, land it by compare-and-swap, finish (note, clean-up).
/// When main moved meanwhile the loop in `land` builds and verifies again (adr/0006).
final class LandingRun {
    let workspace: Workspace
    let ticket: TicketRecord
    let approval: Approval?
    let progress: @Sendable (String) -> Void
    let serviceConfig: ServiceConfig
    let batch: ObjectBatch
    var repository: Repository { batch.repository }
    let expectedState: TicketState
    private(set) var attempt: AttemptRecord
    let head: ObjectID
    let criteria: [Acceptance]
    var candidateRef: String { "refs/ratchet/candidates/\(ticket.id)/\(attempt.number)" }
    /// A person's override of the landing gates, and the gates it overrode (`land`).
    var gateOverride: GateOverride?
    var overriddenGates: [LandingGateBlock] = []
    /// The pump's watch window, opened in the landing's transaction.
    var watch: WatchRequest?
    private var leaseHeld = true
    private(set) var rebuilds = 0
    private var checkoutWarning: String?

    init(workspace: Workspace, ticket: TicketRecord, approval: Approval?, progress: @escaping @Sendable (String) -> Void) throws {
        self.workspace = workspace
        self.ticket = ticket
        self.approval = approval
        self.progress = progress
        // New objects are written as one pack per durable step, flushed before a ref moves to them.
        batch = try workspace.serviceBatch(ticket.service)
        serviceConfig = try workspace.serviceConfig(ticket.service, repository: batch.repository)
        expectedState = approval == nil ? .proposed : .needsApproval
        criteria = try ticket.acceptance.map(Acceptance.parse)
        attempt = try workspace.takeMergeLease(ticket.id, state: expectedState)
        guard let hex = attempt.head, let head = ObjectID(hex: hex) else {
            workspace.releaseLease(attempt)
            throw RatchetError("attempt \(ticket.id)/\(attempt.number) has no head commit")
        }
        self.head = head
    }

    /// Gives the lease back if it is still held and removes the candidate reference.
    func release() {
        if leaseHeld { workspace.releaseLease(attempt) }
        leaseHeld = false
        try? repository.deleteReference(candidateRef)
    }

    /// Phase 1: merges the attempt's head into current main in memory and reviews the change.
    func build() throws -> Candidate {
        guard let main = try repository.resolveReference("refs/heads/main") else { throw RatchetError("service \(ticket.service) has no main") }
        progress("building the candidate of \(ticket.id)/\(attempt.number) on main \(main.short)")
        if try repository.isAncestor(head, of: main) {
            try fail("\(attempt.branch) at \(head.short) is already contained in main; there is nothing to land")
        }
        switch try repository.merge(ours: main, theirs: head) {
        case .conflicts(let paths):
            try fail("merging \(attempt.branch) into main conflicts in \(paths.count) path(s): \(paths.prefix(20).joined(separator: ", "))")
        case .clean(let tree):
            let review = try workspace.review(from: try repository.commit(main).tree, to: tree, config: serviceConfig, repository: repository)
            return Candidate(main: main, tree: tree, review: review)
        }
    }

    /// Phase 2: the acceptance commands, then the canary, on the exact candidate commit. A
    /// held candidate judged on this very main is not verified again on approval.
    func verify(_ candidate: Candidate) throws -> Verification {
        if approval != nil, let held = attempt.candidate.flatMap(ObjectID.init(hex:)),
           let info = try? repository.commit(held), info.parents == [candidate.main, head], info.tree == candidate.tree,
           let (results, report) = try workspace.heldVerification(of: attempt, candidate: held) {
            progress("the approved candidate \(held.short) was judged on this main; landing it")
            return Verification(results: results, report: report, commit: held, isReused: true)
        }
        let message = try CommitMessage.landing(ticket: ticket, attempt: attempt, canary: "pending", approvedBy: approval?.by)
        let commit = try repository.createCommit(tree: candidate.tree, parents: [candidate.main, head], author: workspace.config.identity,
                                                 committer: workspace.config.identity, message: message)
        try batch.flush(roots: [commit])
        try Failpoints.hit("candidate.flushed")
        try repository.updateReference(candidateRef, to: commit, expected: try repository.resolveReference(candidateRef),
                                       message: "ratchet: candidate of \(ticket.id)/\(attempt.number)")
        try Failpoints.hit("candidate.written")
        var results = try workspace.runAcceptance(criteria, candidate: commit, addedTests: candidate.review.addedTests, repository: repository, config: serviceConfig, progress: progress)
        if let failed = results.first(where: { $0.status == "failed" }) {
            try fail("acceptance criterion '\(failed.criterion)' failed on candidate \(commit.short): \(failed.detail.split(separator: "\n").last ?? "")",
                     acceptance: results)
        }
        try Failpoints.hit("acceptance.done")
        let report = try workspace.judgeCanary(service: ticket.service, repository: repository, baseline: candidate.main, candidate: commit,
                                               ticket: ticket.id, attempt: attempt.number, progress: progress)
        try Failpoints.hit("canary.judged")
        for index in results.indices where results[index].criterion == Acceptance.canary.text {
            results[index].status = report?.verdict == .pass ? "passed" : "failed"
            results[index].detail = report.map { "canary report #\($0.id ?? 0): \($0.summary)" } ?? "service \(ticket.service) has no \(CanaryConfig.path) on main"
        }
        try workspace.judgeInvariantCriteria(&results, service: ticket.service, report: report)
        if let failed = results.first(where: { $0.criterion.hasPrefix("invariant:") && $0.status == "failed" }) {
            try fail("acceptance criterion '\(failed.criterion)' failed on candidate \(commit.short): \(failed.detail)", acceptance: results)
        }
        if report == nil, let failed = results.first(where: { $0.status == "failed" }) {
            try fail("acceptance criterion '\(failed.criterion)' failed: \(failed.detail)", acceptance: results)
        }
        return Verification(results: results, report: report, commit: commit, isReused: false)
    }

    /// Phase 3, the gate: a failing canary rejects; a marginal verdict, a change a person must
    /// review, or a criterion Ratchet cannot evaluate holds the ticket (`needs-approval`). An
    /// approval covers what the person saw; a candidate rebuilt because main moved that now
    /// fails the canary is held again for a second, explicit approval.
    func gate(_ candidate: Candidate, _ verification: Verification) throws {
        let report = verification.report
        if approval != nil && (verification.isReused || report?.verdict != .fail) { return }
        let unevaluated = verification.results.filter { $0.status == Acceptance.unevaluable }
            .map { "criterion '\($0.criterion)' cannot be evaluated by Ratchet (\($0.detail))" }
        let holds = candidate.review.reasons + unevaluated + (try workspace.watchRevertHolds(service: ticket.service, ticket: ticket.id, tree: candidate.tree))
        if approval == nil, let report, report.verdict == .fail, candidate.review.protected.isEmpty {
            try workspace.rejectByCanary(attempt, report: report, acceptance: verification.results, maxAttempts: serviceConfig.maxAttempts)
            leaseHeld = false
            try? workspace.removeWorktree(of: attempt)
            let next = try workspace.ticket(ticket.id).state
            throw GateStop(outcome: "rejected",
                           message: "the canary rejected \(ticket.id)/\(attempt.number): \(report.summary); attempt \(ticket.id)/\(attempt.number) is rejected and ticket \(ticket.id) is \(next)",
                           report: report, acceptance: verification.results)
        }
        guard approval != nil || report?.verdict == .marginal || report?.verdict == .fail || !holds.isEmpty else { return }
        var reasons: [String] = []
        if approval != nil { reasons.append("main moved since the approval and the rebuilt candidate fails the canary (approve again to land this exact candidate)") }
        if let report, report.verdict != .pass { reasons.append("canary \(report.summary)") }
        reasons += holds
        try workspace.hold(attempt, candidate: verification.commit, report: report, acceptance: verification.results,
                           protected: candidate.review.protected, reasons: reasons)
        leaseHeld = false
        throw GateStop(outcome: "needs-approval",
                       message: "\(ticket.id) needs approval because \(reasons.joined(separator: " and ")); land it with 'ratchet approve \(ticket.id)' or turn it down with 'ratchet reject \(ticket.id)'",
                       report: report, acceptance: verification.results)
    }

    /// Phase 4: writes the landing commit (the verified tree and parents, the final trailers)
    /// and lands it. Returns nil when main moved: the caller builds again.
    func commit(_ candidate: Candidate, _ verification: Verification) throws -> ObjectID? {
        let report = verification.report
        let message = try CommitMessage.landing(ticket: ticket, attempt: attempt, canary: report?.trailer ?? "none", approvedBy: approval?.by)
        let landing = try repository.createCommit(tree: candidate.tree, parents: [candidate.main, head], author: workspace.config.identity,
                                                  committer: workspace.config.identity, message: message)
        try batch.flush(roots: [landing])
        try Failpoints.hit("land.flushed")
        do {
            attempt = try record(landing, candidate: candidate, verification: verification)
        } catch is MainMoved {
            rebuilds += 1
            progress("main moved while verifying; rebuilding the candidate (\(rebuilds))")
            _ = try? workspace.database.write { db in
                try RatchetDatabase.appendEvent(db, kind: "landing.rebuilt", service: ticket.service, ticket: ticket.id, attempt: attempt.number,
                                                data: ["stale_candidate": .string(verification.commit.hex), "rebuilds": .number(Double(rebuilds))])
            }
            if rebuilds > 20 { throw RatchetError("main of \(ticket.service) kept moving; gave up landing \(ticket.id) after \(rebuilds) rebuilds") }
            return nil
        }
        leaseHeld = false
        try Failpoints.hit("land.committed")
        progress("landed \(ticket.id) on main as \(landing.short)")
        return landing
    }

    /// Lands: fenced by the lease, compare-and-swap on main, the store updated; one transaction.
    private func record(_ landing: ObjectID, candidate: Candidate, verification: Verification) throws -> AttemptRecord {
        let report = verification.report
        return try workspace.database.write { db in
            var (current, ticketNow) = try StateChange.load(db, attempt: attempt.id)
            guard StateChange.holdsLease(current), current.state == .proposed, ticketNow.state == expectedState else {
                throw RatchetError("lost the claim on \(ticket.id) before landing (ticket is \(ticketNow.state), attempt is \(current.state)); nothing landed")
            }
            for block in try Workspace.recheckLandingGates(db, ticket: ticket.id, config: serviceConfig, overridden: gateOverride != nil)
            where !overriddenGates.contains(where: { $0.gate == block.gate }) {
                overriddenGates.append(block)
            }
            let now = Date()
            try StateChange.moveTicket(&ticketNow, to: .merged, at: now)
            try workspace.moveMain(repository, to: landing, from: candidate.main, message: "ratchet: land \(ticket.id)/\(current.number)")
            try Failpoints.hit("land.ref-moved")
            StateChange.moveAttempt(&current, to: .landed, at: now)
            current.candidate = verification.commit.hex
            current.landing = landing.hex
            try current.update(db)
            try ticketNow.update(db)
            try StateChange.updateTrajectory(db, current.trajectoryId, outcome: [
                "status": "landed", "landing": .string(landing.hex), "verdict": .optional(report?.verdict.rawValue),
                "canary": report.map { ["report": .number(Double($0.id ?? 0)), "verdict": .string($0.verdict.rawValue), "score": .number($0.score)] } ?? nil,
                "acceptance": try RatchetJSON.value(verification.results), "duration_s": .number(now.timeIntervalSince(current.startedAt))],
                label: approval.map { approval in [
                    "kind": "approval", "by": .string(approval.by), "at": .string(StateChange.stamp(now)), "note": .optional(approval.note),
                    "verdict": .optional(report?.verdict.rawValue), "score": report.map { .number($0.score) } ?? nil,
                    "protected_paths": .array(candidate.review.protected.map { .string($0) }), "landing": .string(landing.hex)] })
            if let approval {
                try RatchetDatabase.appendEvent(db, kind: "ticket.approved", service: ticket.service, ticket: ticket.id, attempt: current.number,
                                                data: ["by": .string(approval.by), "note": .optional(approval.note), "landing": .string(landing.hex),
                                                       "verdict": .optional(report?.verdict.rawValue)])
            }
            if let gateOverride, !overriddenGates.isEmpty {
                try RatchetDatabase.appendEvent(db, kind: "merge.gate-overridden", service: ticket.service, ticket: ticket.id, attempt: current.number,
                                                data: ["gates": try RatchetJSON.value(overriddenGates), "reason": .string(gateOverride.reason),
                                                       "by": .string(gateOverride.by), "landing": .string(landing.hex)])
                if overriddenGates.contains(where: { $0.gate == "watch_window" }) {
                    try Workspace.interruptWatches(db, service: ticket.service, by: landing, ticket: ticket.id, override: gateOverride)
                }
            }
            try RatchetDatabase.appendEvent(db, kind: "attempt.landed", service: ticket.service, ticket: ticket.id, attempt: current.number,
                                            data: ["landing": .string(landing.hex), "main_before": .string(candidate.main.hex),
                                                   "rebuilds": .number(Double(rebuilds)), "canary": .optional(report?.trailer)])
            try RatchetDatabase.appendEvent(db, kind: "ticket.merged", service: ticket.service, ticket: ticket.id, data: ["landing": .string(landing.hex)])
            if let watch { try Workspace.startWatch(db, watch, service: ticket.service, ticket: ticket.id, attempt: current.number, landing: landing) }
            // Still under the write lock: landings of one workspace update checkouts one at a time.
            checkoutWarning = workspace.updateCheckout(db, repository, service: ticket.service, ticket: ticket.id, from: candidate.main, to: landing)
            return current
        }
    }

    /// Phase 5: the note, the clean-up and background packing.
    func finish(_ landing: ObjectID, candidate: Candidate, verification: Verification) throws -> LandingResult {
        var extra: [String: JSONValue] = ["acceptance": try RatchetJSON.value(verification.results),
                                          "canary": try verification.report.map { try RatchetJSON.value($0) } ?? nil]
        if let approval {
            extra["approval"] = ["by": .string(approval.by), "note": .optional(approval.note),
                                 "protected_paths": .array(candidate.review.protected.map { .string($0) })]
        }
        try workspace.writeNote(on: landing, repository: repository, batch: batch, ticket: ticket.id, kind: "landing", extra: extra)
        try Failpoints.hit("note.written")
        try? workspace.removeWorktree(of: attempt)
        try? repository.deleteReference(candidateRef)
        try Failpoints.hit("merge.cleaned")
        workspace.startBackgroundPacking(repository, service: ticket.service)
        return LandingResult(landing: landing, attempt: attempt, rebuilds: rebuilds, acceptance: verification.results, checkoutWarning: checkoutWarning,
                             canary: verification.report, protectedPaths: candidate.review.protected)
    }

    /// Ends the attempt as failed and throws.
    func fail(_ message: String, acceptance: [AcceptanceResult]? = nil) throws -> Never {
        try? repository.deleteReference(candidateRef)
        try? workspace.removeWorktree(of: attempt)
        leaseHeld = false
        var outcome: JSONValue?
        if let acceptance {
            outcome = ["status": "failed", "error": .string(message), "acceptance": try RatchetJSON.value(acceptance),
                       "duration_s": .number(Date().timeIntervalSince(attempt.startedAt))]
        }
        let next = try workspace.endAttempt(attempt, as: .failed, error: message, maxAttempts: serviceConfig.maxAttempts, outcome: outcome)
        throw RatchetError("\(message); attempt \(ticket.id)/\(attempt.number) failed and ticket \(ticket.id) is \(next)")
    }
}

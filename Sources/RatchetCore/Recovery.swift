import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// One thing `ratchet doctor` found, and whether it repaired it.
public struct DoctorFinding: Codable, Sendable, Equatable {
    /// What kind of problem: `stale-lock`, `attempt-interrupted`, `lease-cleared`, `landing-reconciled`,
    /// `revert-reconciled`, `landing-missing`, `note-rewritten`, `checkout-updated`, `local-changes`,
    /// `worktree-removed`, `ref-removed`, `process-killed`, `leftover-removed`, `store-integrity`.
    public var kind: String
    public var service: String?
    public var ticket: String?
    public var detail: String
    public var repaired: Bool
}

/// What `ratchet doctor` reports.
public struct DoctorReport: Codable, Sendable {
    /// Whether no other Ratchet process had the workspace open (repairs that need that ran).
    public var exclusive: Bool
    public var repair: Bool
    public var findings: [DoctorFinding]
    /// Whether everything found was repaired (or nothing was found).
    public var isHealthy: Bool { findings.allSatisfy(\.repaired) }
}

/// What one `doctor` run has found so far, told to its progress line as it goes.
struct DoctorLog {
    let repair: Bool
    let exclusive: Bool
    let progress: @Sendable (String) -> Void
    var findings: [DoctorFinding] = []

    mutating func note(_ kind: String, service: String? = nil, ticket: String? = nil, _ detail: String, repaired: Bool) {
        findings.append(DoctorFinding(kind: kind, service: service, ticket: ticket, detail: detail, repaired: repaired))
        progress("\(repaired ? "repaired" : "found") \(kind): \(detail)")
    }
}

/// Recovery after a crash: reconciles git and the store, ends attempts whose worker died,
/// and removes what a kill left behind. Safe to run at any time: what a live process might
/// still be using is left alone unless the workspace lock shows that no Ratchet process
/// is running (docs/crash-safety.md).
extension Workspace {
    /// Checks the workspace and, with `repair`, fixes what it can; every repair is an event.
    public func doctor(repair: Bool, progress: @Sendable (String) -> Void = { _ in }) throws -> DoctorReport {
        let exclusive = holdWorkspaceLockExclusively()
        defer { if exclusive { try? shareWorkspaceLock() } }
        // A packer started by a landing gives the workspace lock back; wait for it through
        // its pack lock, so that the checks below see a quiet repo (with the lock held
        // exclusively no new one can start).
        waitForPackers()
        // With no Ratchet process running no agent run is being checked: the reference journals start afresh.
        if repair && exclusive { ReferenceJournal.removeAll(in: self) }
        return try withoutActuallyEscaping(progress) { progress in
            try checkAll(DoctorLog(repair: repair, exclusive: exclusive, progress: progress))
        }
    }

    /// Steps 1–6 in order, each recorded in `log` as it is found or repaired.
    private func checkAll(_ start: DoctorLog) throws -> DoctorReport {
        var log = start

        let integrity = try database.integrityCheck()
        if integrity != "ok" { log.note("store-integrity", "PRAGMA integrity_check: \(integrity)", repaired: false) }
        for slot in halfSwitchedCheckouts(repair: log.repair) {
            log.note("checkout-pool", "\(slot) was left half switched by a killed process", repaired: log.repair)
        }
        for service in try services() { try checkRepository(of: service.name, &log) }
        try endOrphanedAttempts(&log)
        try rewriteMissingNotes(&log)
        log.findings += try removeLeftovers(exclusive: log.exclusive, repair: log.repair, progress: log.progress)
        if log.repair { try recordRepairs(log.findings) }
        return DoctorReport(exclusive: log.exclusive, repair: log.repair, findings: log.findings)
    }

    /// Steps 1–3 for one service: stale lock files, history that reached git but not the
    /// store, and a checkout of main that a kill left behind the branch.
    private func checkRepository(of service: String, _ log: inout DoctorLog) throws {
        let path = servicePath(service)
        // Lock and temporary files a kill left in the repository: only when no Ratchet process runs.
        let removable = log.repair && log.exclusive
        for file in staleGitFiles(in: path + "/.git") {
            if removable { try? FileManager.default.removeItem(atPath: file) }
            log.note("stale-lock", service: service, "\(file.dropFirst(path.count + 1)) left by a killed process", repaired: removable)
        }
        let repository = try Repository.open(path)
        try repository.pruneStaleWorktrees()
        log.findings += try reconcileHistory(service: service, repository: repository, repair: log.repair, progress: log.progress)
        if let finding = try catchUpCheckout(service: service, repository: repository, repair: log.repair) {
            log.note(finding.kind, service: service, finding.detail, repaired: finding.repaired)
        }
    }

    /// Step 4: attempts whose worker died end as interrupted; merge leases nobody holds are cleared.
    private func endOrphanedAttempts(_ log: inout DoctorLog) throws {
        let now = Date()
        let attempts = try database.read { db in
            try AttemptRecord.filter(["running", "proposed"].contains(AttemptRecord.Columns.state)).fetchAll(db)
        }
        for attempt in attempts {
            let expired = (attempt.leaseExpiresAt ?? .distantPast) <= now
            guard attempt.leaseOwner != nil, log.exclusive || expired else { continue }
            let label = "\(attempt.ticketId)/\(attempt.number)"
            if attempt.state == .running {
                if log.repair { try interruptAttempt(attempt) }
                log.note("attempt-interrupted", service: attempt.service, ticket: attempt.ticketId,
                         "attempt \(label) was running for a worker that is gone", repaired: log.repair)
            } else {
                if log.repair { try clearLease(of: attempt) }
                log.note("lease-cleared", service: attempt.service, ticket: attempt.ticketId,
                         "merge lease of \(label) held by a worker that is gone", repaired: log.repair)
            }
        }
    }

    private func interruptAttempt(_ attempt: AttemptRecord) throws {
        killAgent(of: attempt)
        try? removeWorktree(of: attempt)
        let maxAttempts = (try? serviceConfig(attempt.service).maxAttempts) ?? 3
        let next = try endAttempt(attempt, as: .interrupted, error: "interrupted: its worker stopped (recovered by ratchet doctor)",
                                  maxAttempts: maxAttempts)
        try database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "recovery.attempt-interrupted", service: attempt.service, ticket: attempt.ticketId,
                                            attempt: attempt.number, data: ["ticket_state": .string(next.rawValue)])
        }
    }

    private func clearLease(of attempt: AttemptRecord) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE attempt SET leaseOwner = NULL, leaseExpiresAt = NULL WHERE id = ?", arguments: [attempt.id])
            try RatchetDatabase.appendEvent(db, kind: "recovery.lease-cleared", service: attempt.service, ticket: attempt.ticketId,
                                            attempt: attempt.number, data: ["owner": .optional(attempt.leaseOwner)])
        }
    }

    /// Step 5: notes missing on landings and reverts are rewritten from the store.
    private func rewriteMissingNotes(_ log: inout DoctorLog) throws {
        let finished = try database.read { db in
            try AttemptRecord.filter(["landed", "reverted"].contains(AttemptRecord.Columns.state)).fetchAll(db)
        }
        for attempt in finished {
            let repository = try openService(attempt.service)
            for (sha, kind) in [(attempt.landing, "landing"), (attempt.revert, "revert")] {
                guard let sha, let id = ObjectID(hex: sha), (try? repository.commit(id)) != nil, try repository.note(on: id) == nil else { continue }
                if log.repair { try rewriteNote(on: id, kind: kind, of: attempt, repository: repository) }
                log.note("note-rewritten", service: attempt.service, ticket: attempt.ticketId, "\(kind) \(id.short) had no note", repaired: log.repair)
            }
        }
    }

    private func rewriteNote(on id: ObjectID, kind: String, of attempt: AttemptRecord, repository: Repository) throws {
        let outcome = try trajectoryDocument(attempt.trajectoryId).outcome
        var extra: [String: JSONValue] = ["recovered": true, "acceptance": outcome?["acceptance"] ?? nil]
        if kind == "revert" {
            extra["reverts"] = .optional(attempt.landing)
            extra["reason"] = .optional(Repository.trailers(of: try repository.commit(id).message).first { $0.key == "Reason" }?.value)
        }
        try writeNote(on: id, repository: repository, ticket: attempt.ticketId, kind: kind, extra: extra)
        try database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "recovery.note-rewritten", service: attempt.service, ticket: attempt.ticketId,
                                            data: ["commit": .string(id.hex)])
        }
    }

    /// Repairs of files and processes (not state) are recorded here, with a closing
    /// `recovery.completed`; state repairs were recorded in the transaction that made them.
    private func recordRepairs(_ findings: [DoctorFinding]) throws {
        guard !findings.isEmpty else { return }
        let repaired = findings.filter(\.repaired).count
        try database.write { db in
            for finding in findings where finding.repaired && ["stale-lock", "process-killed", "leftover-removed"].contains(finding.kind) {
                try RatchetDatabase.appendEvent(db, kind: "recovery.\(finding.kind)", service: finding.service, ticket: finding.ticket,
                                                data: ["detail": .string(finding.detail)])
            }
            try RatchetDatabase.appendEvent(db, kind: "recovery.completed", data: ["repaired": .number(Double(repaired)),
                                                                                  "unrepaired": .number(Double(findings.count - repaired))])
        }
    }

    /// Lock files and temporary object files under a `.git` folder.
    private func staleGitFiles(in gitDirectory: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: gitDirectory) else { return [] }
        var result: [String] = []
        while let item = walker.nextObject() as? String {
            let name = (item as NSString).lastPathComponent
            if name.hasSuffix(".lock") || name.hasPrefix("tmp_object_git2_") || name.hasPrefix("pack_git2_") || name.hasPrefix("tmp_pack_")
                || name.hasPrefix("tmp_idx_") {
                result.append(gitDirectory + "/" + item)
            } else if name.hasPrefix("pack-"), name.hasSuffix(".pack"),
                      !FileManager.default.fileExists(atPath: gitDirectory + "/" + String(item.dropLast(".pack".count)) + ".idx") {
                // A pack is published by its index (ObjectBatch writes the pack first): a pack
                // without one is a flush or packer that was killed in between.
                result.append(gitDirectory + "/" + item)
            }
        }
        return result.sorted()
    }

    /// Makes the store agree with main's first-parent history: every `Merge T-n` commit is a
    /// landed attempt, every `Revert T-n` commit a reverted one.
    private func reconcileHistory(service: String, repository: Repository, repair: Bool,
                                  progress: @Sendable (String) -> Void) throws -> [DoctorFinding] {
        guard let main = try repository.resolveReference("refs/heads/main") else { return [] }
        var findings: [DoctorFinding] = []
        var onMain = Set<String>()
        for commit in try repository.firstParentHistory(from: main) {
            onMain.insert(commit.id.hex)
            let trailers = Repository.trailers(of: commit.message)
            func value(_ key: String) -> String? { trailers.last { $0.key == key }?.value }
            guard let ticket = value("Ticket") else { continue }
            if commit.parents.count == 2, let trajectory = value("Trajectory") {
                let changed = try database.write { db -> Bool in
                    guard var attempt = try AttemptRecord.filter(Column("trajectoryId") == trajectory).fetchOne(db),
                          attempt.state != .landed, attempt.state != .reverted else { return false }
                    guard repair else { return true }
                    attempt.state = .landed
                    attempt.landing = commit.id.hex
                    attempt.candidate = attempt.candidate ?? commit.id.hex
                    attempt.leaseOwner = nil
                    attempt.leaseExpiresAt = nil
                    attempt.endedAt = attempt.endedAt ?? Date()
                    try attempt.update(db)
                    try db.execute(sql: "UPDATE ticket SET state = 'merged', updatedAt = ? WHERE id = ?", arguments: [Date(), ticket])
                    if var record = try TrajectoryRecord.fetchOne(db, key: trajectory) {
                        var outcome: [String: JSONValue] = ["status": "landed", "landing": .string(commit.id.hex), "recovered": true]
                        if case .object(let old)? = record.outcome { outcome = old.merging(outcome) { $1 } }
                        record.outcome = .object(outcome)
                        try record.update(db)
                    }
                    try RatchetDatabase.appendEvent(db, kind: "recovery.landing-reconciled", service: service, ticket: ticket,
                                                    attempt: attempt.number, data: ["landing": .string(commit.id.hex)])
                    return true
                }
                if changed {
                    findings.append(DoctorFinding(kind: "landing-reconciled", service: service, ticket: ticket,
                                                  detail: "landing \(commit.id.short) of \(ticket) was on main but not in the store", repaired: repair))
                }
            } else if let reverts = value("Reverts") {
                let changed = try database.write { db -> Bool in
                    guard var attempt = try AttemptRecord.filter(Column("landing") == reverts).fetchOne(db), attempt.state == .landed else { return false }
                    guard repair else { return true }
                    attempt.state = .reverted
                    attempt.revert = commit.id.hex
                    try attempt.update(db)
                    try db.execute(sql: "UPDATE ticket SET state = 'reverted', updatedAt = ? WHERE id = ? AND state = 'merged'", arguments: [Date(), ticket])
                    try RatchetDatabase.appendEvent(db, kind: "recovery.revert-reconciled", service: service, ticket: ticket,
                                                    attempt: attempt.number, data: ["revert": .string(commit.id.hex), "landing": .string(reverts)])
                    return true
                }
                if changed {
                    findings.append(DoctorFinding(kind: "revert-reconciled", service: service, ticket: ticket,
                                                  detail: "revert \(commit.id.short) of \(ticket) was on main but not in the store", repaired: repair))
                }
            }
        }
        // The other way round: the store must not claim a landing that main does not have.
        let claimed = try database.read { db in
            try AttemptRecord.filter(AttemptRecord.Columns.state == "landed" || AttemptRecord.Columns.state == "reverted")
                .filter(Column("service") == service).fetchAll(db)
        }
        for attempt in claimed where !onMain.contains(attempt.landing ?? "") {
            findings.append(DoctorFinding(kind: "landing-missing", service: service, ticket: attempt.ticketId,
                                          detail: "attempt \(attempt.ticketId)/\(attempt.number) is \(attempt.state) but \(attempt.landing ?? "its landing") is not on main",
                                          repaired: false))
        }
        return findings
    }

    /// Brings main's checkout up to main when a kill stopped a landing between moving the
    /// branch and updating the checkout. Only when the index is exactly a recent main (so
    /// nothing in it is a person's); a person's changes are reported, never touched.
    private func catchUpCheckout(service: String, repository: Repository, repair: Bool) throws -> DoctorFinding? {
        let changes = try repository.status()
        guard !changes.isEmpty, let main = try repository.resolveReference("refs/heads/main") else { return nil }
        let localChanges = DoctorFinding(kind: "local-changes", service: service, ticket: nil,
                                         detail: "services/\(service) has local changes (\(changes.prefix(3).map(\.path).joined(separator: ", "))); left alone",
                                         repaired: false)
        guard let indexTree = try? repository.indexTree(),
              try repository.firstParentHistory(from: main, limit: 50).dropFirst().contains(where: { $0.tree == indexTree }) else { return localChanges }
        // Killed between a landing's files and its index, the files are part old, part new.
        let halfway = try !repository.workingTreeMatchesIndex()
        if halfway, !(try repository.finishCheckoutDifference(from: indexTree, to: repository.commit(main).tree, apply: repair)) {
            return localChanges
        }
        if repair {
            if !halfway { try repository.safeCheckoutHead() }
            try database.write { db in try RatchetDatabase.appendEvent(db, kind: "recovery.checkout-updated", service: service) }
        }
        return DoctorFinding(kind: "checkout-updated", service: service, ticket: nil,
                             detail: "services/\(service) was checked out at an earlier main", repaired: repair)
    }

    /// Ends the agent process group of `attempt` if it still runs (checked by its environment).
    private func killAgent(of attempt: AttemptRecord) {
        let file = runFolder + "/\(attempt.ticketId)-\(attempt.number).pgid"
        defer { try? FileManager.default.removeItem(atPath: file) }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8), let group = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              group > 1 else { return }
        // The pid may have been reused: only a process that carries this attempt's trajectory is ours.
        let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(group)/environ"))) ?? Data()
        if String(decoding: environ, as: UTF8.self).contains("RATCHET_TRAJECTORY=\(attempt.trajectoryId)") {
            kill(-group, SIGKILL)
        }
    }

    /// Worktrees, refs, processes and scratch files that no live attempt uses.
    private func removeLeftovers(exclusive: Bool, repair: Bool, progress: @Sendable (String) -> Void) throws -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        let live = try database.read { db in
            try AttemptRecord.filter(["running", "proposed"].contains(AttemptRecord.Columns.state)).fetchAll(db)
        }
        let held = try database.read { db in try TicketRecord.filter(TicketRecord.Columns.state == "needs-approval").fetchAll(db).map(\.id) }
        let keptWorktrees = Set(live.filter { $0.state == .proposed || !exclusive || held.contains($0.ticketId) }.map { root.appendingPathComponent($0.worktree).path })
        let activeMerges = Set(live.filter { $0.state == .proposed && $0.leaseOwner != nil && !exclusive }.map { "refs/ratchet/candidates/\($0.ticketId)/\($0.number)" })
        var registered = Set<String>()
        for service in try services() {
            let repository = try openService(service.name)
            for name in try repository.worktrees() {
                guard let path = try repository.worktreePath(name) else { continue }
                let folder = URL(fileURLWithPath: path).standardizedFileURL.path
                registered.insert(folder)
                if folder.contains("/worktrees/.pool/") || keptWorktrees.contains(folder) { continue }
                if live.contains(where: { root.appendingPathComponent($0.worktree).path == folder && $0.state == .running }) && !exclusive { continue }
                if repair {
                    try? repository.removeWorktree(name)
                    try? FileManager.default.removeItem(atPath: folder)
                    try database.write { db in try RatchetDatabase.appendEvent(db, kind: "recovery.worktree-removed", service: service.name,
                                                                                data: ["path": .string(folder)]) }
                }
                findings.append(DoctorFinding(kind: "worktree-removed", service: service.name, ticket: nil,
                                              detail: "worktree \(folder) belongs to no live attempt", repaired: repair))
            }
            for (name, _) in try repository.references(matching: "refs/ratchet/*") where !activeMerges.contains(name) {
                if repair {
                    try? repository.deleteReference(name)
                    try database.write { db in try RatchetDatabase.appendEvent(db, kind: "recovery.ref-removed", service: service.name,
                                                                                data: ["ref": .string(name)]) }
                }
                findings.append(DoctorFinding(kind: "ref-removed", service: service.name, ticket: nil,
                                              detail: "\(name) belongs to no merge in progress", repaired: repair))
            }
        }
        // Folders under worktrees/ that no repository knows, and scratch files: only when nothing else runs.
        guard exclusive else { return findings }
        let fm = FileManager.default
        let worktreesFolder = root.appendingPathComponent("worktrees").path
        for name in (try? fm.contentsOfDirectory(atPath: worktreesFolder)) ?? [] where name != ".pool" {
            let folder = worktreesFolder + "/" + name
            guard !registered.contains(folder) else { continue }
            let removed = repair && FolderRemoval.remove(folder)
            findings.append(DoctorFinding(kind: "leftover-removed", service: nil, ticket: nil,
                                          detail: "worktrees/\(name) is no worktree" + (repair && !removed ? " (could not be removed)" : ""),
                                          repaired: removed))
        }
        for name in (try? fm.contentsOfDirectory(atPath: runFolder)) ?? [] {
            let file = runFolder + "/" + name
            let stem = name.replacingOccurrences(of: ".pgid", with: "")
            if let attempt = try database.read({ db in
                try AttemptRecord.fetchAll(db).first { "\($0.ticketId)-\($0.number)" == stem }
            }) {
                if repair { killAgent(of: attempt) }
                findings.append(DoctorFinding(kind: "process-killed", service: attempt.service, ticket: attempt.ticketId,
                                              detail: "agent process group of \(attempt.ticketId)/\(attempt.number) outlived its worker", repaired: repair))
            } else if repair {
                try? fm.removeItem(atPath: file)
            }
        }
        // Any process still carrying this workspace in its environment (an agent, an acceptance
        // command, a canary and its service instance) outlived the Ratchet process that started it.
        let marker = Data("RATCHET_WORKSPACE=\(root.path)\u{0}".utf8)
        for name in (try? fm.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), pid != getpid(),
                  let environ = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(name)/environ")), environ.range(of: marker) != nil else { continue }
            if repair { kill(pid, SIGKILL) }
            findings.append(DoctorFinding(kind: "process-killed", service: nil, ticket: nil,
                                          detail: "process \(pid) was started for this workspace by a Ratchet process that is gone", repaired: repair))
        }
        for folder in [scratchPath, root.appendingPathComponent(".ratchet/briefs").path] {
            for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] {
                if repair { try? fm.removeItem(atPath: folder + "/" + name) }
                findings.append(DoctorFinding(kind: "leftover-removed", service: nil, ticket: nil,
                                              detail: "\((folder as NSString).lastPathComponent)/\(name) left by a stopped process", repaired: repair))
            }
        }
        return findings
    }
}

import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The workspace's record of its own reference writes, one append-only file per service
/// (`.ratchet/refs/NAME.journal`, never mounted into a sandbox). Every handle Ratchet opens
/// on a service writes a line `REF TARGET` (`-` for a deletion) before it moves a
/// reference, so a reference that moved without a line was moved by someone else.
struct ReferenceJournal {
    let path: String

    init(workspace: Workspace, service: String) {
        path = workspace.root.appendingPathComponent(".ratchet/refs/\(service).journal").path
    }

    /// Removes every service's journal; only while no Ratchet process runs (doctor holds the
    /// workspace lock exclusively), when no agent run is being checked against them.
    static func removeAll(in workspace: Workspace) {
        try? FileManager.default.removeItem(atPath: workspace.root.appendingPathComponent(".ratchet/refs").path)
    }

    /// Appends one write; a single `write` with `O_APPEND`, so concurrent writers never interleave.
    func append(_ name: String, _ target: ObjectID?) throws {
        let line = "\(name) \(target?.hex ?? "-")\n"
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RatchetError("cannot record a reference write in \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try Array(line.utf8).withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    /// The journal's length: where the writes after now start.
    func offset() -> UInt64 {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_size) : 0
    }

    /// The writes recorded from `offset` on (up to `end`), oldest first: reference name to the
    /// targets it was given.
    func writes(since offset: UInt64, upTo end: UInt64? = nil) -> [String: [ObjectID?]] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [:] }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        let data: Data?
        if let end { data = try? handle.read(upToCount: Int(end - min(end, offset))) } else { data = try? handle.readToEnd() }
        let text = String(decoding: data ?? Data(), as: UTF8.self)
        var writes: [String: [ObjectID?]] = [:]
        for line in text.split(separator: "\n") where line.count > 1 {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            writes[String(parts[0]), default: []].append(ObjectID(hex: String(parts[1])))
        }
        return writes
    }
}

/// A reference that moved during an agent's run without Ratchet writing it.
struct Tampering: Equatable {
    var reference: String
    var before: ObjectID?
    var after: ObjectID?
    var description: String {
        "\(reference) moved from \(before?.short ?? "(none)") to \(after?.short ?? "(deleted)") without Ratchet writing it"
    }
}

/// Checks that an agent's run moved no reference but its own branch (SPEC §6, §12).
///
/// Taken before the run: every reference's value and the journal's length. After it, every
/// reference whose value changed must match a write recorded in the journal since then
/// (other Ratchet processes legitimately move main and the notes reference meanwhile).
/// Anything else is put back where the journal or the snapshot says it belongs.
///
/// A write is journalled before its reference moves, so another thread or process of
/// Ratchet can have journalled a write before the guard's start and move the reference
/// after its snapshot (a landing beside an attempt of the same service, as the pump runs
/// them). Such a write in flight is recognised by the last target journalled for the
/// reference before the start (`intended`): a reference that moved to exactly that target
/// moved as Ratchet meant it to. Otherwise the guard would "restore" main over a landing.
struct ReferenceGuard {
    let journal: ReferenceJournal
    let ownBranch: String
    let before: [String: ObjectID]
    let start: UInt64
    /// The last target journalled for each reference in the journal's tail before `start`.
    let intended: [String: ObjectID?]

    /// How much of the journal before the start is read for writes in flight: far more than
    /// the few lines concurrent writers can have journalled but not yet applied.
    static let inFlightWindow: UInt64 = 64 * 1024

    init(journal: ReferenceJournal, repository: Repository, ownBranch: String) throws {
        self.journal = journal
        self.ownBranch = ownBranch
        start = journal.offset()
        before = try Self.snapshot(repository)
        let tailStart = start - min(start, Self.inFlightWindow)
        // The first line of the tail may be cut: only whole lines parse (`REF TARGET`).
        intended = journal.writes(since: tailStart, upTo: start).compactMapValues { $0.last }
    }

    static func snapshot(_ repository: Repository) throws -> [String: ObjectID] {
        var values: [String: ObjectID] = [:]
        try repository.forEachReference { name, target in values[name] = target }
        return values
    }

    /// The references that moved without a recorded write.
    func tamperings(in repository: Repository) throws -> [Tampering] {
        let after = try Self.snapshot(repository)
        let writes = journal.writes(since: start)
        var found: [Tampering] = []
        // Only the references that differ are sorted (usually none of thousands).
        let moved = after.compactMap { before[$0.key] == $0.value ? nil : $0.key } + before.keys.filter { after[$0] == nil }
        for name in moved.sorted() where name != ownBranch {
            if writes[name]?.contains(where: { $0 == after[name] }) == true { continue }
            if let intent = intended[name], intent == after[name] { continue }
            found.append(Tampering(reference: name, before: before[name], after: after[name]))
        }
        return found
    }

    /// Puts each tampered reference back: to Ratchet's last recorded write since the run
    /// began, else to its value before the run. Compare-and-swap against what was found.
    func restore(_ tamperings: [Tampering], in repository: Repository) throws {
        let writes = journal.writes(since: start)
        for tampering in tamperings {
            let target = writes[tampering.reference]?.last ?? tampering.before
            if let target {
                try repository.updateReference(tampering.reference, to: target, expected: tampering.after,
                                               message: "ratchet: restore after tampering")
            } else {
                try repository.deleteReference(tampering.reference, expected: tampering.after)
            }
        }
    }
}

extension Workspace {
    /// Opens service `name`'s repository by its own path, recording every reference write
    /// of the handle in the service's journal.
    func openService(_ name: String) throws -> Repository {
        let repository = try Repository.open(servicePath(name))
        journalReferenceWrites(of: repository, service: name)
        return repository
    }

    /// A batch on service `name`'s repository (by its own path) whose reference writes are journalled.
    func serviceBatch(_ name: String) throws -> ObjectBatch {
        let batch = try ObjectBatch(path: servicePath(name))
        journalReferenceWrites(of: batch.repository, service: name)
        return batch
    }

    private func journalReferenceWrites(of repository: Repository, service: String) {
        let journal = ReferenceJournal(workspace: self, service: service)
        repository.willWriteReference = { name, target in try journal.append(name, target) }
        let lockPath = referenceLockPath(service)
        repository.aroundReferenceAccess = { body in try FileLock.holding(lockPath, shared: true, body) }
    }

    /// Records a `security.tamper` event and restores the references; returns the attempt's
    /// failure reason.
    func handleTampering(_ found: [Tampering], guard referenceGuard: ReferenceGuard, repository: Repository,
                         attempt: AttemptRecord, link: String?) -> String {
        var restoreError: String?
        do { try referenceGuard.restore(found, in: repository) } catch { restoreError = describe(error) }
        let reasons = found.map(\.description) + (link.map { [$0] } ?? [])
        _ = try? database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "security.tamper", service: attempt.service, ticket: attempt.ticketId,
                                            attempt: attempt.number, data: [
                                                "references": .array(found.map { .object(["name": .string($0.reference),
                                                                                          "before": .optional($0.before?.hex),
                                                                                          "after": .optional($0.after?.hex)]) }),
                                                "worktree_link": .optional(link), "restored": .bool(restoreError == nil),
                                                "restore_error": .optional(restoreError)])
        }
        return "tampered: " + reasons.joined(separator: "; ")
    }
}

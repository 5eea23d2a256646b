import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// Durability settings compared on both sides.
enum Durability: String, CaseIterable, Codable {
    /// Ratchet's shipped default: no fsync of git objects and refs; SQLite WAL with synchronous=NORMAL.
    case shipped
    /// No fsync anywhere: git core.fsync=none / libgit2 fsync off; SQLite synchronous=OFF.
    case none
    /// Full fsync: git core.fsync=all / GIT_OPT_ENABLE_FSYNC_GITDIR; SQLite synchronous=FULL.
    case full

    var sqliteSynchronous: String { self == .full ? "FULL" : (self == .none ? "OFF" : "NORMAL") }
    var libgit2Fsync: Bool { self == .full }
    var gitConfig: [String] { self == .full ? ["core.fsync=all", "core.fsyncMethod=fsync"] : ["core.fsync=none"] }
}

/// The SQLite writes of one lifecycle, shared by both pipelines so they compare git work only.
struct StoreWrites {
    let database: RatchetDatabase

    init(path: String, durability: Durability, tickets: Int) throws {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        database = try RatchetDatabase(path: path, synchronous: durability.sqliteSynchronous)
        try database.write { db in
            try ServiceRecord(name: "bench", path: "services/bench", template: nil, createdAt: Date()).insert(db)
            for number in 1...tickets {
                try TicketRecord(id: "T-\(number)", number: number, service: "bench", title: "Ticket \(number)", objective: "",
                                 acceptance: [], constraints: [], context: "", source: "human:bench", fingerprint: nil, risk: "low",
                                 priority: 0, agent: nil, assignee: "agent", state: .open, createdAt: Date(), updatedAt: Date()).insert(db)
            }
        }
    }

    /// Claim: ticket open → working, the attempt and its trajectory, the event.
    func claim(_ ticket: Int, base: String) throws -> AttemptRecord {
        try database.write { db in
            try db.execute(sql: "UPDATE ticket SET state = 'working', updatedAt = ? WHERE id = ?", arguments: [Date(), "T-\(ticket)"])
            var attempt = AttemptRecord(ticketId: "T-\(ticket)", number: 1, service: "bench", branch: "ticket/T-\(ticket)/1",
                                        worktree: "worktrees/T-\(ticket)-1", trajectoryId: UUID().uuidString.lowercased(),
                                        agent: "bench", state: .running, base: base, startedAt: Date())
            attempt.leaseOwner = "bench"
            attempt.leaseExpiresAt = Date().addingTimeInterval(600)
            try attempt.insert(db)
            try TrajectoryRecord(id: attempt.trajectoryId, ticketId: attempt.ticketId, attemptNumber: 1, service: "bench", agent: "bench",
                                 initialState: ["main": .string(base)], createdAt: Date()).insert(db)
            try RatchetDatabase.appendEvent(db, kind: "ticket.claimed", service: "bench", ticket: attempt.ticketId, attempt: 1)
            return attempt
        }
    }

    /// One trajectory step with its event.
    func step(_ attempt: AttemptRecord, commit: String) throws {
        try database.write { db in
            try TrajectoryStepRecord(trajectoryId: attempt.trajectoryId, index: 1, time: Date(), tool: "commit", arguments: ["message": "step"],
                                     risk: "low", effect: "commit", ok: true, output: "committed", data: [:], commit: commit).insert(db)
            try RatchetDatabase.appendEvent(db, kind: "trajectory.step", service: "bench", ticket: attempt.ticketId, attempt: 1)
        }
    }

    /// The landing: `move` (the ref compare-and-swap) inside the transaction that records it.
    func land(_ attempt: AttemptRecord, landing: String, move: () throws -> Void) throws {
        try database.write { db in
            guard try String.fetchOne(db, sql: "SELECT leaseOwner FROM attempt WHERE id = ?", arguments: [attempt.id]) == "bench" else {
                throw Shell.Failure(description: "lease lost")
            }
            try move()
            try db.execute(sql: "UPDATE attempt SET state = 'landed', landing = ?, head = ?, endedAt = ?, leaseOwner = NULL WHERE id = ?",
                           arguments: [landing, landing, Date(), attempt.id])
            try db.execute(sql: "UPDATE ticket SET state = 'merged', updatedAt = ? WHERE id = ?", arguments: [Date(), attempt.ticketId])
            try RatchetDatabase.appendEvent(db, kind: "attempt.landed", service: "bench", ticket: attempt.ticketId, attempt: 1,
                                            data: ["landing": .string(landing)])
            try RatchetDatabase.appendEvent(db, kind: "ticket.merged", service: "bench", ticket: attempt.ticketId)
        }
    }
}

/// What one lifecycle edits: three existing files and one new file.
struct Edits {
    var paths: [String]
    var contents: [Data]
    var added: String

    /// Three files per ticket, spread over the tree; different tickets never edit the same
    /// file (7,919 is prime, so multiplying by it permutes the indices below `files` as long as
    /// `3 × ticket + 2 < files`), so concurrent lifecycles never conflict.
    init(ticket: Int, files: Int) {
        paths = (0..<3).map { Generator.path(((ticket * 3 + $0) * 7919) % files) }
        contents = paths.map { Data("edited by ticket \(ticket): \($0)\n".utf8) }
        added = "src/new/t\(ticket).txt"
    }
}

let notePayload = String(repeating: "{\"step\": \"observation text\"}", count: 60)

/// Ratchet's lifecycle through its own libgit2 layer.
struct RatchetPipeline {
    let repository: Repository
    let store: StoreWrites
    let files: Int
    /// When set, each durable step's objects are written as one pack (ObjectBatch) instead of loose.
    var batch: ObjectBatch? = nil
    let identity = Signature(name: "Ratchet", email: "ratchet@ratchet.invalid")
    let agent = Signature(name: "bench", email: "bench@agents.ratchet.invalid")

    /// One lifecycle; returns the landing commit. `phases` collects per-phase times (ms) when given.
    func lifecycle(_ ticket: Int, phases: PhaseTimes? = nil) throws -> ObjectID {
        var clock = DispatchTime.now().uptimeNanoseconds
        func mark(_ phase: String) {
            let now = DispatchTime.now().uptimeNanoseconds
            phases?.add(phase, Double(now - clock) / 1_000_000)
            clock = now
        }
        let writer = batch?.repository ?? repository
        let base = try writer.resolveReference("refs/heads/main")!
        let attempt = try store.claim(ticket, base: base.hex)
        mark("claim (store)")
        let branch = "refs/heads/ticket/T-\(ticket)/1"
        try writer.updateReference(branch, to: base, expected: nil, message: "branch")
        mark("branch (ref)")
        let edits = Edits(ticket: ticket, files: files)
        var changes = try zip(edits.paths, edits.contents).map { TreeChange.upsert($0, try writer.writeBlob($1)) }
        changes.append(.upsert(edits.added, try writer.writeBlob(Data("new file \(ticket)\n".utf8))))
        let message = "T-\(ticket): step\n\nTicket: T-\(ticket)\nTrajectory: \(attempt.trajectoryId)\nStep: 1\n"
        let head = try writer.commit(on: base, applying: changes, author: agent, committer: identity, message: message)
        try batch?.flush(roots: [head])
        mark("step commit (objects)")
        try writer.updateReference(branch, to: head, expected: base, message: "commit")
        mark("branch CAS")
        try store.step(attempt, commit: head.hex)
        mark("step (store)")
        while true {
            let main = try writer.resolveReference("refs/heads/main")!
            guard case .clean(let tree) = try writer.merge(ours: main, theirs: head) else { throw Shell.Failure(description: "conflict") }
            let landing = try writer.createCommit(tree: tree, parents: [main, head], author: identity, committer: identity,
                                                  message: "Merge T-\(ticket): bench\n\nTicket: T-\(ticket)\nCanary: none\nRisk: low\n")
            let noteText = "{\"ticket\": \"T-\(ticket)\", \"trajectory\": [\(notePayload)]}\n"
            // Batched, the note's objects travel in the landing's pack; only its ref moves after.
            let note = try batch.map { try $0.repository.makeNote(noteText, on: landing, author: identity) }
            try batch?.flush(roots: [landing] + (note.map { [$0.commit] } ?? []))
            mark("candidate merge (objects)")
            do {
                try store.land(attempt, landing: landing.hex) {
                    try writer.updateReference("refs/heads/main", to: landing, expected: main, message: "land")
                }
            } catch let error as GitError where error.code == .modified {
                continue
            }
            mark("land (CAS in store txn)")
            try publishNote(note, text: noteText, on: landing)
            mark("note")
            return landing
        }
    }

    /// Reverts `landing` through a commit on main, with its note.
    func revert(_ landing: ObjectID, ticket: Int) throws {
        let writer = batch?.repository ?? repository
        let main = try writer.resolveReference("refs/heads/main")!
        guard case .clean(let tree) = try writer.revert(landing, onto: main) else { throw Shell.Failure(description: "conflict") }
        let revert = try writer.createCommit(tree: tree, parents: [main], author: identity, committer: identity,
                                             message: "Revert T-\(ticket)\n\nThis reverts commit \(landing.hex).\n\nTicket: T-\(ticket)\nReverts: \(landing.hex)\nReason: bench\n")
        let noteText = "{\"reverts\": \"\(landing.hex)\"}\n"
        let note = try batch.map { try $0.repository.makeNote(noteText, on: revert, author: identity) }
        try batch?.flush(roots: [revert] + (note.map { [$0.commit] } ?? []))
        try store.database.write { db in
            try writer.updateReference("refs/heads/main", to: revert, expected: main, message: "revert")
            try db.execute(sql: "UPDATE attempt SET state = 'reverted', revert = ? WHERE ticketId = ?", arguments: [revert.hex, "T-\(ticket)"])
            try RatchetDatabase.appendEvent(db, kind: "ticket.reverted", service: "bench", ticket: "T-\(ticket)")
        }
        try publishNote(note, text: noteText, on: revert)
    }

    /// Publishes a note made before the landing (remade on top of a concurrent one, as Landing does).
    private func publishNote(_ note: Repository.PendingNote?, text: String, on commit: ObjectID) throws {
        guard let batch else { return try repository.setNote(text, on: commit, author: identity) }
        try batch.publishNote(text, on: commit, author: identity, pending: note)
    }
}

/// The same lifecycle through the git CLI: fast-import commit, merge-tree --write-tree, commit-tree, update-ref, notes.
struct GitPipeline {
    let path: String
    let store: StoreWrites
    let files: Int
    let config: [String]

    func lifecycle(_ ticket: Int) throws -> String {
        let base = try Shell.git(["rev-parse", "main"], in: path, config: config)
        let attempt = try store.claim(ticket, base: base)
        let branch = "refs/heads/ticket/T-\(ticket)/1"
        let edits = Edits(ticket: ticket, files: files)
        let message = "T-\(ticket): step\n\nTicket: T-\(ticket)\nTrajectory: \(attempt.trajectoryId)\nStep: 1\n"
        var stream = "commit \(branch)\nauthor bench <bench@agents.ratchet.invalid> 1700000000 +0000\n"
        stream += "committer Ratchet <ratchet@ratchet.invalid> 1700000000 +0000\ndata \(message.utf8.count)\n\(message)\nfrom \(base)\n"
        for (file, content) in zip(edits.paths, edits.contents) {
            stream += "M 100644 inline \(file)\ndata \(content.count)\n\(String(decoding: content, as: UTF8.self))\n"
        }
        let added = "new file \(ticket)\n"
        stream += "M 100644 inline \(edits.added)\ndata \(added.utf8.count)\n\(added)\n"
        try Shell.git(["fast-import", "--quiet", "--force"], in: path, input: Data(stream.utf8), config: config)
        let head = try Shell.git(["rev-parse", branch], in: path, config: config)
        try store.step(attempt, commit: head)
        while true {
            let main = try Shell.git(["rev-parse", "main"], in: path, config: config)
            let tree = try Shell.git(["merge-tree", "--write-tree", main, head], in: path, config: config)
            let landing = try Shell.git(["commit-tree", tree, "-p", main, "-p", head, "-m", "Merge T-\(ticket): bench\n\nTicket: T-\(ticket)\nCanary: none\nRisk: low"],
                                        in: path, config: config)
            do {
                try store.land(attempt, landing: landing) {
                    try Shell.git(["update-ref", "refs/heads/main", landing, main], in: path, config: config)
                }
            } catch is Shell.Failure {
                continue
            }
            try Shell.git(["notes", "--ref=ratchet", "add", "-f", "-m", "{\"ticket\": \"T-\(ticket)\", \"trajectory\": [\(notePayload)]}", landing],
                          in: path, config: config)
            return landing
        }
    }

    /// Reverts `landing` with plumbing and a temporary index (git 2.39 has no merge-tree --merge-base).
    func revert(_ landing: String, ticket: Int) throws {
        let main = try Shell.git(["rev-parse", "main"], in: path, config: config)
        let index = FileManager.default.temporaryDirectory.appendingPathComponent("bench-index-\(ticket)").path
        defer { try? FileManager.default.removeItem(atPath: index) }
        let env = ["GIT_INDEX_FILE": index]
        try Shell.run(["git"] + config.flatMap { ["-c", $0] } + ["read-tree", "-m", "-i", "--aggressive", landing, main, "\(landing)^1"], in: path, environment: env)
        let tree = try Shell.run(["git", "write-tree"], in: path, environment: env)
        let revert = try Shell.git(["commit-tree", tree, "-p", main, "-m", "Revert T-\(ticket)\n\nThis reverts commit \(landing).\n\nTicket: T-\(ticket)\nReverts: \(landing)\nReason: bench"],
                                   in: path, config: config)
        try store.database.write { db in
            try Shell.git(["update-ref", "refs/heads/main", revert, main], in: path, config: config)
            try db.execute(sql: "UPDATE attempt SET state = 'reverted', revert = ? WHERE ticketId = ?", arguments: [revert, "T-\(ticket)"])
            try RatchetDatabase.appendEvent(db, kind: "ticket.reverted", service: "bench", ticket: "T-\(ticket)")
        }
        try Shell.git(["notes", "--ref=ratchet", "add", "-f", "-m", "{\"reverts\": \"\(landing)\"}", revert], in: path, config: config)
    }
}

/// Per-phase times of the Ratchet lifecycle, for finding hot spots.
final class PhaseTimes: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var order: [String] = []
    private var samples: [String: [Double]] = [:]
    func add(_ phase: String, _ value: Double) {
        lock.withLock {
            if samples[phase] == nil { order.append(phase) }
            samples[phase, default: []].append(value)
        }
    }
    func medians() -> [(String, Double)] {
        lock.withLock { order.map { ($0, Figure(name: "", size: "", pipeline: "", samples: samples[$0]!).median) } }
    }
}

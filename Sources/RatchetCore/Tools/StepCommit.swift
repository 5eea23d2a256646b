import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// One step commit: the attempt's branch moved to `head`, `paths` changed.
struct StepCommit {
    var head: ObjectID
    var paths: [String]
    var message: String
}

extension Workspace {
    /// Reads `worktree` against the attempt's branch head and commits the difference as one
    /// step commit on the branch (compare-and-swap), through a journalled batch opened by the
    /// service's own path. Nil when nothing changed. Throws a `RatchetError` saying why the
    /// change is refused or cannot be committed; the branch is then unchanged.
    /// `summary` is the commit's subject (default: the ticket's title).
    func commitStep(attempt: AttemptRecord, worktree: String, link: WorktreeLink?, limits: FolderLimits, summary: String?) throws -> StepCommit? {
        let branchRef = "refs/heads/\(attempt.branch)"
        let batch = try serviceBatch(attempt.service)
        let store = batch.repository
        guard let branchHead = try store.resolveReference(branchRef) else { throw RatchetError("tampered: \(branchRef) was deleted") }
        // Ignore rules come from the worktree's .gitignore files, copied by Ratchet's own reading
        // into a private folder that libgit2 answers from; everything else from the repository's
        // own path. libgit2 never opens a file the agent left (a FIFO would block it forever).
        let ignores = try makeScratchFolder("ignores")
        defer { try? FileManager.default.removeItem(atPath: ignores) }
        try store.useWorkingDirectory(ignores)
        let cache = link.flatMap { IndexStatCache(path: $0.adminFolder + "/index") }
        let changes: [FolderChange]
        do {
            changes = try store.readFolder(worktree, against: try store.commit(branchHead).tree, cache: cache, limits: limits, ignoreRules: { folder, rules in
                try FileManager.default.createDirectory(atPath: ignores + "/" + folder, withIntermediateDirectories: true)
                try rules.write(to: URL(fileURLWithPath: ignores + "/" + folder + ".gitignore"))
            }) { path, _ in
                store.isIgnored(path)
            }
        } catch {
            throw RatchetError("the agent's change is refused: \(describe(error))")
        }
        guard !changes.isEmpty else { return nil }
        let view = try ticketView(attempt.ticketId)
        let stepNumber = try database.read { db in
            (try Int.fetchOne(db, sql: "SELECT MAX(\"index\") FROM trajectoryStep WHERE trajectoryId = ?", arguments: [attempt.trajectoryId]) ?? 0) + 1
        }
        let message = try CommitMessage.step(ticket: view, summary: summary ?? view.title, trajectory: attempt.trajectoryId, step: stepNumber,
                                             attempt: attempt.number)
        let head: ObjectID
        do {
            head = try store.commit(on: branchHead, applying: changes.map(\.treeChange),
                                    author: Signature(name: attempt.agent, email: "\(attempt.agent)@agents.ratchet.invalid"),
                                    committer: config.identity, message: message)
            try batch.flush(roots: [head])
            try Failpoints.hit("step.flushed")
            try store.updateReference(branchRef, to: head, expected: branchHead, message: "ratchet: step \(stepNumber)")
        } catch {
            throw RatchetError("cannot commit the agent's changes: \(describe(error))")
        }
        try? cache?.record(changes, folder: worktree)
        try Failpoints.hit("step.committed")
        return StepCommit(head: head, paths: changes.map(\.path), message: message)
    }
}

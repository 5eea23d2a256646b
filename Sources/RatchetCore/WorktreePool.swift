import Foundation
import RatchetGit

/// A small pool of clean worktrees per service, kept in `worktrees/.pool/`.
///
/// A fresh worktree checks out every file; a pooled one is moved to the new base by
/// rewriting only the files that differ, which is what keeps a 20k-file service fast.
/// Claiming a pooled worktree is an atomic rename, so racing processes never share one.
extension Workspace {
    /// Clean worktrees kept per service.
    static let worktreePoolSize = 2

    private var poolFolder: String { root.appendingPathComponent("worktrees/.pool").path }

    /// Makes the worktree of an attempt at `path` with `branch` checked out: a pooled one
    /// when there is one, else a fresh `git worktree add` named `name`.
    func prepareWorktree(service: String, repository: Repository, branch: String, path: String, name: String) throws {
        try FileManager.default.createDirectory(atPath: root.appendingPathComponent("worktrees").path, withIntermediateDirectories: true)
        for slot in 0..<Self.worktreePoolSize {
            let pooled = poolFolder + "/\(service).\(slot)"
            guard let pooledName = Repository.worktreeName(at: pooled) else { continue }
            do {
                try repository.moveWorktree(pooledName, from: pooled, to: path)
            } catch {
                continue // another process took it first
            }
            do {
                try Repository.open(path).switchCleanWorktree(toBranch: branch)
                return
            } catch {
                try? repository.removeWorktree(pooledName)
                try? FileManager.default.removeItem(atPath: path)
                break
            }
        }
        try repository.addWorktree(name: name, path: path, branch: branch)
    }

    /// Ends the worktree at `path`: back to the pool when it is pristine (no change, no
    /// untracked or ignored file) and the pool has room, else removed. The branch stays.
    func releaseWorktree(service: String, path: String) throws {
        let repository = try Repository.open(servicePath(service))
        guard let name = Repository.worktreeName(at: path) else {
            try? FileManager.default.removeItem(atPath: path)
            try repository.pruneStaleWorktrees()
            return
        }
        if let worktree = try? Repository.open(path), (try? worktree.isPristine()) == true, (try? worktree.detachHead()) != nil {
            try FileManager.default.createDirectory(atPath: poolFolder, withIntermediateDirectories: true)
            for slot in 0..<Self.worktreePoolSize {
                let pooled = poolFolder + "/\(service).\(slot)"
                if FileManager.default.fileExists(atPath: pooled) { continue }
                if (try? repository.moveWorktree(name, from: path, to: pooled)) != nil { return }
            }
        }
        try repository.removeWorktree(name)
        try? FileManager.default.removeItem(atPath: path)
    }
}

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
    /// when there is one, else a fresh `git worktree add` named `name`. Returns its link
    /// files as Ratchet wrote them.
    @discardableResult
    func prepareWorktree(service: String, repository: Repository, branch: String, path: String, name: String) throws -> WorktreeLink {
        try makeWorktree(service: service, repository: repository, branch: branch, path: path, name: name)
        guard let link = WorktreeLink(worktree: path, commonDirectory: repository.commonDirectory) else {
            throw RatchetError("the worktree at \(path) has no link to \(repository.commonDirectory)")
        }
        return link
    }

    private func makeWorktree(service: String, repository: Repository, branch: String, path: String, name: String) throws {
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
                FolderRemoval.remove(path)
                break
            }
        }
        try repository.addWorktree(name: name, path: path, branch: branch)
    }

    /// Ends the worktree at `path`: back to the pool when it is pristine (no change, no
    /// untracked or ignored file) and the pool has room, else removed. The branch stays.
    func releaseWorktree(service: String, path: String) throws {
        let repository = try Repository.open(servicePath(service))
        guard let link = WorktreeLink(worktree: path, commonDirectory: repository.commonDirectory), link.problem(worktree: path) == nil else {
            return discardWorktree(at: path, service: service)
        }
        let name = link.name
        if let worktree = try? Repository.open(path), isPristine(worktree, at: path, link: link), (try? worktree.detachHead()) != nil {
            try FileManager.default.createDirectory(atPath: poolFolder, withIntermediateDirectories: true)
            for slot in 0..<Self.worktreePoolSize {
                let pooled = poolFolder + "/\(service).\(slot)"
                if FileManager.default.fileExists(atPath: pooled) { continue }
                if (try? repository.moveWorktree(name, from: path, to: pooled)) != nil { return }
            }
        }
        try repository.removeWorktree(name)
        FolderRemoval.remove(path)
    }

    /// Whether an agent's worktree holds exactly its HEAD's tree, read by Ratchet itself
    /// (`folderMatches`): libgit2's status would open the agent's `.gitignore` and
    /// `.gitattributes`, and a FIFO there would block this process forever.
    private func isPristine(_ worktree: Repository, at path: String, link: WorktreeLink) -> Bool {
        guard let head = try? worktree.headCommit(), let tree = try? worktree.commit(head).tree else { return false }
        return worktree.folderMatches(path, tree: tree, cache: IndexStatCache(path: link.adminFolder + "/index"))
    }

    /// Deletes the folder at `path` without following links and prunes admin folders whose
    /// worktree is gone: for a worktree whose link cannot be trusted.
    func discardWorktree(at path: String, service: String) {
        FolderRemoval.remove(path)
        try? Repository.open(servicePath(service)).pruneStaleWorktrees()
    }
}

/// The files that link a worktree to its repository, as Ratchet wrote them: the worktree's
/// `.git` file and the admin folder's `gitdir`, `HEAD` and `commondir`. An agent that
/// rewrites any of them could make a commit land on another branch (docs/security.md).
struct WorktreeLink: Equatable {
    /// The admin folder's name under `.git/worktrees/`.
    let name: String
    let adminFolder: String
    let files: [String: String]

    /// Reads the link of the worktree at `worktree`; nil when its `.git` file does not name an
    /// admin folder (a plain name) under `commonDirectory`'s `worktrees/`.
    init?(worktree: String, commonDirectory: String) {
        guard let name = Repository.worktreeName(at: worktree), !name.isEmpty, !name.hasPrefix("."), !name.contains("/") else { return nil }
        let common = commonDirectory.hasSuffix("/") ? commonDirectory : commonDirectory + "/"
        let admin = common + "worktrees/" + name
        guard let files = Self.read(worktree: worktree, adminFolder: admin),
              Self.trimmed(files[worktree + "/.git"]) == "gitdir: \(admin)", Self.trimmed(files[admin + "/gitdir"]) == worktree + "/.git"
        else { return nil }
        self.name = name
        self.adminFolder = admin
        self.files = files
    }

    /// The text without surrounding white space and trailing slashes (libgit2 writes `gitdir: PATH/`).
    private static func trimmed(_ text: String?) -> String? {
        guard var text = text?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    private static func read(worktree: String, adminFolder: String) -> [String: String]? {
        var files: [String: String] = [:]
        for path in [worktree + "/.git", adminFolder + "/gitdir", adminFolder + "/HEAD", adminFolder + "/commondir"] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            files[path] = text
        }
        return files
    }

    /// What changed since Ratchet wrote the link (the worktree a link or gone, a file
    /// rewritten); nil when it is intact.
    func problem(worktree: String) -> String? {
        var info = stat()
        guard lstat(worktree, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            return "the worktree \(worktree) was replaced or removed"
        }
        guard let now = Self.read(worktree: worktree, adminFolder: adminFolder) else { return "the worktree's link files were removed" }
        let changed = files.keys.filter { now[$0] != files[$0] }.sorted()
        return changed.isEmpty ? nil : "the worktree's link was rewritten (\(changed.joined(separator: ", ")))"
    }
}


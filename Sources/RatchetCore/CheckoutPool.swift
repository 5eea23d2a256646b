import Foundation
import RatchetGit

/// One claimed slot of a service's verification checkout pool: a folder holding exactly one
/// tree's files, used read-only as the lower layer of sandboxed runs (docs/security.md).
/// Give it back with `release()`; a process that dies gives it back with its lock.
public final class PooledCheckout {
    /// The folder with the tree's files; never written by a run.
    public let files: String
    /// The tree the files are.
    public let tree: ObjectID
    private var lock: Int32

    init(files: String, tree: ObjectID, lock: Int32) {
        self.files = files
        self.tree = tree
        self.lock = lock
    }

    deinit { release() }

    /// Frees the slot for the next run.
    public func release() {
        if lock >= 0 { Workspace.unlockAndClose(lock) }
        lock = -1
    }
}

/// Per-service pools of verification checkouts in `.ratchet/checkouts/SERVICE/N/`.
///
/// Acceptance commands and canary runs see a commit's tree without writing a checkout per
/// run: a slot is switched from the tree it holds to the one asked for by tree difference
/// (as pooled worktrees are), every written file with the same fixed times, and each run
/// gets its own writable overlay over it (`Sandbox.Mount.overlay`), so that nothing a run
/// writes reaches the next. A slot's `tree` file names what it holds; it is removed before
/// a switch and written after, so a slot a kill left half switched is rebuilt.
extension Workspace {
    /// Slots per service: both canary sides and an acceptance command at once, plus one.
    static let checkoutPoolSize = 4
    /// The times of every file in a pooled checkout (2000-01-01T00:00:00Z), so that a warm checkout
    /// and a freshly written one cannot be told apart.
    static let checkoutFileTime = timespec(tv_sec: 946_684_800, tv_nsec: 0)

    func checkoutPoolFolder(_ service: String) -> String { root.appendingPathComponent(".ratchet/checkouts/\(service)").path }

    /// A slot of `service`'s pool holding `commit`'s tree, claimed for the caller.
    public func pooledCheckout(of commit: ObjectID, service: String, repository: Repository) throws -> PooledCheckout {
        let tree = try repository.commit(commit).tree
        let folder = checkoutPoolFolder(service)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (slot, lock) = try claimSlot(in: folder)
        do {
            try switchSlot(folder + "/\(slot)", to: tree, repository: repository)
        } catch {
            close(lock)
            throw error
        }
        return PooledCheckout(files: folder + "/\(slot)/files", tree: tree, lock: lock)
    }

    /// The first free slot (flock), or the first one once it is free when all are busy.
    private func claimSlot(in folder: String) throws -> (Int, Int32) {
        for slot in 0..<Self.checkoutPoolSize {
            let fd = open(folder + "/\(slot).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw RatchetError("cannot open \(folder)/\(slot).lock: \(String(cString: strerror(errno)))") }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return (slot, fd) }
            close(fd)
        }
        let fd = open(folder + "/0.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RatchetError("cannot open \(folder)/0.lock: \(String(cString: strerror(errno)))") }
        do { try Self.lock(fd, LOCK_EX, path: folder + "/0.lock") } catch { close(fd); throw error }
        return (0, fd)
    }

    /// Switches the slot at `slot` to `tree`: by difference from the tree it holds, or from
    /// nothing when it holds no valid tree.
    private func switchSlot(_ slot: String, to tree: ObjectID, repository: Repository) throws {
        let stateFile = slot + "/tree", files = slot + "/files"
        // A `files` folder deleted by hand (or the whole slot) leaves nothing to switch from: rebuilt.
        var isFolder: ObjCBool = false
        let present = FileManager.default.fileExists(atPath: files, isDirectory: &isFolder) && isFolder.boolValue
        let held = present ? (try? String(contentsOfFile: stateFile, encoding: .utf8)).flatMap { ObjectID(hex: $0.trimmingCharacters(in: .whitespacesAndNewlines)) } : nil
        if held == tree { return }
        try? FileManager.default.removeItem(atPath: stateFile)
        if let held, repository.isTree(held) {
            try repository.switchFolder(files, from: held, to: tree, fixedTime: Self.checkoutFileTime)
        } else {
            try? FileManager.default.removeItem(atPath: files)
            try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
            try repository.switchFolder(files, from: nil, to: tree, fixedTime: Self.checkoutFileTime)
        }
        try Failpoints.hit("checkout.switched")
        try replaceFile(stateFile, with: Array((tree.hex + "\n").utf8))
    }

    /// Slots a kill left half switched (no `tree` file) and not claimed: removed with `repair`.
    func halfSwitchedCheckouts(repair: Bool) -> [String] {
        var found: [String] = []
        let base = root.appendingPathComponent(".ratchet/checkouts").path
        for service in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
            for slot in 0..<Self.checkoutPoolSize {
                let folder = "\(base)/\(service)/\(slot)"
                guard FileManager.default.fileExists(atPath: folder + "/files"), !FileManager.default.fileExists(atPath: folder + "/tree") else { continue }
                let fd = open("\(base)/\(service)/\(slot).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else { continue }
                defer { Workspace.unlockAndClose(fd) }
                guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }
                found.append(".ratchet/checkouts/\(service)/\(slot)")
                if repair { try? FileManager.default.removeItem(atPath: folder) }
            }
        }
        return found
    }
}

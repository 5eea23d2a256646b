import Foundation
import Logging
import RatchetGit
import RatchetStore

/// A Ratchet workspace: `ratchet.yaml`, `ratchet.sqlite`, `services/`, `worktrees/`, `reports/` (SPEC §2).
public final class Workspace: Sendable {
    /// The workspace folder (absolute, symlinks resolved).
    public let root: URL
    /// The parsed `ratchet.yaml`.
    public let config: WorkspaceConfig
    /// The store.
    public let database: RatchetDatabase
    /// Where the library logs.
    public let logger: Logger

    /// The marker file that makes a folder a workspace.
    public static let configFileName = "ratchet.yaml"

    private init(root: URL, logger: Logger, readOnly: Bool = false) throws {
        self.root = root
        self.logger = logger
        let configURL = root.appendingPathComponent(Self.configFileName)
        let text: String
        do { text = try String(contentsOf: configURL, encoding: .utf8) } catch {
            throw RatchetError("cannot read \(configURL.path): \(error.localizedDescription)")
        }
        config = try WorkspaceConfig.parse(text, file: configURL.path)
        // The durability policy (adr/0009): `full` fsyncs git objects and refs and every SQLite commit.
        try GitSettings.setFsyncGitDir(config.durability == "full")
        GitSettings.unloggedReferencePrefixes = Self.unloggedReferencePrefixes
        database = try RatchetDatabase(path: root.appendingPathComponent("ratchet.sqlite").path,
                                       synchronous: config.durability == "full" ? "FULL" : "NORMAL", readOnly: readOnly)
        // Every process holds the workspace lock shared while it runs; recovery takes it
        // exclusively to know that no live Ratchet process remains (docs/crash-safety.md).
        let lockPath = root.appendingPathComponent(".ratchet/lock").path
        try? FileManager.default.createDirectory(atPath: (lockPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        lockDescriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockDescriptor >= 0 else { throw RatchetError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        try Self.lock(lockDescriptor, LOCK_SH, path: lockPath)
    }

    deinit { if lockDescriptor >= 0 { close(lockDescriptor) } }

    /// The open workspace lock file (`.ratchet/lock`), held shared.
    private let lockDescriptor: Int32

    /// Tries to hold the workspace lock exclusively: true when no other Ratchet process has
    /// the workspace open. Give it back with `shareWorkspaceLock()`. On Linux a failed upgrade
    /// has already dropped the shared lock (flock(2): conversion is not atomic), so it is taken
    /// shared again before returning false: otherwise a third process could hold it
    /// exclusively and repair while this one still works.
    func holdWorkspaceLockExclusively() -> Bool {
        guard lockDescriptor >= 0 else { return false }
        if flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 { return true }
        try? shareWorkspaceLock()
        return false
    }

    /// Attempt branches move without reflog entries: their history is their commits, and a
    /// log file with its folders per branch was a tenth of a lifecycle's cost (adr/0012).
    public static let unloggedReferencePrefixes = ["refs/heads/ticket/"]

    /// Stops holding the workspace lock (a packer: nothing of it is for doctor to repair).
    func releaseWorkspaceLock() throws {
        try Self.lock(lockDescriptor, LOCK_UN, path: ".ratchet/lock")
    }

    /// Gives an flock back and closes its descriptor: unlocked first, because a child that
    /// another thread is starting holds a copy of every descriptor from its fork to its exec
    /// (`O_CLOEXEC` closes it only then), and a lock only closed stays held while any copy lives.
    static func unlockAndClose(_ fd: Int32) {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Returns to holding the workspace lock shared.
    func shareWorkspaceLock() throws {
        try Self.lock(lockDescriptor, LOCK_SH, path: ".ratchet/lock")
    }

    /// `flock(fd, operation)`, retried when a signal interrupts it; any other failure throws.
    static func lock(_ fd: Int32, _ operation: Int32, path: String) throws {
        while flock(fd, operation) != 0 {
            guard errno == EINTR else { throw RatchetError("cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
    }

    /// Runs `body` holding `.ratchet/locks/refs-NAME`: exclusively while the packer packs the
    /// service's references, shared around each reference write and listing through a
    /// workspace handle (`Repository.aroundReferenceAccess`, adr/0080).
    func withReferenceLock<T>(_ service: String, shared: Bool, _ body: () throws -> T) throws -> T {
        try FileLock.holding(referenceLockPath(service), shared: shared, body)
    }

    func referenceLockPath(_ service: String) -> String {
        root.appendingPathComponent(".ratchet/locks/refs-\(service)").path
    }

    /// Runs `body` holding `.ratchet/locks/landing-NAME`: the pump's baseline, landing, deploy
    /// and zero-window check of one landing of `service` end before the next landing of the
    /// service starts them, in this pump or another (adr/0057). `waiting` is called first
    /// when another landing holds it.
    func withLandingLock<T>(_ service: String, waiting: () -> Void = {}, _ body: () throws -> T) throws -> T {
        let lock = try FileLock(path: root.appendingPathComponent(".ratchet/locks/landing-\(service)").path, waiting: waiting)
        defer { lock.release() }
        return try body()
    }

    /// Opens the workspace named by `explicit`, else `$RATCHET_WORKSPACE`, else the nearest
    /// ancestor of `currentDirectory` that holds `ratchet.yaml`.
    /// With `readOnly` (commands that only read) the store is opened without write access.
    public static func locate(explicit: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
                              currentDirectory: String = FileManager.default.currentDirectoryPath,
                              logger: Logger = Logger(label: "ratchet"), readOnly: Bool = false) throws -> Workspace {
        if let named = explicit ?? environment["RATCHET_WORKSPACE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let url = URL(fileURLWithPath: named, relativeTo: URL(fileURLWithPath: currentDirectory)).standardizedFileURL
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent(configFileName).path) else {
                throw RatchetError("\(url.path) is not a Ratchet workspace (no \(configFileName)); run 'ratchet init \(named)' first")
            }
            return try Workspace(root: url.resolvingSymlinksInPath(), logger: logger, readOnly: readOnly)
        }
        var folder = URL(fileURLWithPath: currentDirectory).standardizedFileURL.resolvingSymlinksInPath()
        while true {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent(configFileName).path) {
                return try Workspace(root: folder, logger: logger, readOnly: readOnly)
            }
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { break }
            folder = parent
        }
        throw RatchetError("not in a Ratchet workspace (no \(configFileName) in \(currentDirectory) or above); run 'ratchet init' or pass --workspace")
    }

    /// Creates a workspace in `path` (created if missing; it must not already be one).
    @discardableResult
    public static func create(at path: String, logger: Logger = Logger(label: "ratchet")) throws -> Workspace {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent(configFileName).path) {
            throw RatchetError("\(url.path) is already a Ratchet workspace")
        }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw RatchetError("\(url.path) exists and is not a folder")
        }
        let existed = fm.fileExists(atPath: url.path)
        do {
            for folder in ["services", "worktrees", "reports", ".ratchet/tmp"] {
                try fm.createDirectory(at: url.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            try Data("/ratchet.sqlite*\n/worktrees/\n/.ratchet/\n".utf8).write(to: url.appendingPathComponent(".gitignore"))
            // The config is written last: its presence is what makes the folder a workspace.
            let database = try RatchetDatabase(path: url.appendingPathComponent("ratchet.sqlite").path)
            try database.write { db in
                try RatchetDatabase.appendEvent(db, kind: "workspace.created", data: ["path": .string(url.path)])
            }
            try Data(WorkspaceConfig.initialText.utf8).write(to: url.appendingPathComponent(configFileName), options: .atomic)
        } catch {
            if !existed { try? fm.removeItem(at: url) }
            throw error
        }
        return try Workspace(root: url.resolvingSymlinksInPath(), logger: logger)
    }

    /// `services/NAME`.
    public func servicePath(_ name: String) -> String { root.appendingPathComponent("services/\(name)").path }

    /// `worktrees/ID-N`.
    public func worktreePath(ticket: String, attempt: Int) -> String { root.appendingPathComponent("worktrees/\(ticket)-\(attempt)").path }

    /// Ratchet's private scratch folder (`.ratchet/tmp`), outside every checkout.
    public var scratchPath: String { root.appendingPathComponent(".ratchet/tmp").path }

    /// `.ratchet/run`: process-group files of running agents, for recovery.
    var runFolder: String {
        let path = root.appendingPathComponent(".ratchet/run").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Makes a fresh private folder under the scratch folder.
    func makeScratchFolder(_ prefix: String) throws -> String {
        let path = scratchPath + "/\(prefix)-\(UUIDv7.make())"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// An exclusive flock on a file, held until `release` (or the process's end): one deploy of a
/// service at a time, one landing of a service at a time under the pump; across processes,
/// and across threads of one process (each lock is its own open file description).
struct FileLock {
    let fd: Int32
    /// Takes the lock (exclusive, or `shared`), waiting for its holder; `waiting` is called
    /// first when it must wait.
    init(path: String, shared: Bool = false, waiting: () -> Void = {}) throws {
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 && errno == ENOENT {
            // The locks folder is made on first use (reference writes take a lock each: no mkdir every time).
            try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else { throw RatchetError("cannot open \(path): \(String(cString: strerror(errno)))") }
        self.fd = fd
        let operation = shared ? LOCK_SH : LOCK_EX
        guard flock(fd, operation | LOCK_NB) != 0 else { return }
        waiting()
        do { try Workspace.lock(fd, operation, path: path) } catch { close(fd); throw error }
    }
    func release() { Workspace.unlockAndClose(fd) }

    /// Runs `body` holding the lock at `path`.
    static func holding<T>(_ path: String, shared: Bool = false, _ body: () throws -> T) throws -> T {
        let lock = try FileLock(path: path, shared: shared)
        defer { lock.release() }
        return try body()
    }
}

import CGitTLS
import Clibgit2
import Foundation

/// Process-wide libgit2 set-up. libgit2 must be initialised once before any call; the
/// global below is initialised lazily and atomically by the Swift runtime.
enum Library {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var started = false

    /// Makes sure libgit2 is initialised, with the process's settings applied.
    static func ensure() {
        lock.withLock {
            guard !started else { return }
            git_libgit2_init()
            // Ratchet owns the repositories it opens; do not refuse them for belonging to
            // another uid (tests run as root in temporary folders).
            _ = ratchet_git_set_owner_validation(0)
            _ = ratchet_git_set_strict_object_creation(1)
            _ = ratchet_git_set_fsync_gitdir(GitSettings.fsyncGitDir ? 1 : 0)
            started = true
        }
    }

    /// Runs `body` with libgit2 started or not, excluding a concurrent start.
    static func whileStarted<T>(_ body: (Bool) throws -> T) rethrows -> T {
        try lock.withLock { try body(started) }
    }
}

/// Durability switches of the git layer.
public enum GitSettings {
    /// How many times libgit2 asked mbedTLS to parse the system's CA bundle and got an empty
    /// chain instead (`CGitTLS`, adr/0053): 1 or more once libgit2 has started in this process.
    public static var caBundleParsesSkipped: Int { Int(ratchet_git_ca_parses_skipped()) }

    /// Turns fsync of objects and refs (`GIT_OPT_ENABLE_FSYNC_GITDIR`) on or off for the process.
    /// Before libgit2 is first used this only records the setting, applied when it starts:
    /// a command that never opens a repository never initialises libgit2 (which reads the
    /// system's CA certificates as it starts).
    public static func setFsyncGitDir(_ enabled: Bool) throws {
        try Library.whileStarted { started in
            lock.withLock { fsyncEnabled = enabled }
            if started { try GitError.check(ratchet_git_set_fsync_gitdir(enabled ? 1 : 0), "setting fsync") }
        }
    }

    /// Whether objects and refs are fsynced (the packs Ratchet writes itself follow it).
    public static var fsyncGitDir: Bool { lock.withLock { fsyncEnabled } }

    /// Reference prefixes written without a reflog entry (`refs/heads/ticket/`: attempt
    /// branches, whose history is their commits; adr/0012). Empty by default.
    public static var unloggedReferencePrefixes: [String] {
        get { lock.withLock { unloggedPrefixes } }
        set { lock.withLock { unloggedPrefixes = newValue } }
    }

    static func unlogged(_ name: String) -> Bool {
        let prefixes = lock.withLock { unloggedPrefixes }
        return !prefixes.isEmpty && prefixes.contains { name.hasPrefix($0) }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var fsyncEnabled = false
    nonisolated(unsafe) private static var unloggedPrefixes: [String] = []
}

import Clibgit2
import Foundation

/// Process-wide libgit2 set-up. libgit2 must be initialised once before any call; the
/// global below is initialised lazily and atomically by the Swift runtime.
enum Library {
    private static let initialised: Bool = {
        git_libgit2_init()
        // Ratchet owns the repositories it opens; do not refuse them for belonging to
        // another uid (tests run as root in temporary folders).
        _ = ratchet_git_set_owner_validation(0)
        _ = ratchet_git_set_strict_object_creation(1)
        return true
    }()

    /// Makes sure libgit2 is initialised.
    static func ensure() { _ = initialised }
}

/// Durability switches of the git layer.
public enum GitSettings {
    /// Turns fsync of objects and refs (`GIT_OPT_ENABLE_FSYNC_GITDIR`) on or off for the process.
    public static func setFsyncGitDir(_ enabled: Bool) throws {
        Library.ensure()
        try GitError.check(ratchet_git_set_fsync_gitdir(enabled ? 1 : 0), "setting fsync")
        lock.withLock { fsyncEnabled = enabled }
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

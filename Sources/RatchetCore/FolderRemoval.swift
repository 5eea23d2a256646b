import Foundation

/// Removes folders whose shape an agent or branch code chose (leftover worktrees, scratch
/// checkouts): the one place that knows FileManager is not enough for them.
enum FolderRemoval {
    /// Removes `path` and reports whether it is gone. FileManager first; when that leaves
    /// something (a chain of folders past PATH_MAX, where every call by full path fails),
    /// `rm -rf --one-file-system`, which walks any depth relative to open folders and never
    /// follows a link out of the tree.
    @discardableResult
    static func remove(_ path: String) -> Bool {
        try? FileManager.default.removeItem(atPath: path)
        if !exists(path) { return true }
        _ = try? ProcessRunner.run(["/bin/rm", "-rf", "--one-file-system", "--", path], directory: "/", environment: ["PATH": "/usr/bin:/bin"],
                                   limits: ProcessLimits(timeout: 300, outputBytes: 16 * 1024))
        return !exists(path)
    }

    private static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}

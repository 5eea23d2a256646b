import Foundation

/// Containment of command agents with bubblewrap (adr/0010).
///
/// Inside the sandbox only the attempt's worktree and a private temporary folder are
/// writable. The workspace (store, other services, other worktrees) is replaced by an
/// empty in-memory folder; the service's `.git` is mounted read-only so that git can read
/// history, and the ticket brief read-only. The agent gets its own pid namespace: when its
/// command ends, every process it left is killed with the namespace.
struct Sandbox {
    /// The bubblewrap executable; `$RATCHET_BUBBLEWRAP` overrides the search (tests use it to
    /// simulate a machine without bubblewrap).
    static func bubblewrap(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let path = environment["RATCHET_BUBBLEWRAP"] { return FileManager.default.isExecutableFile(atPath: path) ? path : nil }
        return ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let executable: String
    let workspace: String
    let worktree: String
    let privateTemp: String
    let gitDirectory: String
    let readOnlyFiles: [String]
    let network: Bool

    /// The file the in-sandbox wrapper writes the number of processes left behind to.
    var leftoversFile: String { privateTemp + "/.ratchet-leftovers" }

    /// The argument vector that runs `command` through `/bin/sh -c` inside the sandbox.
    func arguments(for command: String) -> [String] {
        var arguments = [executable, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if !network { arguments.append("--unshare-net") }
        arguments += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        arguments += ["--tmpfs", workspace]
        arguments += ["--ro-bind", gitDirectory, gitDirectory]
        for file in readOnlyFiles { arguments += ["--ro-bind", file, file] }
        arguments += ["--bind", worktree, worktree, "--bind", privateTemp, privateTemp, "--chdir", worktree]
        // After the command, count the processes it left in the namespace (pid 1 is bubblewrap's
        // init, $$ this shell); they die with the namespace when this shell exits.
        let wrapper = """
            /bin/sh -c "$1"; status=$?
            left=0
            for p in /proc/[0-9]*; do n=${p#/proc/}; [ "$n" = 1 ] || [ "$n" = $$ ] || left=$((left+1)); done
            echo $left > "$2"
            exit $status
            """
        arguments += ["--", "/bin/sh", "-c", wrapper, "ratchet-agent", command, leftoversFile]
        return arguments
    }

    /// How many processes the command left running (read after the run).
    func leftoverCount() -> Int {
        defer { try? FileManager.default.removeItem(atPath: leftoversFile) }
        return Int((try? String(contentsOfFile: leftoversFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
    }
}

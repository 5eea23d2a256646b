#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CToolPosix

/// `ratchet sandbox-init -- COMMAND ARG…`: the first process of a persistent sandbox (a deploy,
/// Sources/RatchetCore/Deploy.swift, adr/0077), which bubblewrap starts as its pid namespace's
/// pid 1 (`--as-pid-1`) with Ratchet's status pipe as stdout and stderr.
///
/// Before anything else runs in the namespace it makes itself non-dumpable (no process of the
/// sandbox can open its `/proc/1/fd` or ptrace it), keeps the pipe on a descriptor of its own
/// and lets go of stdin, stdout and stderr. It runs the command as its child (stdin /dev/null,
/// output to /tmp/command.log, never the pipe), reaps until that child exits, then writes
/// `ratchet-sandbox-status N` (N as the shell's `$?`) on the pipe and closes it: nothing the
/// command starts ever holds or reaches the status. A failed command ends the sandbox (pid 1's
/// exit kills the namespace); after a success it reaps whatever the command left running, every
/// process of the namespace being its descendant, and exits when none is left. It installs no
/// signal handler, so no process inside can signal it.
enum SandboxInit {
    /// The mode's name on the command line.
    static let mode = "sandbox-init"
    /// The status line's prefix (`Sandbox.statusPrefix` in RatchetCore).
    static let statusPrefix = "ratchet-sandbox-status "
    /// Where the command's output goes (read by Ratchet as hostile, through the run's /tmp).
    static let logPath = "/tmp/command.log"
    /// The status when the init itself cannot run the command (as bubblewrap's own failures).
    static let cannotRun: Int32 = 125

    static func run(_ argv: [String]) -> Never {
        guard getpid() == 1 else { fail("\(mode) runs only as pid 1 of a sandbox's pid namespace") }
        // Nothing else runs in the namespace yet: from here on nothing can reach this process's descriptors.
        guard ratchet_tool_make_undumpable() == 0 else { fail("\(mode): cannot make itself non-dumpable") }
        guard ratchet_tool_close_from(3) == 0 else { fail("\(mode): cannot close the descriptors it inherited") }
        let status = fcntl(1, F_DUPFD_CLOEXEC, 3)
        guard status >= 0 else { fail("\(mode): cannot keep the status pipe") }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null > 2, dup2(null, 0) == 0, dup2(null, 1) == 1, dup2(null, 2) == 2 else { finish(status, cannotRun) }
        close(null)
        finish(status, argv.isEmpty ? cannotRun : runCommand(argv))
    }

    /// Runs `argv` with the init's stdin (/dev/null), its output in the log and this process's
    /// environment; its status as the shell's `$?`.
    static func runCommand(_ argv: [String]) -> Int32 {
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o666)
        guard log >= 0 else { return cannotRun }
        defer { close(log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, log, 1)
        posix_spawn_file_actions_adddup2(&actions, log, 2)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var child: pid_t = 0
        guard posix_spawn(&child, argv[0], &actions, nil, cArguments, environ) == 0 else { return 127 }
        var wait: Int32 = 0
        while true {
            // Orphans of the command are re-parented to this process: reap them on the way.
            let reaped = waitpid(-1, &wait, 0)
            if reaped == child { return wait & 0x7f == 0 ? (wait >> 8) & 0xff : 128 + (wait & 0x7f) }
            if reaped < 0 && errno != EINTR { return cannotRun }
        }
    }

    /// Writes the status line on the pipe and lets go of it; a failure ends the sandbox, a
    /// success keeps it while any process of the namespace runs.
    static func finish(_ pipe: Int32, _ code: Int32) -> Never {
        ToolWire.write(pipe, statusPrefix + String(code) + "\n")
        close(pipe)
        guard code == 0 else { exit(code) }
        while waitpid(-1, nil, 0) > 0 || errno == EINTR {}
        exit(0)
    }
}

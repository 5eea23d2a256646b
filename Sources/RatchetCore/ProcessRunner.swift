import CPosix
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Bounds on one child process run.
public struct ProcessLimits: Sendable {
    /// Wall-clock limit, seconds; the whole process group is killed past it.
    public var timeout: Double
    /// Output (stdout and stderr together) kept, bytes; the rest is read and dropped.
    public var outputBytes: Int
    /// The largest file the process may write (RLIMIT_FSIZE), bytes; nil for no limit.
    public var fileBytes: Int?
    /// When set, stderr goes to its own pipe (`ProcessResult.errorOutput`), of which this
    /// many bytes are kept; otherwise stderr is interleaved with stdout.
    public var errorOutputBytes: Int?
    /// Whether output past `outputBytes` kills the whole process group at once instead of
    /// being read and dropped.
    public var killsOnOutputOverflow: Bool
    /// Whether processes of the group still alive after the child exits count as left
    /// behind. Off for a sandbox with its own pid namespace, which counts them inside
    /// (the namespace's processes may still be dying when the sandbox exits).
    public var checksProcessGroup: Bool
    public init(timeout: Double, outputBytes: Int, fileBytes: Int? = nil, errorOutputBytes: Int? = nil,
                killsOnOutputOverflow: Bool = false, checksProcessGroup: Bool = true) {
        self.checksProcessGroup = checksProcessGroup
        self.timeout = timeout
        self.outputBytes = outputBytes
        self.fileBytes = fileBytes
        self.errorOutputBytes = errorOutputBytes
        self.killsOnOutputOverflow = killsOnOutputOverflow
    }
}

/// How a child process ended.
public struct ProcessResult: Sendable, Equatable {
    /// The exit status, nil when a signal ended it.
    public var exitStatus: Int32?
    /// The signal that ended it, if any.
    public var signal: Int32?
    /// Its output, stdout and stderr interleaved, cut at the limit.
    public var output: String
    /// Whether output past the limit was dropped.
    public var isTruncated: Bool
    /// Whether it ran past its time limit and was killed.
    public var timedOut: Bool
    /// Whether processes of its group were still running after it exited (they were killed).
    public var leftProcesses: Bool
    /// Wall-clock seconds.
    public var duration: Double
    /// Its stderr, when `ProcessLimits.errorOutputBytes` separated it (cut at that limit).
    public var errorOutput: String = ""
    /// `output` as the bytes read (an answer's body is not text).
    public var outputData = Data()

    /// Whether it exited 0 within its limits and left nothing behind.
    public var succeeded: Bool { exitStatus == 0 && !timedOut && !leftProcesses }

    /// One line saying how it ended.
    public var summary: String {
        var parts: [String] = []
        if timedOut { parts.append("timed out after \(String(format: "%.1f", duration)) s and was killed") }
        else if let signal {
            parts.append(signal == SIGXFSZ ? "was killed for writing a file over its size limit (SIGXFSZ)" : "was killed by signal \(signal)")
        } else if let exitStatus { parts.append("exited with status \(exitStatus)") }
        if leftProcesses { parts.append("left processes running (killed)") }
        return parts.joined(separator: " and ")
    }
}

/// Runs child processes in their own process group with bounded time and output, so
/// that a whole process tree can be killed. Foundation's `Process` cannot set a process
/// group or resource limits, hence `posix_spawn`.
public enum ProcessRunner {
    /// Sets `attributes` so that the child starts with no blocked signal and every signal's
    /// default action (nothing ignored or blocked in Ratchet leaks into it), together with
    /// the extra spawn `flags` (a process group, a new session).
    static func clearSignals(_ attributes: inout posix_spawnattr_t, flags: Int16) {
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | flags)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        sigdelset(&allSignals, SIGKILL)
        sigdelset(&allSignals, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
    }

    /// Runs `/bin/sh -c command` in `directory` with exactly `environment`.
    public static func runShell(_ command: String, directory: String, environment: [String: String], limits: ProcessLimits,
                                onOutput: (@Sendable (Data) -> Void)? = nil, onStart: ((pid_t) -> Void)? = nil) throws -> ProcessResult {
        try run(["/bin/sh", "-c", command], directory: directory, environment: environment, limits: limits, onOutput: onOutput,
                onStart: onStart)
    }

    /// Runs `arguments` (the first is an absolute path) in `directory` with exactly `environment`.
    /// `onStart` receives the child's pid, which is also its process group, once it runs.
    /// `input` is the child's stdin (a file descriptor the caller keeps and closes), else `/dev/null`.
    public static func run(_ arguments: [String], directory: String, environment: [String: String], limits: ProcessLimits,
                           input: Int32? = nil, onOutput: (@Sendable (Data) -> Void)? = nil, onStart: ((pid_t) -> Void)? = nil) throws -> ProcessResult {
        var argv = arguments
        if let fileBytes = limits.fileBytes {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else {
                throw RatchetError("cannot limit file sizes: /usr/bin/prlimit (util-linux) is missing")
            }
            argv = ["/usr/bin/prlimit", "--fsize=\(fileBytes)", "--"] + argv
        }
        var fds: [Int32] = [0, 0]
        guard ratchet_pipe_cloexec(&fds) == 0 else { throw RatchetError("pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        var errorFDs: [Int32] = [-1, -1]
        if limits.errorOutputBytes != nil {
            guard ratchet_pipe_cloexec(&errorFDs) == 0 else {
                close(readEnd); close(writeEnd)
                throw RatchetError("pipe: \(String(cString: strerror(errno)))")
            }
        }
        let (errorReadEnd, errorWriteEnd) = (errorFDs[0], errorFDs[1])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input { posix_spawn_file_actions_adddup2(&actions, input, 0) } else { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, errorWriteEnd >= 0 ? errorWriteEnd : writeEnd, 2)
        ratchet_spawn_addchdir(&actions, directory)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        clearSignals(&attributes, flags: Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArguments + cEnvironment).forEach { free($0) } }

        let start = Date()
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, cEnvironment)
        close(writeEnd)
        if errorWriteEnd >= 0 { close(errorWriteEnd) }
        guard rc == 0 else {
            close(readEnd)
            if errorReadEnd >= 0 { close(errorReadEnd) }
            throw RatchetError("cannot start \(argv[0]): \(String(cString: strerror(rc)))")
        }

        onStart?(pid)
        let childGroup = pid
        let killGroup: @Sendable () -> Void = { _ = kill(-childGroup, SIGKILL) }
        let collector = OutputCollector(fd: readEnd, limit: limits.outputBytes, onOutput: onOutput,
                                        onOverflow: limits.killsOnOutputOverflow ? killGroup : nil)
        Thread.detachNewThread { collector.run() }
        let errorCollector = errorReadEnd >= 0 ? OutputCollector(fd: errorReadEnd, limit: limits.errorOutputBytes ?? 0, onOutput: nil, onOverflow: nil) : nil
        if let errorCollector { Thread.detachNewThread { errorCollector.run() } }
        let exit = ExitWaiter(pid: pid)
        Thread.detachNewThread { exit.run() }

        var timedOut = false
        if exit.done.wait(timeout: .now() + limits.timeout) == .timedOut {
            timedOut = true
            kill(-pid, SIGKILL)
            exit.done.wait()
        }
        // Anything still in the group outlived the command: kill it.
        var leftProcesses = false
        if !timedOut && limits.checksProcessGroup && kill(-pid, 0) == 0 {
            leftProcesses = true
        }
        kill(-pid, SIGKILL)
        // A process that escaped the group may hold the pipe open: give the reader a bounded grace.
        for reader in [collector, errorCollector].compactMap({ $0 }) where reader.done.wait(timeout: .now() + 2) == .timedOut {
            reader.stop()
            reader.done.wait()
        }
        close(readEnd)
        if errorReadEnd >= 0 { close(errorReadEnd) }
        let (data, truncated) = collector.result()
        let status = exit.status
        var result = ProcessResult(exitStatus: nil, signal: nil, output: String(decoding: data, as: UTF8.self),
                                   isTruncated: truncated, timedOut: timedOut, leftProcesses: leftProcesses,
                                   duration: Date().timeIntervalSince(start))
        result.outputData = data
        if let errorCollector { result.errorOutput = String(decoding: errorCollector.result().0, as: UTF8.self) }
        if status & 0x7f == 0 { result.exitStatus = (status >> 8) & 0xff } else { result.signal = status & 0x7f }
        // prlimit reports a child killed by a signal as 128+N.
        if limits.fileBytes != nil, let code = result.exitStatus, code == 128 + SIGXFSZ { result.signal = SIGXFSZ; result.exitStatus = nil }
        return result
    }
}

/// Waits for one child; `done` is signalled when it has exited.
private final class ExitWaiter: @unchecked Sendable {
    // `status` is written once by the waiting thread before `done` is signalled and read after.
    let pid: pid_t
    let done = DispatchSemaphore(value: 0)
    var status: Int32 = 0
    init(pid: pid_t) { self.pid = pid }
    func run() {
        var value: Int32 = 0
        while waitpid(pid, &value, 0) < 0 && errno == EINTR {}
        status = value
        done.signal()
    }
}

/// Reads a pipe to its end, keeping at most `limit` bytes. Shared between the reading
/// thread and the caller under `lock`.
private final class OutputCollector: @unchecked Sendable {
    let fd: Int32
    let limit: Int
    let onOutput: (@Sendable (Data) -> Void)?
    /// Called once, from the reading thread, when output first goes past the limit.
    let onOverflow: (@Sendable () -> Void)?
    let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var data = Data()
    private var truncated = false
    private var stopped = false

    init(fd: Int32, limit: Int, onOutput: (@Sendable (Data) -> Void)?, onOverflow: (@Sendable () -> Void)? = nil) {
        self.fd = fd
        self.limit = limit
        self.onOutput = onOutput
        self.onOverflow = onOverflow
    }

    func stop() { lock.withLock { stopped = true } }

    func result() -> (Data, Bool) { lock.withLock { (data, truncated) } }

    func run() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while !lock.withLock({ stopped }) {
            let ready = poll(&poller, 1, 100)
            if ready == 0 || (ready < 0 && errno == EINTR) { continue }
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            let chunk = Data(buffer[0..<count])
            onOutput?(chunk)
            let overflowed = lock.withLock {
                let room = max(0, limit - data.count)
                if room >= chunk.count { data.append(chunk); return false }
                data.append(chunk.prefix(room))
                defer { truncated = true }
                return !truncated
            }
            if overflowed { onOverflow?() }
        }
        done.signal()
    }
}

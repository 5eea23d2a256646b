import CPosix
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The live state of one side's module during a canary run: fed by its output thread,
/// asked for rounds and read by the thread that drives the rounds.
final class SideSession: @unchecked Sendable {
    // Every mutable property is guarded by `condition`, which all sides of one canary run
    // share, so that the driver can wait for "every side ended round N or stopped".
    let side: CanarySide
    let condition: NSCondition
    private let parser = LineParser()
    private var pending = Data()
    private var asked = 0
    private var ended = false
    private var problem: String?
    private var pid: pid_t = 0
    private var inputEnd: Int32 = -1
    /// The read end of the module's stdin, or -1 when the pipe could not be made.
    private let inputStart: Int32
    private var result: Result<ProcessResult, RatchetError>?

    /// Makes the pipe of the module's stdin at once, so that rounds can be asked before the module runs.
    init(side: CanarySide, condition: NSCondition) {
        self.side = side
        self.condition = condition
        var fds: [Int32] = [-1, -1]
        inputStart = ratchet_pipe_cloexec(&fds) == 0 ? fds[0] : -1
        inputEnd = fds[1]
    }

    /// The last round the module ended (read under `condition`).
    var completed: Int { parser.completed }

    /// Whether round `round` is done, or this side will not do it (read under `condition`).
    func isDone(_ round: Int) -> Bool { parser.completed >= round || ended || problem != nil }

    /// The samples so far.
    func snapshot() -> SideSamples { locked { parser.samples } }

    /// All samples, once the run is over.
    var samples: SideSamples { snapshot() }

    /// Starts the module and waits for it to end; called on its own thread.
    func run(_ config: CanaryConfig, module: String, environment: [String: String]) {
        let outcome: Result<ProcessResult, RatchetError>
        switch CanaryRunner.command(config, module: module) {
        case .failure(let error): outcome = .failure(error)
        case .success(let argv) where inputStart >= 0:
            var env = environment
            env["RATCHET_CANARY_DIR"] = CanaryRunner.modulePath
            let limits = ProcessLimits(timeout: config.timeout, outputBytes: CanaryRunner.outputLimit,
                                       errorOutputBytes: CanaryRunner.errorOutputLimit, killsOnOutputOverflow: true)
            do {
                outcome = .success(try CanaryRunner.spawn(argv, side: side, environment: env, limits: limits, input: inputStart,
                                                          onOutput: { [self] in feed($0) }, onStart: { [self] child in locked { pid = child } }))
            } catch {
                outcome = .failure(RatchetError("cannot start: \(RatchetCore.describe(error))"))
            }
        case .success:
            outcome = .failure(RatchetError("cannot start: pipe: \(String(cString: strerror(errno)))"))
        }
        if inputStart >= 0 { close(inputStart) }
        condition.lock()
        if let last = pending.isEmpty ? nil : pending, problem == nil { problem = parser.take(Substring(String(decoding: last, as: UTF8.self)), asked: asked) }
        result = outcome
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    /// Reads output as it arrives (the output thread); a bad line kills the run at once.
    func feed(_ data: Data) {
        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        pending.append(data)
        while problem == nil, let newline = pending.firstIndex(of: 10) {
            let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
            pending.removeSubrange(pending.startIndex...newline)
            if let found = parser.take(Substring(line), asked: asked) {
                problem = found
                if pid > 0 { kill(-pid, SIGKILL) }
            }
        }
        if problem != nil { pending.removeAll() }
    }

    /// Asks the module for round `round`: one line on its stdin.
    func ask(_ round: Int) {
        let fd = locked { () -> Int32 in asked = round; return inputEnd }
        guard fd >= 0 else { return }
        let line = Array("\(round)\n".utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }  // a dead module's EPIPE shows as its end
    }

    /// Closes the module's stdin: the normal way to stop it.
    func closeInput() {
        let fd = locked { () -> Int32 in defer { inputEnd = -1 }; return inputEnd }
        if fd >= 0 { close(fd) }
    }

    /// A note when the module ended by itself (exit 0) before it was told to stop.
    func endedEarly() -> String? {
        locked {
            guard case .success(let process)? = result, process.exitStatus == 0, !process.timedOut, problem == nil,
                  parser.completed < asked else { return nil }
            return "side \(side.name)'s module exited after \(parser.completed) round(s) without being asked to stop"
        }
    }

    /// How the run ended, with its fault if it did not end well.
    func report(_ config: CanaryConfig, stopped rounds: Int) -> CanaryRun {
        locked {
            var run = CanaryRun(role: "", side: side.name, rounds: parser.completed, ok: false, fault: nil, exitStatus: nil, signal: nil,
                                timedOut: false, leftProcesses: false, outputTruncated: false, durationS: 0,
                                samples: parser.samples.values.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.count } }, stderr: "")
            switch result {
            case .failure(let error)?: run.fault = error.message
            case .success(let process)?: describeEnd(process, config: config, into: &run)
            case nil: run.fault = "did not run"
            }
            if run.fault == nil, let problem { run.fault = problem }
            run.ok = run.fault == nil
            return run
        }
    }

    private func describeEnd(_ result: ProcessResult, config: CanaryConfig, into run: inout CanaryRun) {
        run.exitStatus = result.exitStatus
        run.signal = result.signal
        run.timedOut = result.timedOut
        run.leftProcesses = result.leftProcesses
        run.outputTruncated = result.isTruncated
        run.durationS = (result.duration * 1000).rounded() / 1000
        run.stderr = String(result.errorOutput.suffix(4096))
        let when = asked > parser.completed ? " in round \(asked)" : parser.completed > 0 ? " after round \(parser.completed)" : ""
        let lastDiagnostic = result.errorOutput.split(separator: "\n").last.map { ": \(Names.printable(String($0.prefix(300))))" } ?? ""
        if result.isTruncated {
            run.fault = "printed more than \(CanaryRunner.outputLimit >> 20) MiB on stdout; its process group was killed"
        } else if problem != nil {
            return
        } else if result.timedOut {
            run.fault = "timed out after \(CanaryFormat.number(config.timeout)) s\(when); its process group was killed"
        } else if let signal = result.signal {
            run.fault = "was killed by signal \(signal)\(when)\(lastDiagnostic)"
        } else if let status = result.exitStatus, status != 0 {
            run.fault = "exited with status \(status)\(when)\(lastDiagnostic)"
        } else if result.leftProcesses {
            run.fault = "left processes running after it exited (they were killed); a canary must stop what it starts"
        }
    }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }
}

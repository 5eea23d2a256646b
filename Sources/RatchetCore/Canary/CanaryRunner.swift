import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How one role's run of the canary program ended.
public struct CanaryRun: Codable, Sendable, Equatable {
    /// `baseline` or `candidate`.
    public var role: String
    /// Whether it exited 0 within its limits and printed only samples.
    public var ok: Bool
    /// Why it did not count, when `ok` is false.
    public var fault: String?
    public var exitStatus: Int32?
    public var signal: Int32?
    public var timedOut: Bool
    public var leftProcesses: Bool
    public var outputTruncated: Bool
    public var durationS: Double
    /// Samples read, over all metrics.
    public var samples: Int
    /// The end of its stderr (diagnostics), at most 4 KiB.
    public var stderr: String
    enum CodingKeys: String, CodingKey {
        case role, ok, fault, signal, samples, stderr
        case exitStatus = "exit_status", timedOut = "timed_out", leftProcesses = "left_processes"
        case outputTruncated = "output_truncated", durationS = "duration_s"
    }
}

/// One JSON line the canary program prints.
private struct CanarySample: Decodable {
    var metric: String
    var value: Double
    var labels: [String: JSONValueLabel]?
}

/// A label value: any JSON scalar is accepted.
private enum JSONValueLabel: Decodable {
    case any
    init(from decoder: Decoder) throws { self = .any }
}

/// Runs a canary module once per role and collects its samples (docs/canary.md).
public enum CanaryRunner {
    /// Stdout a run may print before its process group is killed.
    public static let outputLimit = 32 << 20
    /// Stderr kept from a run.
    public static let errorOutputLimit = 64 << 10

    /// The outcome of running both roles.
    public struct Outcome: Sendable {
        public var runs: [CanaryRun]
        /// Samples per role, then per metric.
        public var samples: [String: [String: [Double]]]
        /// The first fault of any run, if any.
        public var fault: String? { runs.compactMap { run in run.fault.map { "\(run.role) run \($0)" } }.first }
    }

    /// Runs `config.command` from `module` (read-only) in `checkouts[role]` for each role,
    /// at the same time when `config.isParallel`. `environment` is the base environment of
    /// both; each also gets `RATCHET_CANARY_ROLE`, `RATCHET_CANARY_DIR` and a private `TMPDIR`.
    public static func run(_ config: CanaryConfig, module: String, checkouts: [(role: String, path: String, tmp: String)],
                           environment: [String: String]) -> Outcome {
        let results = RunResults(count: checkouts.count)
        let group = DispatchGroup()
        for (index, checkout) in checkouts.enumerated() {
            let body: @Sendable () -> Void = {
                var env = environment
                env["RATCHET_CANARY_ROLE"] = checkout.role
                env["RATCHET_CANARY_DIR"] = module
                env["TMPDIR"] = checkout.tmp
                results.set(index, runOne(config, role: checkout.role, module: module, directory: checkout.path, environment: env))
            }
            if config.isParallel {
                group.enter()
                Thread.detachNewThread { body(); group.leave() }
            } else {
                body()
            }
        }
        group.wait()
        let all = results.all()
        var samples: [String: [String: [Double]]] = [:]
        for (checkout, result) in zip(checkouts, all) { samples[checkout.role] = result.1 }
        return Outcome(runs: all.map(\.0), samples: samples)
    }

    /// Runs one role and parses its output.
    static func runOne(_ config: CanaryConfig, role: String, module: String, directory: String,
                       environment: [String: String]) -> (CanaryRun, [String: [Double]]) {
        var run = CanaryRun(role: role, ok: false, fault: nil, exitStatus: nil, signal: nil, timedOut: false, leftProcesses: false,
                            outputTruncated: false, durationS: 0, samples: 0, stderr: "")
        let program = config.command[0]
        var argv: [String]
        if program.contains("/") {
            let path = module + "/" + program
            guard FileManager.default.isExecutableFile(atPath: path) else {
                run.fault = "cannot start: \(program) is not an executable file in main's canary/ folder"
                return (run, [:])
            }
            argv = [path] + config.command.dropFirst()
        } else {
            argv = ["/usr/bin/env"] + config.command
        }
        let limits = ProcessLimits(timeout: config.timeout, outputBytes: outputLimit, errorOutputBytes: errorOutputLimit,
                                   killsOnOutputOverflow: true)
        let result: ProcessResult
        do {
            result = try ProcessRunner.run(argv, directory: directory, environment: environment, limits: limits)
        } catch {
            run.fault = "cannot start: \(describe(error))"
            return (run, [:])
        }
        run.exitStatus = result.exitStatus
        run.signal = result.signal
        run.timedOut = result.timedOut
        run.leftProcesses = result.leftProcesses
        run.outputTruncated = result.isTruncated
        run.durationS = (result.duration * 1000).rounded() / 1000
        run.stderr = String(result.errorOutput.suffix(4096))
        let lastDiagnostic = result.errorOutput.split(separator: "\n").last.map { ": \(Names.printable(String($0.prefix(300))))" } ?? ""
        if result.isTruncated {
            run.fault = "printed more than \(outputLimit >> 20) MiB on stdout; its process group was killed"
        } else if result.timedOut {
            run.fault = "timed out after \(CanaryFormat.number(config.timeout)) s; its process group was killed"
        } else if let signal = result.signal {
            run.fault = "was killed by signal \(signal)\(lastDiagnostic)"
        } else if let status = result.exitStatus, status != 0 {
            run.fault = "exited with status \(status)\(lastDiagnostic)"
        } else if result.leftProcesses {
            run.fault = "left processes running after it exited (they were killed); a canary must stop what it starts"
        }
        if run.fault != nil { return (run, [:]) }
        switch parse(result.output) {
        case .failure(let error):
            run.fault = error.message
            return (run, [:])
        case .success(let samples):
            run.samples = samples.values.reduce(0) { $0 + $1.count }
            run.ok = true
            return (run, samples)
        }
    }

    /// Parses JSON lines `{"metric": NAME, "value": NUMBER, "labels": {...}}`; blank lines are skipped.
    public static func parse(_ output: String) -> Result<[String: [Double]], RatchetError> {
        var samples: [String: [Double]] = [:]
        let decoder = JSONDecoder()
        for (number, line) in output.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard text.hasPrefix("{"), let sample = try? decoder.decode(CanarySample.self, from: Data(text.utf8)),
                  !sample.metric.isEmpty, sample.value.isFinite else {
                return .failure(RatchetError("printed a line that is not a JSON sample {\"metric\", \"value\", \"labels\"} (line \(number + 1): '\(Names.printable(String(text.prefix(120))))')"))
            }
            samples[sample.metric, default: []].append(sample.value)
        }
        return .success(samples)
    }
}

/// Results written by the run threads, read after they are done.
private final class RunResults: @unchecked Sendable {
    // Guarded by `lock`; each slot is written once by its own thread.
    private let lock = NSLock()
    private var values: [(CanaryRun, [String: [Double]])?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: (CanaryRun, [String: [Double]])) { lock.withLock { values[index] = value } }
    func all() -> [(CanaryRun, [String: [Double]])] { lock.withLock { values.map { $0! } } }
}

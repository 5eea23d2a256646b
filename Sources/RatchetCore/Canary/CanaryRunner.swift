import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How one role's run of the canary program ended.
public struct CanaryRun: Codable, Sendable, Equatable {
    /// `baseline` or `candidate` (filled in by Ratchet after the run; the module never sees it).
    public var role: String
    /// The neutral name the run had (`a` or `b`, assigned at random per canary run).
    public var side: String?
    /// Rounds the run completed.
    public var rounds: Int?
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
        case role, side, rounds, ok, fault, signal, samples, stderr
        case exitStatus = "exit_status", timedOut = "timed_out", leftProcesses = "left_processes"
        case outputTruncated = "output_truncated", durationS = "duration_s"
    }
}


/// One side of a canary run: a neutral name (`a`, `b`), the host folder of its checkout and
/// the sandbox it runs in. Inside, every side sees the same paths (`Sandbox.checkoutPath`,
/// `CanaryRunner.modulePath`, `/tmp`, `HOME`); nothing says baseline or candidate.
public struct CanarySide: Sendable {
    /// `a` or `b`.
    public var name: String
    /// The host folder of its checkout (a pooled checkout, the lower layer of its overlay).
    public var checkout: String
    /// The sandbox its module runs in.
    public var sandbox: Sandbox
    /// A side; nothing in it names a role.
    public init(name: String, checkout: String, sandbox: Sandbox) {
        self.name = name
        self.checkout = checkout
        self.sandbox = sandbox
    }
}

/// Runs a canary module once per side and drives its rounds (docs/canary.md): each round
/// Ratchet writes the round number as one line on the module's stdin, the module answers
/// with that round's samples and `{"round": N, "done": true}`; Ratchet closes stdin to stop it.
public enum CanaryRunner {
    /// Stdout a run may print before its process group is killed.
    public static let outputLimit = 32 << 20
    /// Stderr kept from a run.
    public static let errorOutputLimit = 64 << 10
    /// Where main's canary module appears (read-only) inside every side's sandbox.
    public static let modulePath = "/srv/canary"

    /// The outcome of running every side.
    public struct Outcome: Sendable {
        /// Per side, in the order of `sides` (roles left empty).
        public var runs: [CanaryRun]
        /// Samples per side, in the order of `sides`.
        public var samples: [SideSamples]
        /// Rounds every side completed.
        public var rounds: Int
        /// Why the rounds stopped.
        public var stopReason: String
        /// Set when a module ended by itself before it was asked to stop (not a fault).
        public var endedEarly: String?
    }

    /// Decides after each round from `minRounds` on: a stop reason, or nil to go on.
    public typealias Decision = @Sendable (_ round: Int, _ samples: [SideSamples]) -> String?

    /// Starts `config.command` from `module` (read-only) in every side's checkout and runs
    /// rounds until `decide` says stop or `config.maxRounds`. With `config.isParallel` both
    /// sides run each round at the same time; otherwise one after the other in random order.
    public static func run(_ config: CanaryConfig, module: String, sides: [CanarySide], environment: [String: String],
                           decide: Decision) -> Outcome {
        signal(SIGPIPE, SIG_IGN)  // a module that died must not take Ratchet with it when told the next round
        let condition = NSCondition()
        let sessions = sides.map { SideSession(side: $0, condition: condition) }
        let group = DispatchGroup()
        for session in sessions.shuffled() {
            group.enter()
            Thread.detachNewThread { session.run(config, module: module, environment: environment); group.leave() }
        }
        let (rounds, stopReason) = driveRounds(config, sessions: sessions, condition: condition, decide: decide)
        sessions.forEach { $0.closeInput() }
        group.wait()
        let runs = sessions.map { $0.report(config, stopped: rounds) }
        let early = sessions.compactMap { $0.endedEarly() }.first
        return Outcome(runs: runs, samples: sessions.map(\.samples), rounds: rounds, stopReason: early ?? stopReason, endedEarly: early)
    }

    /// Asks for rounds until one side fails or ends, `decide` stops or the maximum is reached.
    static func driveRounds(_ config: CanaryConfig, sessions: [SideSession], condition: NSCondition, decide: Decision) -> (Int, String) {
        for round in 1...config.maxRounds {
            let batches = config.isParallel ? [sessions.shuffled()] : sessions.shuffled().map { [$0] }
            for batch in batches {
                batch.forEach { $0.ask(round) }
                condition.lock()
                while !batch.allSatisfy({ $0.isDone(round) }) { condition.wait() }
                let missing = batch.first { $0.completed < round }
                condition.unlock()
                if let missing { return (round - 1, "side \(missing.side.name) did not complete round \(round)") }
            }
            if round >= config.minRounds, let reason = decide(round, sessions.map { $0.snapshot() }) { return (round, reason) }
        }
        return (config.maxRounds, "reached the maximum of \(config.maxRounds) rounds")
    }

    /// Starts one canary process in its side's sandbox and waits for it: the one place
    /// where a canary module is spawned, so that every run goes through the same containment.
    static func spawn(_ argv: [String], side: CanarySide, environment: [String: String], limits: ProcessLimits, input: Int32,
                      onOutput: @escaping @Sendable (Data) -> Void, onStart: @escaping (pid_t) -> Void) throws -> ProcessResult {
        try side.sandbox.run(argv, environment: environment, limits: limits, input: input, onOutput: onOutput, onStart: onStart)
    }

    /// The module's argv inside the sandbox, or a fault when its program is missing from `module` (the host folder).
    static func command(_ config: CanaryConfig, module: String) -> Result<[String], RatchetError> {
        let program = config.command[0]
        guard program.contains("/") else { return .success(["/usr/bin/env"] + config.command) }
        guard FileManager.default.isExecutableFile(atPath: module + "/" + program) else {
            return .failure(RatchetError("cannot start: \(program) is not an executable file in main's canary/ folder"))
        }
        return .success([modulePath + "/" + program] + config.command.dropFirst())
    }

    /// Parses JSON lines `{"metric": NAME, "value": NUMBER, "round": N, "labels": {...}}` and
    /// `{"round": N, "done": true}` of a whole output, as one module would print them: a
    /// round counts as asked from its first line that names it.
    public static func parse(_ output: String) -> Result<SideSamples, RatchetError> {
        let parser = LineParser()
        var asked = 0
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if asked == parser.completed, let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
               let round = object["round"] as? Int {
                asked = round
            }
            if let problem = parser.take(Substring(line), asked: asked) { return .failure(RatchetError(problem)) }
        }
        return .success(parser.samples)
    }
}

/// One line a canary module prints: a sample, or the end of a round.
private struct CanaryLine: Decodable {
    var metric: String?
    var value: Double?
    var round: Int?
    var done: Bool?
    var labels: [String: JSONValueLabel]?
    /// A Prometheus text exposition of the instance (`ExpositionSnapshot`).
    var exposition: String?
}

/// A label value: any JSON value is accepted (labels are for people).
private enum JSONValueLabel: Decodable {
    case any
    init(from decoder: Decoder) throws { self = .any }
}

/// Reads a module's lines into samples and round ends. Not thread-safe: its owner locks.
final class LineParser {
    private(set) var samples = SideSamples()
    /// The last round the module ended.
    private(set) var completed = 0
    private var number = 0
    private let decoder = JSONDecoder()

    /// Takes one line while round `asked` is the last one asked; returns the problem, if any.
    func take(_ raw: Substring, asked: Int) -> String? {
        number += 1
        let text = raw.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return nil }
        let current = asked > completed ? asked : 0
        guard text.hasPrefix("{"), let line = try? decoder.decode(CanaryLine.self, from: Data(text.utf8)) else { return notSample(text) }
        if let exposition = line.exposition, line.metric == nil { return takeExposition(exposition, round: line.round, current: current) }
        if let metric = line.metric, let value = line.value {
            guard !metric.isEmpty, value.isFinite else { return notSample(text) }
            if let round = line.round, round != current {
                return "printed a sample of round \(round) while \(current == 0 ? "no round was running" : "round \(current) was running") (line \(number))"
            }
            samples.add(metric, round: current, value: value)
            return nil
        }
        guard line.done == true, line.metric == nil, let round = line.round else { return notSample(text) }
        guard round == current, current > 0 else {
            return "ended round \(round) while \(current == 0 ? "no round was running" : "round \(current) was running") (line \(number))"
        }
        completed = round
        return nil
    }

    /// Keeps an exposition snapshot printed in the running round.
    private func takeExposition(_ text: String, round: Int?, current: Int) -> String? {
        guard current > 0, round == nil || round == current else {
            return "printed an exposition while \(current == 0 ? "no round was running" : "round \(current) was running") (line \(number))"
        }
        switch ExpositionSnapshot.make(round: current, text: text, count: samples.expositions.count) {
        case .success(let snapshot): samples.expositions.append(snapshot); return nil
        case .failure(let problem): return "\(problem.message) (line \(number))"
        }
    }

    private func notSample(_ text: String) -> String {
        "printed a line that is not a JSON sample {\"metric\", \"value\", \"round\"} or round end {\"round\", \"done\"} (line \(number): '\(Names.printable(String(text.prefix(120))))')"
    }
}

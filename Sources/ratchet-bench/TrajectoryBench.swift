import Foundation
import GRDB
import RatchetCore
import RatchetStore

/// Issue 13's figures: a `ratchet tool` round trip from inside a real sandboxed attempt,
/// appending steps, and streaming an export (with the export's peak memory measured in a
/// fresh process per size, so that nothing else the benchmark did counts).
enum TrajectoryBench {
    static func measure(calls: Int, steps: Int, trajectories: Int, scratch: String) throws -> [Figure] {
        try toolRoundTrip(calls: calls, scratch: scratch) + [appendSteps(steps, scratch: scratch)] + export(trajectories, scratch: scratch)
    }

    /// `ratchet tool note` called `calls` times by a sandboxed agent; each call is timed
    /// inside the sandbox from before the process starts to after it printed the answer
    /// (bash's `$EPOCHREALTIME`, so no other process runs between the calls), and the calls'
    /// CPU time (user + sys of the clients, bash's `times`) is reported per call beside it,
    /// with the load average at the start. Inside the sandbox `ratchet` is the thin client
    /// (Sources/ratchet-tool) when it is built beside the full binary.
    static func toolRoundTrip(calls: Int, scratch: String) throws -> [Figure] {
        let root = scratch + "/tools"
        let binary = ratchetBinary()
        for arguments in [["init", root], ["service", "add", "svc", "--template", "kv-cache"], ["ticket", "new", "--service", "svc", "--title", "Bench"]] {
            try Shell.run([binary] + arguments, in: FileManager.default.fileExists(atPath: root) ? root : scratch)
        }
        let agent = """
            command:bash -c 'for i in $(seq \(calls)); do s=$EPOCHREALTIME; ratchet tool note call $i > /dev/null; e=$EPOCHREALTIME; \
            echo "rt $s $e"; done; times'; echo x > x.txt
            """
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "?"
        try Shell.run([binary, "work", "T-1", "--agent", agent], in: root)
        let workspace = try Workspace.locate(explicit: root, readOnly: true)
        let output = try workspace.trajectory(named: "T-1").steps.last { $0.action.tool == "command" }?.observation.output ?? ""
        let lines = output.split(separator: "\n")
        let samples = lines.compactMap { line -> Double? in
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0] == "rt", let start = Double(fields[1]), let end = Double(fields[2]) else { return nil }
            return (end - start) * 1000
        }
        guard samples.count == calls else { throw Shell.Failure(description: "\(samples.count) of \(calls) timings in the agent's output") }
        // `times` prints the shell's own user/sys, then its children's: the clients'.
        let children = lines.last { $0.contains("m") && $0.contains("s ") }.map(cpuSeconds) ?? 0
        return [Figure(name: "tool round trip", size: "ratchet tool note, in the sandbox, load \(load)", pipeline: "ratchet", samples: samples),
                Figure(name: "tool round trip, client CPU", size: "user+sys per call, \(calls) calls", pipeline: "ratchet",
                       samples: [children * 1000 / Double(calls)])]
    }

    /// "0m0.052s 0m0.031s" (bash's `times`) as seconds, user plus sys.
    static func cpuSeconds(_ line: Substring) -> Double {
        line.split(separator: " ").reduce(0) { total, field in
            let parts = field.dropLast().split(separator: "m")
            guard parts.count == 2, let minutes = Double(parts[0]), let seconds = Double(parts[1]) else { return total }
            return total + minutes * 60 + seconds
        }
    }

    /// `count` steps appended to one trajectory through `Workspace.recordStep` (one
    /// transaction with its event each).
    static func appendSteps(_ count: Int, scratch: String) throws -> Figure {
        let (workspace, trajectory) = try emptyTrajectory(scratch + "/steps")
        let started = Date()
        for index in 1...count {
            try workspace.recordStep(trajectory: trajectory, ticket: "T-1", service: "svc", attempt: 1, tool: "note",
                                     arguments: ["text": .string("step \(index)")], risk: "none", effect: "read", ok: true,
                                     output: "noted", data: [:], commit: nil, usage: ["tokens_in": 100, "tokens_out": 20])
        }
        let seconds = Date().timeIntervalSince(started)
        return Figure(name: "append steps", size: "\(Format.count(count)) steps, peak RSS \(peakMiB()) MiB", pipeline: "ratchet",
                      samples: [seconds * 1000 / Double(count)])
    }

    /// `count` trajectories of 10 steps; exports of the first tenth and of all of them, each
    /// in a fresh process that reports its time and peak RSS.
    static func export(_ count: Int, scratch: String) throws -> [Figure] {
        let root = scratch + "/export"
        let (workspace, _) = try emptyTrajectory(root)
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        try workspace.database.write { db in
            for number in 0..<count {
                let id = UUIDv7.make(date: start.addingTimeInterval(Double(number)))
                try TrajectoryRecord(id: id, ticketId: "T-1", attemptNumber: number + 2, service: "svc", agent: "command",
                                     initialState: ["main": .string(String(repeating: "a", count: 40))],
                                     outcome: ["status": "landed", "duration_s": 12.5], createdAt: start.addingTimeInterval(Double(number))).insert(db)
                for index in 1...10 {
                    try TrajectoryStepRecord(trajectoryId: id, index: index, time: start, tool: "note", arguments: ["text": "thinking about it"],
                                             risk: "none", effect: "read", ok: true, output: String(repeating: "output ", count: 40), data: [:],
                                             commit: nil).insert(db)
                }
            }
        }
        var figures: [Figure] = []
        for (label, since) in [("\(Format.count(count / 10)) trajectories", start.addingTimeInterval(Double(count - count / 10))), ("\(Format.count(count)) trajectories", start)] {
            for format in ["jsonl", "atif"] {
                let since = ISO8601DateFormatter().string(from: since)
                let probe = try Shell.run([URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path, "--export-probe", root, "--probe-format", format, "--probe-since", since], in: scratch)
                let parts = probe.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                guard parts.count == 2 else { throw Shell.Failure(description: "export probe printed '\(probe)'") }
                figures.append(Figure(name: "export", size: "\(label), peak RSS \(String(format: "%.1f", parts[1])) MiB", pipeline: "ratchet/\(format)",
                                      samples: [parts[0]]))
            }
        }
        return figures
    }

    /// The child of the export figure: exports to /dev/null, prints milliseconds and peak RSS (MiB).
    static func exportProbe(root: String, format: String, since: String) throws {
        let workspace = try Workspace.locate(explicit: root, readOnly: true)
        let filter = TrajectoryFilter(since: ISO8601DateFormatter().date(from: since))
        let null = FileHandle(forWritingAtPath: "/dev/null")!
        let time = try milliseconds {
            _ = try workspace.exportTrajectories(filter, format: TrajectoryFormat(rawValue: format)!) { null.write($0) }
        }
        print(String(format: "%.1f %@", time, peakMiB()))
    }

    /// A workspace with service `svc`, ticket T-1 and one empty trajectory.
    private static func emptyTrajectory(_ root: String) throws -> (Workspace, String) {
        let workspace = try Workspace.create(at: root)
        let now = Date()
        let id = UUIDv7.make()
        try workspace.database.write { db in
            try ServiceRecord(name: "svc", path: "services/svc", template: nil, createdAt: now).insert(db)
            try TicketRecord(id: "T-1", number: 1, service: "svc", title: "Bench", objective: "", acceptance: [], constraints: [], context: "",
                             source: "bench", fingerprint: nil, risk: "low", priority: 0, agent: nil, assignee: "agent", state: .working,
                             createdAt: now, updatedAt: now).insert(db)
            try TrajectoryRecord(id: id, ticketId: "T-1", attemptNumber: 1, service: "svc", agent: "command", initialState: [:], createdAt: now).insert(db)
        }
        return (workspace, id)
    }

    /// VmHWM of this process, MiB.
    static func peakMiB() -> String {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let kib = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        return String(format: "%.1f", kib / 1024)
    }

    /// The `ratchet` binary built beside this benchmark.
    static func ratchetBinary() -> String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("ratchet").path
    }
}

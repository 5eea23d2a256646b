import ArgumentParser
import Foundation
import RatchetCore
import RatchetGit

/// `ratchet-bench`: Ratchet's own overhead against the git CLI, on generated repositories.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ratchet-bench",
        abstract: "Benchmark Ratchet's ticket lifecycle against the git CLI (run with swift run -c release ratchet-bench).")

    @Flag(help: "Small repositories and few runs: proves the benchmark works (CI runs this in debug); its figures mean nothing.")
    var quick = false

    @Option(help: "Lifecycles measured per figure.")
    var runs: Int?

    @Option(help: "Where generated repositories are cached between runs.")
    var cache: String = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/ratchet-bench").path

    @Option(help: "Write the figures as JSON to this file.")
    var output: String?

    @Flag(help: "Skip the three-way durability comparison (shipped default only).")
    var shippedOnly = false

    @Flag(help: "Print the median time of each phase of Ratchet's lifecycle.")
    var profile = false

    @Flag(help: "Only Ratchet's lifecycles, at the first size or with --large the last (for strace -c, perf or callgrind).")
    var lifecyclesOnly = false

    @Flag(help: "With --lifecycles-only or --worktrees-only: use the largest repository.")
    var large = false

    @Flag(help: "Only the worktree and checkout figures, at the first size or with --large the last.")
    var worktreesOnly = false

    @Flag(help: "Only the cost of one sandboxed run: unsandboxed, adr/0010's bubblewrap and today's (adr/0013).")
    var sandboxOnly = false

    @Flag(help: "Only `work` through the library on a fresh 2,000-file service, --runs times (for perf).")
    var workOnly = false

    @Flag(help: "Only the merge, command-line and reading-command figures, at the first size or with --large the last.")
    var mergesOnly = false

    @Flag(help: "Only the review surface: summary and reflect over 10,000 landings across 20 services (quick: 1,000).")
    var reviewOnly = false

    @Flag(help: "Only the metrics figures: exposition parsing, a week of samples imported, queried and sized, beside Prometheus.")
    var metricsOnly = false
    @Flag(help: "Only the trajectory figures: a `ratchet tool` round trip in the sandbox, appending 100,000 steps, exporting 10,000 trajectories (quick: 20 calls, 1,000 steps, 500 trajectories).")
    var trajectoryOnly = false

    @Option(help: .hidden)
    var exportProbe: String?
    @Option(help: .hidden)
    var probeFormat = "jsonl"
    @Option(help: .hidden)
    var probeSince = ""

    @Flag(help: "With --worktrees-only: only the pooled worktree figure (for perf).")
    var pooledOnly = false

    @Option(help: .hidden)
    var memoryProbe: String?

    @Option(help: .hidden)
    var probeFiles: Int = 0

    @Flag(help: "With --lifecycles-only: write each durable step's objects as one pack (ObjectBatch).")
    var packed = false

    @Flag(help: "Only the pump: 50 tickets (quick: 10) at concurrency 2, each worked, landed and deployed.")
    var pumpOnly = false

    @Flag(help: "Only the canary judge figures (Mann-Whitney and round metrics).")
    var judgeOnly = false

    @Flag(help: "Only the canary power study: the shipped kv-cache canary on identical code, injected latency and a CPU-bound regression (docs/canary.md).")
    var canaryPower = false

    @Option(help: "With --canary-power: runs of each condition other than identical code and +25% (default: --runs).")
    var canaryOtherRuns: Int?

    @Option(help: "Only the canary replay study: verdicts of the shipped kv-cache judge replayed on recorded rounds (a JSON file like Tests/RatchetCoreTests/Golden/kv-cache-rounds.json).")
    var canaryReplay: String?

    /// Merges with one `command:true` criterion (issue 11).
    func mergeFigures(shape: Generator.Shape, source: String, scratch: String) throws -> [Figure] {
        try Merges.measure(shape: shape, source: source, count: quick ? 5 : 50, scratch: scratch)
    }

    /// The command line's lifecycle against a git script, and reading commands on many tickets.
    func commandFigures(source: String, scratch: String) throws -> [Figure] {
        try Merges.commandLine(source: source, runs: quick ? 3 : 21, scratch: scratch)
            + Merges.readCommands(source: source, tickets: quick ? 3 : 10, runs: quick ? 3 : 21, scratch: scratch)
            + Merges.readCommands(source: source, tickets: quick ? 200 : 10_000, runs: quick ? 3 : 21, scratch: scratch)
            + Merges.references(source: source, branches: quick ? 300 : 3_000, runs: quick ? 3 : 21, scratch: scratch)
    }

    mutating func run() throws {
        // The product's git policy, as Workspace sets it: attempt branches without reflogs.
        GitSettings.unloggedReferencePrefixes = Workspace.unloggedReferencePrefixes
        let shapes: [Generator.Shape] = quick ? [.init(commits: 100, files: 300)] : [.init(commits: 1000, files: 2000), .init(commits: 20_000, files: 20_000)]
        let runs = self.runs ?? (quick ? 5 : 41)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ratchet-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        if let exportProbe { return try TrajectoryBench.exportProbe(root: exportProbe, format: probeFormat, since: probeSince) }
        if trajectoryOnly {
            return printTable(try TrajectoryBench.measure(calls: quick ? 20 : 200, steps: quick ? 1000 : 100_000,
                                                          trajectories: quick ? 500 : 10_000, scratch: scratch))
        }
        if pumpOnly {
            return printTable(try PumpBench.measure(tickets: quick ? 10 : 50, concurrency: 2, scratch: scratch))
        }
        if reviewOnly {
            return printTable(try ReviewBench.measure(services: 20, landings: quick ? 1000 : 10_000, runs: runs, scratch: scratch))
        }
        if metricsOnly {
            return try MetricsBench.measure(quick: quick, runs: runs, scratch: scratch)
        }
        if sandboxOnly {
            for figure in try SandboxBench.measure(runs: runs, scratch: scratch) {
                print("\(figure.name) \(figure.pipeline): median \(Format.ms(figure.median)) ms, p90 \(Format.ms(figure.p90)) ms over \(figure.runs)")
            }
            return
        }
        var figures: [Figure] = []
        var memory: [String: Double] = [:]
        #if DEBUG
        let build = "debug"
        FileHandle.standardError.write(Data("warning: debug build; figures are only meaningful from swift run -c release ratchet-bench\n".utf8))
        #else
        let build = "release"
        #endif
        if let memoryProbe {
            // A child of the memory figure: `runs` lifecycles in a fresh process, then its peak RSS.
            let store = try StoreWrites(path: memoryProbe + ".sqlite", durability: .shipped, tickets: runs)
            var pipeline = RatchetPipeline(repository: try Repository.open(memoryProbe), store: store, files: probeFiles)
            pipeline.batch = try ObjectBatch(path: memoryProbe)
            for ticket in 1...runs { _ = try pipeline.lifecycle(ticket) }
            // VmHWM, not getrusage: ru_maxrss survives execve and would report the parent's peak.
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                  let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { throw Shell.Failure(description: "no VmHWM") }
            print(String(format: "%.2f", kib / 1024))
            return
        }
        if judgeOnly {
            for figure in try JudgeBench.measure(runs: quick ? 3 : 21) {
                print("\(figure.name): median \(Format.ms(figure.median)) ms, p90 \(Format.ms(figure.p90)) ms over \(figure.runs)")
            }
            return
        }
        if let canaryReplay {
            print(try CanaryPower.replayTable(CanaryPower.replay(path: canaryReplay, verdicts: 2000)))
            return
        }
        if canaryPower {
            let main = self.runs ?? (quick ? 2 : 40)
            let study = try CanaryPower.run(runs: main, otherRuns: canaryOtherRuns ?? main, scratch: scratch, progress: progress)
            print(CanaryPower.table(study))
            if let output { try JSONEncoder().encode(study).write(to: URL(fileURLWithPath: output)) }
            return
        }
        if lifecyclesOnly {
            let shape = large ? shapes[shapes.count - 1] : shapes[0]
            let source = try Generator.repository(shape, cache: cache)
            let path = scratch + "/only"
            try Generator.copy(source, to: path)
            let store = try StoreWrites(path: path + ".sqlite", durability: .shipped, tickets: runs)
            var pipeline = RatchetPipeline(repository: try Repository.open(path), store: store, files: shape.files)
            if packed { pipeline.batch = try ObjectBatch(path: path) }
            let phases = PhaseTimes()
            var times: [Double] = []
            for ticket in 1...runs { times.append(try milliseconds { _ = try pipeline.lifecycle(ticket, phases: phases) }) }
            let figure = Figure(name: "lifecycle", size: shape.description, pipeline: packed ? "ratchet/packed" : "ratchet/loose", samples: times)
            progress("lifecycle median \(Format.ms(figure.median)) ms, p90 \(Format.ms(figure.p90)) ms over \(runs); packs now \(pipeline.repository.packCount())")
            progress("phases (median ms): " + phases.medians().map { "\($0.0) \(Format.ms($0.1))" }.joined(separator: ", "))
            return
        }
        if workOnly {
            let source = try Generator.repository(shapes[0], cache: cache)
            printTable(try Merges.references(source: source, branches: 0, runs: runs, scratch: scratch, phases: ["none"]))
            return
        }
        if mergesOnly {
            let shape = large ? shapes[shapes.count - 1] : shapes[0]
            let figures = try mergeFigures(shape: shape, source: try Generator.repository(shape, cache: cache), scratch: scratch)
                + commandFigures(source: try Generator.repository(shapes[0], cache: cache), scratch: scratch)
            printTable(figures)
            return
        }
        if worktreesOnly {
            let shape = large ? shapes[shapes.count - 1] : shapes[0]
            let figures = try Worktrees.measure(shape: shape, source: try Generator.repository(shape, cache: cache), runs: runs, scratch: scratch,
                                                    pooledOnly: pooledOnly)
            printTable(figures)
            return
        }
        // Lifecycle figures first, at every size, on a file system the benchmark has not yet
        // churned: deleting the worktree and checkout figures' tens of thousands of files
        // makes ext4 skip recently freed inodes on every file creation for minutes after
        // (perf: ext4_create → recently_deleted), which would be measured as Ratchet's cost.
        var sources: [Generator.Shape: String] = [:]
        // How much a new file costs on this file system right now, for reading the figures.
        figures.append(try FileSystemProbe.measure(scratch: scratch, files: quick ? 20 : 200))
        printTable(figures)
        for shape in shapes {
            progress("generating or reusing \(shape)")
            let source = try Generator.repository(shape, cache: cache)
            sources[shape] = source
            let durabilities: [Durability] = quick || shippedOnly ? [.shipped] : Durability.allCases
            for durability in durabilities {
                progress("\(shape), \(durability.rawValue) durability: lifecycles")
                figures += try lifecycles(shape: shape, source: source, durability: durability, runs: runs, scratch: scratch,
                                          withReverts: durability == .shipped)
            }
            progress("\(shape): \(quick ? 10 : 50) concurrent lifecycles")
            figures += try Concurrency.measure(shape: shape, source: source, count: quick ? 10 : 50, scratch: scratch)
            printTable(figures.filter { $0.size == shape.description })
        }
        for shape in shapes {
            let source = sources[shape]!
            progress("\(shape): packing the loose objects of \(runs) lifecycles")
            figures.append(try packing(shape: shape, source: source, lifecycles: runs, scratch: scratch))
            figures.append(try combining(shape: shape, source: source, scratch: scratch))
            progress("\(shape): merges with one command:true criterion, then lifecycles again")
            figures += try mergeFigures(shape: shape, source: source, scratch: scratch)
            figures += try lifecycles(shape: shape, source: source, durability: .shipped, runs: runs, scratch: scratch, withReverts: false)
                .map { var figure = $0; figure.name += "-after-merges"; return figure }
            memory[shape.description] = peakMemoryMiB()
            let later = ["pack", "combine", "merge", "lifecycle-after"]
            printTable(figures.filter { figure in figure.size == shape.description && later.contains { figure.name.hasPrefix($0) } })
        }
        // The worktree and checkout figures last: their unpooled checkouts and the git CLI's
        // worktrees create and delete whole trees, the churn a pump no longer makes (pooled
        // checkouts), which would otherwise be measured as the merges' after-effect.
        for shape in shapes {
            progress("\(shape): worktrees and checkouts")
            figures += try Worktrees.measure(shape: shape, source: sources[shape]!, runs: quick ? 3 : 11, scratch: scratch)
            printTable(figures.filter { figure in figure.size == shape.description && ["worktree", "checkout"].contains { figure.name.hasPrefix($0) } })
        }
        progress("memory against history length")
        let probes = try MemoryProbes.measure(shapes: quick ? [.init(commits: 100, files: 300), .init(commits: 1000, files: 300)]
                                                           : [shapes[0], .init(commits: 20_000, files: 2000), shapes[shapes.count - 1]],
                                              cache: cache, scratch: scratch, lifecycles: quick ? [1, 10] : [1, 200])
        MemoryProbes.print(probes)
        progress("canary judge")
        figures += try JudgeBench.measure(runs: quick ? 3 : 21)
        progress("sandbox cost per run")
        figures += try SandboxBench.measure(runs: quick ? 3 : 41, scratch: scratch)
        progress("the command line: a ticket's life against a git script, and reading commands")
        figures += try commandFigures(source: sources[shapes[0]]!, scratch: scratch)
        printTable(figures.filter { $0.size == "-" })
        print("peak memory (MiB, cumulative over the run): " + memory.sorted { $0.key < $1.key }.map { "\($0.key): \(String(format: "%.1f", $0.value))" }.joined(separator: "; "))
        if let output {
            let report = Report(machine: Machine.current(), build: build, quick: quick, figures: figures, peakMemoryMiB: memory, memoryByHistory: probes)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: output))
            progress("wrote \(output)")
        }
    }

    private func lifecycles(shape: Generator.Shape, source: String, durability: Durability, runs: Int, scratch: String,
                            withReverts: Bool) throws -> [Figure] {
        try GitSettings.setFsyncGitDir(durability.libgit2Fsync)
        defer { try? GitSettings.setFsyncGitDir(false) }
        let size = shape.description
        var figures: [Figure] = []
        // Ratchet.
        let ours = scratch + "/ratchet-\(shape.key)-\(durability.rawValue)"
        try Generator.copy(source, to: ours)
        let ratchetStore = try StoreWrites(path: ours + ".sqlite", durability: durability, tickets: runs * 4 + 10)
        var pipeline = RatchetPipeline(repository: try Repository.open(ours), store: ratchetStore, files: shape.files)
        pipeline.batch = try ObjectBatch(path: ours)
        var samples: [Double] = [], reverts: [Double] = []
        let phases = PhaseTimes()
        for ticket in 1...(runs + 3) {
            if ticket % 2 == 0 { try advanceMain(pipeline.repository, ticket: ticket, files: shape.files) }
            let time = try milliseconds { _ = try pipeline.lifecycle(ticket, phases: ticket > 3 ? phases : nil) }
            if ticket > 3 { samples.append(time) } // the first three warm caches up
        }
        if profile {
            progress("phases of the Ratchet lifecycle (median ms): " + phases.medians().map { "\($0.0) \(Format.ms($0.1))" }.joined(separator: ", "))
        }
        figures.append(Figure(name: "lifecycle", size: size, pipeline: "ratchet/\(durability.rawValue)", samples: samples))
        if durability == .shipped {
            // The same lifecycle writing loose objects, to show what one pack per durable step buys.
            var loose = pipeline
            loose.batch = nil
            var looseSamples: [Double] = []
            for ticket in (runs * 3 + 4)...(runs * 4 + 6) {
                if ticket % 2 == 0 { try advanceMain(pipeline.repository, ticket: ticket, files: shape.files) }
                looseSamples.append(try milliseconds { _ = try loose.lifecycle(ticket) })
            }
            figures.append(Figure(name: "lifecycle-loose", size: size, pipeline: "ratchet/\(durability.rawValue)", samples: looseSamples))
        }
        if withReverts {
            for ticket in (runs + 4)...(runs * 2 + 3) {
                let landing = try pipeline.lifecycle(ticket)
                reverts.append(try milliseconds { try pipeline.revert(landing, ticket: ticket) })
            }
            figures.append(Figure(name: "revert", size: size, pipeline: "ratchet/\(durability.rawValue)", samples: reverts))
        }
        // The git CLI.
        let theirs = scratch + "/git-\(shape.key)-\(durability.rawValue)"
        try Generator.copy(source, to: theirs)
        let gitStore = try StoreWrites(path: theirs + ".sqlite", durability: durability, tickets: runs * 3 + 10)
        let git = GitPipeline(path: theirs, store: gitStore, files: shape.files, config: durability.gitConfig)
        let gitRepository = try Repository.open(theirs)
        samples = []
        reverts = []
        for ticket in 1...(runs + 3) {
            if ticket % 2 == 0 { try advanceMain(gitRepository, ticket: ticket, files: shape.files) }
            let time = try milliseconds { _ = try git.lifecycle(ticket) }
            if ticket > 3 { samples.append(time) }
        }
        figures.append(Figure(name: "lifecycle", size: size, pipeline: "git-cli/\(durability.rawValue)", samples: samples))
        if withReverts {
            for ticket in (runs + 4)...(runs * 2 + 3) {
                let landing = try git.lifecycle(ticket)
                reverts.append(try milliseconds { try git.revert(landing, ticket: ticket) })
            }
            figures.append(Figure(name: "revert", size: size, pipeline: "git-cli/\(durability.rawValue)", samples: reverts))
        }
        // Left for the end of the run: deleting hundreds of files now would slow the next
        // figure's file creations (see run()).
        return figures
    }

    /// Packing the loose objects that `lifecycles` lifecycles leave behind (what maintenance does every 50 landings).
    private func packing(shape: Generator.Shape, source: String, lifecycles: Int, scratch: String) throws -> Figure {
        var samples: [Double] = []
        for round in 0..<3 {
            let path = scratch + "/packing"
            try Generator.copy(source, to: path)
            defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".sqlite") }
            let store = try StoreWrites(path: path + ".sqlite", durability: .shipped, tickets: lifecycles)
            let pipeline = RatchetPipeline(repository: try Repository.open(path), store: store, files: shape.files)
            for ticket in 1...lifecycles { _ = try pipeline.lifecycle(ticket + round * 0) }
            samples.append(try milliseconds { try pipeline.repository.packLooseObjects() })
            guard try pipeline.repository.looseObjects().isEmpty else { throw Shell.Failure(description: "loose objects left after packing") }
        }
        return Figure(name: "pack-\(lifecycles)", size: shape.description, pipeline: "ratchet/shipped", samples: samples)
    }

    /// Combining the 32 small packs that 16 batched lifecycles leave (what the background
    /// packer does once 32 packs pile up).
    private func combining(shape: Generator.Shape, source: String, scratch: String) throws -> Figure {
        var samples: [Double] = []
        for _ in 0..<3 {
            let path = scratch + "/combining"
            try Generator.copy(source, to: path)
            defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".sqlite") }
            let store = try StoreWrites(path: path + ".sqlite", durability: .shipped, tickets: 16)
            var pipeline = RatchetPipeline(repository: try Repository.open(path), store: store, files: shape.files)
            pipeline.batch = try ObjectBatch(path: path)
            let before = pipeline.repository.packCount()
            for ticket in 1...16 { _ = try pipeline.lifecycle(ticket) }
            var combined = 0
            samples.append(try milliseconds { combined = try pipeline.repository.consolidatePacks() })
            // The largest small pack stays (consolidatePacks); the rest become one.
            guard combined >= 31, pipeline.repository.packCount() <= before + 2 else {
                throw Shell.Failure(description: "combined \(combined) packs; \(pipeline.repository.packCount()) left")
            }
        }
        return Figure(name: "combine-32-packs", size: shape.description, pipeline: "ratchet/shipped", samples: samples)
    }

    /// Another landing on main (untimed), so that half the measured merges are three-way.
    private func advanceMain(_ repository: Repository, ticket: Int, files: Int) throws {
        let main = try repository.resolveReference("refs/heads/main")!
        let identity = Signature(name: "Other", email: "other@example.invalid")
        let path = Generator.path((ticket * 31 + 17) % files)
        let next = try repository.commit(on: main, applying: [.upsert(path, try repository.writeBlob(Data("other \(ticket)\n".utf8)))],
                                         author: identity, committer: identity, message: "concurrent landing\n")
        try repository.updateReference("refs/heads/main", to: next, expected: main, message: "other")
    }

    private func printTable(_ figures: [Figure]) {
        print("")
        print("figure                    size                           pipeline              median ms   p90 ms   max ms   runs   vs git")
        for figure in figures {
            let baseline = figures.first { $0.name == figure.name && $0.size == figure.size && figure.pipeline.hasPrefix("ratchet")
                && $0.pipeline == figure.pipeline.replacingOccurrences(of: "ratchet", with: "git-cli") }
            let ratio = baseline.map { String(format: "%.1fx", $0.median / max(figure.median, 0.0001)) } ?? ""
            print(figure.name.padding(toLength: 26, withPad: " ", startingAt: 0) + figure.size.padding(toLength: 31, withPad: " ", startingAt: 0)
                + figure.pipeline.padding(toLength: 22, withPad: " ", startingAt: 0)
                + Format.ms(figure.median).leftPadded(9) + Format.ms(figure.p90).leftPadded(9) + Format.ms(figure.max).leftPadded(9)
                + "\(figure.runs)".leftPadded(7) + ratio.leftPadded(9))
        }
    }
}

func progress(_ line: String) {
    FileHandle.standardError.write(Data("· \(line)\n".utf8))
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// What the JSON report says about where it ran.
struct Machine: Codable {
    var system: String
    var cores: Int
    var memoryGiB: Double
    var libgit2: String
    var git: String

    static func current() -> Machine {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return Machine(system: "Linux \(release)", cores: ProcessInfo.processInfo.activeProcessorCount,
                       memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824,
                       libgit2: (try? Shell.run(["pkg-config", "--modversion", "libgit2"], in: "/")) ?? "?",
                       git: (try? Shell.run(["git", "--version"], in: "/")) ?? "?")
    }
}

struct Report: Codable {
    var machine: Machine
    var build: String
    var quick: Bool
    var figures: [Figure]
    var peakMemoryMiB: [String: Double]
    var memoryByHistory: [MemoryProbe]
}

/// Peak resident memory of a fresh process running `lifecycles` lifecycles on one repository.
struct MemoryProbe: Codable {
    var size: String
    var commits: Int
    var files: Int
    var lifecycles: Int
    var peakMiB: Double
}

/// Memory against history length: the same lifecycles in fresh processes (as the CLI runs
/// them) on repositories of 20x more history with the same files, and with 10x more files.
enum MemoryProbes {
    static func measure(shapes: [Generator.Shape], cache: String, scratch: String, lifecycles: [Int]) throws -> [MemoryProbe] {
        var probes: [MemoryProbe] = []
        for shape in shapes {
            let source = try Generator.repository(shape, cache: cache)
            for count in lifecycles {
                let path = scratch + "/memory-\(shape.key)-\(count)"
                try Generator.copy(source, to: path)
                defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".sqlite") }
                let output = try Shell.run(["/proc/self/exe", "--memory-probe", path, "--probe-files", String(shape.files), "--runs", String(count)], in: scratch)
                guard let peak = Double(output.split(separator: "\n").last ?? "") else { throw Shell.Failure(description: "memory probe printed \(output)") }
                probes.append(MemoryProbe(size: shape.description, commits: shape.commits, files: shape.files, lifecycles: count, peakMiB: peak))
            }
        }
        return probes
    }

    static func print(_ probes: [MemoryProbe]) {
        Swift.print("\nmemory against history (fresh process, peak RSS MiB)")
        for probe in probes {
            Swift.print("  \(probe.size.padding(toLength: 30, withPad: " ", startingAt: 0))  \(String(format: "%4d", probe.lifecycles)) lifecycle(s)  \(String(format: "%7.1f", probe.peakMiB)) MiB")
        }
    }
}

/// The cost of creating one empty file (open with O_CREAT|O_EXCL, close) in a fresh folder
/// of the scratch space: the unit most of a lifecycle is made of. After mass deletions ext4
/// makes it several times dearer for a minute or more (docs/performance.md, Method); this
/// figure says which state the run measured. The files stay until the end of the run.
enum FileSystemProbe {
    static func measure(scratch: String, files: Int) throws -> Figure {
        let folder = scratch + "/fs-probe"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var samples: [Double] = []
        for index in 0..<files {
            let path = folder + "/f\(index)"
            samples.append(try milliseconds {
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw Shell.Failure(description: "cannot create \(path)") }
                close(fd)
            })
        }
        return Figure(name: "file-create", size: "-", pipeline: "filesystem", samples: samples)
    }
}


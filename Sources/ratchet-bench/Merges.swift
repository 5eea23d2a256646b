import Foundation
import RatchetCore
import RatchetGit

/// What a person or a pump waits for (issue 11): `merge` with one `command:true` criterion
/// through the library, the whole ticket life through the command line against a naive
/// git script, and reading commands on a store with many tickets.
enum Merges {
    /// A workspace with service `svc` adopted from a copy of the generated repository `source`.
    static func workspace(source: String, at folder: String) throws -> Workspace {
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let repo = folder + "/origin"
        try Generator.copy(source, to: repo)
        // Many merges an hour: the landing-rate gate (adr/0047) is not what is measured.
        let yaml = "name: svc\ntest: true\nsandbox: {network: none}\nmax_landings_per_hour: 10000\n"
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: repo + "/service.yaml"))
        try Shell.git(["add", "service.yaml"], in: repo)
        try Shell.git(["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", "service.yaml"], in: repo)
        let workspace = try Workspace.create(at: folder + "/ws")
        try workspace.addService(name: "svc", from: repo)
        return workspace
    }

    /// `count` merges, each of a one-file change with one `command:true` criterion (the
    /// agent's run is not timed): every merge, and the first and last ten.
    static func measure(shape: Generator.Shape, source: String, count: Int, scratch: String) throws -> [Figure] {
        let workspace = try workspace(source: source, at: scratch + "/merges-\(shape.key)")
        var times: [Double] = []
        for index in 1...count {
            var draft = TicketDraft(service: "svc", title: "Merge \(index)")
            draft.acceptance = ["command:true"]
            let id = try workspace.createTicket(draft).id
            try workspace.work(ticket: id, agent: "command:echo \(index) > merge-\(index).txt")
            times.append(try milliseconds { try workspace.merge(ticket: id) })
        }
        let size = shape.description
        return [Figure(name: "merge", size: size, pipeline: "ratchet/shipped", samples: times),
                Figure(name: "merge-first-10", size: size, pipeline: "ratchet/shipped", samples: Array(times.prefix(10))),
                Figure(name: "merge-last-10", size: size, pipeline: "ratchet/shipped", samples: Array(times.suffix(10)))]
    }

    /// `work` through the library on a fresh service, then after `branches` earlier tickets'
    /// branches, packed, as the packer leaves them past 128 (adr/0080). No loose phase: since
    /// session 22 an attempt starts the packer too, so past its first (warm-up) attempt a loose
    /// phase would measure packed references. Each attempt is rejected (its worktree back to
    /// the pool).
    static func references(source: String, branches: Int, runs: Int, scratch: String,
                           phases: [String] = ["none", "packed"]) throws -> [Figure] {
        let workspace = try workspace(source: source, at: scratch + "/references")
        let path = workspace.servicePath("svc")
        var figures: [Figure] = []
        for phase in phases {
            if phase == "packed" {
                let main = try Shell.git(["rev-parse", "main"], in: path)
                let input = Data((0..<branches).map { "create refs/heads/ticket/B-\($0)/1 \(main)\n" }.joined().utf8)
                _ = try Shell.run(["git", "update-ref", "--stdin"], in: path, input: input)
                _ = try Repository.open(path).packReferences(staleLockAge: 600)
            }
            var times: [Double] = []
            for index in 0...runs {
                let id = try workspace.createTicket(TicketDraft(service: "svc", title: "References \(phase) \(index)")).id
                let time = try milliseconds { try workspace.work(ticket: id, agent: "command:echo \(index) > references-\(phase)-\(index).txt") }
                if index > 0 { times.append(time) }
                _ = try workspace.rejectTicket(id, reason: "measured", by: "bench")
            }
            let size = phase == "none" ? "no earlier branches" : "\(Format.count(branches)) branches, \(phase)"
            figures.append(Figure(name: "work (library)", size: size, pipeline: "ratchet/shipped", samples: times))
        }
        return figures
    }

    /// A ticket's whole life through the built `ratchet` binary (`ticket new`, `work` with a
    /// one-line agent, `merge`) against the naive git script that does the same without
    /// verifying or sandboxing anything; and one bubblewrap start, the allowance between them.
    static func commandLine(source: String, runs: Int, scratch: String) throws -> [Figure] {
        guard let binary = ratchetBinary() else { return [] }
        let workspace = try workspace(source: source, at: scratch + "/cli")
        let root = workspace.root.path
        let service = workspace.servicePath("svc")
        var ratchet = ChildTimes(), script = ChildTimes(), sandboxStart = ChildTimes()
        // Where the lifecycle goes, command by command, beside a bare process start.
        var new = ChildTimes(), work = ChildTimes(), merge = ChildTimes(), version = ChildTimes()
        // The allowance: one bare sandbox start as adr/0013 builds it, measured between them.
        let start = try SandboxBench.bareStart(scratch: scratch)
        for run in 1...runs {
            try ratchet.measure {
                var id = ""
                try new.measure {
                    id = try Shell.run([binary, "ticket", "new", "--service", "svc", "--title", "CLI \(run)", "--workspace", root], in: root)
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                }
                try work.measure { try Shell.run([binary, "work", id, "--agent", "command:echo \(run) > cli-\(run).txt", "--workspace", root], in: root) }
                try merge.measure { try Shell.run([binary, "merge", id, "--workspace", root], in: root) }
            }
            try script.measure { try naiveLifecycle(run, in: service, scratch: scratch) }
            if let start { try sandboxStart.measure(start) }
            try version.measure { try Shell.run([binary, "--version"], in: root) }
        }
        return ratchet.figures(name: "cli-lifecycle", size: "small", pipeline: "ratchet/shipped")
            + script.figures(name: "cli-lifecycle", size: "small", pipeline: "git-script")
            + (start == nil ? [] : sandboxStart.figures(name: "cli-lifecycle", size: "small", pipeline: "bwrap-start"))
            + new.figures(name: "cli-lifecycle-ticket-new", size: "small", pipeline: "ratchet/shipped")
            + work.figures(name: "cli-lifecycle-work", size: "small", pipeline: "ratchet/shipped")
            + merge.figures(name: "cli-lifecycle-merge", size: "small", pipeline: "ratchet/shipped")
            + version.figures(name: "cli-lifecycle-version", size: "small", pipeline: "ratchet/shipped")
    }

    /// What a person would script: a worktree, an edit, a commit with trailers, `merge --no-ff`,
    /// the worktree removed.
    private static func naiveLifecycle(_ run: Int, in service: String, scratch: String) throws {
        let worktree = scratch + "/naive-\(run)"
        let identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid"]
        try Shell.git(["worktree", "add", "-q", "-b", "naive/\(run)", worktree, "main"], in: service)
        try Data("\(run)\n".utf8).write(to: URL(fileURLWithPath: worktree + "/naive-\(run).txt"))
        try Shell.git(["add", "-A"], in: worktree)
        try Shell.git(identity + ["commit", "-qm", "N-\(run): step", "--trailer", "Ticket: N-\(run)", "--trailer", "Step: 1"], in: worktree)
        try Shell.git(identity + ["merge", "-q", "--no-ff", "-m", "Merge N-\(run)", "naive/\(run)"], in: service)
        try Shell.git(["worktree", "remove", "--force", worktree], in: service)
    }

    /// `--version`, `ticket list` and `ticket show` through the binary, on a store with `tickets` tickets.
    static func readCommands(source: String, tickets: Int, runs: Int, scratch: String) throws -> [Figure] {
        guard let binary = ratchetBinary() else { return [] }
        let workspace = try workspace(source: source, at: scratch + "/reads-\(tickets)")
        for index in 1...tickets { try workspace.createTicket(TicketDraft(service: "svc", title: "Ticket \(index)")) }
        let root = workspace.root.path
        var figures: [Figure] = []
        for (name, arguments) in [("version", ["--version"]), ("ticket-list", ["ticket", "list"]), ("ticket-show", ["ticket", "show", "T-\(tickets / 2)"])] {
            _ = try Shell.run([binary] + arguments, in: root)
            var times = ChildTimes()
            for _ in 0..<runs { try times.measure { try Shell.run([binary] + arguments, in: root) } }
            figures += times.figures(name: "command-\(name)", size: "\(tickets) tickets", pipeline: "ratchet/shipped")
        }
        return figures
    }

    /// The `ratchet` binary built beside this benchmark.
    static func ratchetBinary() -> String? {
        guard let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let path = (me as NSString).deletingLastPathComponent + "/ratchet"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }
}

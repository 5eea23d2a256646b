import Foundation
import RatchetGit

/// Worktree readiness and acceptance checkouts.
enum Worktrees {
    static func measure(shape: Generator.Shape, source: String, runs: Int, scratch: String, pooledOnly: Bool = false) throws -> [Figure] {
        let size = shape.description
        let scratch = scratch + "/worktrees-\(shape.key)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let path = scratch + "/repo"
        try Generator.copy(source, to: path)
        let repository = try Repository.open(path)
        let identity = Signature(name: "Bench", email: "bench@example.invalid")
        var figures: [Figure] = []

        // A fresh worktree per attempt: every file written (few runs at 20k files: seconds each).
        let slowRuns = pooledOnly ? 0 : shape.files >= 10_000 ? min(runs, 3) : runs
        var fresh: [Double] = [], gitFresh: [Double] = []
        for run in 0..<slowRuns {
            let main = try repository.resolveReference("refs/heads/main")!
            try repository.createBranch("fresh/\(run)", at: main)
            let target = scratch + "/fresh-\(run)"
            fresh.append(try milliseconds { try repository.addWorktree(name: "fresh-\(run)", path: target, branch: "fresh/\(run)") })
            try repository.removeWorktree("fresh-\(run)")
            try repository.createBranch("gitfresh/\(run)", at: main)
            let gitTarget = scratch + "/gitfresh-\(run)"
            gitFresh.append(try milliseconds { try Shell.git(["worktree", "add", "-q", gitTarget, "gitfresh/\(run)"], in: path) })
            try Shell.git(["worktree", "remove", "--force", gitTarget], in: path)
        }
        if !pooledOnly {
            figures.append(Figure(name: "worktree-fresh", size: size, pipeline: "ratchet/shipped", samples: fresh))
            figures.append(Figure(name: "worktree-fresh", size: size, pipeline: "git-cli/shipped", samples: gitFresh))
        }

        // A pooled worktree moved to a new base: only the files that differ are rewritten.
        let pool = scratch + "/pool-0", target = scratch + "/attempt"
        let gitPool = scratch + "/gitpool"
        var main = try repository.resolveReference("refs/heads/main")!
        try repository.createBranch("pool/start", at: main)
        try repository.addWorktree(name: "pooled", path: pool, branch: "pool/start")
        try Repository.open(pool).detachHead()
        try repository.createBranch("gitpool/start", at: main)
        try Shell.git(["worktree", "add", "-q", gitPool, "gitpool/start"], in: path)
        var pooled: [Double] = [], gitPooled: [Double] = []
        for run in 0..<runs {
            // Main moves on by a few landings' worth of files.
            var changes: [TreeChange] = []
            for file in 0..<5 { changes.append(.upsert(Generator.path((run * 97 + file * 389) % shape.files), try repository.writeBlob(Data("run \(run) \(file)\n".utf8)))) }
            let next = try repository.commit(on: main, applying: changes, author: identity, committer: identity, message: "move \(run)\n")
            try repository.updateReference("refs/heads/main", to: next, expected: main, message: "move")
            main = next
            try repository.createBranch("pool/\(run)", at: main)
            pooled.append(try milliseconds {
                try repository.moveWorktree("pooled", from: pool, to: target)
                try Repository.open(target).switchCleanWorktree(toBranch: "pool/\(run)")
            })
            let worktree = try Repository.open(target)
            guard try worktree.isPristine() else { throw Shell.Failure(description: "pooled worktree not clean after switch") }
            try worktree.detachHead()
            try repository.moveWorktree("pooled", from: target, to: pool)
            try repository.createBranch("gitpool/\(run)", at: main)
            gitPooled.append(try milliseconds { try Shell.git(["checkout", "-q", "gitpool/\(run)"], in: gitPool) })
        }
        figures.append(Figure(name: "worktree-pooled", size: size, pipeline: "ratchet/shipped", samples: pooled))
        figures.append(Figure(name: "worktree-pooled", size: size, pipeline: "git-cli/shipped", samples: gitPooled))

        // A checkout of a candidate for acceptance, which must never write an index.
        var checkout: [Double] = [], gitCheckout: [Double] = []
        for run in 0..<slowRuns {
            let folder = scratch + "/checkout-\(run)"
            checkout.append(try milliseconds { try repository.materialize(main, into: folder) })
            try FileManager.default.removeItem(atPath: folder)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            gitCheckout.append(try milliseconds { try Shell.run(["/bin/sh", "-c", "git archive \(main.hex) | tar -x -C '\(folder)'"], in: path) })
            try FileManager.default.removeItem(atPath: folder)
        }
        if !pooledOnly {
            figures.append(Figure(name: "checkout", size: size, pipeline: "ratchet/shipped", samples: checkout))
            figures.append(Figure(name: "checkout", size: size, pipeline: "git-cli/shipped", samples: gitCheckout))
        }
        return figures
    }
}

/// Lifecycles of different tickets running at once on one service.
enum Concurrency {
    static func measure(shape: Generator.Shape, source: String, count: Int, scratch: String) throws -> [Figure] {
        let size = shape.description
        var figures: [Figure] = []
        for side in ["ratchet", "git-cli"] {
            let path = scratch + "/concurrent-\(shape.key)-\(side)"
            try Generator.copy(source, to: path)
            // Left for the end of the run, like the lifecycle figures' copies.
            let store = try StoreWrites(path: path + ".sqlite", durability: .shipped, tickets: count)
            let times = Times(count: count)
            let wall = try milliseconds {
                DispatchQueue.concurrentPerform(iterations: count) { index in
                    do {
                        let time: Double
                        if side == "ratchet" {
                            var pipeline = RatchetPipeline(repository: try Repository.open(path), store: store, files: shape.files)
                            pipeline.batch = try ObjectBatch(path: path)
                            time = try milliseconds { _ = try pipeline.lifecycle(index + 1) }
                        } else {
                            let pipeline = GitPipeline(path: path, store: store, files: shape.files, config: Durability.shipped.gitConfig)
                            time = try milliseconds { _ = try pipeline.lifecycle(index + 1) }
                        }
                        times.set(index, time)
                    } catch {
                        times.fail("\(error)")
                    }
                }
                if let failure = times.failure { throw Shell.Failure(description: failure) }
            }
            let landings = try Shell.git(["rev-list", "--first-parent", "--count", "--grep=^Merge T-", "main"], in: path)
            guard Int(landings) == count else { throw Shell.Failure(description: "\(side): \(landings) of \(count) concurrent lifecycles landed") }
            figures.append(Figure(name: "concurrent-\(count)", size: size, pipeline: "\(side)/shipped", samples: times.values))
            figures.append(Figure(name: "concurrent-\(count)-wall", size: size, pipeline: "\(side)/shipped", samples: [wall]))
        }
        return figures
    }
}

private final class Times: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Double]
    private(set) var failure: String?
    init(count: Int) { storage = Array(repeating: 0, count: count) }
    func set(_ index: Int, _ value: Double) { lock.withLock { storage[index] = value } }
    func fail(_ message: String) { lock.withLock { failure = failure ?? message } }
    var values: [Double] { lock.withLock { storage } }
}

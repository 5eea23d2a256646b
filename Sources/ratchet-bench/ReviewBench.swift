import Foundation
import GRDB
import RatchetCore
import RatchetGit
import RatchetStore

/// The review surface at scale (issue 12): `summary` and `reflect` over a workspace of
/// `services` services holding `landings` landings in all, committed in the current week,
/// with their tickets, attempts, trajectories and `ticket.merged` events in the store.
enum ReviewBench {
    static func measure(services: Int, landings: Int, runs: Int, scratch: String) throws -> [Figure] {
        let root = scratch + "/review"
        let workspace = try Workspace.create(at: root)
        let perService = landings / services
        let now = Date()
        let start = ISOWeek(containing: now).start
        let step = max(0.001, now.timeIntervalSince(start) / Double(perService + 1))
        for index in 0..<services {
            try makeService("svc-\(index)", workspace: workspace, landings: perService, first: index * perService, start: start, step: step)
        }
        progress("review: \(services) services, \(perService * services) landings in \(ISOWeek(containing: now))")
        let size = "\(Format.count(perService * services)) landings/\(services) services"
        var figures: [Figure] = []
        for format in [SummaryFormat.markdown, .json, .html] {
            figures += try measured("summary", size: size, pipeline: "ratchet/\(format.rawValue)", runs: runs) {
                _ = try workspace.writeSummary(SummaryRequest(), format: format)
            }
        }
        figures += try measured("reflect", size: size, pipeline: "ratchet/30d", runs: runs) { _ = try workspace.reflect() }
        return figures
    }

    /// Two figures of `runs` runs: wall-clock time, and the process's CPU time (`… cpu`).
    private static func measured(_ name: String, size: String, pipeline: String, runs: Int, _ body: () throws -> Void) throws -> [Figure] {
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<runs {
            let time = try wallAndCPUMilliseconds(body)
            wall.append(time.wall)
            cpu.append(time.cpu)
        }
        return [Figure(name: name, size: size, pipeline: pipeline, samples: wall),
                Figure(name: name, size: size, pipeline: pipeline + " cpu", samples: cpu)]
    }

    /// One service: a root commit, then `landings` step commits each merged as a landing
    /// with Ratchet's trailers; capacity cycles through four values (so reflect finds an
    /// oscillation to file), and every tenth ticket shares a fingerprint with earlier ones.
    private static func makeService(_ name: String, workspace: Workspace, landings: Int, first: Int, start: Date, step: Double) throws {
        let path = workspace.servicePath(name)
        let repository = try Repository.create(at: path)
        let identity = Signature(name: "Ratchet", email: "ratchet@ratchet.invalid", time: start)
        let config = { (value: Int) in try repository.writeBlob(Data("{\n  \"capacity\": \(value)\n}\n".utf8)) }
        var tree = try repository.makeTree(from: repository.emptyTree(), applying: [.upsert("config/cache.json", config(1024))])
        var main = try repository.createCommit(tree: tree, parents: [], author: identity, committer: identity, message: "Add service \(name)\n")
        var rows: [(TicketRecord, AttemptRecord, TrajectoryRecord, EventRecord)] = []
        for offset in 0..<landings {
            let number = first + offset + 1
            let time = Signature(name: "Ratchet", email: "ratchet@ratchet.invalid", time: start.addingTimeInterval(step * Double(offset + 1)))
            let agent = Signature(name: "command", email: "command@agents.ratchet.invalid", time: time.time)
            tree = try repository.makeTree(from: tree, applying: [.upsert("config/cache.json", config(1024 << (offset % 4))),
                                                                  .upsert("notes/\(number).txt", repository.writeBlob(Data("\(number)\n".utf8)))])
            let trajectory = UUIDv7.make()
            let head = try repository.createCommit(tree: tree, parents: [main], author: agent, committer: time,
                                                   message: "T-\(number): change\n\nTicket: T-\(number)\nTrajectory: \(trajectory)\nStep: 2\n")
            main = try repository.createCommit(tree: tree, parents: [main, head], author: time, committer: time, message: """
                Merge T-\(number): Change \(number)\n\nLands attempt 1 of T-\(number) from branch ticket/T-\(number)/1.\n
                Ticket: T-\(number)\nTrajectory: \(trajectory)\nAgent: command\nCanary: pass score=100\nRisk: low\n
                """)
            rows.append(records(number: number, service: name, trajectory: trajectory, landing: main.hex, time: time.time!))
        }
        try repository.updateReference("refs/heads/main", to: main, expected: nil, message: "bench")
        // As Ratchet's background packer leaves a busy repo (past 1,024 loose objects).
        try repository.packLooseObjects()
        try workspace.database.write { db in
            try ServiceRecord(name: name, path: "services/\(name)", template: nil, createdAt: start).insert(db)
            for (ticket, attempt, trajectory, event) in rows {
                try ticket.insert(db)
                var attempt = attempt
                try attempt.insert(db)
                try trajectory.insert(db)
                var event = event
                try event.insert(db)
            }
        }
    }

    private static func records(number: Int, service: String, trajectory: String, landing: String, time: Date)
        -> (TicketRecord, AttemptRecord, TrajectoryRecord, EventRecord) {
        let id = "T-\(number)"
        let ticket = TicketRecord(id: id, number: number, service: service, title: "Change \(number)", objective: "Objective \(number)",
                                  acceptance: [], constraints: [], context: "", source: "invariant:latency",
                                  fingerprint: number % 10 == 0 ? "\(service):fp-\(number % 30)" : nil, risk: "low", priority: 0,
                                  agent: nil, assignee: "agent", state: .merged, createdAt: time, updatedAt: time)
        var attempt = AttemptRecord(ticketId: id, number: 1, service: service, branch: "ticket/\(id)/1", worktree: "worktrees/\(id)-1",
                                    trajectoryId: trajectory, agent: "command", state: .landed, base: landing, startedAt: time)
        attempt.landing = landing
        attempt.endedAt = time
        let record = TrajectoryRecord(id: trajectory, ticketId: id, attemptNumber: 1, service: service, agent: "command",
                                      initialState: [:], outcome: ["status": "landed", "landing": .string(landing)], createdAt: time)
        let event = EventRecord(time: time, kind: "ticket.merged", service: service, ticketId: id, attemptNumber: nil, data: ["landing": .string(landing)])
        return (ticket, attempt, record, event)
    }
}

import Foundation
import RatchetCore
import RatchetStore

/// `ratchet pump --once` over `tickets` tickets at `concurrency` (issue 14): each ticket a
/// command agent run in its sandbox, a step commit, a landing (no canary: the pump's own
/// cost, not the canary's), a deploy (`true`, sandboxed) and a zero watch window. The figure
/// is the whole pump run and its time per ticket; the runs' events give each ticket's
/// claim-to-landing time.
enum PumpBench {
    static func measure(tickets: Int, concurrency: Int, scratch: String) throws -> [Figure] {
        let root = scratch + "/pump"
        let created = try Workspace.create(at: root)
        try created.addService(name: "svc", template: "kv-cache")
        let service = created.servicePath("svc")
        try Shell.run(["git", "rm", "-rq", "canary"], in: service)
        var yaml = try String(contentsOfFile: service + "/service.yaml", encoding: .utf8)
        for (old, new) in [("deploy: null ", "deploy: true "), ("max_landings_per_hour: 6", "max_landings_per_hour: 10000"),
                           ("127.0.0.1:8080", "127.0.0.1:9")] { yaml = yaml.replacingOccurrences(of: old, with: new) }
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: service + "/service.yaml"))
        try Shell.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", "commit", "-qam", "Bench settings"], in: service)
        let configPath = root + "/ratchet.yaml"
        let config = try String(contentsOfFile: configPath, encoding: .utf8).replacingOccurrences(of: "watch_window: 10m", with: "watch_window: 0s")
        try Data(config.utf8).write(to: URL(fileURLWithPath: configPath))
        let workspace = try Workspace.locate(explicit: root)
        for index in 1...tickets {
            var draft = TicketDraft(service: "svc", title: "Bench \(index)")
            draft.agent = "command:echo \(index) > bench-\(index).txt"
            try workspace.createTicket(draft)
        }
        progress("pump: \(tickets) tickets at concurrency \(concurrency); load average before: \(loadAverage())")
        var summary = PumpSummary()
        let childrenBefore = childrenCPUMilliseconds()
        let (total, cpu) = try wallAndCPUMilliseconds {
            // The pump's own lines only when something went wrong, so that the figure stays readable.
            summary = try Pump(workspace: workspace, options: PumpOptions(once: true, concurrency: concurrency),
                               progress: { line in if line.contains("error:") { progress(line) } }).run()
        }
        let childrenCPU = childrenCPUMilliseconds() - childrenBefore
        progress("pump: load average after: \(loadAverage())")
        guard summary.landed == tickets else { throw Shell.Failure(description: "the pump landed \(summary.landed) of \(tickets): \(summary)") }
        let size = "\(tickets) tickets"
        let pipeline = "ratchet/concurrency \(concurrency)"
        // CPU: the pump's own process, and its children (sandboxes, agents, deploys) it waited for.
        return [Figure(name: "pump run", size: size, pipeline: pipeline, samples: [total]),
                Figure(name: "pump run cpu", size: size, pipeline: pipeline, samples: [cpu]),
                Figure(name: "children cpu", size: size, pipeline: pipeline, samples: [childrenCPU]),
                Figure(name: "pump per ticket", size: size, pipeline: pipeline, samples: [total / Double(tickets)]),
                Figure(name: "per ticket cpu", size: size, pipeline: pipeline, samples: [(cpu + childrenCPU) / Double(tickets)]),
                Figure(name: "claim to landing", size: size, pipeline: pipeline, samples: try claimToLanding(workspace))]
    }

    /// Per ticket, from its `ticket.claimed` event to its `ticket.merged` event, milliseconds.
    static func claimToLanding(_ workspace: Workspace) throws -> [Double] {
        var claimed: [String: Date] = [:]
        var times: [Double] = []
        for event in try workspace.database.events(since: 0, limit: 1_000_000) {
            guard let ticket = event.ticketId else { continue }
            if event.kind == "ticket.claimed" { claimed[ticket] = event.time }
            if event.kind == "ticket.merged", let start = claimed[ticket] { times.append(event.time.timeIntervalSince(start) * 1000) }
        }
        return times
    }
}

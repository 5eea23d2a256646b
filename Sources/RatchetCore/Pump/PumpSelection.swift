import Foundation
import GRDB
import RatchetGit
import RatchetStore

extension Pump {
    /// The tickets this cycle works or lands, best first (priority, then age): open tickets
    /// assigned to agents (never a person's, never `reflection:*`), and proposed ones waiting
    /// to land; none of a paused service, of a service inside a watch window (the gate of
    /// `Workspace.watchBlock`, whose detail the skip records), of a service
    /// at its landing rate, or (unless the ticket restores reliability) of a service whose
    /// error budget is spent. Each skip is an event, once per run.
    func selectJobs() throws -> [PumpJob] {
        guard !isStopped else { return [] }
        let services = Dictionary(uniqueKeysWithValues: try workspace.services().map { ($0.name, $0) })
        let watching = try workspace.watchBlocks(services.keys)
        // The tickets and their attempt counts in one snapshot: a claim is a compare-and-swap
        // against the count seen here (`PumpJob.attempts`).
        let (candidates, attempts) = try workspace.database.read { db in
            (try TicketRecord.filter(sql: "state IN ('open', 'proposed')").order(sql: "priority DESC, number").fetchAll(db),
             try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT ticketId, COUNT(*) AS n FROM attempt GROUP BY ticketId")
                .map { ($0["ticketId"] as String, $0["n"] as Int) }))
        }
        var jobs: [PumpJob] = []
        var perService: [String: Int] = [:]
        var spent: [String: [String]] = [:]
        for ticket in candidates where ticket.assignee == "agent" && !ticket.source.hasPrefix("reflection:") {
            let service = ticket.service
            guard let record = services[service] else { continue }
            if record.isPaused { skip("paused", service: service, ticket: nil, "service \(service) is paused"); continue }
            if let block = watching[service] { skip("watching", service: service, ticket: nil, block.detail); continue }
            let config = try workspace.serviceConfig(service)
            let planned = perService[service, default: 0]
            if planned > 0 && workspace.config.watchWindow > 0 { continue }
            // The landing gates (PumpGates.swift), checked before working what could not land.
            if let block = Workspace.rateBlock(config, landed: try workspace.landingsInLastHour(service), planned: planned) {
                skip("rate-limited", service: service, ticket: nil, block.detail)
                continue
            }
            if !ticket.restores {
                let budgets = spent[service] ?? workspace.spentBudgets(service)
                spent[service] = budgets
                if let block = workspace.budgetBlock(ticket, spent: budgets) {
                    skip("budget-spent", service: service, ticket: ticket.id, block.detail + ": only tickets with restores: true land")
                    continue
                }
            }
            if let problem = workspace.localChanges(service) { skip("local-changes", service: service, ticket: nil, problem); continue }
            var agent: String?
            if ticket.state == .open {
                guard let spec = ticket.agent ?? workspace.config.defaultAgent ?? (Self.isBreach(ticket.source) ? "runbook" : nil) else {
                    skip("no-agent", service: service, ticket: ticket.id, "no agent: set the ticket's agent or default_agent in ratchet.yaml")
                    continue
                }
                agent = spec
            }
            perService[service] = planned + 1
            jobs.append(PumpJob(ticket: ticket.id, service: service, agent: agent, attempts: attempts[ticket.id, default: 0]))
        }
        return jobs
    }

    /// Sources of tickets filed from a breach, which the runbook agent works by default.
    static func isBreach(_ source: String) -> Bool {
        ["invariant:", "slo:", "alert:"].contains { source.hasPrefix($0) }
    }

    /// Records that the pump skips `ticket` (or the whole service): a `pump.skipped` event, once per run.
    func skip(_ reason: String, service: String, ticket: String?, _ detail: String) {
        guard firstReport("\(reason):\(ticket ?? service)") else { return }
        progress("pump: skips \(ticket ?? service): \(detail)")
        _ = try? workspace.database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "pump.skipped", service: service, ticket: ticket,
                                            data: ["reason": .string(reason), "detail": .string(detail)])
        }
    }
}

extension Workspace {
    /// Why the checked-out main of `service` cannot take a landing (local changes), or nil.
    func localChanges(_ service: String) -> String? {
        do {
            let repository = try openService(service)
            try requireCleanMain(service, repository: repository)
            return nil
        } catch {
            return describe(error)
        }
    }
}

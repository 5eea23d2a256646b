import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// One pattern `ratchet reflect` saw: its occurrences in the window and the evidence.
public struct ReflectionObservation: Sendable, Equatable {
    /// `hysteresis`, `oscillation`, `drift`, `non-convergence` or `escalations`.
    public var kind: String
    /// What it is about: a fingerprint, `svc:path`, `svc:path#key`, a ticket, a service.
    public var subject: String
    /// The service the finding's ticket is filed for.
    public var service: String
    /// When each occurrence happened.
    public var times: [Date]
    /// Tickets, commits and trajectories, one per line.
    public var evidence: [String]
    /// What was tried, in plain words.
    public var tried: String
}

extension Workspace {
    /// Every pattern of the window, before thresholds: hysteresis, oscillation, drift,
    /// non-convergence and repeated escalations.
    func observeReflection(since: Date) throws -> [ReflectionObservation] {
        var result = try fixedAgainAndAgain(since: since) + driftFailures(since: since) + exhaustedTickets(since: since)
            + repeatedEscalations(since: since)
        for service in try services().map(\.name).sorted() {
            var scan = OscillationScan(repository: try Repository.open(servicePath(service)), service: service)
            result += try scan.run(since: since)
        }
        return result
    }

    /// Hysteresis: each fingerprint's landings (`ticket.merged`) in the window.
    private func fixedAgainAndAgain(since: Date) throws -> [ReflectionObservation] {
        let rows = try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT t.fingerprint, t.service, t.id, t.title, e.time, json_extract(e.data, '$.landing') AS landing
                FROM event e JOIN ticket t ON t.id = e.ticketId
                WHERE e.kind = 'ticket.merged' AND e.time >= ? AND t.fingerprint IS NOT NULL ORDER BY e.seq
                """, arguments: [since])
        }
        let groups = Dictionary(grouping: rows) { $0["fingerprint"] as String }
        return groups.keys.sorted().map { fingerprint in
            let fixes = groups[fingerprint]!
            let tickets = fixes.map { "\($0["id"] as String) landed \(String((($0["landing"] as String?) ?? "?").prefix(12)))" }
            return ReflectionObservation(kind: "hysteresis", subject: fingerprint, service: fixes[0]["service"], times: fixes.map { $0["time"] },
                                         evidence: tickets.map { "ticket \($0)" },
                                         tried: "\(fixes.count) fixes of '\(fingerprint)' landed (\(fixes.map { $0["id"] as String }.joined(separator: ", "))), and it came back each time")
        }
    }

    /// Non-convergence: each ticket that used up its attempts in the window.
    private func exhaustedTickets(since: Date) throws -> [ReflectionObservation] {
        let (events, attempts) = try database.read { db in
            let events = try EventRecord.filter(Column("kind") == "ticket.escalated" && Column("time") >= since).order(EventRecord.Columns.seq).fetchAll(db)
            let attempts = try AttemptRecord.filter(events.compactMap(\.ticketId).contains(AttemptRecord.Columns.ticketId))
                .order(AttemptRecord.Columns.number).fetchAll(db)
            return (events, Dictionary(grouping: attempts, by: \.ticketId))
        }
        let byTicket = Dictionary(grouping: events) { $0.ticketId ?? "" }
        return byTicket.keys.sorted().filter { !$0.isEmpty }.map { id in
            let tries = attempts[id] ?? []
            let evidence = tries.map { "attempt \(id)/\($0.number) by \($0.agent) (trajectory \($0.trajectoryId)): \($0.state) — \($0.error ?? "")" }
            return ReflectionObservation(kind: "non-convergence", subject: id, service: byTicket[id]![0].service ?? "", times: byTicket[id]!.map(\.time),
                                         evidence: evidence,
                                         tried: "\(tries.count) attempt(s) at \(id) by \(Set(tries.map(\.agent)).sorted().joined(separator: ", ")); none landed")
        }
    }

    /// Repeated escalations: each service's escalations in the window.
    private func repeatedEscalations(since: Date) throws -> [ReflectionObservation] {
        let events = try database.read { db in
            try EventRecord.filter(Column("kind") == "ticket.escalated" && Column("time") >= since).order(EventRecord.Columns.seq).fetchAll(db)
        }
        let byService = Dictionary(grouping: events) { $0.service ?? "" }
        return byService.keys.sorted().filter { !$0.isEmpty }.map { service in
            let list = byService[service]!
            return ReflectionObservation(kind: "escalations", subject: service, service: service, times: list.map(\.time),
                                         evidence: list.map { "ticket \($0.ticketId ?? "?") escalated: \($0.data["reason"]?.stringValue ?? "")" },
                                         tried: "\(list.count) ticket(s) of \(service) were escalated after their attempts ran out")
        }
    }
}

import Foundation
import GRDB
import RatchetGit
import RatchetStore

extension Workspace {
    /// Adds what the store knows (objective, approval note, metric changes, revert and who
    /// asked for it) to landings and reverts read from git; reads the note only of a
    /// landing the store does not know, and says what is missing.
    func enrich(_ summary: inout ServiceSummary, repository: Repository, revertOf: [String: String]) throws {
        let shas = summary.landings.map(\.sha) + summary.reverts.map(\.sha)
        let (attempts, tickets, reports) = try database.read { db in
            let attempts = try AttemptRecord.filter(shas.contains(Column("landing")) || shas.contains(Column("revert"))).fetchAll(db)
            let ids = Set(attempts.map(\.ticketId) + summary.landings.map(\.ticket) + summary.reverts.map(\.ticket))
            let tickets = try TicketRecord.filter(keys: Array(ids)).fetchAll(db)
            let trajectories = try TrajectoryRecord.filter(keys: attempts.map(\.trajectoryId)).fetchAll(db)
            return (attempts, Dictionary(tickets.map { ($0.id, $0) }) { a, _ in a },
                    Dictionary(trajectories.map { ($0.id, $0) }) { a, _ in a })
        }
        let byLanding = Dictionary(attempts.compactMap { a in a.landing.map { ($0, a) } }) { a, _ in a }
        let byRevert = Dictionary(attempts.compactMap { a in a.revert.map { ($0, a) } }) { a, _ in a }
        for index in summary.landings.indices {
            var landing = summary.landings[index]
            if let title = tickets[landing.ticket]?.title, landing.title != title { landing.title = title }
            if let attempt = byLanding[landing.sha] {
                landing.source = "store"
                landing.objective = tickets[attempt.ticketId]?.objective
                landing.revertedBy = attempt.revert ?? revertOf[landing.sha]
                let trajectory = reports[attempt.trajectoryId]
                landing.approvalNote = trajectory?.labels.last { $0["kind"]?.stringValue == "approval" }?["note"]?.stringValue
                landing.metricChanges = try storedMetricChanges(trajectory?.outcome, ticket: attempt.ticketId, attempt: attempt.number)
            } else {
                landing.revertedBy = revertOf[landing.sha]
                if let problem = readNote(into: &landing, repository: repository) { summary.missing.append(problem) }
            }
            summary.landings[index] = landing
        }
        for index in summary.reverts.indices {
            let trajectory = byRevert[summary.reverts[index].sha].flatMap { reports[$0.trajectoryId] }
            summary.reverts[index].by = trajectory?.labels.last { $0["kind"]?.stringValue == "revert" }?["by"]?.stringValue
        }
    }

    /// The metric changes of the canary report a landing's outcome names.
    private func storedMetricChanges(_ outcome: JSONValue?, ticket: String, attempt: Int) throws -> [MetricChange] {
        if let embedded = outcome?["canary"]?["report"], case .object = embedded { return Self.metricChanges(of: embedded) }
        guard case .number(let id)? = outcome?["canary"]?["report"] else { return [] }
        let report = try database.read { db in
            try JSONValue.fetchOne(db, sql: "SELECT report FROM canaryReport WHERE id = ?", arguments: [Int64(id)])
        }
        return report.map(Self.metricChanges(of:)) ?? []
    }

    /// `metrics[]` of a canary report, read loosely (name, classification, change).
    static func metricChanges(of report: JSONValue) -> [MetricChange] {
        (report["metrics"]?.arrayValue ?? []).compactMap { metric in
            guard let name = metric["name"]?.stringValue else { return nil }
            var change: Double?
            if case .number(let value)? = metric["change"] { change = value }
            return MetricChange(name: name, classification: metric["classification"]?.stringValue ?? "?", change: change)
        }
    }

    /// Fills a landing the store does not know from its note; returns what is missing.
    private func readNote(into landing: inout LandingSummary, repository: Repository) -> String? {
        let short = String(landing.sha.prefix(12))
        let text: String?
        do { text = try repository.note(on: ObjectID(hex: landing.sha)!) } catch {
            return "\(landing.ticket): the note on landing \(short) cannot be read (\(error)); shown from its trailers"
        }
        guard let text else {
            return "\(landing.ticket): landing \(short) is not in the store and has no note (edited by hand, or notes not fetched?); shown from its trailers"
        }
        guard let note = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), note["schema"]?.stringValue == "ratchet.note/v1",
              note["ticket"]?["id"]?.stringValue == landing.ticket else {
            return "\(landing.ticket): the note on landing \(short) is not a Ratchet landing note; shown from its trailers"
        }
        landing.source = "note"
        landing.objective = note["ticket"]?["objective"]?.stringValue
        landing.approvalNote = note["approval"]?["note"]?.stringValue
        if let report = note["canary"], case .object = report { landing.metricChanges = Self.metricChanges(of: report) }
        return nil
    }

    /// Rejections, escalations, reflection findings and open tickets of the service.
    func addTickets(_ summary: inout ServiceSummary, week: ISOWeek) throws {
        let name = summary.name
        let (tickets, events) = try database.read { db in
            (try TicketRecord.filter(TicketRecord.Columns.service == name).order(TicketRecord.Columns.number).fetchAll(db),
             try EventRecord.filter(Column("service") == name && Column("time") >= week.start && Column("time") < week.end)
                .filter(["ticket.rejected", "attempt.rejected", "ticket.escalated"].contains(Column("kind")))
                .order(EventRecord.Columns.seq).fetchAll(db))
        }
        let byID = Dictionary(tickets.map { ($0.id, $0) }) { a, _ in a }
        for event in events {
            guard let id = event.ticketId else { continue }
            let title = byID[id]?.title ?? ""
            switch event.kind {
            case "ticket.rejected":
                summary.rejected.append(TicketEventSummary(ticket: id, title: title, at: event.time, by: event.data["by"]?.stringValue,
                                                           reason: event.data["reason"]?.stringValue ?? ""))
            case "attempt.rejected" where event.data["by"] == nil:
                summary.rejected.append(TicketEventSummary(ticket: id, title: title, at: event.time, by: nil,
                                                           reason: event.data["error"]?.stringValue ?? "rejected by the canary"))
            case "ticket.escalated":
                summary.escalated.append(TicketEventSummary(ticket: id, title: title, at: event.time, by: nil,
                                                            reason: event.data["reason"]?.stringValue ?? ""))
            default: break
            }
        }
        for ticket in tickets {
            let brief = TicketBrief(id: ticket.id, title: ticket.title, state: ticket.state.rawValue, source: ticket.source, assignee: ticket.assignee)
            let waiting = !Self.endStates.contains(ticket.state)
            if ticket.source.hasPrefix("reflection:"), waiting || (ticket.createdAt >= week.start && ticket.createdAt < week.end) {
                summary.findings.append(brief)
            }
            if waiting { summary.openTickets.append(brief) }
        }
    }

    /// States in which a ticket waits for nobody.
    static let endStates: Set<TicketState> = [.merged, .reverted, .cancelled, TicketState(rawValue: "resolved")]
}

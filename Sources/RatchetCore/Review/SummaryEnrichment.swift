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
        let ids = summary.landings.map(\.ticket) + summary.reverts.map(\.ticket)
        let (known, titles) = try database.read { db in (try StoredLanding.fetch(db, shas: shas), try Self.ticketTitles(db, ids: ids)) }
        let byLanding = Dictionary(known.compactMap { row in row.landing.map { ($0, row) } }) { a, _ in a }
        let byRevert = Dictionary(known.compactMap { row in row.revert.map { ($0, row) } }) { a, _ in a }
        for index in summary.landings.indices {
            var landing = summary.landings[index]
            if let title = titles[landing.ticket], landing.title != title { landing.title = title }
            if let row = byLanding[landing.sha] {
                landing.source = "store"
                landing.objective = row.objective
                landing.revertedBy = row.revert ?? revertOf[landing.sha]
                landing.approvalNote = row.approvalNote
                landing.metricChanges = row.metricChanges
            } else {
                landing.revertedBy = revertOf[landing.sha]
                if let problem = readNote(into: &landing, repository: repository) { summary.missing.append(problem) }
            }
            summary.landings[index] = landing
        }
        for index in summary.reverts.indices {
            summary.reverts[index].by = byRevert[summary.reverts[index].sha]?.revertBy
        }
    }

    /// The titles of tickets `ids`.
    private static func ticketTitles(_ db: Database, ids: [String]) throws -> [String: String] {
        let json = String(decoding: try JSONEncoder().encode(ids), as: UTF8.self)
        let rows = try Row.fetchAll(db, sql: "SELECT id, title FROM ticket WHERE id IN (SELECT value FROM json_each(?))", arguments: [json])
        return Dictionary(rows.map { ($0["id"] as String, $0["title"] as String) }) { a, _ in a }
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

/// What the store knows of one landed or reverted attempt, read in one query with only the
/// fields the summary shows (decoding whole records and their JSON columns was most of a
/// summary's time over 10,000 landings).
struct StoredLanding {
    var landing: String?
    var revert: String?
    var objective: String
    var approvalNote: String?
    var revertBy: String?
    var metricChanges: [MetricChange]

    /// The attempts whose landing or revert is one of `shas`.
    static func fetch(_ db: Database, shas: [String]) throws -> [StoredLanding] {
        let json = String(decoding: try JSONEncoder().encode(shas), as: UTF8.self)
        return try Row.fetchAll(db, sql: sql, arguments: [json, json]).map { row in
            let metrics = (row["metrics"] as String?).flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
            return StoredLanding(landing: row["landing"], revert: row["revert"], objective: row["objective"],
                                 approvalNote: row["approvalNote"], revertBy: row["revertBy"],
                                 metricChanges: metrics.map { Workspace.metricChanges(of: ["metrics": $0]) } ?? [])
        }
    }

    /// The canary report is embedded in the outcome, or named by its number in `canaryReport`.
    private static let sql = """
        SELECT a.landing, a.revert, t.objective,
          (SELECT json_extract(l.value, '$.note') FROM json_each(tr.labels) l
            WHERE json_extract(l.value, '$.kind') = 'approval' ORDER BY l.key DESC LIMIT 1) AS approvalNote,
          (SELECT json_extract(l.value, '$.by') FROM json_each(tr.labels) l
            WHERE json_extract(l.value, '$.kind') = 'revert' ORDER BY l.key DESC LIMIT 1) AS revertBy,
          CASE json_type(tr.outcome, '$.canary.report')
            WHEN 'object' THEN json_extract(tr.outcome, '$.canary.report.metrics')
            WHEN 'integer' THEN (SELECT json_extract(c.report, '$.metrics') FROM canaryReport c
                                 WHERE c.id = json_extract(tr.outcome, '$.canary.report'))
          END AS metrics
        FROM attempt a JOIN ticket t ON t.id = a.ticketId LEFT JOIN trajectory tr ON tr.id = a.trajectoryId
        WHERE a.landing IN (SELECT value FROM json_each(?)) OR a.revert IN (SELECT value FROM json_each(?))
        """
}

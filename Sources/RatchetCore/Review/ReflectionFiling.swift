import Foundation
import GRDB
import RatchetStore

/// One pattern as `ratchet reflect --json` reports it.
public struct ReflectionFinding: Codable, Sendable, Equatable {
    public var kind: String
    public var subject: String
    public var service: String
    /// Occurrences in the window (after a person's resolution, if any).
    public var count: Int
    public var high: Int
    public var low: Int
    /// `filed` (a ticket was filed now), `flagged` (already filed), `cleared` (fell to low),
    /// `quiet` (resolved by a person, not recurred past high) or `below` (under high).
    public var status: String
    /// The ticket that asks for help, when there is one.
    public var ticket: String?
    public var evidence: [String]
}

/// What one `ratchet reflect` run saw and did.
public struct ReflectionReport: Codable, Sendable, Equatable {
    public var since: Date
    public var findings: [ReflectionFinding]
    /// Tickets filed by this run.
    public var filed: [String]
    /// This run's week-over-week drift judgements, one per service (empty with `--drift never`).
    public var drift: [DriftJudgement]
}

extension Workspace {
    /// Looks for hysteresis, oscillation, drift, non-convergence and repeated escalations
    /// over `window` seconds (default `reflect_window`), and files one deduplicated
    /// `reflection:KIND` ticket for a person per pattern past its high threshold. Drift is
    /// judged first (once a week per service with `.auto`), by running the canary.
    public func reflect(window: Double? = nil, now: Date = Date(), drift: DriftMode = .auto,
                        progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> ReflectionReport {
        let since = now.addingTimeInterval(-(window ?? config.reflectWindow))
        let judgements = try judgeDrift(mode: drift, now: now, progress: progress)
        let observations = try observeReflection(since: since)
        var report = ReflectionReport(since: since, findings: [], filed: [], drift: judgements)
        var seen = Set<String>()
        let records = try database.read { db in try ReflectionFindingRecord.fetchAll(db) }
        let stored = Dictionary(records.map { ($0.fingerprint, $0) }) { a, _ in a }
        for observation in observations {
            let fingerprint = Self.reflectionFingerprint(observation.kind, observation.subject)
            seen.insert(fingerprint)
            let finding = try judge(observation, fingerprint: fingerprint, stored: stored[fingerprint], now: now)
            if finding.status == "filed", let ticket = finding.ticket { report.filed.append(ticket) }
            if finding.status != "below" || finding.count > 0 { report.findings.append(finding) }
        }
        // Flagged patterns that no longer occur at all have cleared.
        for record in records where record.isActive && !seen.contains(record.fingerprint) {
            let empty = ReflectionObservation(kind: record.kind, subject: record.subject, service: "", times: [], evidence: [], tried: "")
            report.findings.append(try judge(empty, fingerprint: record.fingerprint, stored: record, now: now))
        }
        return report
    }

    /// `reflection:KIND:SUBJECT`, cut to the 200 characters a fingerprint may have.
    static func reflectionFingerprint(_ kind: String, _ subject: String) -> String {
        let full = "reflection:\(kind):\(subject)"
        guard full.count > 200 || full.contains(where: { $0.isNewline }) else { return full }
        let hash = full.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 } // FNV-1a: stable across runs
        return "reflection:\(kind):" + String(Names.printable(subject).prefix(120)) + "~" + String(hash, radix: 16)
    }

    /// Applies the flap thresholds to one pattern and files its ticket when it starts flapping.
    private func judge(_ observation: ReflectionObservation, fingerprint: String, stored: ReflectionFindingRecord?,
                       now: Date) throws -> ReflectionFinding {
        let thresholds = config.reflect[observation.kind]
        var record = stored ?? ReflectionFindingRecord(fingerprint: fingerprint, kind: observation.kind, subject: observation.subject, updatedAt: now)
        // A person resolved (or cancelled) its ticket: quiet from then on, until it recurs past high.
        if let id = record.ticketId, let ticket = try? self.ticket(id), Self.endStates.contains(ticket.state) {
            record.isActive = false
            record.ticketId = nil
            record.quietSince = ticket.updatedAt
        }
        let count = observation.times.filter { $0 > (record.quietSince ?? .distantPast) }.count
        var finding = ReflectionFinding(kind: observation.kind, subject: observation.subject, service: observation.service, count: count,
                                        high: thresholds.high, low: thresholds.low, status: "below", ticket: record.ticketId,
                                        evidence: observation.evidence)
        var event: String?
        if record.isActive {
            finding.status = count <= thresholds.low ? "cleared" : "flagged"
            if count <= thresholds.low { record.isActive = false; event = "reflection.cleared" }
        } else if count >= thresholds.high {
            let ticket = try fileReflectionTicket(observation, fingerprint: fingerprint, count: count)
            // Killed here, the next run finds the open ticket by its fingerprint and files no other.
            try Failpoints.hit("reflect.filed")
            record.isActive = true
            record.ticketId = ticket
            finding.status = "filed"
            finding.ticket = ticket
            event = "reflection.flagged"
        } else if record.quietSince != nil {
            finding.status = "quiet"
        }
        record.count = count
        // Nothing changed: no write (reflect runs often; most patterns stay as they were).
        var candidate = record
        candidate.updatedAt = stored?.updatedAt ?? now
        if event == nil, candidate == stored { return finding }
        record.updatedAt = now
        try database.write { db in
            try record.save(db)
            if let event {
                try RatchetDatabase.appendEvent(db, kind: event, service: observation.service.isEmpty ? nil : observation.service, ticket: record.ticketId,
                                                data: ["fingerprint": .string(fingerprint), "kind": .string(record.kind), "count": .number(Double(count))])
            }
        }
        return finding
    }

    /// Files (or finds, when one is open) the `reflection:KIND` ticket of a pattern.
    private func fileReflectionTicket(_ observation: ReflectionObservation, fingerprint: String, count: Int) throws -> String {
        if let open = try database.read({ db in
            try TicketRecord.filter(Column("fingerprint") == fingerprint).filter(!Self.endStates.contains(TicketRecord.Columns.state)).fetchOne(db)
        }) { return open.id }
        var draft = TicketDraft(service: observation.service, title: "Reflection: \(observation.kind) of \(Names.printable(observation.subject))")
        draft.source = "reflection:\(observation.kind)"
        draft.fingerprint = fingerprint
        draft.assignee = "human"
        draft.objective = """
            Ratchet needs a person here. \(redact(observation.tried)) (\(count) time(s) in the reflection window).
            Trying again the same way is unlikely to help. Please look at the evidence below, decide what should change \
            (the ticket, the service, its runbooks or its thresholds), and close this with `ratchet ticket resolve ID --note TEXT`.
            """
        // The latest 100 pieces of evidence (a ticket's context is limited to 256 KiB).
        let shown = observation.evidence.suffix(100).map { "- " + redact(String($0.prefix(1000))) }
        let cut = observation.evidence.count - shown.count
        draft.context = "Evidence:\n" + (cut > 0 ? "- (\(cut) earlier occurrence(s) not shown)\n" : "") + shown.joined(separator: "\n")
        return try createTicket(draft).id
    }
}

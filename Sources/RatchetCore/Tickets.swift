import Foundation
import GRDB
import RatchetGit
import RatchetStore
import Yams

/// What a new ticket says, before it has an id.
public struct TicketDraft: Sendable, Equatable {
    public var service: String
    public var title: String
    public var objective: String = ""
    public var acceptance: [String] = []
    public var constraints: [String] = []
    public var context: String = ""
    public var source: String = "human:\(ProcessInfo.processInfo.environment["USER"] ?? "operator")"
    public var fingerprint: String?
    public var risk: String = "low"
    public var priority: Int = 0
    public var agent: String?
    public var assignee: String = "agent"
    /// Restores reliability (SPEC §4): set by `observe` for a breach, or by a person.
    public var restores: Bool = false

    public init(service: String, title: String) {
        self.service = service
        self.title = title
    }

    /// Reads a ticket file (YAML or JSON, SPEC §4 fields); `overrides` win over the file.
    public static func parse(_ text: String, file: String) throws -> TicketDraft {
        let fields = try YAMLFields.parse(text, file: file)
        try fields.rejectUnknown(["service", "title", "objective", "acceptance", "constraints", "context", "source",
                                  "fingerprint", "risk", "priority", "agent", "assignee", "restores"])
        var draft = TicketDraft(service: try fields.string("service") ?? "", title: try fields.requiredString("title"))
        draft.objective = try fields.string("objective") ?? ""
        draft.acceptance = try fields.stringList("acceptance") ?? []
        draft.constraints = try fields.stringList("constraints") ?? []
        draft.context = try fields.string("context") ?? ""
        if let source = try fields.string("source") { draft.source = source }
        draft.fingerprint = try fields.string("fingerprint")
        if let risk = try fields.string("risk") { draft.risk = risk }
        draft.priority = try fields.int("priority", range: -1000...1000) ?? 0
        draft.agent = try fields.string("agent")
        if let assignee = try fields.string("assignee") { draft.assignee = assignee }
        draft.restores = try fields.bool("restores") ?? false
        return draft
    }

    /// Checks every field; returns the cleaned draft.
    func validated() throws -> TicketDraft {
        var draft = self
        draft.service = try Names.serviceName(service)
        draft.title = try Names.line(title, what: "title", limit: Names.maximumTitleLength)
        guard ["low", "medium", "high"].contains(risk) else { throw RatchetError("risk must be low, medium or high, not '\(Names.printable(risk))'") }
        guard ["agent", "human"].contains(assignee) else { throw RatchetError("assignee must be agent or human, not '\(Names.printable(assignee))'") }
        draft.acceptance = try acceptance.map { try Acceptance.parse($0).text }
        draft.constraints = try constraints.map { try Names.line($0, what: "constraint") }
        draft.source = try Names.line(source, what: "source", limit: 200)
        let sourceKinds = ["human", "invariant", "slo", "alert", "reflection"]
        guard let kind = draft.source.split(separator: ":", maxSplits: 1).first, sourceKinds.contains(String(kind)), draft.source.contains(":") else {
            throw RatchetError("source must be one of \(sourceKinds.map { "\($0):NAME" }.joined(separator: ", ")), not '\(Names.printable(source))'")
        }
        if draft.source.hasPrefix("reflection:") { draft.assignee = "human" }
        if let fingerprint { draft.fingerprint = try Names.line(fingerprint, what: "fingerprint", limit: 200) }
        if let agent { draft.agent = try AgentSpec.parse(agent, config: nil).spec }
        guard objective.utf8.count <= 64 * 1024, context.utf8.count <= 256 * 1024 else {
            throw RatchetError("objective is limited to 64 KiB and context to 256 KiB")
        }
        return draft
    }
}

/// One acceptance criterion (SPEC §4).
public enum Acceptance: Sendable, Equatable {
    case invariant(String)
    case command(String)
    case canary
    case text(String)

    /// Parses `invariant:NAME`, `command:SHELL`, `canary` or free text.
    public static func parse(_ raw: String) throws -> Acceptance {
        let text = try Names.line(raw, what: "acceptance criterion", limit: 4000)
        if text == "canary" { return .canary }
        if text.hasPrefix("command:") {
            let command = text.dropFirst("command:".count).trimmingCharacters(in: .whitespaces)
            guard !command.isEmpty else { throw RatchetError("acceptance criterion 'command:' needs a shell command") }
            return .command(command)
        }
        if text.hasPrefix("invariant:") {
            let name = text.dropFirst("invariant:".count).trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw RatchetError("acceptance criterion 'invariant:' needs an invariant name") }
            return .invariant(name)
        }
        return .text(text)
    }

    /// The criterion as written in the ticket.
    public var text: String {
        switch self {
        case .invariant(let name): return "invariant:\(name)"
        case .command(let command): return "command:\(command)"
        case .canary: return "canary"
        case .text(let text): return text
        }
    }
}

/// One attempt, as `ticket show --json` prints it.
public struct AttemptView: Codable, Sendable, Equatable {
    public var number: Int
    public var branch: String
    public var trajectory: String
    public var state: String
    public var agent: String
    public var base: String
    public var head: String?
    public var candidate: String?
    public var landing: String?
    public var revert: String?
    public var error: String?
    public var startedAt: Date
    public var endedAt: Date?
    enum CodingKeys: String, CodingKey {
        case number, branch, trajectory, state, agent, base, head, candidate, landing, revert, error
        case startedAt = "started_at", endedAt = "ended_at"
    }
    /// Encodes every key, with `null` for absent values, so readers can rely on the keys.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(number, forKey: .number)
        try container.encode(branch, forKey: .branch)
        try container.encode(trajectory, forKey: .trajectory)
        try container.encode(state, forKey: .state)
        try container.encode(agent, forKey: .agent)
        try container.encode(base, forKey: .base)
        try container.encode(head, forKey: .head)
        try container.encode(candidate, forKey: .candidate)
        try container.encode(landing, forKey: .landing)
        try container.encode(revert, forKey: .revert)
        try container.encode(error, forKey: .error)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(endedAt, forKey: .endedAt)
    }

    init(_ record: AttemptRecord) {
        number = record.number; branch = record.branch; trajectory = record.trajectoryId; state = record.state.rawValue
        agent = record.agent; base = record.base; head = record.head; candidate = record.candidate; landing = record.landing
        revert = record.revert; error = record.error; startedAt = record.startedAt; endedAt = record.endedAt
    }
}

/// A ticket with its attempts, as `ticket show --json` prints it (SPEC §11).
public struct TicketView: Codable, Sendable, Equatable {
    public var id: String
    public var service: String
    public var title: String
    public var objective: String
    public var acceptance: [String]
    public var constraints: [String]
    public var context: String
    public var source: String
    public var fingerprint: String?
    public var risk: String
    public var priority: Int
    public var agent: String?
    public var assignee: String
    public var state: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Restores reliability: may land while the error budget is spent.
    public var restores: Bool
    public var attempts: [AttemptView]
    /// The sha of the latest landing, or nil.
    public var landing: String?
    /// The sha of that landing's revert, or nil.
    public var revert: String?
    enum CodingKeys: String, CodingKey {
        case id, service, title, objective, acceptance, constraints, context, source, fingerprint, risk, priority, agent
        case assignee, state, attempts, landing, revert, restores
        case createdAt = "created_at", updatedAt = "updated_at"
    }

    /// Encodes every key, with `null` for absent values (SPEC §11: `landing` and `revert` are always present).
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(service, forKey: .service)
        try container.encode(title, forKey: .title)
        try container.encode(objective, forKey: .objective)
        try container.encode(acceptance, forKey: .acceptance)
        try container.encode(constraints, forKey: .constraints)
        try container.encode(context, forKey: .context)
        try container.encode(source, forKey: .source)
        try container.encode(fingerprint, forKey: .fingerprint)
        try container.encode(risk, forKey: .risk)
        try container.encode(priority, forKey: .priority)
        try container.encode(agent, forKey: .agent)
        try container.encode(assignee, forKey: .assignee)
        try container.encode(state, forKey: .state)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(restores, forKey: .restores)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(landing, forKey: .landing)
        try container.encode(revert, forKey: .revert)
    }

    init(_ ticket: TicketRecord, attempts: [AttemptRecord]) {
        id = ticket.id; service = ticket.service; title = ticket.title; objective = ticket.objective
        acceptance = ticket.acceptance; constraints = ticket.constraints; context = ticket.context; source = ticket.source
        fingerprint = ticket.fingerprint; risk = ticket.risk; priority = ticket.priority; agent = ticket.agent
        assignee = ticket.assignee; state = ticket.state.rawValue; createdAt = ticket.createdAt; updatedAt = ticket.updatedAt
        restores = ticket.restores
        self.attempts = attempts.map(AttemptView.init)
        let landed = attempts.last { $0.landing != nil }
        landing = landed?.landing
        revert = landed?.revert
    }
}

extension Workspace {
    /// Files a ticket; returns it with its new id.
    @discardableResult
    public func createTicket(_ draft: TicketDraft) throws -> TicketRecord {
        let draft = try prepared(draft)
        _ = try service(draft.service)
        return try database.write { db in
            if let fingerprint = draft.fingerprint, let existing = try Self.openTicket(db, fingerprint: fingerprint) {
                throw RatchetError("ticket \(existing.id) is already open for fingerprint '\(fingerprint)'")
            }
            return try Self.insertTicket(db, draft)
        }
    }

    /// `draft` validated, with secrets redacted: ready for `insertTicket`.
    func prepared(_ draft: TicketDraft) throws -> TicketDraft { try redacted(draft.validated()) }

    /// The open ticket holding `fingerprint`, if any (one open ticket per fingerprint).
    static func openTicket(_ db: Database, fingerprint: String) throws -> TicketRecord? {
        try TicketRecord.filter(sql: "fingerprint = ? AND state NOT IN ('merged','reverted','cancelled','escalated','resolved')", arguments: [fingerprint]).fetchOne(db)
    }

    /// Inserts a prepared draft as the next ticket with its `ticket.created` event, in the caller's transaction.
    static func insertTicket(_ db: Database, _ draft: TicketDraft) throws -> TicketRecord {
        let number = (try Int.fetchOne(db, sql: "SELECT MAX(number) FROM ticket") ?? 0) + 1
        let now = Date()
        let ticket = TicketRecord(
            id: "T-\(number)", number: number, service: draft.service, title: draft.title, objective: draft.objective,
            acceptance: draft.acceptance, constraints: draft.constraints, context: draft.context, source: draft.source,
            fingerprint: draft.fingerprint, risk: draft.risk, priority: draft.priority, agent: draft.agent,
            assignee: draft.assignee, state: .open, createdAt: now, updatedAt: now, restores: draft.restores)
        try ticket.insert(db)
        try RatchetDatabase.appendEvent(db, kind: "ticket.created", service: ticket.service, ticket: ticket.id, data: [
            "title": .string(ticket.title), "source": .string(ticket.source), "risk": .string(ticket.risk)])
        return ticket
    }

    /// `draft` with secrets redacted from every text, before anything is stored.
    private func redacted(_ draft: TicketDraft) -> TicketDraft {
        var draft = draft
        draft.title = redact(draft.title)
        draft.objective = redact(draft.objective)
        draft.acceptance = draft.acceptance.map(redact)
        draft.constraints = draft.constraints.map(redact)
        draft.context = redact(draft.context)
        return draft
    }

    /// Tickets, optionally filtered by state and service, in id order.
    public func tickets(state: String? = nil, service: String? = nil) throws -> [TicketRecord] {
        try checkFilter(state: state, service: service)
        return try database.read { db in
            var request = TicketRecord.order(TicketRecord.Columns.number)
            if let state { request = request.filter(TicketRecord.Columns.state == state) }
            if let service { request = request.filter(TicketRecord.Columns.service == service) }
            return try request.fetchAll(db)
        }
    }

    /// The ticket, or a clear error.
    public func ticket(_ rawID: String) throws -> TicketRecord {
        let id = try Names.ticketID(rawID)
        guard let ticket = try database.read({ db in try TicketRecord.fetchOne(db, key: id) }) else {
            throw RatchetError("no ticket \(id)")
        }
        return ticket
    }

    /// The ticket with its attempts.
    public func ticketView(_ rawID: String) throws -> TicketView {
        let ticket = try ticket(rawID)
        let attempts = try database.read { db in
            try AttemptRecord.filter(AttemptRecord.Columns.ticketId == ticket.id).order(AttemptRecord.Columns.number).fetchAll(db)
        }
        return TicketView(ticket, attempts: attempts)
    }

    /// Refuses an unknown state or a malformed service name in a ticket filter.
    private func checkFilter(state: String?, service: String?) throws {
        if let state, !TicketState.all.map(\.rawValue).contains(state) {
            throw RatchetError("unknown ticket state '\(Names.printable(state))' (states: \(TicketState.all.map(\.rawValue).joined(separator: ", ")))")
        }
        if let service { _ = try Names.serviceName(service) }
    }

    /// One line per ticket (`ID STATE SERVICE RISK TITLE`, tab-separated), filtered as
    /// `tickets(state:service:)`: read as plain rows, without decoding whole records.
    public func ticketLines(state: String? = nil, service: String? = nil) throws -> [String] {
        try checkFilter(state: state, service: service)
        return try database.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT id, state, service, risk, title FROM ticket
                WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR service = ?2) ORDER BY number
                """, arguments: [state, service])
            var lines: [String] = []
            while let row = try rows.next() {
                lines.append("\(row[0] as String)\t\(row[1] as String)\t\(row[2] as String)\t\(row[3] as String)\t\(row[4] as String)")
            }
            return lines
        }
    }

    /// The tickets (filtered as `tickets(state:service:)`) with their attempts, in two reads.
    public func ticketViews(state: String? = nil, service: String? = nil) throws -> [TicketView] {
        let tickets = try tickets(state: state, service: service)
        var attempts: [String: [AttemptRecord]] = [:]
        for attempt in try database.read({ db in try AttemptRecord.order(AttemptRecord.Columns.number).fetchAll(db) }) {
            attempts[attempt.ticketId, default: []].append(attempt)
        }
        return tickets.map { TicketView($0, attempts: attempts[$0.id] ?? []) }
    }

    /// Cancels a ticket that has not merged. Its unfinished attempts end as cancelled and their worktrees are removed.
    @discardableResult
    public func cancelTicket(_ rawID: String, reason: String? = nil) throws -> TicketRecord {
        let id = try Names.ticketID(rawID)
        let reason = try reason.map { try Names.line($0, what: "reason") }
        let (ticket, ended) = try database.write { db -> (TicketRecord, [AttemptRecord]) in
            guard var ticket = try TicketRecord.fetchOne(db, key: id) else { throw RatchetError("no ticket \(id)") }
            try TicketLifecycle.check(id, from: ticket.state, to: .cancelled)
            let now = Date()
            var ended: [AttemptRecord] = []
            for var attempt in try AttemptRecord.filter(AttemptRecord.Columns.ticketId == id).fetchAll(db)
            where !TicketLifecycle.finishedAttemptStates.contains(attempt.state) {
                // A running attempt's worktree belongs to the process running its agent, which removes it.
                let ownsWorktree = attempt.state == .proposed
                attempt.state = .cancelled
                attempt.endedAt = now
                attempt.leaseOwner = nil
                attempt.leaseExpiresAt = nil
                try attempt.update(db)
                if ownsWorktree { ended.append(attempt) }
            }
            ticket.state = .cancelled
            ticket.updatedAt = now
            try ticket.update(db)
            try RatchetDatabase.appendEvent(db, kind: "ticket.cancelled", service: ticket.service, ticket: id, data: ["reason": .optional(reason)])
            return (ticket, ended)
        }
        for attempt in ended { try? removeWorktree(of: attempt) }
        return ticket
    }

    /// Ends an attempt's worktree: back to the pool or removed (the branch stays).
    func removeWorktree(of attempt: AttemptRecord) throws {
        try releaseWorktree(service: attempt.service, path: root.appendingPathComponent(attempt.worktree).path)
    }
}

import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// A landing rule that stops a landing now (SPEC §8): `max_landings_per_hour` or `error_budget`.
public struct LandingGateBlock: Sendable, Equatable, Codable {
    /// The gate's name as the error and the events give it.
    public var gate: String
    public var detail: String
}

/// A person's override of the landing gates (`merge|approve --override-gate REASON`),
/// recorded as a `merge.gate-overridden` event in the landing's transaction.
struct GateOverride: Sendable, Equatable {
    var reason: String
    var by: String
}

/// The rules that decide whether a service may land now (SPEC §8): the landing rate limit,
/// the error-budget gate, and trees the post-landing watch reverted. The gates hold for
/// every landing (`merge`, `approve` and the pump's), in `land`; the pump also consults them
/// before working a ticket, so that it does not work what could not land.
extension Workspace {
    /// How many landings `service` had in the hour before `now` (reverted ones included).
    public func landingsInLastHour(_ service: String, now: Date = Date()) throws -> Int {
        try database.read { db in try Self.landingsInLastHour(db, service, now: now) }
    }

    static func landingsInLastHour(_ db: Database, _ service: String, now: Date = Date()) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attempt WHERE service = ? AND landing IS NOT NULL AND endedAt >= ?",
                         arguments: [service, now.addingTimeInterval(-3600)]) ?? 0
    }

    /// The rate gate: `landed` landings in the last hour plus `planned` ones reach the limit.
    static func rateBlock(_ config: ServiceConfig, landed: Int, planned: Int = 0) -> LandingGateBlock? {
        guard landed + planned >= config.maxLandingsPerHour else { return nil }
        return LandingGateBlock(gate: "max_landings_per_hour",
                                detail: "service \(config.name) landed \(landed) time(s) in the last hour (max_landings_per_hour: \(config.maxLandingsPerHour))")
    }

    /// The error-budget gate: a ticket that does not restore reliability on a service whose budget is spent.
    func budgetBlock(_ ticket: TicketRecord, spent: [String]? = nil) -> LandingGateBlock? {
        guard !ticket.restores else { return nil }
        let budgets = spent ?? spentBudgets(ticket.service)
        guard !budgets.isEmpty else { return nil }
        return LandingGateBlock(gate: "error_budget",
                                detail: "the error budget of \(budgets.joined(separator: ", ")) is spent and \(ticket.id) does not restore reliability (restores: false)")
    }

    /// The override a person gave (`reason` redacted, one line), or nil.
    func gateOverride(_ reason: String?, by person: String?) throws -> GateOverride? {
        guard let reason else { return nil }
        return GateOverride(reason: try Names.line(redact(reason), what: "override reason"),
                            by: try Names.line(person ?? ProcessInfo.processInfo.environment["USER"] ?? "operator", what: "operator", limit: 200))
    }

    /// Refuses the landing of `ticket` when a gate stops it, naming the gate, unless a person
    /// overrides the gates; returns the gates overridden (empty: none stopped it).
    func checkLandingGates(_ ticket: TicketRecord, config: ServiceConfig, override: GateOverride?) throws -> [LandingGateBlock] {
        let watching = try database.read { db in try Self.watchBlock(db, service: ticket.service) }
        let blocks = [Self.rateBlock(config, landed: try landingsInLastHour(ticket.service)), watching, budgetBlock(ticket)].compactMap { $0 }
        guard let block = blocks.first, override == nil else { return blocks }
        throw Self.gateError(ticket.id, block)
    }

    /// The rate and watch gates again inside the landing's transaction, where concurrent
    /// landings are serialised (the check in `checkLandingGates` only saves the verification's
    /// work); returns the blocks an override lets through.
    static func recheckLandingGates(_ db: Database, ticket: String, config: ServiceConfig, overridden: Bool) throws -> [LandingGateBlock] {
        let blocks = [rateBlock(config, landed: try landingsInLastHour(db, config.name)), try watchBlock(db, service: config.name)].compactMap { $0 }
        if let block = blocks.first, !overridden { throw gateError(ticket, block) }
        return blocks
    }

    /// The watch gate (adr/0057): one landing per service per watch window. While a landing's
    /// window is open (with `watch_window: 0`, until its one check), no other landing of the
    /// service lands, the pump's or a person's; the pump skips the service with this detail.
    static func watchBlock(_ db: Database, service: String) throws -> LandingGateBlock? {
        let sql = "SELECT ticketId, landing FROM watch WHERE service = ? ORDER BY startedAt LIMIT 1"
        guard let row = try Row.fetchOne(db, sql: sql, arguments: [service]) else { return nil }
        let ticket: String = row["ticketId"], landing: String = row["landing"]
        return LandingGateBlock(gate: "watch_window",
                                detail: "service \(service) is inside the watch window of landing \(landing.prefix(7)) (\(ticket)): one landing per service per window")
    }

    static func gateError(_ ticket: String, _ block: LandingGateBlock) -> RatchetError {
        RatchetError("the \(block.gate) gate refuses to land \(ticket): \(block.detail); the pump lands it when the gate opens, "
                     + "or a person lands it now with 'ratchet merge \(ticket) --override-gate REASON'")
    }

    /// The hold reasons for a candidate whose tree the post-landing watch already reverted,
    /// or whose ticket it did: a changed byte does not make a reverted fix new, so every later
    /// candidate of that ticket waits for a person too (a deterministic runbook cannot loop).
    func watchRevertHolds(service: String, ticket: String, tree: ObjectID) throws -> [String] {
        let sql = "SELECT ticketId, tree, reason FROM watchRevert WHERE service = ? AND (tree = ? OR ticketId = ?) ORDER BY at DESC LIMIT 1"
        guard let row = try database.read({ db in try Row.fetchOne(db, sql: sql, arguments: [service, tree.hex, ticket]) }) else { return [] }
        let reverted: String = row["ticketId"], reason: String = row["reason"], revertedTree: String = row["tree"]
        let what = revertedTree == tree.hex ? "this exact tree" : "a landing of \(ticket)"
        return ["the post-landing watch reverted \(what) before (\(reverted): \(reason))"]
    }

    /// The SLOs of `service` whose error budget is spent, evaluated over the stored samples
    /// (what the last observe or scrape stored; the pump observes at each cycle's start);
    /// empty when the service has none or they cannot be evaluated.
    func spentBudgets(_ service: String) -> [String] {
        guard let statuses = try? sloStatus(service: service) else { return [] }
        return statuses.filter { ($0.budgetRemaining ?? 1) <= 0 }.map(\.name)
    }
}

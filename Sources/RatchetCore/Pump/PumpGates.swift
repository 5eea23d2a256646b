import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The rules that decide whether a service may land now (SPEC §8): the landing rate limit,
/// the error-budget gate, and trees the post-landing watch reverted.
extension Workspace {
    /// How many landings `service` had in the hour before `now` (reverted ones included).
    public func landingsInLastHour(_ service: String, now: Date = Date()) throws -> Int {
        try database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attempt WHERE service = ? AND landing IS NOT NULL AND endedAt >= ?",
                             arguments: [service, now.addingTimeInterval(-3600)]) ?? 0
        }
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

    /// The SLOs of `service` whose error budget is spent (from a status-only observation);
    /// empty when the service has none or they cannot be evaluated.
    func spentBudgets(_ service: String) -> [String] {
        guard let report = try? observe(service: service, file: false) else { return [] }
        return report.checks.filter { $0.kind == "slo" && ($0.budgetRemaining ?? 1) <= 0 }.map(\.name)
    }
}

import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The post-landing watch (SPEC §8): after a landing and its deploy, the service is watched
/// for `watch_window`; one landing per service per window, so that a new breach can be laid
/// at that landing's door. A breach already present before the landing does not count; a
/// failed deploy counts as one. A breach reverts the landing through a commit and reopens
/// its ticket; the reverted tree lands again only with a person's approval.
extension Pump {
    /// Opens the watch of a landing (or, with a zero window, checks once now).
    /// The watch is stored first, so that a pump killed after this still watches the
    /// landing when it starts again.
    func openWatch(_ job: PumpJob, landing: LandingResult, baseline: Set<String>) throws {
        let now = Date()
        let window = workspace.config.watchWindow
        try workspace.database.write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO watch (service, ticketId, attemptNumber, landing, startedAt, endsAt, baseline) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [job.service, job.ticket, landing.attempt.number, landing.landing.hex, now, now.addingTimeInterval(window),
                                 try RatchetJSON.string(baseline.sorted(), pretty: false)])
            try RatchetDatabase.appendEvent(db, kind: "watch.started", service: job.service, ticket: job.ticket, data: [
                "landing": .string(landing.landing.hex), "window_s": .number(window), "baseline": .array(baseline.sorted().map { .string($0) })])
        }
        if let deploy = landing.deploy, !deploy.succeeded {
            try breach(service: job.service, ticket: job.ticket, landing: landing.landing.hex,
                       reason: "deploy \(deploy.status) after landing \(landing.landing.short)", checks: [])
            return
        }
        if window <= 0 { try checkWatches(services: [job.service]) }
    }

    /// Checks every open watch (or those of `services`): a new breach reverts, a window
    /// that ran out passes.
    func checkWatches(services: Set<String>? = nil) throws {
        for watch in try workspace.watches() where services?.contains(watch.service) ?? true {
            if let status = try workspace.lastDeployStatus(watch.service, after: watch.since), status != "succeeded" {
                try breach(service: watch.service, ticket: watch.ticket, landing: watch.landing,
                           reason: "deploy \(status) after landing \(watch.landing.prefix(7))", checks: [])
                continue
            }
            let breached = workspace.breachedChecks(watch.service).filter { !watch.baseline.contains($0.fingerprint) }
            if !breached.isEmpty {
                let names = breached.map { "\($0.kind) \($0.name)" }.joined(separator: ", ")
                try breach(service: watch.service, ticket: watch.ticket, landing: watch.landing,
                           reason: "\(names) breached within the watch window of landing \(watch.landing.prefix(7))", checks: breached.map(\.fingerprint))
            } else if Date() >= watch.endsAt {
                try workspace.database.write { db in
                    try db.execute(sql: "DELETE FROM watch WHERE service = ?", arguments: [watch.service])
                    try RatchetDatabase.appendEvent(db, kind: "watch.passed", service: watch.service, ticket: watch.ticket,
                                                    data: ["landing": .string(watch.landing)])
                }
                count { $0.watchesPassed += 1 }
                progress("\(watch.ticket) \(watch.service): watch window passed")
            }
        }
    }

    /// Reverts the landing through a commit, reopens its ticket and closes the watch.
    func breach(service: String, ticket: String, landing: String, reason: String, checks: [String]) throws {
        try Failpoints.hit("pump.watch-breached")
        progress("\(ticket) \(service): \(reason); reverting")
        var revert: String?
        var failure: String?
        do {
            revert = try workspace.revert(ticket: ticket, reason: "watch: \(reason)", by: "ratchet-watch", reopensTicket: true, progress: progress).hex
            count { $0.reverted += 1 }
        } catch {
            failure = describe(error)
            progress("\(ticket) \(service): the watch could not revert: \(failure!)")
        }
        try workspace.database.write { db in
            try db.execute(sql: "DELETE FROM watch WHERE service = ?", arguments: [service])
            try RatchetDatabase.appendEvent(db, kind: "watch.breached", service: service, ticket: ticket, data: [
                "landing": .string(landing), "reason": .string(reason), "checks": .array(checks.map { .string($0) }),
                "revert": .optional(revert), "error": .optional(failure)])
        }
    }
}

/// One open watch window, as stored.
struct WatchWindow {
    var service: String
    var ticket: String
    var landing: String
    var endsAt: Date
    var baseline: Set<String>
    /// Events after this one happened after the landing (its deploy among them).
    var since: Int64
}

extension Workspace {
    /// The open watch windows.
    func watches() throws -> [WatchWindow] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT service, ticketId, landing, endsAt, baseline,
                       (SELECT MAX(seq) FROM event WHERE kind = 'ticket.merged' AND ticketId = watch.ticketId) AS since
                FROM watch ORDER BY service
                """).map { row in
                let baseline = (try? RatchetJSON.decoder().decode([String].self, from: Data((row["baseline"] as String).utf8))) ?? []
                return WatchWindow(service: row["service"], ticket: row["ticketId"], landing: row["landing"], endsAt: row["endsAt"],
                                   baseline: Set(baseline), since: row["since"] ?? 0)
            }
        }
    }

    func watchedServices() throws -> Set<String> { Set(try watches().map(\.service)) }

    func openWatches() throws -> Int { try watches().count }

    /// When the next open watch window ends (now when none is open).
    func nextWatchEnd() throws -> Date { try watches().map(\.endsAt).min() ?? Date() }

    /// The invariants and SLOs of `service` in breach now (a status-only observation, which
    /// scrapes); empty when they cannot be evaluated.
    func breachedChecks(_ service: String) -> [CheckStatus] {
        guard let report = try? observe(service: service, file: false) else { return [] }
        return report.checks.filter { $0.holds == false }
    }

    /// The fingerprints in breach now: a landing's baseline.
    func breachedFingerprints(_ service: String) -> Set<String> { Set(breachedChecks(service).map(\.fingerprint)) }
}

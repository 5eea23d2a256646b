import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The post-landing watch (SPEC §8): after a landing and its deploy, the service is watched
/// for `watch_window`; one landing per service per window, so that a new breach can be laid
/// at that landing's door. A breach already present before the landing does not count; a
/// failed deploy counts as one. A breach reverts the landing through a commit and reopens
/// its ticket; the reverted tree lands again only with a person's approval.
/// What the pump asks of a landing: open its watch window in the landing's own transaction.
struct WatchRequest: Sendable {
    /// The fingerprints already in breach just before the landing.
    var baseline: Set<String>
    /// `watch_window`, seconds, counted from the landing.
    var window: Double
}

extension Workspace {
    /// Opens the watch window of `landing` inside the landing's transaction `db` (adr/0048),
    /// so that no landing of the pump is ever left unwatched: a pump killed right after the
    /// landing (`pump.landed`) finds the window on its next start and watches on.
    static func startWatch(_ db: Database, _ request: WatchRequest, service: String, ticket: String, attempt: Int, landing: ObjectID) throws {
        let now = Date()
        try db.execute(sql: """
            INSERT INTO watch (service, ticketId, attemptNumber, landing, startedAt, endsAt, baseline) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [service, ticket, attempt, landing.hex, now, now.addingTimeInterval(request.window),
                             try RatchetJSON.string(request.baseline.sorted(), pretty: false)])
        try RatchetDatabase.appendEvent(db, kind: "watch.started", service: service, ticket: ticket, data: [
            "landing": .string(landing.hex), "window_s": .number(request.window), "baseline": .array(request.baseline.sorted().map { .string($0) })])
    }
}

extension Pump {
    /// After a landing (its watch already stored) and its deploy: a failed deploy is a breach
    /// at once, and a zero window is checked once now.
    func afterLanding(_ job: PumpJob, landing: LandingResult) throws {
        guard workspace.config.watchWindow <= 0 || landing.deploy?.succeeded == false else { return }
        try checkWatches(services: [job.service])
    }

    /// Checks every open watch (or those of `services`): a new breach reverts, a window
    /// that ran out passes.
    func checkWatches(services: Set<String>? = nil) throws {
        // One check at a time: workers that just landed and the cycle check the same windows.
        try watchLock.withLock { try checkWatchesNow(services: services) }
    }

    private func checkWatchesNow(services: Set<String>?) throws {
        for watch in try workspace.watches(ofPaused: false) where services?.contains(watch.service) ?? true {
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
                    try db.execute(sql: "DELETE FROM watch WHERE landing = ?", arguments: [watch.landing])
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
            try db.execute(sql: "DELETE FROM watch WHERE landing = ?", arguments: [landing])
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
    /// The open watch windows; without `ofPaused`, none of a paused service (its window waits
    /// for the resume: the pump neither observes nor reverts a paused service).
    func watches(ofPaused: Bool = true) throws -> [WatchWindow] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT service, ticketId, landing, endsAt, baseline,
                       (SELECT MAX(seq) FROM event WHERE kind = 'ticket.merged' AND ticketId = watch.ticketId) AS since
                FROM watch WHERE ? OR service NOT IN (SELECT name FROM service WHERE isPaused)
                ORDER BY startedAt
                """, arguments: [ofPaused]).map { row in
                let baseline = (try? RatchetJSON.decoder().decode([String].self, from: Data((row["baseline"] as String).utf8))) ?? []
                return WatchWindow(service: row["service"], ticket: row["ticketId"], landing: row["landing"], endsAt: row["endsAt"],
                                   baseline: Set(baseline), since: row["since"] ?? 0)
            }
        }
    }

    func watchedServices() throws -> Set<String> { Set(try watches().map(\.service)) }

    /// The open watch windows the pump checks (none of a paused service).
    func openWatches() throws -> Int { try watches(ofPaused: false).count }

    /// When the next open watch window the pump checks ends (now when none is open).
    func nextWatchEnd() throws -> Date { try watches(ofPaused: false).map(\.endsAt).min() ?? Date() }

    /// The invariants and SLOs of `service` in breach now (a status-only observation, which
    /// scrapes); empty when they cannot be evaluated.
    func breachedChecks(_ service: String) -> [CheckStatus] {
        guard let report = try? observe(service: service, file: false) else { return [] }
        return report.checks.filter { $0.holds == false }
    }

    /// The fingerprints in breach now: a landing's baseline.
    func breachedFingerprints(_ service: String) -> Set<String> { Set(breachedChecks(service).map(\.fingerprint)) }
}

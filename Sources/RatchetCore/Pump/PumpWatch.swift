import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The post-landing watch (SPEC §8): after a landing and its deploy, the service is watched
/// for `watch_window` from the end of the deploy; one landing per service per window (the
/// watch gate of PumpGates.swift, for every landing), so that a new breach can be laid
/// at that landing's door. A breach already present before the landing does not count; a
/// failed deploy counts as one. A breach reverts the landing through a commit and reopens
/// its ticket; the reverted tree lands again only with a person's approval.
/// What the pump asks of a landing: open its watch window in the landing's own transaction.
struct WatchRequest: Sendable {
    /// The fingerprints already in breach just before the landing.
    var baseline: Set<String>
    /// `watch_window`, seconds, counted from the end of the landing's deploy (adr/0057).
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

extension Workspace {
    /// Ends the open watch windows of `service` without a verdict, in the transaction of a
    /// landing a person put inside them with `--override-gate` (adr/0076): from then on a new
    /// breach could be either landing's doing, so the watch reverts neither; the person who
    /// overrode the gate owns what follows. One `watch.interrupted` event per window.
    static func interruptWatches(_ db: Database, service: String, by landing: ObjectID, ticket: String, override: GateOverride) throws {
        let rows = try Row.fetchAll(db, sql: "SELECT ticketId, landing FROM watch WHERE service = ?", arguments: [service])
        try db.execute(sql: "DELETE FROM watch WHERE service = ?", arguments: [service])
        for row in rows {
            let watched: String = row["landing"]
            try RatchetDatabase.appendEvent(db, kind: "watch.interrupted", service: service, ticket: row["ticketId"], data: [
                "landing": .string(watched), "by_landing": .string(landing.hex), "by_ticket": .string(ticket),
                "by": .string(override.by), "reason": .string(override.reason)])
        }
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
        // A window starts when the landing's deploy ends (adr/0057): until then the service
        // still runs the code from before the landing.
        for watch in try workspace.watches(ofPaused: false) where services?.contains(watch.service) ?? true && !watch.awaitsDeploy {
            if let status = try workspace.lastDeployStatus(watch.service, after: watch.since), status != "succeeded" {
                try breach(service: watch.service, ticket: watch.ticket, landing: watch.landing,
                           reason: "deploy \(status) after landing \(watch.landing.prefix(7))", checks: [])
                continue
            }
            let checks = workspace.currentChecks(watch.service)
            let breached = checks.filter { $0.holds == false && !watch.baseline.contains($0.fingerprint) }
            // Landed code can also hide a breach: crash the service, drop /metrics or NaN the
            // series. A check that held before the landing and still cannot be evaluated when
            // the window ends is a breach (during the window it may be a restart warming up).
            let dark = checks.filter { $0.holds == nil && watch.baseline.contains(Workspace.heldPrefix + $0.fingerprint) }
            if !breached.isEmpty {
                let names = breached.map { "\($0.kind) \($0.name)" }.joined(separator: ", ")
                try breach(service: watch.service, ticket: watch.ticket, landing: watch.landing,
                           reason: "\(names) breached within the watch window of landing \(watch.landing.prefix(7))", checks: breached.map(\.fingerprint))
            } else if Date() >= watch.endsAt, !dark.isEmpty {
                let names = dark.map { "\($0.kind) \($0.name) (\($0.state))" }.joined(separator: ", ")
                try breach(service: watch.service, ticket: watch.ticket, landing: watch.landing,
                           reason: "\(names) held before landing \(watch.landing.prefix(7)) and cannot be evaluated at the end of its watch window",
                           checks: dark.map(\.fingerprint))
            } else if Date() >= watch.endsAt,
                      try workspace.closeWatch(watch.landing, service: watch.service, ticket: watch.ticket, kind: "watch.passed", data: [:]) {
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
        // A revert that failed because another pump's check closed this window first records nothing.
        try workspace.closeWatch(landing, service: service, ticket: ticket, kind: "watch.breached", always: revert != nil, data: [
            "reason": .string(reason), "checks": .array(checks.map { .string($0) }), "revert": .optional(revert), "error": .optional(failure)])
    }
}

extension Workspace {
    /// Closes the watch of `landing` with its event, as a compare-and-swap: only the check
    /// that deletes the row records `kind` (two pumps check the same windows), unless
    /// `always` (a revert this check made). Returns whether it recorded the event.
    @discardableResult
    func closeWatch(_ landing: String, service: String, ticket: String, kind: String, always: Bool = false, data: [String: JSONValue]) throws -> Bool {
        try database.write { db in
            try db.execute(sql: "DELETE FROM watch WHERE landing = ?", arguments: [landing])
            guard db.changesCount > 0 || always else { return false }
            try RatchetDatabase.appendEvent(db, kind: kind, service: service, ticket: ticket, data: .object(data.merging(["landing": .string(landing)]) { $1 }))
            return true
        }
    }
}

/// One open watch window, as stored, and when it runs (adr/0057): `window` seconds from the
/// end of the landing's deploy (from the landing when the service has no deploy).
struct WatchWindow {
    var service: String
    var ticket: String
    var landing: String
    /// `watch_window` of the landing, seconds.
    var window: Double
    var landedAt: Date
    /// When the first deploy after the landing ended (its event), nil before it.
    var deployedAt: Date?
    /// Whether the service has a deploy: then the window starts when it ends.
    var deploys: Bool
    var baseline: Set<String>
    /// Events after this one happened after the landing (its deploy among them).
    var since: Int64

    /// The landing's deploy has not ended yet: the window has not started.
    var awaitsDeploy: Bool { deploys && deployedAt == nil }
    /// When the window ends (its start plus `window`; not before it has started).
    var endsAt: Date { (deploys ? deployedAt ?? .distantFuture : landedAt).addingTimeInterval(window) }
}

extension Workspace {
    /// The open watch windows; without `ofPaused`, none of a paused service (its window waits
    /// for the resume: the pump neither observes nor reverts a paused service).
    func watches(ofPaused: Bool = true) throws -> [WatchWindow] {
        let rows = try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT w.*, (SELECT MIN(time) FROM event WHERE kind LIKE 'deploy.%' AND service = w.service AND seq > w.since) AS deployedAt
                FROM (SELECT service, ticketId, landing, startedAt, endsAt, baseline,
                             (SELECT MAX(seq) FROM event WHERE kind = 'ticket.merged' AND ticketId = watch.ticketId) AS since
                      FROM watch WHERE ? OR service NOT IN (SELECT name FROM service WHERE isPaused)) AS w
                ORDER BY startedAt
                """, arguments: [ofPaused])
        }
        return rows.map { row in
            let baseline = (try? RatchetJSON.decoder().decode([String].self, from: Data((row["baseline"] as String).utf8))) ?? []
            let landedAt: Date = row["startedAt"], storedEnd: Date = row["endsAt"]
            return WatchWindow(service: row["service"], ticket: row["ticketId"], landing: row["landing"], window: storedEnd.timeIntervalSince(landedAt),
                               landedAt: landedAt, deployedAt: row["deployedAt"], deploys: (try? serviceConfig(row["service"]))?.deploy != nil,
                               baseline: Set(baseline), since: row["since"] ?? 0)
        }
    }

    /// The watch gate of each of `services` that is inside a watch window.
    func watchBlocks<Names: Sequence<String>>(_ services: Names) throws -> [String: LandingGateBlock] {
        try database.read { db in
            var blocks: [String: LandingGateBlock] = [:]
            for service in services { blocks[service] = try Self.watchBlock(db, service: service) }
            return blocks
        }
    }

    /// The open watch windows the pump checks (none of a paused service).
    func openWatches() throws -> Int { try watches(ofPaused: false).count }

    /// When the next open watch window the pump checks ends (now when none is open; a window
    /// whose deploy has not ended does not end before it).
    func nextWatchEnd() throws -> Date { try watches(ofPaused: false).map(\.endsAt).min() ?? Date() }

    /// The invariants and SLOs of `service` now (a status-only observation, which scrapes);
    /// empty when the observation itself fails.
    func currentChecks(_ service: String) -> [CheckStatus] {
        (try? observe(service: service, file: false))?.checks ?? []
    }

    /// The invariants and SLOs of `service` in breach now; empty when they cannot be evaluated.
    func breachedChecks(_ service: String) -> [CheckStatus] { currentChecks(service).filter { $0.holds == false } }

    /// A landing's baseline: the fingerprints in breach now, and `held:` + the fingerprint of
    /// each check that holds now, so that the watch can tell a check that went dark after
    /// the landing (no data, an error, a target down) from one that never had data.
    func breachedFingerprints(_ service: String) -> Set<String> {
        Set(currentChecks(service).compactMap { check in
            check.holds.map { $0 ? Self.heldPrefix + check.fingerprint : check.fingerprint }
        })
    }

    /// Marks a baseline entry of a check that held before the landing.
    static let heldPrefix = "held:"
}

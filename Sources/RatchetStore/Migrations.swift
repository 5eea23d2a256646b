import GRDB

extension RatchetDatabase {
    /// All migrations, in order. A migration is never edited once it has landed: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-services-tickets-attempts-trajectories-events") { db in
            try db.create(table: "service") { t in
                t.primaryKey("name", .text)
                t.column("path", .text).notNull()
                t.column("template", .text)
                t.column("isPaused", .boolean).notNull().defaults(to: false)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "ticket") { t in
                t.primaryKey("id", .text)
                t.column("number", .integer).notNull().unique()
                t.column("service", .text).notNull().references("service", onDelete: .restrict)
                t.column("title", .text).notNull()
                t.column("objective", .text).notNull().defaults(to: "")
                t.column("acceptance", .jsonText).notNull()
                t.column("constraints", .jsonText).notNull()
                t.column("context", .text).notNull().defaults(to: "")
                t.column("source", .text).notNull()
                t.column("fingerprint", .text)
                t.column("risk", .text).notNull()
                t.column("priority", .integer).notNull().defaults(to: 0)
                t.column("agent", .text)
                t.column("assignee", .text).notNull()
                t.column("state", .text).notNull().indexed()
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
            // One open ticket per fingerprint.
            try db.execute(sql: """
                CREATE UNIQUE INDEX ticket_open_fingerprint ON ticket(fingerprint)
                WHERE fingerprint IS NOT NULL AND state NOT IN ('merged', 'reverted', 'cancelled', 'escalated')
                """)
            try db.create(table: "attempt") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("ticketId", .text).notNull().references("ticket", onDelete: .restrict)
                t.column("number", .integer).notNull()
                t.column("service", .text).notNull()
                t.column("branch", .text).notNull()
                t.column("worktree", .text).notNull()
                t.column("trajectoryId", .text).notNull().unique()
                t.column("agent", .text).notNull()
                t.column("state", .text).notNull().indexed()
                t.column("base", .text).notNull()
                t.column("head", .text)
                t.column("candidate", .text)
                t.column("landing", .text)
                t.column("revert", .text)
                t.column("error", .text)
                t.column("leaseOwner", .text)
                t.column("leaseExpiresAt", .datetime)
                t.column("startedAt", .datetime).notNull()
                t.column("endedAt", .datetime)
                t.uniqueKey(["ticketId", "number"])
            }
            try db.create(table: "trajectory") { t in
                t.primaryKey("id", .text)
                t.column("ticketId", .text).notNull().references("ticket", onDelete: .restrict)
                t.column("attemptNumber", .integer).notNull()
                t.column("service", .text).notNull()
                t.column("agent", .text).notNull()
                t.column("initialState", .jsonText).notNull()
                t.column("outcome", .jsonText)
                t.column("labels", .jsonText).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "trajectoryStep") { t in
                t.column("trajectoryId", .text).notNull().references("trajectory", onDelete: .cascade)
                t.column("index", .integer).notNull()
                t.column("time", .datetime).notNull()
                t.column("tool", .text).notNull()
                t.column("arguments", .jsonText).notNull()
                t.column("risk", .text).notNull()
                t.column("effect", .text).notNull()
                t.column("ok", .boolean).notNull()
                t.column("output", .text).notNull()
                t.column("data", .jsonText).notNull()
                t.column("commit", .text)
                t.primaryKey(["trajectoryId", "index"])
            }
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("time", .datetime).notNull()
                t.column("kind", .text).notNull().indexed()
                t.column("service", .text)
                t.column("ticketId", .text)
                t.column("attemptNumber", .integer)
                t.column("data", .jsonText).notNull()
            }
        }
        migrator.registerMigration("v2-canary-reports") { db in
            try db.create(table: "canaryReport") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("service", .text).notNull().indexed()
                t.column("ticketId", .text).indexed()
                t.column("attemptNumber", .integer)
                t.column("baseline", .text).notNull()
                t.column("candidate", .text).notNull()
                t.column("verdict", .text).notNull()
                t.column("score", .double).notNull()
                t.column("report", .jsonText).notNull()
                t.column("createdAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v3-canary-calibrations") { db in
            try db.create(table: "canaryCalibration") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("service", .text).notNull().indexed()
                t.column("main", .text).notNull()
                t.column("calibration", .jsonText).notNull()
                t.column("createdAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v4-review-reflection") { db in
            // `resolved` is an end state: it frees its fingerprint like the others.
            try db.execute(sql: "DROP INDEX ticket_open_fingerprint")
            try db.execute(sql: """
                CREATE UNIQUE INDEX ticket_open_fingerprint ON ticket(fingerprint)
                WHERE fingerprint IS NOT NULL AND state NOT IN ('merged', 'reverted', 'cancelled', 'escalated', 'resolved')
                """)
            // One row per reflection pattern (kind + subject): whether it is flagged, and since when it is quiet.
            try db.create(table: "reflectionFinding") { t in
                t.primaryKey("fingerprint", .text)
                t.column("kind", .text).notNull()
                t.column("subject", .text).notNull()
                t.column("isActive", .boolean).notNull()
                t.column("count", .integer).notNull()
                t.column("ticketId", .text)
                t.column("quietSince", .datetime)
                t.column("updatedAt", .datetime).notNull()
            }
            // The summary looks attempts up by their landing and revert commits.
            try db.create(index: "attempt_landing", on: "attempt", columns: ["landing"])
            try db.create(index: "attempt_revert", on: "attempt", columns: ["revert"])
            // Per webhook, the last event seq examined for notifications.
            try db.create(table: "notifyCursor") { t in
                t.primaryKey("webhook", .text)
                t.column("seq", .integer).notNull()
            }
        }
        migrator.registerMigration("v5-trajectory-capture") { db in
            // Model usage per step ({tokens_in, tokens_out, cost_usd}), when the agent reported it.
            try db.alter(table: "trajectoryStep") { t in t.add(column: "usage", .jsonText) }
            // Export walks trajectories by creation time; spend is summed per ticket.
            try db.create(index: "trajectory_createdAt", on: "trajectory", columns: ["createdAt"])
            try db.create(index: "trajectory_ticketId", on: "trajectory", columns: ["ticketId", "attemptNumber"])
        }
        migrator.registerMigration("v6-metrics-samples") { db in
            // One row per series of a service; `labels` is the canonical JSON of its label set (sorted keys).
            try db.create(table: "metricSeries") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("service", .text).notNull()
                t.column("name", .text).notNull()
                t.column("labels", .text).notNull()
                t.uniqueKey(["service", "labels"])
            }
            try db.create(index: "metricSeries_service_name", on: "metricSeries", columns: ["service", "name"])
            // Raw samples (milliseconds; SQLite stores NaN as NULL, so NULL reads back as NaN).
            try db.execute(sql: """
                CREATE TABLE metricSample (seriesId INTEGER NOT NULL, time INTEGER NOT NULL, value REAL,
                                           PRIMARY KEY (seriesId, time)) WITHOUT ROWID
                """)
            // Rollups of `step` ms (5 minutes and 1 hour): the bucket's last sample (time and value)
            // and the count/sum/min/max of its samples (docs/metrics.md).
            try db.execute(sql: """
                CREATE TABLE metricRollup (seriesId INTEGER NOT NULL, step INTEGER NOT NULL, bucket INTEGER NOT NULL, time INTEGER NOT NULL,
                                           last REAL, samples INTEGER NOT NULL, total REAL, minimum REAL, maximum REAL,
                                           PRIMARY KEY (seriesId, step, bucket)) WITHOUT ROWID
                """)
        }
        migrator.registerMigration("v7-observe") { db in
            // SPEC §4: a ticket that restores reliability (filed from a breach, or marked by a
            // person) may land while the service's error budget is spent.
            try db.alter(table: "ticket") { t in t.add(column: "restores", .boolean).notNull().defaults(to: false) }
        }
        migrator.registerMigration("v8-loop") { db in
            // The post-landing watch of the pump: one open window per service (SPEC §8), kept
            // in the store so that a restarted pump goes on watching.
            try db.create(table: "watch") { t in
                t.column("service", .text).primaryKey()
                t.column("ticketId", .text).notNull()
                t.column("attemptNumber", .integer).notNull()
                t.column("landing", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("endsAt", .datetime).notNull()
                // Fingerprints already breached before the landing: they do not count against it.
                t.column("baseline", .jsonText).notNull()
            }
            // Trees the watch reverted: they land again only with a person's approval.
            try db.create(table: "watchRevert") { t in
                t.column("service", .text).notNull()
                t.column("tree", .text).notNull()
                t.column("ticketId", .text).notNull()
                t.column("landing", .text).notNull()
                t.column("revert", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("at", .datetime).notNull()
                t.primaryKey(["service", "tree", "landing"])
            }
        }
        migrator.registerMigration("v11-metrics") { db in
            // A rollup's first sample and the resets and changes between its samples, so that a
            // bucket stands exactly for its samples in rate/increase/changes/resets (adr/0044).
            // NULL firstTime: not known (rows from before, or samples merged out of order).
            try db.alter(table: "metricRollup") { t in
                t.add(column: "firstTime", .integer)
                t.add(column: "firstValue", .double)
                t.add(column: "resets", .integer).notNull().defaults(to: 0)
                t.add(column: "resetSum", .double).defaults(to: 0)
                t.add(column: "changes", .integer).notNull().defaults(to: 0)
            }
        }
        migrator.registerMigration("v12-loop") { db in
            // One watch row per watched landing, not per service: with a zero watch_window the
            // pump lands a service's tickets concurrently, each opening its watch in its own
            // landing's transaction (adr/0048); with a window, the pump still lands one per service.
            try db.create(table: "watchByLanding") { t in
                t.column("service", .text).notNull().indexed()
                t.column("ticketId", .text).notNull()
                t.column("attemptNumber", .integer).notNull()
                t.column("landing", .text).primaryKey()
                t.column("startedAt", .datetime).notNull()
                t.column("endsAt", .datetime).notNull()
                t.column("baseline", .jsonText).notNull()
            }
            try db.execute(sql: """
                INSERT INTO watchByLanding (service, ticketId, attemptNumber, landing, startedAt, endsAt, baseline)
                SELECT service, ticketId, attemptNumber, landing, startedAt, endsAt, baseline FROM watch
                """)
            try db.drop(table: "watch")
            try db.rename(table: "watchByLanding", to: "watch")
        }
        migrator.registerMigration("v13-metrics-chunks") { db in
            // Raw samples as one row per series and hour holding a Prometheus-style XOR chunk
            // (SampleChunk; adr/0062) instead of one row per sample: about a sixth of the bytes.
            try db.execute(sql: """
                CREATE TABLE metricChunk (seriesId INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
                                          samples INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (seriesId, start)) WITHOUT ROWID
                """)
            for series in try Int64.fetchAll(db, sql: "SELECT DISTINCT seriesId FROM metricSample ORDER BY seriesId") {
                let rows = try Row.fetchAll(db, sql: "SELECT time, value FROM metricSample WHERE seriesId = ? ORDER BY time", arguments: [series])
                let samples = rows.map { (time: $0[0] as Int64, value: ($0[1] as Double?) ?? .nan) }
                for (start, chunk) in SampleChunk.split(samples) { try SampleChunk.write(db, series: series, start: start, chunk) }
            }
            try db.drop(table: "metricSample")
        }
        return migrator
    }
}

import Foundation
import GRDB
import CPosix
import GRDBSQLite

/// The workspace store: one SQLite file in WAL mode, migrated on open.
///
/// Every state change is written in the same transaction as the event that records it:
/// use `write(_:)`, which runs `BEGIN IMMEDIATE` so that concurrent Ratchet processes
/// serialise on the database's write lock rather than failing half way.
public struct RatchetDatabase: Sendable {
    private let writer: any DatabaseWriter

    /// Opens (creating if needed) the store at `path` and runs the migrations.
    ///
    /// `synchronous` is SQLite's sync setting; the default NORMAL in WAL mode survives a
    /// killed process without losing a committed transaction (see docs/performance.md).
    ///
    /// With `readOnly`, a command that only reads opens one read-only connection instead: no
    /// write lock, no checkpoint when it closes, nothing to fsync. It falls back to the
    /// writable open when the store is not migrated yet or has no WAL file to read from.
    public init(path: String, synchronous: String = "NORMAL", readOnly: Bool = false) throws {
        guard ["OFF", "NORMAL", "FULL", "EXTRA"].contains(synchronous) else { throw DatabaseError(message: "invalid synchronous \(synchronous)") }
        if readOnly, let reader = Self.openForReading(path) {
            writer = reader
            return
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            // Keep the WAL file when the last connection closes: opening a pool without one
            // costs a write transaction and two fsyncs (GRDB creates it), and every command opens the store.
            var persist: Int32 = 1
            sqlite3_file_control(db.sqliteConnection, nil, SQLITE_FCNTL_PERSIST_WAL, &persist)
            // Under `normal` durability (adr/0009) the WAL is not checkpointed and fsynced as each
            // command exits; SQLite checkpoints as the WAL grows. `full` syncs every commit anyway.
            if synchronous != "FULL" { _ = ratchet_sqlite_no_checkpoint_on_close(db.sqliteConnection, 1) }
            // Every new process rebuilds the WAL's index from the frames written since the last
            // checkpoint: at SQLite's default of 1,000 pages that was up to 4 MB read at each
            // command's start. 128 pages (about two CLI lifecycles) bounds it (adr/0055).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walCheckpointPages)")
            // Every statement on stderr, for finding where a command spends its time.
            if ProcessInfo.processInfo.environment["RATCHET_SQL_TRACE"] != nil { db.trace { FileHandle.standardError.write(Data("sql: \($0)\n".utf8)) } }
        }
        // One connection per process (adr/0082): a pool opened a second one for its first read,
        // with its own schema parse and GRDB introspection, in every command.
        configuration.journalMode = .wal
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        // A read settles the common case without the write lock (each command opens the store).
        if try !queue.read({ try Self.migrator.hasCompletedMigrations($0) }) { try Self.migrator.migrate(queue) }
        writer = queue
    }

    /// Pages the WAL may hold before a commit checkpoints it (`wal_autocheckpoint`, adr/0055).
    public static let walCheckpointPages = 128

    /// A read-only connection to a migrated store in WAL mode, or nil.
    private static func openForReading(_ path: String) -> DatabaseQueue? {
        guard FileManager.default.fileExists(atPath: path + "-wal"), FileManager.default.fileExists(atPath: path + "-shm") else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(30)
        configuration.journalMode = .default
        guard let queue = try? DatabaseQueue(path: path, configuration: configuration),
              (try? queue.read({ try migrator.hasCompletedMigrations($0) })) == true else { return nil }
        return queue
    }

    /// An in-memory store for tests.
    public init() throws {
        let queue = try DatabaseQueue()
        try Self.migrator.migrate(queue)
        writer = queue
    }

    /// Runs `body` in one immediate write transaction; everything or nothing is written.
    @discardableResult
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        try writer.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    /// Runs `body` on a consistent snapshot.
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try writer.read(body)
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    public func integrityCheck() throws -> String {
        try writer.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }

    /// The journal mode in force (`wal` for a file store).
    public func journalMode() throws -> String {
        try writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }
}

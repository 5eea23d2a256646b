import Foundation
import GRDB
import RatchetStore

/// Which trajectories an export holds.
public struct TrajectoryFilter: Sendable {
    public var since: Date?
    public var service: String?
    /// The outcome's `status` (`landed`, `failed`, `escalated`, …); `running` for none yet.
    public var outcome: String?
    public init(since: Date? = nil, service: String? = nil, outcome: String? = nil) {
        self.since = since; self.service = service; self.outcome = outcome
    }
}

/// The formats of `ratchet trajectory export`.
public enum TrajectoryFormat: String, Sendable, CaseIterable {
    case jsonl, atif
}

extension Workspace {
    /// Writes every trajectory the filter selects, oldest first, one compact JSON document
    /// per line, through `write`. Streams: trajectories are read a page at a time, so memory
    /// does not grow with their number. Returns how many were written.
    @discardableResult
    public func exportTrajectories(_ filter: TrajectoryFilter, format: TrajectoryFormat, pageSize: Int = 200,
                                   write: (Data) throws -> Void) throws -> Int {
        let encoder = RatchetJSON.encoder(pretty: false)
        var cursor: (Date, String)?
        var count = 0
        while true {
            let page = try database.read { db in
                let ids = try Self.trajectoryPage(db, filter: filter, after: cursor, limit: pageSize)
                return try ids.map { try Self.trajectoryDocument(db, id: $0.id) }
            }
            for document in page {
                var line = try format == .atif ? encoder.encode(ATIF.document(for: document)) : encoder.encode(document)
                line.append(0x0A)
                try write(line)
                count += 1
            }
            guard page.count == pageSize, let last = page.last else { return count }
            cursor = try database.read { db in
                try Row.fetchOne(db, sql: "SELECT createdAt FROM trajectory WHERE id = ?", arguments: [last.id]).map { ($0["createdAt"], last.id) }
            }
        }
    }

    private static func trajectoryPage(_ db: Database, filter: TrajectoryFilter, after cursor: (Date, String)?, limit: Int) throws -> [(id: String, createdAt: Date)] {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let since = filter.since { conditions.append("createdAt >= ?"); arguments.append(since) }
        if let service = filter.service { conditions.append("service = ?"); arguments.append(service) }
        if let outcome = filter.outcome {
            if outcome == "running" { conditions.append("outcome IS NULL") } else {
                conditions.append("json_extract(outcome, '$.status') = ?"); arguments.append(outcome)
            }
        }
        if let (date, id) = cursor { conditions.append("(createdAt, id) > (?, ?)"); arguments += [date, id] }
        let clause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try Row.fetchAll(db, sql: "SELECT id, createdAt FROM trajectory \(clause) ORDER BY createdAt, id LIMIT \(limit)",
                                arguments: StatementArguments(arguments)).map { ($0["id"], $0["createdAt"]) }
    }

    /// Exports to `path` (or stdout when nil): written to a temporary file beside it and
    /// renamed at the end, so a failed export leaves nothing behind.
    @discardableResult
    public func exportTrajectories(_ filter: TrajectoryFilter, format: TrajectoryFormat, to path: String?) throws -> Int {
        guard let path else {
            return try exportTrajectories(filter, format: format) { FileHandle.standardOutput.write($0) }
        }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUIDv7.make().suffix(8)).tmp").path
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary) else {
            throw RatchetError("cannot write \(Names.printable(path)): \(String(cString: strerror(errno)))")
        }
        do {
            let count = try exportTrajectories(filter, format: format) { try handle.write(contentsOf: $0) }
            try handle.synchronize()
            try handle.close()
            guard rename(temporary, path) == 0 else { throw RatchetError("cannot write \(Names.printable(path)): \(String(cString: strerror(errno)))") }
            return count
        } catch {
            try? handle.close()
            unlink(temporary)
            throw error
        }
    }
}

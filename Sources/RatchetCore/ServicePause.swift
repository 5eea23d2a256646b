import Foundation
import GRDB
import RatchetStore

/// What `ratchet service pause|resume` did.
public struct PauseChange: Codable, Sendable, Equatable {
    public var service: String
    public var paused: Bool
    /// False when the service was already in that state (nothing written, no event).
    public var changed: Bool
}

extension Workspace {
    /// Stops (`paused: true`) or restarts landings for a service (SPEC §3): a paused service
    /// refuses `merge`, `approve` and `work`. Records `service.paused` or `service.resumed`
    /// in the same transaction; asking for the state it already has changes nothing.
    @discardableResult
    public func setPaused(_ rawName: String, _ paused: Bool, reason rawReason: String? = nil) throws -> PauseChange {
        let name = try Names.serviceName(rawName)
        let reason = try rawReason.map { try Names.line($0, what: "reason") }
        return try database.write { db in
            guard var record = try ServiceRecord.fetchOne(db, key: name) else {
                throw RatchetError("no service named '\(name)' (see 'ratchet service list')")
            }
            guard record.isPaused != paused else { return PauseChange(service: name, paused: paused, changed: false) }
            record.isPaused = paused
            try record.update(db)
            try RatchetDatabase.appendEvent(db, kind: paused ? "service.paused" : "service.resumed", service: name,
                                            data: ["reason": .optional(reason)])
            return PauseChange(service: name, paused: paused, changed: true)
        }
    }
}

import Foundation
import GRDB
import RatchetStore

extension Workspace {
    /// The trajectory a key names: its id, `T-7` (the ticket's latest attempt) or `T-7/2`.
    public func trajectory(named key: String) throws -> TrajectoryDocument {
        let text = key.trimmingCharacters(in: .whitespaces)
        let wrong = RatchetError("'\(Names.printable(text))' is not a trajectory: give its id, T-7 or T-7/2")
        return try database.read { db in
            guard text.uppercased().hasPrefix("T-") else {
                guard UUIDv7.isValid(text.lowercased()) else { throw wrong }
                return try Self.trajectoryDocument(db, id: text.lowercased())
            }
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            let ticket = try Names.ticketID(String(parts[0]))
            guard parts.count <= 2, parts.count == 1 || Int(parts[1]).map({ $0 > 0 }) == true else { throw wrong }
            let number = parts.count == 2 ? Int(parts[1]) : nil
            let id = try String.fetchOne(db, sql: """
                SELECT id FROM trajectory WHERE ticketId = ? AND (? IS NULL OR attemptNumber = ?) ORDER BY attemptNumber DESC LIMIT 1
                """, arguments: [ticket, number, number])
            guard let id else {
                throw RatchetError(number.map { "ticket \(ticket) has no attempt \($0)" } ?? "ticket \(ticket) has no attempt yet")
            }
            return try Self.trajectoryDocument(db, id: id)
        }
    }
}

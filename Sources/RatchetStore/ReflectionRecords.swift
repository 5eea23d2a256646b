import Foundation
import GRDB

/// The flap state of one reflection pattern (`ratchet reflect`): flagged or not, the count
/// last seen, the ticket filed for it, and since when a person's resolution keeps it quiet.
public struct ReflectionFindingRecord: Codable, Sendable, Equatable {
    /// `reflection:KIND:SUBJECT`, also the fingerprint of its tickets.
    public var fingerprint: String
    public var kind: String
    public var subject: String
    /// Flagged: the count reached the high threshold and has not fallen to the low one.
    public var isActive: Bool
    public var count: Int
    /// The ticket filed for it, while that ticket waits for a person.
    public var ticketId: String?
    /// Occurrences before this time are not counted (a person resolved the finding then).
    public var quietSince: Date?
    public var updatedAt: Date

    public init(fingerprint: String, kind: String, subject: String, isActive: Bool = false, count: Int = 0, ticketId: String? = nil,
                quietSince: Date? = nil, updatedAt: Date) {
        self.fingerprint = fingerprint; self.kind = kind; self.subject = subject; self.isActive = isActive; self.count = count
        self.ticketId = ticketId; self.quietSince = quietSince; self.updatedAt = updatedAt
    }
}

extension ReflectionFindingRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "reflectionFinding"
}

import Foundation
import GRDB

/// A stored canary report (SPEC §7): who it judged and the whole report document.
public struct CanaryReportRecord: Codable, Sendable, Equatable {
    /// The report number (`ratchet canary show N`).
    public var id: Int64?
    public var service: String
    /// The ticket and attempt judged; nil for a run by hand with `--ref`.
    public var ticketId: String?
    public var attemptNumber: Int?
    /// Baseline (main) and candidate commits.
    public var baseline: String
    public var candidate: String
    /// `pass`, `marginal` or `fail`.
    public var verdict: String
    /// 0–100.
    public var score: Double
    /// The report document (`ratchet.canary/v1`).
    public var report: JSONValue
    public var createdAt: Date

    public init(service: String, ticketId: String?, attemptNumber: Int?, baseline: String, candidate: String,
                verdict: String, score: Double, report: JSONValue, createdAt: Date) {
        self.service = service; self.ticketId = ticketId; self.attemptNumber = attemptNumber; self.baseline = baseline
        self.candidate = candidate; self.verdict = verdict; self.score = score; self.report = report; self.createdAt = createdAt
    }
}

extension CanaryReportRecord: FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "canaryReport"
    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let service = Column(CodingKeys.service)
        public static let ticketId = Column(CodingKeys.ticketId)
    }
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

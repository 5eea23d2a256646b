import Foundation
import GRDB

/// A stored canary calibration (`ratchet canary calibrate`): main judged against itself.
public struct CanaryCalibrationRecord: Codable, Sendable, Equatable {
    /// The calibration number.
    public var id: Int64?
    public var service: String
    /// Main's commit when calibrated.
    public var main: String
    /// The calibration document (`ratchet.canary-calibration/v1`).
    public var calibration: JSONValue
    public var createdAt: Date

    public init(service: String, main: String, calibration: JSONValue, createdAt: Date) {
        self.service = service; self.main = main; self.calibration = calibration; self.createdAt = createdAt
    }
}

extension CanaryCalibrationRecord: FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "canaryCalibration"
    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let service = Column(CodingKeys.service)
    }
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

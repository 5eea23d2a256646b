import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// A trajectory in its native JSON form, `ratchet.trajectory/v1` (SPEC §9, docs/formats.md).
public struct TrajectoryDocument: Codable, Sendable, Equatable {
    public struct Action: Codable, Sendable, Equatable {
        public var tool: String
        public var arguments: JSONValue
        public var risk: String
        public var effect: String
    }
    public struct Observation: Codable, Sendable, Equatable {
        public var ok: Bool
        public var output: String
        public var data: JSONValue
    }
    public struct Step: Codable, Sendable, Equatable {
        public var index: Int
        public var time: Date
        public var action: Action
        public var observation: Observation
        public var commit: String?
        /// Model usage reported for the step (`tokens_in`, `tokens_out`, `cost_usd`).
        public var usage: JSONValue?
    }
    public var schema = "ratchet.trajectory/v1"
    public var id: String
    public var ticket: String
    public var service: String
    public var attempt: Int
    public var agent: String
    public var initialState: JSONValue
    public var steps: [Step]
    public var outcome: JSONValue?
    public var labels: [JSONValue]
    enum CodingKeys: String, CodingKey {
        case schema, id, ticket, service, attempt, agent, steps, outcome, labels
        case initialState = "initial_state"
    }
}

/// The JSON coders every Ratchet document uses: sorted keys, ISO 8601 dates.
public enum RatchetJSON {
    /// An encoder with sorted keys and ISO 8601 dates; `pretty` adds indentation.
    public static func encoder(pretty: Bool = true) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// A decoder for the same format.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// `value` as a JSON string.
    public static func string<T: Encodable>(_ value: T, pretty: Bool = true) throws -> String {
        String(decoding: try encoder(pretty: pretty).encode(value), as: UTF8.self)
    }

    /// Any encodable value as a `JSONValue`.
    public static func value<T: Encodable>(_ value: T) throws -> JSONValue {
        try decoder().decode(JSONValue.self, from: encoder(pretty: false).encode(value))
    }
}

extension Workspace {
    /// The complete trajectory `id` as its native document.
    public func trajectoryDocument(_ id: String) throws -> TrajectoryDocument {
        try database.read { db in try Self.trajectoryDocument(db, id: id) }
    }

    static func trajectoryDocument(_ db: Database, id: String) throws -> TrajectoryDocument {
        guard let record = try TrajectoryRecord.fetchOne(db, key: id) else { throw RatchetError("no trajectory \(id)") }
        let steps = try TrajectoryStepRecord.filter(TrajectoryStepRecord.Columns.trajectoryId == id)
            .order(TrajectoryStepRecord.Columns.index).fetchAll(db)
        return TrajectoryDocument(
            id: record.id, ticket: record.ticketId, service: record.service, attempt: record.attemptNumber, agent: record.agent,
            initialState: record.initialState,
            steps: steps.map { step in
                TrajectoryDocument.Step(
                    index: step.index, time: step.time,
                    action: .init(tool: step.tool, arguments: step.arguments, risk: step.risk, effect: step.effect),
                    observation: .init(ok: step.ok, output: step.output, data: step.data), commit: step.commit,
                    usage: step.usage)
            },
            outcome: record.outcome, labels: record.labels)
    }

    /// Appends a step to a trajectory, with its event, in one transaction. Returns its index.
    /// The output is redacted; `usage` is the model usage the agent reported for the step.
    @discardableResult
    public func recordStep(trajectory: String, ticket: String, service: String, attempt: Int, tool: String, arguments: JSONValue,
                           risk: String, effect: String, ok: Bool, output: String, data: JSONValue, commit: String?,
                           usage: JSONValue? = nil) throws -> Int {
        let index = try database.write { db in
            let index = (try Int.fetchOne(db, sql: "SELECT MAX(\"index\") FROM trajectoryStep WHERE trajectoryId = ?", arguments: [trajectory]) ?? 0) + 1
            let step = TrajectoryStepRecord(trajectoryId: trajectory, index: index, time: Date(), tool: tool, arguments: arguments,
                                            risk: risk, effect: effect, ok: ok, output: redact(output), data: data, commit: commit,
                                            usage: usage)
            try step.insert(db)
            try RatchetDatabase.appendEvent(db, kind: "trajectory.step", service: service, ticket: ticket, attempt: attempt, data: [
                "trajectory": .string(trajectory), "index": .number(Double(index)), "tool": .string(tool), "ok": .bool(ok)])
            return index
        }
        try Failpoints.hit("trajectory.step.recorded")
        return index
    }

    /// `text` with every match of the default and configured secret patterns replaced by `[REDACTED]`.
    func redact(_ text: String) -> String {
        SecretScanner(extra: config.secretPatterns).redact(text)
    }

    /// Every string of `value` (keys too) redacted.
    func redact(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(redact(text))
        case .array(let items): .array(items.map { redact($0) })
        case .object(let members): .object(Dictionary(members.map { (redact($0.key), redact($0.value)) }, uniquingKeysWith: { $1 }))
        default: value
        }
    }

    /// The model spend (USD) reported on every step of every attempt at ticket `id`.
    public func ticketSpend(_ id: String) throws -> Double {
        try database.read { db in
            try Double.fetchOne(db, sql: """
                SELECT COALESCE(SUM(json_extract(s.usage, '$.cost_usd')), 0) FROM trajectoryStep s
                JOIN trajectory t ON t.id = s.trajectoryId WHERE t.ticketId = ? AND s.usage IS NOT NULL
                """, arguments: [id]) ?? 0
        }
    }
}

extension Workspace {
    /// What a trajectory records of the world when its attempt starts (SPEC §9): main's sha,
    /// a metric snapshot and the invariant status (observe seam); either is null, with the
    /// reason under `unavailable`, when it cannot be read. Reads the store: call it outside
    /// a write transaction.
    func initialState(_ serviceConfig: ServiceConfig, repository: Repository, main: ObjectID) -> JSONValue {
        let name = serviceConfig.name
        var state: [String: JSONValue] = ["main": .string(main.hex)]
        var unavailable: [String: JSONValue] = [:]
        // Read once, through the attempt's repository handle and configuration.
        let files = Result { try observedFiles(name, repository: repository, main: main) }
        let reader = Result { try metricsReader(name, config: serviceConfig) }
        do { state["metrics"] = metricSnapshot(service: name, files: (try? files.get()) ?? ObservedFiles(), reader: try reader.get()) } catch {
            state["metrics"] = .null
            unavailable["metrics"] = .string(describe(error))
        }
        do { state["invariants"] = try RatchetJSON.value(invariantStatus(service: name, files: files.get(), reader: reader.get())) } catch {
            state["invariants"] = .null
            unavailable["invariants"] = .string(describe(error))
        }
        if !unavailable.isEmpty { state["unavailable"] = .object(unavailable) }
        return .object(state)
    }
}

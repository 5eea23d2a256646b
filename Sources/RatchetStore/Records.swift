import Foundation
import GRDB

/// A ticket's lifecycle state (SPEC §4). An open set: later stages may add states.
public struct TicketState: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible, DatabaseValueConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let open = TicketState(rawValue: "open")
    public static let working = TicketState(rawValue: "working")
    public static let proposed = TicketState(rawValue: "proposed")
    public static let needsApproval = TicketState(rawValue: "needs-approval")
    public static let merged = TicketState(rawValue: "merged")
    public static let reverted = TicketState(rawValue: "reverted")
    public static let escalated = TicketState(rawValue: "escalated")
    public static let cancelled = TicketState(rawValue: "cancelled")
    /// A person closed the ticket with a note (`ratchet ticket resolve`): an end state.
    public static let resolved = TicketState(rawValue: "resolved")
    /// Every state, in lifecycle order.
    public static let all: [TicketState] = [.open, .working, .proposed, .needsApproval, .merged, .reverted, .escalated, .cancelled, .resolved]
    public var description: String { rawValue }
}

/// An attempt's lifecycle state (SPEC §4).
public struct AttemptState: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible, DatabaseValueConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let running = AttemptState(rawValue: "running")
    public static let proposed = AttemptState(rawValue: "proposed")
    public static let landed = AttemptState(rawValue: "landed")
    public static let reverted = AttemptState(rawValue: "reverted")
    public static let failed = AttemptState(rawValue: "failed")
    public static let rejected = AttemptState(rawValue: "rejected")
    public static let interrupted = AttemptState(rawValue: "interrupted")
    public static let cancelled = AttemptState(rawValue: "cancelled")
    public var description: String { rawValue }
}

/// A registered service.
public struct ServiceRecord: Codable, Sendable, Equatable {
    public var name: String
    /// The repository path, relative to the workspace (`services/NAME`).
    public var path: String
    public var template: String?
    public var isPaused: Bool
    public var createdAt: Date
    public init(name: String, path: String, template: String?, isPaused: Bool = false, createdAt: Date) {
        self.name = name; self.path = path; self.template = template; self.isPaused = isPaused; self.createdAt = createdAt
    }
}

extension ServiceRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "service"
    public enum Columns {
        public static let name = Column(CodingKeys.name)
    }
}

/// A ticket (SPEC §4).
public struct TicketRecord: Codable, Sendable, Equatable {
    public var id: String
    public var number: Int
    public var service: String
    public var title: String
    public var objective: String
    public var acceptance: [String]
    public var constraints: [String]
    public var context: String
    public var source: String
    public var fingerprint: String?
    public var risk: String
    public var priority: Int
    public var agent: String?
    public var assignee: String
    public var state: TicketState
    public var createdAt: Date
    public var updatedAt: Date
    /// True when the ticket restores reliability (filed from a breach, or marked by a person):
    /// only such tickets land on a service whose error budget is spent (SPEC §4).
    public var restores: Bool

    public init(id: String, number: Int, service: String, title: String, objective: String, acceptance: [String],
                constraints: [String], context: String, source: String, fingerprint: String?, risk: String,
                priority: Int, agent: String?, assignee: String, state: TicketState, createdAt: Date, updatedAt: Date,
                restores: Bool = false) {
        self.id = id; self.number = number; self.service = service; self.title = title; self.objective = objective
        self.acceptance = acceptance; self.constraints = constraints; self.context = context; self.source = source
        self.fingerprint = fingerprint; self.risk = risk; self.priority = priority; self.agent = agent
        self.assignee = assignee; self.state = state; self.createdAt = createdAt; self.updatedAt = updatedAt
        self.restores = restores
    }
}

extension TicketRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "ticket"
    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let number = Column(CodingKeys.number)
        public static let service = Column(CodingKeys.service)
        public static let state = Column(CodingKeys.state)
    }
}

/// One attempt at a ticket: a branch, a worktree, a trajectory.
public struct AttemptRecord: Codable, Sendable, Equatable {
    public var id: Int64?
    public var ticketId: String
    public var number: Int
    public var service: String
    public var branch: String
    /// The worktree folder, relative to the workspace (`worktrees/T-1-1`).
    public var worktree: String
    public var trajectoryId: String
    public var agent: String
    public var state: AttemptState
    /// Main's commit when the attempt was claimed.
    public var base: String
    public var head: String?
    public var candidate: String?
    public var landing: String?
    public var revert: String?
    public var error: String?
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    public var startedAt: Date
    public var endedAt: Date?

    public init(ticketId: String, number: Int, service: String, branch: String, worktree: String, trajectoryId: String,
                agent: String, state: AttemptState, base: String, startedAt: Date) {
        self.ticketId = ticketId; self.number = number; self.service = service; self.branch = branch
        self.worktree = worktree; self.trajectoryId = trajectoryId; self.agent = agent; self.state = state
        self.base = base; self.startedAt = startedAt
    }
}

extension AttemptRecord: FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "attempt"
    public enum Columns {
        public static let ticketId = Column(CodingKeys.ticketId)
        public static let number = Column(CodingKeys.number)
        public static let state = Column(CodingKeys.state)
        public static let landing = Column(CodingKeys.landing)
    }
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A trajectory's header (SPEC §9); its steps are `TrajectoryStepRecord`s.
public struct TrajectoryRecord: Codable, Sendable, Equatable {
    public var id: String
    public var ticketId: String
    public var attemptNumber: Int
    public var service: String
    public var agent: String
    /// JSON object: main sha, metric snapshot, invariant status.
    public var initialState: JSONValue
    /// JSON object: status, verdict, acceptance results, landing sha, duration. Nil while running.
    public var outcome: JSONValue?
    /// Human labels: approvals, rejections, reverts.
    public var labels: [JSONValue]
    public var createdAt: Date

    public init(id: String, ticketId: String, attemptNumber: Int, service: String, agent: String,
                initialState: JSONValue, outcome: JSONValue? = nil, labels: [JSONValue] = [], createdAt: Date) {
        self.id = id; self.ticketId = ticketId; self.attemptNumber = attemptNumber; self.service = service
        self.agent = agent; self.initialState = initialState; self.outcome = outcome; self.labels = labels
        self.createdAt = createdAt
    }
}

extension TrajectoryRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "trajectory"
}

/// One step of a trajectory: an action and the observation it produced.
public struct TrajectoryStepRecord: Codable, Sendable, Equatable {
    public var trajectoryId: String
    public var index: Int
    public var time: Date
    public var tool: String
    public var arguments: JSONValue
    public var risk: String
    public var effect: String
    public var ok: Bool
    public var output: String
    public var data: JSONValue
    public var commit: String?
    /// Model usage reported for this step: `{tokens_in, tokens_out, cost_usd}` (any of them).
    public var usage: JSONValue?

    public init(trajectoryId: String, index: Int, time: Date, tool: String, arguments: JSONValue, risk: String,
                effect: String, ok: Bool, output: String, data: JSONValue, commit: String?, usage: JSONValue? = nil) {
        self.trajectoryId = trajectoryId; self.index = index; self.time = time; self.tool = tool
        self.arguments = arguments; self.risk = risk; self.effect = effect; self.ok = ok; self.output = output
        self.data = data; self.commit = commit; self.usage = usage
    }
}

extension TrajectoryStepRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "trajectoryStep"
    public enum Columns {
        public static let trajectoryId = Column(CodingKeys.trajectoryId)
        public static let index = Column(CodingKeys.index)
    }
}

/// One entry of the event log. `seq` is the cursor `ratchet events --since` takes.
public struct EventRecord: Codable, Sendable, Equatable {
    public var seq: Int64?
    public var time: Date
    public var kind: String
    public var service: String?
    public var ticketId: String?
    public var attemptNumber: Int?
    public var data: JSONValue

    public init(time: Date, kind: String, service: String?, ticketId: String?, attemptNumber: Int?, data: JSONValue) {
        self.time = time; self.kind = kind; self.service = service; self.ticketId = ticketId
        self.attemptNumber = attemptNumber; self.data = data
    }
}

extension EventRecord: FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "event"
    public enum Columns {
        public static let seq = Column(CodingKeys.seq)
    }
    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }
}

import Foundation
import RatchetStore

/// What an agent's tool calls have added to its trajectory, against the service's
/// `limits.trajectory_steps` and `limits.trajectory_bytes` (adr/0043). The call that reaches
/// either limit is recorded, fails and ends the attempt; once full, nothing more is recorded.
/// Ratchet's own closing steps (the agent's output, bounded by `agent_output_bytes`; the
/// final step commit) are recorded after that, so a trajectory holds at most the limits plus
/// those two.
struct TrajectoryGrowth {
    private(set) var steps = 0
    private(set) var bytes = 0
    private(set) var isFull = false
    private var limitReached = false

    static let fullMessage = "the trajectory is at its limit (limits.trajectory_steps, limits.trajectory_bytes)"

    /// Why the attempt ends when the call about to be recorded reaches a limit; nil when it does not.
    func overLimit(adding arguments: JSONValue, _ observation: ToolObservation, config: ServiceConfig) -> String? {
        if steps + 1 >= config.trajectorySteps {
            return "trajectory limit reached: \(steps + 1) steps recorded, limit \(config.trajectorySteps) (limits.trajectory_steps)"
        }
        let total = bytes + Self.size(arguments, observation)
        if total >= config.trajectoryBytes {
            return "trajectory limit reached: \(total) bytes recorded, limit \(config.trajectoryBytes) (limits.trajectory_bytes)"
        }
        return nil
    }

    /// The call about to be recorded reached a limit: it is the last one recorded.
    mutating func reachLimit() { limitReached = true }

    /// Counts a recorded call; after the one that reached a limit, the trajectory is full.
    mutating func add(_ arguments: JSONValue, _ observation: ToolObservation) {
        steps += 1
        bytes += Self.size(arguments, observation)
        isFull = limitReached
    }

    /// A step's stored size, near enough: its arguments' and data's JSON and its output.
    static func size(_ arguments: JSONValue, _ observation: ToolObservation) -> Int {
        let json = { (value: JSONValue) in (try? RatchetJSON.string(value, pretty: false).utf8.count) ?? 0 }
        return json(arguments) + json(observation.data) + observation.output.utf8.count
    }
}

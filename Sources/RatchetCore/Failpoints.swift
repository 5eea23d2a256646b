import Foundation

/// Named failpoints at the boundaries between durable steps, for the crash suite
/// (the technique of FreeBSD's fail(9), TiKV's fail-rs, FoundationDB's simulation tests).
///
/// They are compiled into every build and cost one dictionary-emptiness check when unset.
/// Enable them with `RATCHET_FAILPOINTS="name=action[,name=action…]"`, where action is
/// `crash` (the process kills itself with SIGKILL, as a power cut or OOM kill would) or
/// `error` (the step throws). docs/crash-safety.md lists every point.
public enum Failpoints {
    /// What an enabled failpoint does.
    enum Action: Equatable { case crash, error }

    private static let table: [String: Action] = parse(ProcessInfo.processInfo.environment["RATCHET_FAILPOINTS"] ?? "")

    static func parse(_ text: String) -> [String: Action] {
        var result: [String: Action] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            switch parts[1] {
            case "crash": result[parts[0]] = .crash
            case "error": result[parts[0]] = .error
            default: continue
            }
        }
        return result
    }

    /// Passes through failpoint `name`: nothing unless it is enabled.
    @inline(__always)
    public static func hit(_ name: StaticString) throws {
        if table.isEmpty { return }
        try trigger("\(name)")
    }

    private static func trigger(_ name: String) throws {
        switch table[name] {
        case .crash?:
            kill(getpid(), SIGKILL)
            while true { pause() }
        case .error?:
            throw RatchetError("failpoint \(name) triggered")
        case nil:
            return
        }
    }

    /// Every failpoint, in the order a ticket meets them (docs/crash-safety.md).
    public static let all: [String] = [
        "claim.committed", "branch.created", "worktree.ready", "agent.finished", "trajectory.step.recorded", "step.flushed", "step.committed", "step.recorded",
        "attempt.proposed",
        "merge.leased", "candidate.flushed", "candidate.written", "checkout.switched", "acceptance.done", "canary.judged", "land.flushed", "land.ref-moved",
        "land.committed",
        "note.written", "checkout.files-written", "merge.cleaned",
        "revert.ref-moved", "revert.committed", "revert.noted",
        "pack.loose-written", "pack.combined", "pack.references-written",
        "drift.judged", "reflect.filed", "reindex.attempt", "notify.posted",
        "deploy.started", "deploy.recorded",
        "pump.recovered", "pump.landed", "pump.watch-breached",
    ]
}

import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// When `ratchet reflect` judges drift: once a week per service (`auto`), `never`, or now
/// whatever the last judgement (`force`).
public enum DriftMode: String, Sendable, CaseIterable {
    case auto, never, force
}

/// One service's week-over-week drift judgement, or why there was none this run.
public struct DriftJudgement: Codable, Sendable, Equatable {
    public var service: String
    /// `judged` (the canary ran now), `unchanged` (main's tree is the week-old tree),
    /// `skipped` (see `reason`).
    public var status: String
    /// The week-old main (the baseline) and today's main (the candidate).
    public var baseline: String?
    public var candidate: String?
    /// The canary's verdict and its stored report, when it ran.
    public var verdict: String?
    public var report: Int64?
    public var reason: String

    /// `drift kv: judged fail — …` for a terminal.
    public var line: String {
        "drift \(service): \(status)\(verdict.map { " \($0)" } ?? "") — \(reason)"
    }
}

extension Workspace {
    /// How far apart drift's baseline and candidate are, and how often drift is judged.
    static let driftInterval: Double = 7 * 86400

    /// Drift: a series of small regressions, each inside the canary's allowance. Once a week
    /// per service, main's canary judges today's main against main as it was a week earlier;
    /// each judgement is a `reflection.drift` event, and a `fail` is an occurrence of the
    /// `drift` pattern (Reflection.swift).
    func judgeDrift(mode: DriftMode, now: Date, progress: @escaping @Sendable (String) -> Void) throws -> [DriftJudgement] {
        guard mode != .never else { return [] }
        return try services().map(\.name).sorted().map { service in
            try judgeDrift(service: service, mode: mode, now: now, progress: progress)
        }
    }

    private func judgeDrift(service: String, mode: DriftMode, now: Date, progress: @escaping @Sendable (String) -> Void) throws -> DriftJudgement {
        var result = DriftJudgement(service: service, status: "skipped", reason: "")
        if mode == .auto, let last = try lastDriftJudgement(service), now.timeIntervalSince(last) < Self.driftInterval {
            result.reason = "judged \(StateChange.stamp(last)); next after \(StateChange.stamp(last.addingTimeInterval(Self.driftInterval)))"
            return result
        }
        let repository = try openService(service)
        guard let main = try repository.resolveReference("refs/heads/main") else { result.reason = "no main"; return result }
        guard try repository.hasEntry("canary/canary.yaml", in: main) else { result.reason = "no canary/canary.yaml on main"; return result }
        guard let weekAgo = try mainAsOf(now.addingTimeInterval(-Self.driftInterval), from: main, repository: repository) else {
            result.reason = "main's history is shorter than a week"
            return result
        }
        result.baseline = weekAgo.id.hex
        result.candidate = main.hex
        if weekAgo.tree == (try repository.commit(main)).tree {
            result.status = "unchanged"
            result.reason = "main's tree is the same as a week earlier"
        } else {
            progress("reflect: judging drift of \(service): main \(main.short) against main a week earlier (\(weekAgo.id.short))")
            let report = try judgeCanary(service: service, repository: repository, baseline: weekAgo.id, candidate: main, judge: main,
                                         ticket: nil, attempt: nil, progress: progress)!
            result.status = "judged"
            result.verdict = report.verdict.rawValue
            result.report = report.id
            result.reason = report.summary
            // Killed here, the report is stored but the week is not marked judged: the next run judges again.
            try Failpoints.hit("drift.judged")
        }
        try recordDriftJudgement(result)
        return result
    }

    /// The newest first-parent commit of main committed at or before `time`.
    private func mainAsOf(_ time: Date, from main: ObjectID, repository: Repository) throws -> CommitInfo? {
        var found: CommitInfo?
        try repository.walkFirstParents(from: main) { commit in
            guard (commit.committer.time ?? .distantFuture) > time else { found = commit; return false }
            return true
        }
        return found
    }

    private func lastDriftJudgement(_ service: String) throws -> Date? {
        try database.read { db in
            try Date.fetchOne(db, sql: "SELECT time FROM event WHERE kind = 'reflection.drift' AND service = ? ORDER BY seq DESC LIMIT 1",
                              arguments: [service])
        }
    }

    private func recordDriftJudgement(_ judgement: DriftJudgement) throws {
        try database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "reflection.drift", service: judgement.service, data: [
                "status": .string(judgement.status), "baseline": .optional(judgement.baseline), "candidate": .optional(judgement.candidate),
                "verdict": .optional(judgement.verdict), "report": judgement.report.map { .number(Double($0)) } ?? .null,
                "summary": .string(judgement.reason)])
        }
    }

    /// Drift: each service's failed week-over-week judgements in the window.
    func driftFailures(since: Date) throws -> [ReflectionObservation] {
        let events = try database.read { db in
            try EventRecord.filter(Column("kind") == "reflection.drift" && Column("time") >= since).order(EventRecord.Columns.seq).fetchAll(db)
        }.filter { $0.data["verdict"]?.stringValue == "fail" }
        let byService = Dictionary(grouping: events) { $0.service ?? "" }
        return byService.keys.sorted().filter { !$0.isEmpty }.map { service in
            let list = byService[service]!
            let evidence = list.map { event in
                let data = event.data
                return "canary report \(data["report"]?.numberValue.map { String(Int($0)) } ?? "?"): main \(String((data["candidate"]?.stringValue ?? "?").prefix(12))) "
                    + "against main a week earlier \(String((data["baseline"]?.stringValue ?? "?").prefix(12))): \(data["summary"]?.stringValue ?? "")"
            }
            return ReflectionObservation(kind: "drift", subject: service, service: service, times: list.map(\.time), evidence: evidence,
                                         tried: "each landing of \(service) passed its canary, yet main now fails the same canary against main of a week earlier")
        }
    }
}

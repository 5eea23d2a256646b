import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// The weekly merge summary (SPEC §10, docs/summary.md): per service what landed, what was
/// reverted, rejected or escalated, reflection findings, open tickets and error budgets.
public struct WeeklySummary: Codable, Sendable, Equatable {
    /// `ratchet.summary/v1`.
    public var schema = "ratchet.summary/v1"
    /// The ISO week, `2026-W49`.
    public var week: String
    /// Monday 00:00 UTC.
    public var from: Date
    /// The next Monday 00:00 UTC (exclusive).
    public var to: Date
    /// When the summary was made.
    public var generatedAt: Date
    /// True for the current week: the summary covers it so far.
    public var isPartial: Bool
    /// The workspace folder (the `git -C` commands name its services).
    public var workspace: String
    /// One entry per service, by name.
    public var services: [ServiceSummary]
    /// Workspace-wide remarks (`no services in this workspace`).
    public var remarks: [String]
}

/// One service's week.
public struct ServiceSummary: Codable, Sendable, Equatable {
    /// The service.
    public var name: String
    /// Landings committed in the week, oldest first.
    public var landings: [LandingSummary]
    /// Reverts committed in the week, oldest first.
    public var reverts: [RevertSummary]
    /// Attempts rejected in the week (by a person or by the canary).
    public var rejected: [TicketEventSummary]
    /// Tickets escalated in the week.
    public var escalated: [TicketEventSummary]
    /// `reflection:*` tickets filed in the week or still waiting for a person.
    public var findings: [TicketBrief]
    /// Tickets not yet in an end state, as of now.
    public var openTickets: [TicketBrief]
    /// Each SLO's error budget left now (`availability 93.1% (now)`), or why there is none.
    public var errorBudget: String
    /// Commits on main in the week without Ratchet's trailers (made by hand).
    public var otherCommits: [CommitBrief]
    /// What the summary could not find (missing notes, landings unknown to the store).
    public var missing: [String]
}

/// One landing: a `Merge T-n` commit on main.
public struct LandingSummary: Codable, Sendable, Equatable {
    public var ticket: String
    public var title: String
    /// The ticket's objective (store, else note; nil when neither has it).
    public var objective: String?
    public var sha: String
    public var committedAt: Date
    public var agent: String?
    public var trajectory: String?
    /// The `Canary:` trailer as written (`pass score=100`, `none`).
    public var canary: String?
    /// Verdict and score parsed from it (nil for `none`).
    public var verdict: String?
    public var score: Double?
    /// Per-metric changes of the canary report of the landed tree.
    public var metricChanges: [MetricChange]
    public var risk: String?
    /// `Approved-By`, when a person approved.
    public var approvedBy: String?
    /// The approval's note, from the trajectory's labels.
    public var approvalNote: String?
    /// The revert of this landing, when there is one on main.
    public var revertedBy: String?
    /// `git -C services/S show SHA`.
    public var showCommand: String
    /// `ratchet revert T-n --workspace WS --reason 'WHY'` (replace WHY).
    public var revertCommand: String
    /// Where the details came from: `store`, `note` or `trailers`.
    public var source: String
}

/// One metric's change in a canary report.
public struct MetricChange: Codable, Sendable, Equatable {
    public var name: String
    /// Pass, High, Low or NoData.
    public var classification: String
    /// Relative change of the median (candidate vs baseline); nil when undefined.
    public var change: Double?
}

/// One revert: a `Revert T-n` commit on main.
public struct RevertSummary: Codable, Sendable, Equatable {
    public var ticket: String
    public var sha: String
    public var reverts: String
    public var reason: String?
    public var committedAt: Date
    /// Who asked for it, from the trajectory's labels.
    public var by: String?
    public var showCommand: String
}

/// A ticket event of the week (a rejection, an escalation).
public struct TicketEventSummary: Codable, Sendable, Equatable {
    public var ticket: String
    public var title: String
    public var at: Date
    /// The person, when a person did it.
    public var by: String?
    public var reason: String
}

/// A ticket in one line.
public struct TicketBrief: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var state: String
    public var source: String
    public var assignee: String
}

/// A commit on main that Ratchet did not make.
public struct CommitBrief: Codable, Sendable, Equatable {
    public var sha: String
    public var subject: String
    public var committedAt: Date
}

/// What `ratchet summary` is asked for.
public struct SummaryRequest: Sendable {
    /// The week; nil: the week of `now`.
    public var week: ISOWeek?
    /// Only this service.
    public var service: String?
    /// The clock.
    public var now: Date
    /// Makes a request.
    public init(week: ISOWeek? = nil, service: String? = nil, now: Date = Date()) {
        self.week = week
        self.service = service
        self.now = now
    }
}

extension Workspace {
    /// Builds the summary of one ISO week from first-parent history and trailers, enriched
    /// by the store; notes are read only for landings the store does not know.
    public func summary(_ request: SummaryRequest) throws -> WeeklySummary {
        let current = ISOWeek(containing: request.now)
        let week = request.week ?? current
        guard week <= current else { throw RatchetError("week \(week) has not started yet (this is \(current))") }
        let names = try request.service.map { [try service($0).name] } ?? services().map(\.name)
        var result = WeeklySummary(week: week.description, from: week.start, to: week.end, generatedAt: request.now,
                                   isPartial: week == current, workspace: root.path, services: [], remarks: [])
        if names.isEmpty { result.remarks.append("no services in this workspace yet: add one with 'ratchet service add NAME --template T'") }
        for name in names.sorted() { result.services.append(try serviceSummary(name, week: week)) }
        if !names.isEmpty, result.services.allSatisfy({ $0.landings.isEmpty && $0.reverts.isEmpty }) {
            result.remarks.append("nothing landed or was reverted in \(week)")
        }
        return result
    }

    private func serviceSummary(_ name: String, week: ISOWeek) throws -> ServiceSummary {
        var summary = ServiceSummary(name: name, landings: [], reverts: [], rejected: [], escalated: [], findings: [], openTickets: [],
                                     errorBudget: errorBudgetLine(name), otherCommits: [], missing: [])
        let repository = try Repository.open(servicePath(name))
        let commits = try weekCommits(repository, week: week)
        let commands = ReviewCommands(workspace: root.path, service: servicePath(name))
        var revertOf: [String: String] = [:]
        for commit in commits {
            let trailers = TrailerValues(commit.message)
            if commit.parents.count == 2, let ticket = trailers["Ticket"], trailers["Trajectory"] != nil {
                summary.landings.append(landingFromTrailers(commit, ticket: ticket, trailers: trailers, commands: commands))
            } else if commit.parents.count == 1, let ticket = trailers["Ticket"], let reverts = trailers["Reverts"] {
                revertOf[reverts] = commit.id.hex
                summary.reverts.append(RevertSummary(ticket: ticket, sha: commit.id.hex, reverts: reverts, reason: trailers["Reason"],
                                                     committedAt: commit.committer.time ?? week.start, by: nil,
                                                     showCommand: commands.show(commit.id.hex)))
            } else if commit.parents.count > 0 {
                summary.otherCommits.append(CommitBrief(sha: commit.id.hex, subject: commit.subject, committedAt: commit.committer.time ?? week.start))
            }
        }
        try enrich(&summary, repository: repository, revertOf: revertOf)
        try addTickets(&summary, week: week)
        return summary
    }

    /// Each SLO's error budget left now (`availability 93.1%`), from the samples in the store.
    private func errorBudgetLine(_ service: String) -> String {
        do {
            let slos = try sloStatus(service: service)
            if slos.isEmpty { return "no SLOs (slos.yaml)" }
            return slos.map { slo in
                if let left = slo.budgetRemaining { return "\(slo.name) \(String(format: "%.1f", left * 100))% (now)" }
                return "\(slo.name) " + (slo.state == "error" ? "unknown: \(slo.error ?? "error")" : "no data yet")
            }.joined(separator: ", ")
        } catch {
            return "unknown (\(describe(error)))"
        }
    }

    /// First-parent commits of main committed in `week`, oldest first.
    private func weekCommits(_ repository: Repository, week: ISOWeek) throws -> [CommitInfo] {
        guard let main = try repository.resolveReference("refs/heads/main") else { return [] }
        var result: [CommitInfo] = []
        try repository.walkFirstParents(from: main) { commit in
            let time = commit.committer.time ?? .distantPast
            if time < week.end && time >= week.start { result.append(commit) }
            return time >= week.start
        }
        return result.reversed()
    }

    /// A landing as its trailers tell it.
    private func landingFromTrailers(_ commit: CommitInfo, ticket: String, trailers: TrailerValues, commands: ReviewCommands) -> LandingSummary {
        let subject = commit.subject
        let prefix = "Merge \(ticket): "
        let canary = trailers["Canary"]
        let parts = canary?.split(separator: " ") ?? []
        let verdict = parts.first.map(String.init).flatMap { $0 == "none" ? nil : $0 }
        let score = parts.dropFirst().first.flatMap { $0.hasPrefix("score=") ? Double($0.dropFirst(6)) : nil }
        return LandingSummary(ticket: ticket, title: subject.hasPrefix(prefix) ? String(subject.dropFirst(prefix.count)) : subject,
                              objective: nil, sha: commit.id.hex, committedAt: commit.committer.time ?? Date(timeIntervalSince1970: 0),
                              agent: trailers["Agent"], trajectory: trailers["Trajectory"], canary: canary, verdict: verdict, score: score,
                              metricChanges: [], risk: trailers["Risk"], approvedBy: trailers["Approved-By"], approvalNote: nil,
                              revertedBy: nil, showCommand: commands.show(commit.id.hex), revertCommand: commands.revert(ticket),
                              source: "trailers")
    }
}

/// The commands a summary prints for a person, with the paths quoted once per service.
struct ReviewCommands {
    private let showPrefix: String
    private let revertSuffix: String

    init(workspace: String, service: String) {
        showPrefix = "git -C \(Self.shellQuoted(service)) show "
        revertSuffix = " --workspace \(Self.shellQuoted(workspace)) --reason 'WHY'"
    }

    /// `git -C WORKSPACE/services/S show SHA`.
    func show(_ sha: String) -> String { showPrefix + sha }

    /// `ratchet revert T-7 --workspace WORKSPACE --reason 'WHY'`.
    func revert(_ ticket: String) -> String { "ratchet revert \(ticket)" + revertSuffix }

    private static func shellQuoted(_ text: String) -> String {
        text.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+".contains($0) }) ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// The last value of each trailer key of a commit message.
struct TrailerValues {
    private var values: [String: String] = [:]
    init(_ message: String) {
        for trailer in Repository.trailers(of: message) { values[trailer.key] = trailer.value }
    }
    subscript(key: String) -> String? { values[key] }
}

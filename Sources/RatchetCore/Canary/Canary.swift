import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// A canary report (`ratchet.canary/v1`, docs/canary.md): what ran, what the judge said and why.
public struct CanaryReport: Codable, Sendable, Equatable {
    public var schema = "ratchet.canary/v1"
    /// The stored report's number (`ratchet canary show N`); nil before it is stored.
    public var id: Int64?
    public var service: String
    public var ticket: String?
    public var attempt: Int?
    /// Main's commit: the baseline checkout and the canary module's source.
    public var baseline: String
    /// The commit judged (the candidate merge commit, or `--ref`'s commit).
    public var candidate: String
    public var verdict: CanaryVerdict
    /// 0–100.
    public var score: Double
    /// One line: verdict, score and the main reasons.
    public var summary: String
    /// Why the canary itself failed (invalid canary.yaml, crash, timeout, garbage), if it did.
    public var fault: String?
    public var thresholds: Thresholds?
    public var metrics: [MetricJudgement]
    public var checks: [CheckJudgement]
    public var runs: [CanaryRun]
    /// How many rounds ran and why they stopped (nil for a canary that did not start).
    public var rounds: Rounds?
    public var startedAt: Date
    public var durationS: Double
    /// The candidate's exposition snapshots (not stored with the report): `invariant:NAME`
    /// criteria are evaluated over them (Observe/CandidateInvariants.swift).
    public var candidateExpositions: [ExpositionSnapshot] = []

    /// The rounds of a canary run.
    public struct Rounds: Codable, Sendable, Equatable {
        /// Rounds every side completed.
        public var used: Int
        /// `rounds.min` and `rounds.max` of canary.yaml.
        public var min: Int
        public var max: Int
        /// Why the rounds stopped.
        public var stop: String
    }

    /// The verdict's thresholds.
    public struct Thresholds: Codable, Sendable, Equatable {
        public var pass: Double
        public var marginal: Double
    }

    enum CodingKeys: String, CodingKey {
        case schema, id, service, ticket, attempt, baseline, candidate, verdict, score, summary, fault, thresholds, metrics, checks, runs, rounds
        case startedAt = "started_at", durationS = "duration_s"
    }

    /// The value of the landing's `Canary:` trailer: `pass score=97`.
    public var trailer: String { "\(verdict) score=\(CanaryFormat.number(score))" }

    /// The per-metric reasons as an aligned table, then the checks and any fault.
    public func table() -> String {
        var rows = [["metric", "class", "baseline", "candidate", "change", "p", "reason"]]
        for metric in metrics {
            let side = { (s: SampleSummary) in s.median.map { "\(CanaryFormat.number($0)) (n=\(s.count))" } ?? "- (n=0)" }
            rows.append([metric.name + (metric.critical ? "*" : ""), metric.classification.rawValue, side(metric.baseline),
                         side(metric.candidate), metric.change.map { CanaryJudge.percent($0) } ?? "-",
                         metric.p.map(CanaryJudge.pValue) ?? "-", metric.reason])
        }
        let widths = (0..<6).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = ["canary report \(id.map { "#\($0)" } ?? "") \(service)\(ticket.map { " \($0)" } ?? "")\(attempt.map { "/\($0)" } ?? ""): "
                     + "candidate \(candidate.prefix(7)) vs main \(baseline.prefix(7))"]
        lines.append("verdict \(verdict) score=\(CanaryFormat.number(score))"
                     + (thresholds.map { " (pass ≥ \(CanaryFormat.number($0.pass)), marginal ≥ \(CanaryFormat.number($0.marginal)))" } ?? ""))
        if let fault { lines.append("fault: \(fault)") }
        if !metrics.isEmpty {
            for row in rows {
                lines.append(zip(row.prefix(6), widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                             + "  " + row[6])
            }
        }
        for check in checks { lines.append("check \(check.ok ? "ok  " : "FAIL") \(check.check)  (\(check.reason))") }
        for run in runs {
            lines.append("run \(run.role)\(run.side.map { " (side \($0))" } ?? ""): \(run.ok ? "ok" : "fault: \(run.fault ?? "")"), "
                         + "\(run.rounds.map { "\($0) rounds, " } ?? "")\(run.samples) samples, \(CanaryFormat.number(run.durationS)) s")
        }
        if let rounds { lines.append("rounds: \(rounds.used) (min \(rounds.min), max \(rounds.max)); stopped: \(rounds.stop)") }
        if !metrics.isEmpty { lines.append("(* critical)") }
        return lines.joined(separator: "\n")
    }
}

extension Workspace {
    /// Runs main's canary (its `canary/` folder at `judge`, by default `baseline`) comparing
    /// `candidate` with `baseline`, judges it and stores the report. Returns nil when the
    /// judge has no `canary/canary.yaml`. A canary that is invalid, crashes, hangs or prints garbage gives
    /// a `fail` report with the reason; only Ratchet's own failures (disk, git) throw.
    func judgeCanary(service: String, repository: Repository, baseline: ObjectID, candidate: ObjectID, judge: ObjectID? = nil,
                     ticket: String?, attempt: Int?, progress: @Sendable (String) -> Void) throws -> CanaryReport? {
        let judge = judge ?? baseline
        let data = try repository.fileContents(CanaryConfig.path, in: judge)
        let hasFolder = try repository.hasEntry("canary", in: judge)
        guard data != nil || hasFolder else { return nil }
        let started = Date()
        var report = CanaryReport(service: service, ticket: ticket, attempt: attempt, baseline: baseline.hex, candidate: candidate.hex,
                                  verdict: .fail, score: 0, summary: "", fault: nil, thresholds: nil, metrics: [], checks: [], runs: [],
                                  rounds: nil, startedAt: started, durationS: 0)
        func finish(fault: String) -> CanaryReport {
            report.fault = fault
            report.summary = "fail score=0: canary fault: \(fault)"
            return report
        }
        var config: CanaryConfig?
        if let data {
            do {
                config = try CanaryConfig.parse(String(decoding: data, as: UTF8.self), file: "canary/canary.yaml on main")
            } catch {
                report = finish(fault: describe(error))
            }
        } else {
            report = finish(fault: "main has a canary/ folder but no canary/canary.yaml")
        }
        if let config {
            report.thresholds = .init(pass: config.passThreshold, marginal: config.marginalThreshold)
            let lock = try lockCanary(progress: progress)
            defer { Workspace.unlockAndClose(lock) }
            progress("canary: running main's canary/ on baseline \(baseline.short) and candidate \(candidate.short) as neutral sides a and b"
                     + "\(config.isParallel ? " in parallel" : " in random order"), \(config.minRounds)–\(config.maxRounds) rounds")
            let measured = try measureCanary(config, service: service, repository: repository, baseline: baseline, candidate: candidate,
                                             judge: judge) { round, before, after in
                CanaryJudge.stopReason(CanaryJudge.judge(config, baseline: before, candidate: after), round: round)
            }
            report.runs = measured.runs
            report.candidateExpositions = measured.candidate.expositions
            report.rounds = .init(used: measured.rounds, min: config.minRounds, max: config.maxRounds, stop: measured.stopReason)
            if let fault = measured.fault {
                report = finish(fault: fault)
            } else {
                let judgement = CanaryJudge.judge(config, baseline: measured.baseline, candidate: measured.candidate, endedEarly: measured.endedEarly)
                report.verdict = judgement.verdict
                report.score = judgement.score
                report.summary = judgement.summary + " [\(measured.rounds) rounds: \(measured.stopReason)]"
                report.metrics = judgement.metrics
                report.checks = judgement.checks
            }
        }
        report.durationS = (Date().timeIntervalSince(started) * 1000).rounded() / 1000
        try storeCanaryReport(&report)
        progress("canary: \(report.summary)")
        return report
    }

    /// Stores a report with its `canary.reported` event; sets its id.
    func storeCanaryReport(_ report: inout CanaryReport) throws {
        let value = try RatchetJSON.value(report)
        report.id = try database.write { db in
            var record = CanaryReportRecord(service: report.service, ticketId: report.ticket, attemptNumber: report.attempt,
                                            baseline: report.baseline, candidate: report.candidate, verdict: report.verdict.rawValue,
                                            score: report.score, report: value, createdAt: Date())
            try record.insert(db)
            try RatchetDatabase.appendEvent(db, kind: "canary.reported", service: report.service, ticket: report.ticket, attempt: report.attempt,
                                            data: ["report": .number(Double(record.id!)), "verdict": .string(report.verdict.rawValue),
                                                   "score": .number(report.score), "baseline": .string(report.baseline),
                                                   "candidate": .string(report.candidate), "fault": .optional(report.fault),
                                                   "rounds": report.rounds.map { .number(Double($0.used)) } ?? .null])
            return record.id
        }
    }

    /// Runs the canary by hand for ticket `id`'s proposed attempt: the merge of its head with
    /// current main is built in memory and judged against main. Changes no state; the
    /// report is stored.
    public func runCanary(ticket rawID: String, progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> CanaryReport {
        let id = try Names.ticketID(rawID)
        let ticket = try ticket(id)
        guard let attempt = try database.read({ db in
            try StateChange.latestAttempt(db, ticket: id, in: .proposed)
        }), let headHex = attempt.head, let head = ObjectID(hex: headHex) else {
            throw RatchetError("ticket \(id) is \(ticket.state) and has no proposed attempt to judge; use 'ratchet canary --service S --ref REF' for any commit")
        }
        let repository = try openService(ticket.service)
        guard let main = try repository.resolveReference("refs/heads/main") else { throw RatchetError("service \(ticket.service) has no main") }
        try requireCanary(ticket.service, repository: repository, main: main)
        let tree: ObjectID
        switch try repository.merge(ours: main, theirs: head) {
        case .conflicts(let paths):
            throw RatchetError("\(attempt.branch) conflicts with main in \(paths.count) path(s): \(paths.prefix(20).joined(separator: ", ")); there is no candidate to judge")
        case .clean(let clean): tree = clean
        }
        let candidate = try repository.createCommit(tree: tree, parents: [main, head], author: config.identity, committer: config.identity,
                                                    message: try CommitMessage.landing(ticket: ticket, attempt: attempt, canary: "pending", approvedBy: nil))
        return try judgeCanary(service: ticket.service, repository: repository, baseline: main, candidate: candidate,
                               ticket: id, attempt: attempt.number, progress: progress)!
    }

    /// Runs the canary by hand on any commit of a service: candidate = `ref`'s commit,
    /// baseline = main. Changes no state; the report is stored.
    public func runCanary(service rawService: String, ref: String, progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> CanaryReport {
        let service = try service(rawService).name
        _ = try Names.line(ref, what: "ref", limit: 300)
        let repository = try openService(service)
        guard let main = try repository.resolveReference("refs/heads/main") else { throw RatchetError("service \(service) has no main") }
        try requireCanary(service, repository: repository, main: main)
        let candidate: ObjectID?
        do { candidate = try repository.resolveCommit(ref) } catch { throw RatchetError("'\(Names.printable(ref))' does not name a commit of services/\(service): \(describe(error))") }
        guard let candidate else { throw RatchetError("'\(Names.printable(ref))' names no commit in services/\(service) (try a branch, a tag or a sha)") }
        return try judgeCanary(service: service, repository: repository, baseline: main, candidate: candidate, ticket: nil, attempt: nil, progress: progress)!
    }

    private func requireCanary(_ service: String, repository: Repository, main: ObjectID) throws {
        guard try repository.hasEntry("canary", in: main) else {
            throw RatchetError("service \(service) has no \(CanaryConfig.path) on main; there is no canary to run")
        }
    }

    /// The stored reports of a ticket (`T-7`, oldest first) or the report numbered `N`.
    public func canaryReports(_ key: String) throws -> [CanaryReport] {
        let records: [CanaryReportRecord]
        if let number = Int64(key), number > 0 {
            records = try database.read { db in try CanaryReportRecord.fetchOne(db, key: number).map { [$0] } ?? [] }
            guard !records.isEmpty else { throw RatchetError("no canary report #\(number)") }
        } else {
            let id = try Names.ticketID(key)
            _ = try ticket(id)
            records = try database.read { db in
                try CanaryReportRecord.filter(CanaryReportRecord.Columns.ticketId == id).order(CanaryReportRecord.Columns.id).fetchAll(db)
            }
        }
        return try records.map { record in
            var report = try RatchetJSON.decoder().decode(CanaryReport.self, from: Data(RatchetJSON.string(record.report).utf8))
            report.id = record.id
            return report
        }
    }

    /// Removes write permission from every file and folder under `path` (chmod -R a-w).
    static func makeReadOnly(_ path: String) throws {
        let fm = FileManager.default
        var items = [path]
        if let enumerator = fm.enumerator(atPath: path) { items += enumerator.compactMap { $0 as? String }.map { path + "/" + $0 } }
        for item in items.reversed() {
            let attributes = try fm.attributesOfItem(atPath: item)
            if attributes[.type] as? FileAttributeType == .typeSymbolicLink { continue }
            let mode = (attributes[.posixPermissions] as? Int) ?? 0o644
            try fm.setAttributes([.posixPermissions: mode & ~0o222], ofItemAtPath: item)
        }
    }

    /// Deletes a scratch folder, first giving back write permission to read-only parts.
    static func removeScratch(_ path: String) {
        let fm = FileManager.default
        if let enumerator = fm.enumerator(atPath: path) {
            for case let item as String in enumerator {
                let full = path + "/" + item
                if let attributes = try? fm.attributesOfItem(atPath: full), attributes[.type] as? FileAttributeType == .typeDirectory,
                   let mode = attributes[.posixPermissions] as? Int, mode & 0o200 == 0 {
                    try? fm.setAttributes([.posixPermissions: mode | 0o700], ofItemAtPath: full)
                }
            }
        }
        try? fm.removeItem(atPath: path)
    }
}

import Foundation
import RatchetStore

/// One invariant or one SLO of one service, evaluated (the observe seam, docs/observe.md).
public struct CheckStatus: Codable, Sendable, Equatable {
    public var service: String
    /// `invariant` or `slo`.
    public var kind: String
    public var name: String
    /// Nil when it could not be evaluated (`error` says why) or had no data.
    public var holds: Bool?
    /// `ok`, `breach`, `no-data` (an invariant's comparison had nothing, or only NaN, to
    /// compare: no traffic yet) or `error`.
    public var state: String
    /// Invariant: the value of its expression (its left side when a comparison filtered
    /// everything out). SLO: the burn rate of the firing pair's long window, else of the first pair's.
    public var value: Double?
    public var error: String?
    /// `invariant:SERVICE:NAME` or `slo:SERVICE:NAME`: one open ticket per fingerprint.
    public var fingerprint: String
    /// SLOs only: 1 − error ratio / error budget over the SLO window (below 0: overspent).
    public var budgetRemaining: Double?
    /// The breach's severity (`ticket` or `page`): the invariant's, or the firing pair's.
    public var severity: String?
    /// SLOs only: events, budget and every burn-rate pair.
    public var slo: SLOStatus?
    /// The open ticket for this breach: filed by this run, or filed earlier and still open.
    public var ticket: String?

    public init(service: String, kind: String, name: String, holds: Bool? = nil, value: Double? = nil, error: String? = nil,
                fingerprint: String, budgetRemaining: Double? = nil) {
        self.service = service; self.kind = kind; self.name = name; self.holds = holds; self.value = value; self.error = error
        self.fingerprint = fingerprint; self.budgetRemaining = budgetRemaining
        state = holds.map { $0 ? "ok" : "breach" } ?? "error"
    }

    enum CodingKeys: String, CodingKey {
        case service, kind, name, holds, state, value, error, fingerprint, severity, slo, ticket
        case budgetRemaining = "budget_remaining"
    }

    /// The dedupe key of a check.
    public static func fingerprint(kind: String, service: String, name: String) -> String { "\(kind):\(service):\(name)" }
}

/// A service whose checks could not all be evaluated: the target did not answer, a query
/// failed or a file is invalid. Nothing is filed for what was not evaluated.
public struct ObserveFailure: Codable, Sendable, Equatable {
    public var service: String
    /// `files`, `scrape` or `query`.
    public var stage: String
    public var error: String
}

/// What `ratchet observe` found and filed.
public struct ObserveReport: Codable, Sendable, Equatable {
    public var checks: [CheckStatus]
    /// Ids of the tickets filed by this run.
    public var filed: [String]
    public var failures: [ObserveFailure]
    public init(checks: [CheckStatus] = [], filed: [String] = [], failures: [ObserveFailure] = []) {
        self.checks = checks; self.filed = filed; self.failures = failures
    }
}

extension Workspace {
    /// Scrapes each service (or `service`), evaluates every invariant and SLO of its main and,
    /// with `file`, files one ticket per breach (deduplicated by fingerprint; a breach that
    /// returns after its ticket closed gets a new ticket that follows the earlier ones). A
    /// service whose target or Prometheus does not answer files nothing and records
    /// `observe.failed`; the next run tries again.
    public func observe(service: String?, file: Bool, progress: @Sendable (String) -> Void = { _ in }) throws -> ObserveReport {
        let names = try service.map { [try self.service($0).name] } ?? services().map(\.name)
        var report = ObserveReport()
        for name in names {
            progress("observe: \(name)")
            let observed = try observeService(name)
            report.failures += observed.failures
            for var status in observed.checks {
                if file, status.holds == false, let breach = observed.breaches[status.fingerprint] {
                    let filing = try fileBreach(status, breach)
                    status.ticket = filing.ticket
                    if filing.isNew {
                        report.filed.append(filing.ticket)
                        progress("observe: filed \(filing.ticket) for \(status.kind) \(status.name) of \(name)")
                    }
                }
                report.checks.append(status)
            }
            for failure in observed.failures { try recordFailure(failure) }
        }
        return report
    }

    /// The invariants of a service's main evaluated against its metrics as they are now (no
    /// scrape, nothing filed, no event): for a trajectory's `initial_state` and the `invariants` tool.
    public func invariantStatus(service rawName: String, at now: Date = Date()) throws -> [CheckStatus] {
        let name = try service(rawName).name
        let reader = try metricsReader(name)
        return invariantStatus(service: name, files: try observedFiles(name), reader: reader, at: now)
    }

    /// `files`' invariants of service `name` evaluated through `reader`.
    func invariantStatus(service name: String, files: ObservedFiles, reader: MetricsReader, at now: Date = Date()) -> [CheckStatus] {
        files.invariants.map { evaluate($0, service: name, reader: reader, at: now).status }
    }

    /// Scrapes and evaluates one service; its breaches keyed by fingerprint.
    private func observeService(_ name: String) throws -> (checks: [CheckStatus], breaches: [String: Breach], failures: [ObserveFailure]) {
        let files: ObservedFiles
        let reader: MetricsReader
        do {
            files = try observedFiles(name)
            reader = try metricsReader(name)
        } catch {
            return ([], [:], [ObserveFailure(service: name, stage: "files", error: describe(error))])
        }
        do { try reader.scrape() } catch {
            let failure = ObserveFailure(service: name, stage: "scrape", error: describe(error))
            let unevaluated = files.invariants.map { CheckStatus(service: name, kind: "invariant", name: $0.name, error: failure.error,
                                                                  fingerprint: CheckStatus.fingerprint(kind: "invariant", service: name, name: $0.name)) }
                + files.slos.map { CheckStatus(service: name, kind: "slo", name: $0.name, error: failure.error,
                                               fingerprint: CheckStatus.fingerprint(kind: "slo", service: name, name: $0.name)) }
            return (unevaluated, [:], [failure])
        }
        let now = Date()  // after the scrape, whose samples carry its time
        let evaluated = files.invariants.map { evaluate($0, service: name, reader: reader, at: now) }
            + files.slos.map { evaluate($0, service: name, reader: reader, at: now) }
        let errors = evaluated.filter { $0.status.state == "error" }.compactMap { item in item.status.error.map { "\(item.status.kind) \(item.status.name): \($0)" } }
        let failures = errors.isEmpty ? [] : [ObserveFailure(service: name, stage: "query", error: errors.joined(separator: "; "))]
        var breaches: [String: Breach] = [:]
        for item in evaluated where item.status.holds == false { breaches[item.status.fingerprint] = item.breach }
        return (evaluated.map(\.status), breaches, failures)
    }

    /// Records `observe.failed` (own transaction).
    private func recordFailure(_ failure: ObserveFailure) throws {
        try database.write { db in
            try RatchetDatabase.appendEvent(db, kind: "observe.failed", service: failure.service,
                                            data: ["stage": .string(failure.stage), "error": .string(String(failure.error.prefix(4000)))])
        }
    }

    /// An invariant at `time`: it holds while its expression returns a non-empty vector (or a non-zero scalar).
    func evaluate(_ invariant: Invariant, service: String, reader: MetricsReader, at time: Date) -> (status: CheckStatus, breach: Breach) {
        var status = CheckStatus(service: service, kind: "invariant", name: invariant.name,
                                 fingerprint: CheckStatus.fingerprint(kind: "invariant", service: service, name: invariant.name))
        status.severity = invariant.severity
        do {
            let result = try reader.query(invariant.expr, time)
            status.holds = result.isTruthy
            status.value = result.firstValue
            if status.holds == false, let left = reader.valueExpression(invariant.expr) {
                let measured = try reader.query(left, time)
                status.value = measured.firstValue
                if !measured.hasNumber {
                    status.holds = nil
                    status.error = "no data: \(left) returned \(measured.firstValue == nil ? "nothing" : "only NaN") to compare"
                }
            }
        } catch {
            status.error = describe(error)
        }
        status.state = status.holds.map { $0 ? "ok" : "breach" } ?? (status.error?.hasPrefix("no data:") == true ? "no-data" : "error")
        status.value = finite(status.value)
        let breach = Breach(title: "Invariant \(invariant.name) of \(service) does not hold", description: invariant.description,
                            expression: invariant.expr, runbook: invariant.runbook, acceptance: [])
        return (status, breach)
    }

    /// An SLO at `time`: it holds while no burn-rate pair fires.
    func evaluate(_ slo: SLO, service: String, reader: MetricsReader, at time: Date) -> (status: CheckStatus, breach: Breach) {
        var status = CheckStatus(service: service, kind: "slo", name: slo.name,
                                 fingerprint: CheckStatus.fingerprint(kind: "slo", service: service, name: slo.name))
        var title = "SLO \(slo.name) of \(service) burns its error budget too fast"
        do {
            let evaluated = try SLOEvaluator.evaluate(slo, at: time) { expression, time in try reader.query(expression, time).finiteSum }
            let firing = evaluated.firing
            status.holds = firing == nil
            status.state = firing == nil ? "ok" : "breach"
            status.value = finite((firing ?? evaluated.burnRates.first)?.longBurnRate)
            status.budgetRemaining = finite(evaluated.budgetRemaining)
            status.severity = firing?.rule.severity
            status.slo = evaluated
            if let firing { title = "SLO \(slo.name) of \(service) burns its error budget at \(ObserveFormat.number(firing.longBurnRate ?? 0))x (\(firing.rule.label))" }
        } catch {
            status.error = describe(error)
        }
        let expression = "good: \(slo.good ?? "total - bad: \(slo.bad ?? "")"); total: \(slo.total); objective \(ObserveFormat.number(slo.objective)) over \(ObserveFormat.duration(slo.window))"
        return (status, Breach(title: title, description: slo.description, expression: expression, runbook: nil, acceptance: []))
    }

    private func finite(_ value: Double?) -> Double? { value.flatMap { $0.isFinite ? $0 : nil } }
}

/// What a ticket for a breach says besides its status. Its acceptance is empty: the breach
/// is about production, which the watch after the landing and the next `observe` judge; an
/// `invariant:NAME` criterion would judge the canary's workload instead (adr/0028).
struct Breach {
    var title: String
    var description: String
    var expression: String
    var runbook: String?
    var acceptance: [String]
}

extension Workspace {
    /// Each SLO of `service` evaluated now over the samples already stored (no scrape, nothing
    /// filed, no event): its error budget left and burn rates. Empty without slos.yaml.
    public func sloStatus(service rawName: String, at now: Date = Date()) throws -> [CheckStatus] {
        let name = try service(rawName).name
        let slos = try observedFiles(name).slos
        guard !slos.isEmpty else { return [] }
        let reader = try metricsReader(name)
        return slos.map { evaluate($0, service: name, reader: reader, at: now).status }
    }
}

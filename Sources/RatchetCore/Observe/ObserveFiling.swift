import Foundation
import GRDB
import RatchetStore

extension Workspace {
    /// Series a metric snapshot keeps, over all metrics of a service.
    static let snapshotSeriesLimit = 100

    /// A small snapshot of a service's metrics now: the latest value of every series of the
    /// metrics its invariants and SLOs name (at most `snapshotSeriesLimit` series), for a
    /// ticket's context and a trajectory's `initial_state`. A metric that cannot be read is
    /// listed under `errors`.
    public func metricSnapshot(service rawName: String) throws -> JSONValue {
        let name = try service(rawName).name
        return metricSnapshot(service: name, files: (try? observedFiles(name)) ?? ObservedFiles(), reader: try metricsReader(name))
    }

    /// The snapshot of `name`'s metrics named by `files`, read through `reader`.
    func metricSnapshot(service name: String, files: ObservedFiles, reader: MetricsReader) -> JSONValue {
        var metrics: [String] = []
        for expression in files.invariants.map(\.expr) + files.slos.flatMap({ [$0.good, $0.bad, $0.total].compactMap { $0 } }) {
            for metric in reader.metricNames(expression) where !metrics.contains(metric) { metrics.append(metric) }
        }
        let now = Date()
        var series: [JSONValue] = []
        var errors: [String: JSONValue] = [:]
        for metric in metrics where series.count < Self.snapshotSeriesLimit {
            do {
                guard case .vector(let samples) = try reader.query(metric, now) else { continue }
                for sample in samples.sorted(by: { $0.labels.description < $1.labels.description }).prefix(Self.snapshotSeriesLimit - series.count) {
                    series.append(["labels": .object(sample.labels.mapValues(JSONValue.string)),
                                   "value": sample.value.isFinite ? .number(sample.value) : .string(ObserveFormat.number(sample.value))])
                }
            } catch {
                errors[metric] = .string(describe(error))
            }
        }
        return ["service": .string(name), "source": .string(reader.source), "time": .string(StateChange.stamp(now)),
                "metrics": .array(metrics.map(JSONValue.string)), "series": .array(series), "errors": .object(errors)]
    }

    /// Files the ticket for a breach, unless one is open for its fingerprint: `restores: true`,
    /// source `invariant:NAME` or `slo:NAME`, the check and a metric snapshot in its context,
    /// following the closed tickets of the same fingerprint. Ticket, `ticket.created` and
    /// `observe.breach` are one transaction.
    func fileBreach(_ status: CheckStatus, _ breach: Breach) throws -> (ticket: String, isNew: Bool) {
        let snapshot: JSONValue = ["check": try RatchetJSON.value(status), "metrics": (try? metricSnapshot(service: status.service)) ?? .null]
        var draft = TicketDraft(service: status.service, title: breach.title)
        draft.source = "\(status.kind):\(status.name)"
        draft.fingerprint = status.fingerprint
        draft.restores = true
        draft.priority = BreachSeverity.priority(status.severity ?? "ticket")
        draft.acceptance = breach.acceptance
        draft.objective = "Restore \(status.kind == "slo" ? "SLO" : "invariant") \(status.name) of \(status.service)"
            + (breach.description.isEmpty ? "." : ": \(breach.description)")
        return try database.write { db in
            if let open = try Self.openTicket(db, fingerprint: status.fingerprint) { return (open.id, false) }
            let earlier = try String.fetchAll(db, sql: "SELECT id FROM ticket WHERE fingerprint = ? ORDER BY number", arguments: [status.fingerprint])
            draft.context = try Self.breachContext(status, breach, follows: earlier, snapshot: snapshot)
            let ticket = try Self.insertTicket(db, try prepared(draft))
            try RatchetDatabase.appendEvent(db, kind: "observe.breach", service: status.service, ticket: ticket.id, data: [
                "kind": .string(status.kind), "name": .string(status.name), "fingerprint": .string(status.fingerprint),
                "severity": .optional(status.severity), "value": status.value.map(JSONValue.number) ?? .null,
                "follows": .array(earlier.map(JSONValue.string))])
            try Failpoints.hit("observe.breach-written")
            return (ticket.id, true)
        }
    }

    /// The ticket's context: what broke, where to look, which tickets it follows, and the
    /// check with its metric snapshot as JSON (the last block).
    static func breachContext(_ status: CheckStatus, _ breach: Breach, follows earlier: [String], snapshot: JSONValue) throws -> String {
        var lines = ["observe found \(status.kind) \(status.name) of service \(status.service) breached"
                     + (status.value.map { " (value \(ObserveFormat.number($0)))" } ?? "") + "."]
        lines.append("Expression: \(breach.expression.split(whereSeparator: \.isNewline).joined(separator: " "))")
        if let budget = status.budgetRemaining { lines.append("Error budget remaining: \(ObserveFormat.number(budget * 100))%") }
        if let runbook = breach.runbook { lines.append("Runbook: \(runbook)") }
        if !earlier.isEmpty {
            lines.append("Follows \(earlier.joined(separator: ", ")): the same breach (fingerprint \(status.fingerprint)) came back after they closed.")
        }
        var text = lines.joined(separator: "\n") + "\n\nMetric snapshot (JSON):\n"
        let json = try RatchetJSON.string(snapshot, pretty: false)
        text += json.utf8.count < 200 * 1024 ? json : try RatchetJSON.string(["check": snapshot["check"] ?? .null], pretty: false)
        return text
    }
}

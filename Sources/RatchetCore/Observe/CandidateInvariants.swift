import Foundation
import RatchetMetrics

/// A Prometheus text exposition a canary module printed during a round, as one line
/// `{"round": N, "exposition": "TEXT"}` (docs/canary.md): a snapshot of its instance's
/// `/metrics`. Ratchet evaluates `invariant:NAME` acceptance criteria over the candidate's
/// snapshots, the samples of each timestamped when Ratchet read the line.
public struct ExpositionSnapshot: Sendable, Equatable {
    public var round: Int
    /// When Ratchet read the line, milliseconds since the epoch.
    public var time: Int64
    public var text: String

    /// The largest snapshot a module may print; a longer one is a fault of the module.
    public static let sizeLimit = 1 << 20
    /// Snapshots kept per side; later ones are a fault of the module.
    public static let countLimit = 1_000

    public init(round: Int, time: Int64, text: String) { self.round = round; self.time = time; self.text = text }

    /// The snapshot a canary line holds, the current time as its time; a problem when it is too large.
    static func make(round: Int, text: String, count: Int) -> Result<ExpositionSnapshot, RatchetError> {
        guard text.utf8.count <= sizeLimit else { return .failure(RatchetError("printed an exposition of more than \(sizeLimit >> 20) MiB")) }
        guard count < countLimit else { return .failure(RatchetError("printed more than \(countLimit) expositions")) }
        return .success(ExpositionSnapshot(round: round, time: Int64((Date().timeIntervalSince1970 * 1000).rounded()), text: text))
    }
}

/// Invariants evaluated over a canary side's exposition snapshots.
public enum SnapshotEvaluation {
    /// The snapshots as one in-memory series set (a series' samples across rounds, oldest
    /// first; counters that restart with each round's fresh instance are resets, as `rate` expects).
    static func source(_ snapshots: [ExpositionSnapshot]) -> MemorySource {
        var lines: [Exposition.Line] = []
        for snapshot in snapshots {
            lines += Exposition.parse(snapshot.text, format: .text).samples.map { line in
                var line = line
                line.time = line.time ?? snapshot.time
                return line
            }
        }
        return MemorySource(lines: lines, defaultTime: 0)
    }

    /// Whether `invariant` holds at the last snapshot: its value and a one-line detail.
    public static func evaluate(_ invariant: Invariant, on snapshots: [ExpositionSnapshot]) throws -> AcceptanceResult {
        let criterion = "invariant:\(invariant.name)"
        guard let last = snapshots.map(\.time).max() else {
            return AcceptanceResult(criterion: criterion, status: Acceptance.unevaluable,
                                    detail: "the canary printed no exposition snapshots of the candidate, so the invariant cannot be evaluated on it")
        }
        let evaluator = Evaluator(source: source(snapshots))
        let value = try observed(evaluator.evaluate(PromQL.parse(invariant.expr), at: last))
        let rounds = "\(snapshots.count) snapshot(s) of rounds \(snapshots.map(\.round).min() ?? 0)–\(snapshots.map(\.round).max() ?? 0)"
        if value.isTruthy {
            return AcceptanceResult(criterion: criterion, status: "passed",
                                    detail: "holds on the candidate (value \(value.firstValue.map(ObserveFormat.number) ?? "-")) over \(rounds)")
        }
        var measured: String?
        if let left = PromQLCheck.valueExpression(invariant.expr) {
            let leftValue = try observed(evaluator.evaluate(PromQL.parse(left), at: last))
            guard leftValue.hasNumber else {
                return AcceptanceResult(criterion: criterion, status: Acceptance.unevaluable,
                                        detail: "no data on the candidate: \(left) returned nothing to compare over \(rounds)")
            }
            measured = leftValue.firstValue.map(ObserveFormat.number)
        }
        return AcceptanceResult(criterion: criterion, status: "failed",
                                detail: "does not hold on the candidate\(measured.map { " (value \($0))" } ?? ""): \(invariant.expr) over \(rounds)")
    }

    private static func observed(_ value: QueryValue) throws -> ObservedValue {
        switch value {
        case .scalar(let number): return .scalar(number)
        case .vector(let samples): return .vector(samples.map { ObservedSample(labels: $0.labels.pairs, value: $0.value) })
        case .matrix, .string: throw RatchetError("the expression returns a \(value.resultType), not an instant vector")
        }
    }
}

extension Workspace {
    /// Evaluates each `invariant:NAME` criterion of `results` on the candidate's exposition
    /// snapshots from `report` (main's invariants.yaml). Without snapshots, without data, or
    /// naming no invariant of main, the criterion cannot be evaluated: a person judges it (the ticket is held).
    func judgeInvariantCriteria(_ results: inout [AcceptanceResult], service: String, report: CanaryReport?) throws {
        let indices = results.indices.filter { results[$0].criterion.hasPrefix("invariant:") }
        guard !indices.isEmpty else { return }
        let invariants = try observedFiles(service).invariants
        for index in indices {
            let name = String(results[index].criterion.dropFirst("invariant:".count))
            guard let invariant = invariants.first(where: { $0.name == name }) else {
                results[index] = AcceptanceResult(criterion: results[index].criterion, status: Acceptance.unevaluable,
                                                  detail: "invariants.yaml on main has no invariant named '\(Names.printable(name))'")
                continue
            }
            do {
                results[index] = try SnapshotEvaluation.evaluate(invariant, on: report?.candidateExpositions ?? [])
            } catch {
                results[index] = AcceptanceResult(criterion: results[index].criterion, status: Acceptance.unevaluable,
                                                  detail: "cannot be evaluated on the candidate's snapshots: \(describe(error))")
            }
        }
    }
}

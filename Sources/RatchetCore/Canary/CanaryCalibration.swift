import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// `ratchet canary calibrate`: main judged against itself N times (docs/canary.md). For
/// each round metric, the noise of one paired round, the spread of the run effects and the
/// smallest `allowed_change` that keeps false alarms (any verdict but Pass on identical
/// code, Inconclusive included) at or under 1 %, from resampled rounds.
public struct CanaryCalibration: Codable, Sendable, Equatable {
    /// `ratchet.canary-calibration/v1`.
    public var schema = "ratchet.canary-calibration/v1"
    /// The stored calibration's number; nil before it is stored.
    public var id: Int64?
    /// The service calibrated.
    public var service: String
    /// Main's commit, judged against itself.
    public var main: String
    /// Runs made, and the rounds of each.
    public var runs: Int
    public var rounds: [Int]
    /// Replays of the sequential judge drawn from the recorded rounds, per metric.
    public var resamples: Int
    /// One entry per round metric of canary.yaml.
    public var metrics: [MetricNoise]
    /// Runs that faulted (the calibration is then incomplete).
    public var faults: [String]
    /// When it started, and how long all runs took.
    public var createdAt: Date
    public var durationS: Double

    /// The noise of one metric on identical code.
    public struct MetricNoise: Codable, Sendable, Equatable {
        /// The metric, its `effect` (ratio or difference) and `direction` in canary.yaml.
        public var name: String
        public var effect: String
        public var direction: String
        /// `allowed_change` of canary.yaml when calibrated.
        public var allowedChange: Double
        /// The standard deviation of one paired round's log ratio (or difference).
        public var roundDeviation: Double?
        /// Each run's effect estimate (identical code: ideally 0).
        public var runEffects: [Double]
        /// The largest |effect| of a run: the noise floor a reader can see.
        public var noiseFloor: Double?
        /// The smallest allowance with at most 1 % resampled false alarms.
        public var recommended: Double?
        /// Resampled false-alarm rate at `allowedChange`, and its 95 % upper bound.
        public var falseAlarmRate: Double?
        public var falseAlarmBound: Double?
        enum CodingKeys: String, CodingKey {
            case name, effect, direction, recommended
            case allowedChange = "allowed_change", roundDeviation = "round_deviation", runEffects = "run_effects"
            case noiseFloor = "noise_floor", falseAlarmRate = "false_alarm_rate", falseAlarmBound = "false_alarm_bound"
        }
    }

    enum CodingKeys: String, CodingKey {
        case schema, id, service, main, runs, rounds, resamples, metrics, faults
        case createdAt = "created_at", durationS = "duration_s"
    }

    /// The target false-alarm rate of the recommendation.
    public static let target = 0.01

    /// An aligned table, one row per metric.
    public func table() -> String {
        let show = { (value: Double?, effect: String) in
            value.map { effect == "ratio" ? CanaryJudge.percent($0, signed: false) : CanaryFormat.number($0) } ?? "-"
        }
        var rows = [["metric", "allowed", "round sd", "noise floor", "recommended", "false alarms at allowed"]]
        for metric in metrics {
            rows.append([metric.name, show(metric.allowedChange, metric.effect), metric.roundDeviation.map { CanaryFormat.number($0) } ?? "-",
                         show(metric.noiseFloor, metric.effect), show(metric.recommended, metric.effect),
                         metric.falseAlarmRate.map { "\(CanaryJudge.percent($0, signed: false)) (≤ \(CanaryJudge.percent(metric.falseAlarmBound ?? 1, signed: false)))" } ?? "-"])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = ["canary calibration \(id.map { "#\($0) " } ?? "")\(service): main \(main.prefix(7)) against itself, \(runs) runs "
                     + "(\(rounds.map(String.init).joined(separator: ", ")) rounds), \(resamples) resampled verdicts per metric"]
        lines += rows.map { row in zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ") }
        lines += faults.map { "fault: \($0)" }
        lines += CanaryCalibration.advice(self, config: nil)
        return lines.joined(separator: "\n")
    }
}

extension CanaryCalibration {
    /// How far above the recommendation an allowance may sit before the canary counts as blind.
    public static let blindFactor = 4.0

    /// Warnings for the metrics of `config` (or of the calibration itself): an allowance
    /// under the recommendation cries wolf; one far above it is blind.
    public static func advice(_ calibration: CanaryCalibration, config: CanaryConfig?) -> [String] {
        var lines: [String] = []
        for noise in calibration.metrics {
            guard let recommended = noise.recommended else { continue }
            let allowed = config?.metrics.first { $0.name == noise.name }?.allowedChange ?? noise.allowedChange
            let show = { (x: Double) in noise.effect == "ratio" ? CanaryJudge.percent(x, signed: false) : CanaryFormat.number(x) }
            let source = "calibration \(calibration.id.map { "#\($0)" } ?? "") of main \(calibration.main.prefix(7))"
            if allowed < recommended {
                lines.append("\(noise.name): allowed_change \(show(allowed)) is below the measured noise: identical code would not pass "
                             + "\(noise.falseAlarmRate.map { "in about \(CanaryJudge.percent($0, signed: false)) of runs " } ?? "")"
                             + "(a canary that cries wolf); at least \(show(recommended)) keeps false alarms under 1% (\(source))")
            } else if recommended > 0, allowed > blindFactor * recommended {
                lines.append("\(noise.name): allowed_change \(show(allowed)) is more than \(CanaryFormat.number(blindFactor))× the measured noise "
                             + "(\(show(recommended)) suffices): the canary is blind to smaller regressions (\(source))")
            }
        }
        return lines
    }
}

extension Workspace {
    /// Judges main against itself `runs` times with main's canary (every run to its maximum
    /// of rounds, one canary at a time), derives each round metric's noise and the smallest
    /// `allowed_change` with at most 1 % false alarms, stores the calibration with a
    /// `canary.calibrated` event and returns it.
    public func calibrateCanary(service rawService: String, runs: Int, resamples: Int = 2000,
                                progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> CanaryCalibration {
        guard (2...200).contains(runs) else { throw RatchetError("--runs must be from 2 to 200, got \(runs)") }
        let service = try service(rawService).name
        let repository = try Repository.open(servicePath(service))
        guard let main = try repository.resolveReference("refs/heads/main") else { throw RatchetError("service \(service) has no main") }
        guard let data = try repository.fileContents(CanaryConfig.path, in: main) else {
            throw RatchetError("service \(service) has no \(CanaryConfig.path) on main; there is no canary to calibrate")
        }
        let config = try CanaryConfig.parse(String(decoding: data, as: UTF8.self), file: "canary/canary.yaml on main")
        let started = Date()
        let lock = try lockCanary(progress: progress)
        defer { Workspace.unlockAndClose(lock) }
        var observations: [String: [[Double]]] = [:]
        var calibration = CanaryCalibration(service: service, main: main.hex, runs: runs, rounds: [], resamples: resamples, metrics: [],
                                            faults: [], createdAt: started, durationS: 0)
        for run in 1...runs {
            progress("canary calibrate: run \(run) of \(runs), main \(main.short) against itself, \(config.maxRounds) rounds")
            let measured = try measureCanary(config, service: service, repository: repository, baseline: main, candidate: main) { _, _, _ in nil }
            if let fault = measured.fault { calibration.faults.append("run \(run): \(fault)"); continue }
            calibration.rounds.append(measured.rounds)
            for metric in config.metrics where metric.unit == .round {
                let paired = RoundJudge.observations(metric, baseline: measured.baseline.roundValues(metric.name, quantile: metric.quantile),
                                                     candidate: measured.candidate.roundValues(metric.name, quantile: metric.quantile))
                observations[metric.name, default: []].append(paired.values)
            }
        }
        calibration.metrics = config.metrics.filter { $0.unit == .round }.map {
            Self.noise(of: $0, runs: observations[$0.name] ?? [], config: config, resamples: resamples)
        }
        calibration.durationS = (Date().timeIntervalSince(started) * 1000).rounded() / 1000
        try storeCalibration(&calibration)
        return calibration
    }

    /// One metric's noise from its paired observations, run by run.
    static func noise(of metric: CanaryConfig.Metric, runs: [[Double]], config: CanaryConfig, resamples: Int) -> CanaryCalibration.MetricNoise {
        let pool = runs.flatMap { $0 }
        let toEffect = { (x: Double) in metric.effect == .ratio ? exp(x) - 1 : x }
        var noise = CanaryCalibration.MetricNoise(name: metric.name, effect: metric.effect.rawValue, direction: metric.direction.rawValue,
                                                  allowedChange: metric.allowedChange, roundDeviation: nil,
                                                  runEffects: runs.filter { !$0.isEmpty }.map { toEffect($0.reduce(0, +) / Double($0.count)) },
                                                  noiseFloor: nil, recommended: nil, falseAlarmRate: nil, falseAlarmBound: nil)
        guard pool.count >= 2 else { return noise }
        let mean = pool.reduce(0, +) / Double(pool.count)
        noise.roundDeviation = (pool.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(pool.count - 1)).squareRoot()
        noise.noiseFloor = noise.runEffects.map(abs).max()
        let replays = NoiseModel.resampledIntervals(pool, metric: metric, config: config, resamples: resamples)
        let step = metric.effect == .ratio ? 0.005 : max((pool.max()! - pool.min()!) / 200, 1e-9)
        noise.recommended = NoiseModel.alarmRate(replays, direction: metric.direction, allowed: 0, minRounds: config.minRounds) <= CanaryCalibration.target
            ? 0 : NoiseModel.smallestAllowance(replays, direction: metric.direction, minRounds: config.minRounds, target: CanaryCalibration.target, step: step)
        let rate = NoiseModel.alarmRate(replays, direction: metric.direction, allowed: metric.allowedChange, minRounds: config.minRounds)
        noise.falseAlarmRate = rate
        noise.falseAlarmBound = NoiseModel.upperBound(Int((rate * Double(replays.count)).rounded()), of: replays.count)
        return noise
    }

    private func storeCalibration(_ calibration: inout CanaryCalibration) throws {
        let value = try RatchetJSON.value(calibration)
        let stored = calibration
        calibration.id = try database.write { db in
            var record = CanaryCalibrationRecord(service: stored.service, main: stored.main, calibration: value, createdAt: stored.createdAt)
            try record.insert(db)
            let recommended = stored.metrics.map { ($0.name, $0.recommended.map { JSONValue.number($0) } ?? .null) }
            try RatchetDatabase.appendEvent(db, kind: "canary.calibrated", service: stored.service, ticket: nil, attempt: nil,
                                            data: ["calibration": .number(Double(record.id!)), "main": .string(stored.main),
                                                   "runs": .number(Double(stored.runs)), "faults": .number(Double(stored.faults.count)),
                                                   "recommended": .object(Dictionary(uniqueKeysWithValues: recommended))])
            return record.id
        }
    }

    /// The latest stored calibration of a service, if any.
    public func latestCalibration(_ service: String) throws -> CanaryCalibration? {
        guard let record = try database.read({ db in
            try CanaryCalibrationRecord.filter(CanaryCalibrationRecord.Columns.service == service)
                .order(CanaryCalibrationRecord.Columns.id.desc).fetchOne(db)
        }) else { return nil }
        var calibration = try RatchetJSON.decoder().decode(CanaryCalibration.self, from: Data(RatchetJSON.string(record.calibration).utf8))
        calibration.id = record.id
        return calibration
    }

    /// `service check`'s canary findings: an invalid canary.yaml on main (an error), and
    /// against the latest calibration, allowances that cry wolf or are blind and a
    /// calibration older than main (warnings).
    public func canaryFindings(_ service: String) throws -> [CheckFinding] {
        let file = "services/\(service)/\(CanaryConfig.path)"
        let repository = try Repository.open(servicePath(service))
        guard let main = try repository.resolveReference("refs/heads/main"),
              let data = try repository.fileContents(CanaryConfig.path, in: main) else { return [] }
        let config: CanaryConfig
        do { config = try CanaryConfig.parse(String(decoding: data, as: UTF8.self), file: file) } catch {
            return [CheckFinding(file: file, message: describe(error))]
        }
        guard let calibration = try latestCalibration(service) else { return [] }
        var findings = CanaryCalibration.advice(calibration, config: config).map { CheckFinding(file: file, message: "\(file): \($0)", severity: "warning") }
        if calibration.main != main.hex {
            findings.append(CheckFinding(file: file, message: "\(file): calibration #\(calibration.id ?? 0) was made on main \(calibration.main.prefix(7)), "
                                         + "older than the last landing (main is \(main.short)); run 'ratchet canary calibrate \(service)'", severity: "warning"))
        }
        return findings
    }
}

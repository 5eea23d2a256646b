import Foundation
import RatchetCore

/// The canary power study (`ratchet-bench --canary-power`, docs/canary.md): the shipped
/// kv-cache canary judging identical code, injected busy-wait latency and a CPU-bound
/// regression, `runs` real canaries each; false-alarm and detection rates, the effect
/// achieved and the wall time per verdict; plus the false-alarm rate of verdicts resampled
/// from the identical-code rounds. Not a test: it measures this machine.
enum CanaryPower {
    /// One condition of the study: a candidate commit and the effect it was meant to have.
    struct Condition {
        var name: String
        /// A shell command run in a checkout of main to make the candidate (nil: main itself).
        var change: String?
        /// Runs of this condition.
        var runs: Int
    }

    /// One verdict of the study, with the load average (1 min) when it ended.
    struct Verdict: Codable {
        var condition: String
        var verdict: String
        var seconds: Double
        var rounds: Int
        var load: Double
        var latencyEffect: Double?
        var stop: String
    }

    /// The outcome of one condition.
    struct Row: Codable {
        var condition: String
        var runs: Int
        var pass: Int
        var marginal: Int
        var fail: Int
        /// Median over runs of the latency effect the judge estimated (of the round statistic).
        var latencyEffect: Double?
        /// Median over runs of the change of the median latency (all samples): the effect achieved.
        var medianLatencyEffect: Double?
        var cpuEffect: Double?
        /// Median over runs of the PUT latency effect the judge estimated.
        var putLatencyEffect: Double?
        var medianRounds: Double
        var medianSeconds: Double
        var p90Seconds: Double
        /// The 1-minute load average after each verdict: lowest, median, highest.
        var load: [Double]
    }

    /// The whole study.
    struct Study: Codable {
        var machine: String
        var baselineLatencyMs: Double
        var rows: [Row]
        var verdicts: [Verdict]
        var resampledVerdicts: Int
        var resampledAlarms: Int
        var resampledAlarmBound: Double
    }

    static func run(runs: Int, otherRuns: Int, scratch: String, progress: (String) -> Void) throws -> Study {
        let workspace = try Workspace.create(at: scratch + "/power")
        try workspace.addService(name: "kv", template: "kv-cache")
        let service = workspace.servicePath("kv")
        progress("canary power: measuring the baseline latency")
        let probe = try workspace.runCanary(service: "kv", ref: "main")
        let latency = probe.metrics.first { $0.name == "latency_ms" }?.baseline.median ?? 0.25
        var conditions = [Condition(name: "identical", change: nil, runs: runs)]
        for effect in [0.25, 0.10, 0.50, 1.00] {
            let seconds = String(format: "%.7f", latency * effect / 1000)
            conditions.append(Condition(name: "busy-wait +\(Int(effect * 100))%", change:
                "sed -i 's/^        start = time.perf_counter()$/        start = time.perf_counter()\\n        while time.perf_counter() - start < \(seconds): pass/' kvcache/server.py",
                runs: effect == 0.25 ? runs : otherRuns))
        }
        let putSeconds = String(format: "%.7f", latency * 0.25 / 1000)
        conditions.append(Condition(name: "busy-wait +25% in PUT only", change:
            "sed -i 's/^    def _put(self):$/    def _put(self):\\n        begun = time.perf_counter()\\n        while time.perf_counter() - begun < \(putSeconds): pass/' kvcache/server.py",
            runs: otherRuns))
        conditions.append(Condition(name: "cpu-bound (sort per GET)", change:
            "sed -i 's/^            entry = self._data.get(key)$/            sorted(self._data)\\n            entry = self._data.get(key)/' kvcache/cache.py",
            runs: otherRuns))
        var rows: [Row] = []
        var identical: [CanaryReport] = []
        var verdicts: [Verdict] = []
        for (index, condition) in conditions.enumerated() where condition.runs > 0 {
            let ref = try candidate(condition, number: index, service: service)
            var reports: [CanaryReport] = []
            var loads: [Double] = []
            for run in 1...condition.runs {
                let report = try workspace.runCanary(service: "kv", ref: ref)
                reports.append(report)
                loads.append(loadAverage())
                verdicts.append(Verdict(condition: condition.name, verdict: report.verdict.rawValue, seconds: report.durationS,
                                        rounds: report.rounds?.used ?? 0, load: loads.last!,
                                        latencyEffect: report.metrics.first { $0.name == "latency_ms" }?.change, stop: report.rounds?.stop ?? report.fault ?? ""))
                progress(String(format: "canary power: %@, run %d of %d: %@ in %.1f s, %d rounds, load %.2f", condition.name, run, condition.runs,
                                report.verdict.rawValue, report.durationS, report.rounds?.used ?? 0, loads.last!))
            }
            if condition.change == nil { identical = reports }
            rows.append(row(condition.name, reports, loads: loads))
            progress("canary power: \(describe(rows.last!))")
        }
        let (resampled, alarms) = resample(identical, verdicts: 2000)
        return Study(machine: machine(), baselineLatencyMs: latency, rows: rows, verdicts: verdicts, resampledVerdicts: resampled, resampledAlarms: alarms,
                     resampledAlarmBound: NoiseModel.upperBound(alarms, of: max(resampled, 1)))
    }

    /// The 1-minute load average now.
    static func loadAverage() -> Double {
        Double((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first ?? "") ?? 0
    }

    /// Commits `condition.change` on a branch of `service` and returns its name (main for none).
    static func candidate(_ condition: Condition, number: Int, service: String) throws -> String {
        guard let change = condition.change else { return "main" }
        let branch = "power-\(number)"
        let scratch = service + "/../power-\(number)"
        _ = try Shell.run(["git", "worktree", "add", "-q", "-b", branch, scratch, "main"], in: service)
        _ = try Shell.run(["/bin/sh", "-c", change], in: scratch)
        _ = try Shell.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qam", condition.name], in: scratch)
        _ = try Shell.run(["git", "worktree", "remove", "--force", scratch], in: service)
        return branch
    }

    static func row(_ name: String, _ reports: [CanaryReport], loads: [Double]) -> Row {
        let effect = { (metric: String) -> Double? in
            let values = reports.compactMap { $0.metrics.first { $0.name == metric }?.change }
            return values.isEmpty ? nil : SampleStatistics.median(values)
        }
        let seconds = reports.map(\.durationS).sorted()
        let medians = reports.compactMap { report -> Double? in
            guard let metric = report.metrics.first(where: { $0.name == "latency_ms" }),
                  let before = metric.baseline.median, let after = metric.candidate.median, before > 0 else { return nil }
            return after / before - 1
        }
        return Row(condition: name, runs: reports.count, pass: reports.filter { $0.verdict == .pass }.count,
                   marginal: reports.filter { $0.verdict == .marginal }.count, fail: reports.filter { $0.verdict == .fail }.count,
                   latencyEffect: effect("latency_ms"), medianLatencyEffect: medians.isEmpty ? nil : SampleStatistics.median(medians),
                   cpuEffect: effect("cpu_us_per_request"), putLatencyEffect: effect("put_latency_ms"),
                   medianRounds: SampleStatistics.median(reports.map { Double($0.rounds?.used ?? 0) }),
                   medianSeconds: SampleStatistics.quantile(seconds, 0.5), p90Seconds: SampleStatistics.quantile(seconds, 0.9),
                   load: loads.isEmpty ? [] : [loads.min()!, SampleStatistics.median(loads), loads.max()!])
    }

    /// Verdicts replayed from the identical-code rounds, drawn jointly (a round keeps all its
    /// metrics): an alarm is any round metric that does not pass (`NoiseModel.replayVerdicts`).
    static func resample(_ reports: [CanaryReport], verdicts: Int) -> (Int, Int) {
        guard let first = reports.first,
              let config = try? CanaryConfig.parse(String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: shippedConfig()))) ?? Data(), as: UTF8.self)) else { return (0, 0) }
        let metrics = first.metrics.filter { $0.unit == "round" }.compactMap { judged in config.metrics.first { $0.name == judged.name } }
        var rounds: [[Double]] = []
        for report in reports {
            let columns = metrics.map { metric in report.metrics.first { $0.name == metric.name }?.observations ?? [] }
            guard let count = columns.map(\.count).min() else { continue }
            rounds += (0..<count).map { index in columns.map { $0[index] } }
        }
        return (verdicts, NoiseModel.replayVerdicts(rounds, metrics: metrics, config: config, verdicts: verdicts).alarms)
    }

    /// Recorded rounds (Tests/RatchetCoreTests/Golden/kv-cache-rounds.json): per condition one
    /// row per paired round, a column per name of `columns`, and the seconds a round took.
    struct Recorded: Codable {
        var recorded: String
        var columns: [String]
        var conditions: [String: [[Double]]]
        var secondsPerRound: [String: Double]?
    }

    /// One replayed condition.
    struct ReplayRow {
        var condition: String
        var recordedRounds: Int
        var verdicts: Int
        var notPass: Int
        var bound: Double
        var medianRounds: Double
        var p90Rounds: Double
        var secondsPerRound: Double?
    }

    /// Verdicts of the shipped judge replayed on each recorded condition, and on the identical
    /// rounds with the latency statistic shifted by +10 % and +25 % (a known effect).
    static func replay(path: String, verdicts: Int) throws -> (recorded: String, rows: [ReplayRow], advice: [String]) {
        let recorded = try JSONDecoder().decode(Recorded.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        let config = try CanaryConfig.parse(String(contentsOfFile: shippedConfig(), encoding: .utf8))
        let metrics = config.metrics.filter { $0.unit == .round }
        let indices = try metrics.map { metric in
            guard let index = recorded.columns.firstIndex(of: metric.name) else { throw Shell.Failure(description: "\(path) has no column \(metric.name)") }
            return index
        }
        var cases: [(String, [[Double]], [Double]?, Double?)] = recorded.conditions.keys.sorted().map { name in
            (name, recorded.conditions[name]!.map { row in indices.map { row[$0] } }, nil, recorded.secondsPerRound?[name])
        }
        if let identical = cases.first(where: { $0.0 == "identical" }) {
            for effect in [0.10, 0.25] {
                let shift = metrics.map { $0.name == "latency_ms" ? log1p(effect) : 0 }
                cases.append(("identical, latency \(metrics[0].statistic) shifted +\(Int(effect * 100))%", identical.1, shift, identical.3))
            }
        }
        let rows = cases.map { name, rounds, shift, seconds in
            let replayed = NoiseModel.replayVerdicts(rounds, metrics: metrics, config: config, verdicts: verdicts, shift: shift)
            let used = replayed.rounds.map(Double.init).sorted()
            return ReplayRow(condition: name, recordedRounds: rounds.count, verdicts: verdicts, notPass: replayed.alarms,
                             bound: NoiseModel.upperBound(replayed.alarms, of: verdicts), medianRounds: SampleStatistics.quantile(used, 0.5),
                             p90Rounds: SampleStatistics.quantile(used, 0.9), secondsPerRound: seconds)
        }
        // What `ratchet canary calibrate` would recommend from the identical rounds (its rule:
        // the smallest allowance with at most 1 % of one metric's replays not passing).
        let advice = metrics.enumerated().map { column, metric in
            let pool = (recorded.conditions["identical"] ?? []).map { $0[indices[column]] }
            let replays = NoiseModel.resampledIntervals(pool, metric: metric, config: config, resamples: verdicts)
            let step = metric.effect == .ratio ? 0.005 : max(((pool.max() ?? 0) - (pool.min() ?? 0)) / 200, 1e-9)
            let quiet = NoiseModel.alarmRate(replays, direction: metric.direction, allowed: 0, minRounds: config.minRounds) <= 0.01
            let recommended = quiet ? 0 : NoiseModel.smallestAllowance(replays, direction: metric.direction, minRounds: config.minRounds,
                                                                         target: 0.01, step: step)
            return "\(metric.name) (\(metric.statistic)): shipped allowance \(CanaryFormat.number(metric.allowedChange)), calibrate's rule recommends \(CanaryFormat.number(recommended))"
        }
        return (recorded.recorded, rows, advice)
    }

    /// The replay study as a markdown table.
    static func replayTable(_ study: (recorded: String, rows: [ReplayRow], advice: [String])) -> String {
        var lines = ["| condition | rounds recorded | verdicts replayed | not pass | rate (95% upper bound) | rounds (median / p90) | s per verdict (median / p90) |",
                     "|---|---|---|---|---|---|---|"]
        for row in study.rows {
            let seconds = row.secondsPerRound.map { String(format: "%.1f / %.1f", $0 * row.medianRounds, $0 * row.p90Rounds) } ?? "-"
            lines.append("| \(row.condition) | \(row.recordedRounds) | \(row.verdicts) | \(row.notPass) | "
                         + String(format: "%.2f%% (%.2f%%)", 100 * Double(row.notPass) / Double(max(row.verdicts, 1)), 100 * row.bound)
                         + " | \(Int(row.medianRounds)) / \(Int(row.p90Rounds)) | \(seconds) |")
        }
        lines.append("")
        lines += study.advice
        lines.append("\nRecorded: \(study.recorded)")
        return lines.joined(separator: "\n")
    }

    /// The shipped kv-cache canary.yaml (found like the templates: beside the binary's ancestors).
    static func shippedConfig() -> String {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while folder.path != "/" {
            let candidate = folder.appendingPathComponent("canaries/kv-cache/canary.yaml").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return "canaries/kv-cache/canary.yaml"
    }

    static func machine() -> String {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        return "\(cores) cores, load average at the end \(load)"
    }

    static func loadText(_ load: [Double]) -> String { load.map { String(format: "%.1f", $0) }.joined(separator: " / ") }

    static func describe(_ row: Row) -> String {
        let percent = { (x: Double?) in x.map { String(format: "%+.1f%%", $0 * 100) } ?? "-" }
        return "\(row.condition): pass \(row.pass), marginal \(row.marginal), fail \(row.fail) of \(row.runs); "
            + "median latency \(percent(row.medianLatencyEffect)), judged latency \(percent(row.latencyEffect)), judged PUT latency \(percent(row.putLatencyEffect)), cpu \(percent(row.cpuEffect)); rounds \(Int(row.medianRounds)); "
            + String(format: "%.1f s median, %.1f s p90 per verdict", row.medianSeconds, row.p90Seconds) + "; load " + loadText(row.load)
    }

    /// The study as a markdown table (docs/canary.md, docs/performance.md).
    static func table(_ study: Study) -> String {
        var lines = ["| condition | runs | pass | marginal | fail | median latency effect | judged latency effect | judged PUT latency effect | cpu effect | rounds (median) | s per verdict (median / p90) | load average (min / median / max) |",
                     "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        let percent = { (x: Double?) in x.map { String(format: "%+.1f%%", $0 * 100) } ?? "-" }
        for row in study.rows {
            lines.append("| \(row.condition) | \(row.runs) | \(row.pass) | \(row.marginal) | \(row.fail) | \(percent(row.medianLatencyEffect)) | \(percent(row.latencyEffect)) | "
                         + "\(percent(row.putLatencyEffect)) | \(percent(row.cpuEffect)) | \(Int(row.medianRounds)) | " + String(format: "%.1f / %.1f | ", row.medianSeconds, row.p90Seconds)
                         + loadText(row.load) + " |")
        }
        lines.append(String(format: "\nResampled identical-code verdicts: %d alarms in %d (%.2f%%, 95%% upper bound %.2f%%). Baseline median latency %.3f ms. %@.",
                            study.resampledAlarms, study.resampledVerdicts, 100 * Double(study.resampledAlarms) / Double(max(study.resampledVerdicts, 1)),
                            100 * study.resampledAlarmBound, study.baselineLatencyMs, study.machine))
        return lines.joined(separator: "\n")
    }
}

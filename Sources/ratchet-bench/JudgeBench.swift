import Foundation
import RatchetCore

/// The canary judge on 20 metrics × 10,000 samples per side (target: under 50 ms, release):
/// as Mann-Whitney (`unit: sample`), and as paired rounds (`unit: round`, 40 rounds of 250
/// samples, the judging Ratchet repeats after every round).
enum JudgeBench {
    static func measure(runs: Int, samples: Int = 10_000, metrics: Int = 20) throws -> [Figure] {
        var figures: [Figure] = []
        for unit in ["sample", "round"] {
            var yaml = "command: [\"./run\"]\ntimeout: 60s\nrounds: {min: 6, max: 40}\nmetrics:\n"
            for index in 0..<metrics {
                yaml += "  - {name: m\(index), unit: \(unit), direction: \(index % 3 == 0 ? "either" : "increase"), allowed_change: 0.1, critical: \(index < 2), weight: 1}\n"
            }
            yaml += "thresholds: {pass: 95, marginal: 75}\nchecks:\n  - p99(m0) < 1000\n  - mean(m1) <= 1000\n"
            let config = try CanaryConfig.parse(yaml)
            let (baseline, candidate) = sides(samples: samples, metrics: metrics, rounds: 40)
            var times: [Double] = []
            for _ in 0..<runs {
                times.append(milliseconds { _ = CanaryJudge.judge(config, baseline: baseline, candidate: candidate) })
            }
            figures.append(Figure(name: unit == "sample" ? "judge-\(metrics)x\(samples / 1000)k" : "judge-rounds-\(metrics)x40x\(samples / 40)",
                                  size: "-", pipeline: "ratchet", samples: times))
        }
        return figures
    }

    /// Latency-like samples with ties (rounded), a third of the metrics shifted by 20 %, spread over `rounds`.
    static func sides(samples: Int, metrics: Int, rounds: Int) -> (SideSamples, SideSamples) {
        var state: UInt64 = 7
        func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        var baseline = SideSamples(), candidate = SideSamples()
        for index in 0..<metrics {
            let shift = index % 3 == 1 ? 1.2 : 1.0
            for sample in 0..<samples {
                let round = 1 + sample % rounds
                baseline.add("m\(index)", round: round, value: (10 + 5 * -log(1 - next())).rounded())
                candidate.add("m\(index)", round: round, value: ((10 + 5 * -log(1 - next())) * shift).rounded())
            }
        }
        return (baseline, candidate)
    }
}

import Foundation
import RatchetCore

/// The canary judge on 20 metrics × 10,000 samples per side (target: under 50 ms, release).
enum JudgeBench {
    static func measure(runs: Int, samples: Int = 10_000, metrics: Int = 20) throws -> Figure {
        var yaml = "command: [\"./run\"]\ntimeout: 60s\nmetrics:\n"
        for index in 0..<metrics {
            yaml += "  - {name: m\(index), direction: \(index % 3 == 0 ? "either" : "increase"), allowed_change: 0.1, critical: \(index < 2), weight: 1}\n"
        }
        yaml += "thresholds: {pass: 95, marginal: 75}\nchecks:\n  - p99(m0) < 1000\n  - mean(m1) <= 1000\n"
        let config = try CanaryConfig.parse(yaml)
        var state: UInt64 = 7
        func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        var baseline: [String: [Double]] = [:], candidate: [String: [Double]] = [:]
        for index in 0..<metrics {
            // Latency-like samples with ties (rounded), a third of the metrics shifted by 20 %.
            let shift = index % 3 == 1 ? 1.2 : 1.0
            baseline["m\(index)"] = (0..<samples).map { _ in (10 + 5 * -log(1 - next())).rounded() }
            candidate["m\(index)"] = (0..<samples).map { _ in ((10 + 5 * -log(1 - next())) * shift).rounded() }
        }
        var times: [Double] = []
        for _ in 0..<runs {
            times.append(milliseconds { _ = CanaryJudge.judge(config, baseline: baseline, candidate: candidate) })
        }
        return Figure(name: "judge-\(metrics)x\(samples / 1000)k", size: "-", pipeline: "ratchet", samples: times)
    }
}

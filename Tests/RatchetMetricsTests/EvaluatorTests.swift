import Testing
@testable import RatchetMetrics

/// A source with series given as `labels: [(seconds, value)]`.
private func source(_ series: [([String: String], [(Int64, Double)])]) -> MemorySource {
    MemorySource(series.map { labels, samples in
        SeriesPoints(labels: Labels(labels), points: samples.map { Point(time: $0.0 * 1000, value: $0.1) })
    })
}

private func vector(_ value: QueryValue) -> [Labels: Double] {
    guard case .vector(let samples) = value else { return [:] }
    return Dictionary(uniqueKeysWithValues: samples.map { ($0.labels, $0.value) })
}

@Suite struct EvaluatorTests {
    /// `topk`'s k must be an int64, as in Prometheus: an agent's `topk(1e300, x)` is an error, not a trap.
    @Test func topkWithAKBeyondInt64IsAnError() throws {
        let evaluator = Evaluator(source: source([(["__name__": "x"], [(0, 1)])]))
        for k in ["1e300", "NaN", "-1e19"] { #expect(throws: EvaluationError.self, "\(k)") { try evaluator.query("topk(\(k), x)", at: 0) } }
        #expect(try evaluator.query("topk(1e18, x)", at: 0) == evaluator.query("x", at: 0))
    }

    @Test func instantSelectorsLookBackFiveMinutesBothEndsIncluded() throws {
        let evaluator = Evaluator(source: source([(["__name__": "x"], [(100, 1), (200, 2)])]))
        #expect(vector(try evaluator.query("x", at: 200_000)) == [Labels(["__name__": "x"]): 2])
        #expect(vector(try evaluator.query("x", at: 500_000)) == [Labels(["__name__": "x"]): 2])   // exactly 5 m later
        #expect(vector(try evaluator.query("x", at: 500_001)).isEmpty)
        #expect(vector(try evaluator.query("x", at: 150_000)) == [Labels(["__name__": "x"]): 1])
        #expect(vector(try evaluator.query("x offset 100s", at: 250_000)) == [Labels(["__name__": "x"]): 1])
    }

    @Test func rateExtrapolatesAsPrometheus() throws {
        // Samples every 15 s from t=15 to t=285 rising by 3: 19 samples, sampled interval 270 s.
        let samples = (1...19).map { (Int64($0 * 15), Double($0 * 3)) }
        let evaluator = Evaluator(source: source([(["__name__": "c"], samples)]))
        // Window [0, 300]: 15 s to the start (counter would reach 0 at 3/54*270 = 15 s: same),
        // 15 s to the end; both under the 1.1 × 15 s threshold, so extrapolate to 300 s.
        let increase = try #require(vector(try evaluator.query("increase(c[5m])", at: 300_000))[Labels()])
        #expect(abs(increase - 60) < 1e-12)
        let rate = try #require(vector(try evaluator.query("rate(c[5m])", at: 300_000))[Labels()])
        #expect(abs(rate - 0.2) < 1e-15)
        // Window [100, 300]: the first sample in it (t=105) is 5 s from the start; extrapolated by 5 s and 15 s.
        let shorter = try #require(vector(try evaluator.query("increase(c[200s])", at: 300_000))[Labels()])
        #expect(abs(shorter - (57 - 21) * (180.0 + 5 + 15) / 180) < 1e-12)
        // A reset adds the value before it back.
        let reset = Evaluator(source: source([(["__name__": "c"], [(0, 10), (15, 20), (30, 5), (45, 15)])]))
        #expect(vector(try reset.query("resets(c[1m])", at: 45_000))[Labels()] == 1)
        #expect(try #require(vector(try reset.query("increase(c[45s])", at: 45_000))[Labels()]) == 25)
        // One sample: no rate.
        #expect(vector(try evaluator.query("rate(c[10s])", at: 285_000)).isEmpty)
    }

    @Test func overTimeFunctionsUseRollupsWhereTheyStandInForSamples() throws {
        let rollups = MemorySource([SeriesPoints(labels: Labels(["__name__": "g"]), points: [
            Point(time: 299_000, value: 4, count: 20, sum: 50, min: 1, max: 9),
            Point(time: 599_000, value: 6, count: 20, sum: 70, min: 0, max: 7),
            Point(time: 610_000, value: 8),
        ])])
        let evaluator = Evaluator(source: rollups)
        #expect(vector(try evaluator.query("count_over_time(g[1h])", at: 610_000))[Labels()] == 41)
        #expect(vector(try evaluator.query("sum_over_time(g[1h])", at: 610_000))[Labels()] == 128)
        #expect(vector(try evaluator.query("avg_over_time(g[1h])", at: 610_000))[Labels()] == 128.0 / 41)
        #expect(vector(try evaluator.query("min_over_time(g[1h])", at: 610_000))[Labels()] == 0)
        #expect(vector(try evaluator.query("max_over_time(g[1h])", at: 610_000))[Labels()] == 9)
        #expect(vector(try evaluator.query("last_over_time(g[1h])", at: 610_000))[Labels(["__name__": "g"])] == 8)
    }

    @Test func vectorMatchingAndItsErrors() throws {
        let evaluator = Evaluator(source: source([
            (["__name__": "errors", "job": "a", "code": "500"], [(0, 2)]),
            (["__name__": "errors", "job": "a", "code": "503"], [(0, 3)]),
            (["__name__": "total", "job": "a"], [(0, 10)]),
            (["__name__": "total", "job": "b"], [(0, 20)]),
        ]))
        #expect(vector(try evaluator.query("errors / ignoring (code) group_left total", at: 0))
                == [Labels(["job": "a", "code": "500"]): 0.2, Labels(["job": "a", "code": "503"]): 0.3])
        #expect(vector(try evaluator.query("sum by (job) (errors) / on (job) total", at: 0)) == [Labels(["job": "a"]): 0.5])
        #expect(vector(try evaluator.query("total > bool 15", at: 0)) == [Labels(["job": "a"]): 0, Labels(["job": "b"]): 1])
        #expect(vector(try evaluator.query("total > 15", at: 0)) == [Labels(["__name__": "total", "job": "b"]): 20])
        #expect(throws: EvaluationError.self) { try evaluator.query("errors / ignoring (code) total", at: 0) }
        #expect(throws: EvaluationError.self) { try evaluator.query("total / ignoring (code) group_left errors", at: 0) }
        // Dropping the name leaves two series with the same labels.
        let same = Evaluator(source: source([(["__name__": "a", "x": "1"], [(0, 1)]), (["__name__": "b", "x": "1"], [(0, 1)])]))
        #expect(throws: EvaluationError.self) { try same.query(#"{x="1"} * 2"#, at: 0) }
        #expect(vector(try same.query(#"{x="1"} > 0"#, at: 0)).count == 2)
    }

    @Test func histogramQuantileInterpolatesWithinTheBucket() throws {
        let evaluator = Evaluator(source: source([
            (["__name__": "h_bucket", "le": "0.1"], [(0, 10)]),
            (["__name__": "h_bucket", "le": "0.5"], [(0, 30)]),
            (["__name__": "h_bucket", "le": "+Inf"], [(0, 40)]),
        ]))
        // rank 0.5 × 40 = 20 lies in (0.1, 0.5]: 0.1 + 0.4 × (20 − 10) / 20.
        #expect(vector(try evaluator.query("histogram_quantile(0.5, h_bucket)", at: 0))[Labels()] == 0.1 + 0.4 * 10 / 20)
        // Above the last finite bucket: its bound.
        #expect(vector(try evaluator.query("histogram_quantile(0.99, h_bucket)", at: 0))[Labels()] == 0.5)
        #expect(vector(try evaluator.query("histogram_quantile(2, h_bucket)", at: 0))[Labels()] == .infinity)
    }

    @Test func prometheusJSONWritesValuesAsGoDoes() {
        #expect(PrometheusJSON.formatValue(1e21) == "1000000000000000000000")
        #expect(PrometheusJSON.formatValue(1.5e-7) == "0.00000015")
        #expect(PrometheusJSON.formatValue(-2.5) == "-2.5" && PrometheusJSON.formatValue(3) == "3")
        #expect(PrometheusJSON.formatValue(.nan) == "NaN" && PrometheusJSON.formatValue(-.infinity) == "-Inf")
        #expect(PrometheusJSON.timestamp(1_700_000_000_120) == "1700000000.12" && PrometheusJSON.timestamp(5_000) == "5")
        let value = QueryValue.vector([InstantSample(labels: Labels(["b": "2", "a": "<1>"]), value: .infinity)])
        #expect(PrometheusJSON.data(value, at: 1_500) == #"{"resultType":"vector","result":[{"metric":{"a":"\u003c1\u003e","b":"2"},"value":[1.5,"+Inf"]}]}"#)
        #expect(PrometheusJSON.data(.scalar(0.1), at: 2_000) == #"{"resultType":"scalar","result":[2,"0.1"]}"#)
    }
}

import Testing
@testable import RatchetMetrics

/// Writing expressions back as PromQL, and narrowing them to one service (the agent's `metrics` tool).
@Suite struct ScopeTests {
    static let expressions = [
        #"sum by (code) (rate(http_requests_total{code=~"5..", method!="GET"}[5m] offset 1h))"#,
        "histogram_quantile(0.99, sum without (instance) (rate(request_duration_seconds_bucket[1h30m])))",
        "-2 ^ 2", "2 ^ 3 ^ 2", "(1 + 2) * 3", "1 - -1", "-(a - b)", "a > bool 0.001", "0.5 < rate(x[250ms])",
        "a / on (instance) group_left (zone) b", "a unless ignoring (code) b or c and d",
        #"topk(3, x{l="quote \" back \\ slash\nline"})"#, #"count_values("value", up)"#, "quantile(0.9, x) * 1e-05",
        #"{__name__=~"http_.*", job="a"}"#, "sum(x) by (a)", "sum without () (x)", "absent(nonexistent{job=\"x\"})",
        "clamp(x, -Inf, Inf) + 1", "0x1f + 1.5e3", "vector(1) + time()", "x offset -5m",
    ]

    @Test func renderedExpressionsParseBackToTheSameExpression() throws {
        for text in Self.expressions {
            let parsed = try PromQL.parse(text)
            let rendered = PromQL.render(parsed)
            let again = try PromQL.parse(rendered)
            #expect(PromQL.render(again) == rendered, "\(text) → \(rendered)")
            #expect(PromQL.canonical(again) == PromQL.canonical(parsed), "\(text) → \(rendered)")
        }
        #expect(PromQL.render(try PromQL.parse("rate(x[90s]) > 1.5")) == "rate(x[90s]) > 1.5")
        #expect(PromQL.render(try PromQL.parse("NaN + -Inf")) == "NaN + (-Inf)")
    }

    @Test func everySelectorCarriesTheScope() throws {
        let scope = [try LabelMatcher(name: "service", kind: .equal, value: "svc")]
        #expect(try PromQL.scoped(#"sum(rate(x{code="500"}[5m])) / on (a) y offset 5m"#, to: scope)
                == #"sum(rate(x{code="500", service="svc"}[5m])) / on(a) y{service="svc"} offset 5m"#)
        #expect(try PromQL.scoped("1 + 2", to: scope) == "1.0 + 2.0")
        let series = ["svc", "other"].flatMap { service in
            [SeriesPoints(labels: Labels(["__name__": "up", "service": service]), points: [Point(time: 0, value: 1)]),
             SeriesPoints(labels: Labels(["__name__": "secret", "service": service]), points: [Point(time: 0, value: 42)])]
        } + [SeriesPoints(labels: Labels(["__name__": "unlabelled"]), points: [Point(time: 0, value: 7)])]
        let evaluator = Evaluator(source: MemorySource(series))
        for hostile in [#"secret{service="other"}"#, #"{__name__=~".+", service!="svc"}"#, "unlabelled", #"up{service=~"other|svc"} unless up{service="svc"}"#] {
            let value = try evaluator.query(try PromQL.scoped(hostile, to: scope), at: 0)
            #expect(value == .vector([]), "\(hostile): \(value)")
        }
        guard case .vector(let all) = try evaluator.query(try PromQL.scoped(#"{__name__=~".+"}"#, to: scope), at: 0) else { Issue.record("not a vector"); return }
        #expect(all.count == 2 && all.allSatisfy { $0.labels["service"] == "svc" })
    }

    @Test func whatCannotBeScopedIsRefused() throws {
        let scope = [try LabelMatcher(name: "service", kind: .equal, value: "svc")]
        for text in ["rate(x[5m:1m])", "x @ 100", #"label_replace(up, "service", "svc", "", "")"#, "sum("] {
            #expect(throws: PromQLError.self, "\(text)") { try PromQL.scoped(text, to: scope) }
        }
        // A scope that a series without the label passes is no scope.
        #expect(throws: EvaluationError.self) { try PromQL.scoped("up", to: [try LabelMatcher(name: "service", kind: .regex, value: ".*")]) }
        #expect(throws: EvaluationError.self) { try PromQL.scoped("up", to: []) }
    }
}

import Testing
@testable import RatchetMetrics

@Suite struct ExpositionTests {
    @Test func readsEveryMetricTypeWithEscapesTimestampsAndComments() {
        let page = Exposition.parse(#"""
        # HELP http_requests_total The total number of HTTP requests.\nSecond line \\ done
        # TYPE http_requests_total counter
        http_requests_total{method="post",code="200"} 1027 1395066363000
        http_requests_total{method="post",code="400",} 3 1395066363000
        # A comment that is not HELP or TYPE
        msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
        metric_without_timestamp_and_labels 12.47

        # TYPE rpc_duration_seconds summary
        rpc_duration_seconds{quantile="0.5"} 4773
        rpc_duration_seconds_sum 1.7560473e+07
        rpc_duration_seconds_count 2693
        # TYPE http_request_duration_seconds histogram
        http_request_duration_seconds_bucket{le="0.05"} 24054
        http_request_duration_seconds_bucket{le="+Inf"} 144320
        http_request_duration_seconds_sum 53423
        http_request_duration_seconds_count 144320
        """#)
        #expect(page.errors.isEmpty, "\(page.errors)")
        #expect(page.format == .text)
        #expect(page.samples.count == 11)
        #expect(page.types["http_requests_total"] == .counter && page.types["rpc_duration_seconds"] == .summary
                && page.types["http_request_duration_seconds"] == .histogram)
        #expect(page.help["http_requests_total"] == "The total number of HTTP requests.\nSecond line \\ done")
        #expect(page.samples[0].labels == Labels(["__name__": "http_requests_total", "method": "post", "code": "200"]))
        #expect(page.samples[0].time == 1_395_066_363_000 && page.samples[0].value == 1027)
        #expect(page.samples[2].labels["path"] == #"C:\DIR\FILE.TXT"# && page.samples[2].labels["error"] == "Cannot find file:\n\"FILE.TXT\"")
        #expect(page.samples[2].value == 1.458255915e9 && page.samples[2].time == nil)
        #expect(page.samples[8].labels["le"] == "+Inf" && page.samples[8].lineNumber == 15)
    }

    @Test func nanAndInfinitiesAreValues() {
        let page = Exposition.parse("a NaN\nb +Inf\nc -Inf\nd Inf\ne nan\n")
        #expect(page.errors.isEmpty)
        let values = page.samples.map(\.value)
        #expect(values[0].isNaN && values[1] == .infinity && values[2] == -.infinity && values[3] == .infinity && values[4].isNaN)
    }

    /// A timestamp beyond Int64 milliseconds (a scraped page is written by branch code) is a malformed line, not a trap.
    @Test func aTimestampBeyondInt64MillisecondsIsMalformed() {
        let page = Exposition.parse("a 1 1e300\nb 1 -9.3e15\nc 2 1700000000.5\n# EOF\n", format: .openMetrics)
        #expect(page.errors.count == 2 && page.samples.map(\.time) == [1_700_000_000_500])
    }

    @Test func aMalformedLineIsReportedWithItsNumberAndTheRestKept() {
        let page = Exposition.parse("""
        good 1
        bad{label="unterminated} 2
        also_good{a="b"} 3
        value_missing{a="b"}
        bad_value x
        1starts_with_digit 4
        bad_escape{a="\\q"} 5
        trailing 6 7 8
        dup 1
        dup 2
        # TYPE good nonsense
        last 9
        """)
        #expect(page.samples.map(\.labels.name) == ["good", "also_good", "dup", "last"])
        #expect(page.errors.map(\.lineNumber) == [2, 4, 5, 6, 7, 8, 10, 11])
        #expect(page.errors[0].description.hasPrefix("line 2: "))
        #expect(page.errors.first { $0.lineNumber == 10 }?.message.contains("duplicate sample") == true)
        #expect(page.errors.first { $0.lineNumber == 11 }?.message.contains("unknown metric type") == true)
    }

    @Test func openMetricsTimestampsAreSecondsAndEOFEndsThePage() {
        let page = Exposition.parse("""
        # TYPE requests counter
        # UNIT requests requests
        requests_total{code="200"} 10 1700000000.125 # {trace_id="abc"} 1 1700000000.000
        requests_total{code="200"} 12 1700000015.5
        # EOF
        """)
        #expect(page.format == .openMetrics && page.errors.isEmpty, "\(page.errors)")
        #expect(page.samples.map(\.time) == [1_700_000_000_125, 1_700_000_015_500])
        let after = Exposition.parse("a 1 1\n# EOF\nb 2 2\n", format: .openMetrics)
        #expect(after.errors.map(\.lineNumber) == [3] && after.samples.count == 1)
        let unterminated = Exposition.parse("a 1 1\n", format: .openMetrics)
        #expect(unterminated.errors.first?.message.contains("# EOF") == true)
    }

    @Test func tenThousandLabelSetsForOneMetric() throws {
        let text = (0..<10_000).map { "requests_total{path=\"/p/\($0)\",code=\"\($0 % 5)00\"} \($0)" }.joined(separator: "\n")
        let page = Exposition.parse(text)
        #expect(page.errors.isEmpty && page.samples.count == 10_000)
        #expect(Set(page.samples.map(\.labels)).count == 10_000)
        let evaluator = Evaluator(source: MemorySource(lines: page.samples, defaultTime: 1_000_000))
        guard case .vector(let sums) = try evaluator.query("sum by (code) (requests_total)", at: 1_000_000) else { Issue.record("not a vector"); return }
        #expect(sums.count == 5)
        #expect(sums.map(\.value).reduce(0, +) == Double((0..<10_000).reduce(0, +)))
        guard case .vector(let count) = try evaluator.query(#"count(requests_total{path=~"/p/1.*"})"#, at: 1_000_000) else { Issue.record("not a vector"); return }
        #expect(count.first?.value == 1111)
    }
}

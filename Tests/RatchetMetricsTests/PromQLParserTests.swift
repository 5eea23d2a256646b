import Testing
@testable import RatchetMetrics

@Suite struct PromQLParserTests {
    @Test func precedenceFollowsPrometheus() throws {
        // a + b * c ^ d ^ e  →  a + (b * (c ^ (d ^ e)))
        guard case .binary(let plus, _, let right, _) = try PromQL.parse("a + b * c ^ d ^ e"),
              case .binary(let times, _, let power, _) = right,
              case .binary(let caret, _, let inner, _) = power,
              case .binary(let caret2, _, _, _) = inner else { Issue.record("wrong shape"); return }
        #expect(plus == .add && times == .multiply && caret == .power && caret2 == .power)
        // -2 ^ 2 is -(2^2); or binds loosest, and/unless above it, comparisons above those.
        #expect(try PromQL.parse("-2 ^ 2") == .negation(.binary(.power, .number(2), .number(2), .none)))
        guard case .binary(let or, _, let rhs, _) = try PromQL.parse("a or b and c > 1") ,
              case .binary(let and, _, let cmp, _) = rhs, case .binary(let greater, _, _, _) = cmp else { Issue.record("wrong shape"); return }
        #expect(or == .or && and == .and && greater == .greater)
    }

    @Test func selectorsRangesAndModifiers() throws {
        guard case .call("rate", let arguments) = try PromQL.parse(#"rate(http_requests_total{code=~"5..", method!="GET"}[5m] offset 1h)"#),
              case .matrixSelector(let selector, let range) = arguments[0] else { Issue.record("wrong shape"); return }
        #expect(range == 300_000 && selector.offset == 3_600_000)
        #expect(selector.matchers.map(\.description) == [#"__name__="http_requests_total""#, #"code=~"5..""#, #"method!="GET""#])
        guard case .aggregate(let op, _, _, let grouping) = try PromQL.parse("sum without (instance) (rate(x[1h30m]))") else { Issue.record("wrong shape"); return }
        #expect(op.name == "sum" && grouping == Grouping(without: true, labels: ["instance"]))
        guard case .binary(_, _, _, let modifiers) = try PromQL.parse("a > bool on (job) group_left (team) b") else { Issue.record("wrong shape"); return }
        #expect(modifiers.returnsBool && modifiers.on && modifiers.matchingLabels == ["job"] && modifiers.grouping == .groupLeft && modifiers.includeLabels == ["team"])
    }

    @Test func errorsCarryThePosition() {
        let cases: [(String, Int, String)] = [
            ("foo(bar)", 0, #"unknown function with name "foo""#),
            ("sum(rate(x[5m])", 15, "unexpected end of input"),
            ("rate(x)", 5, "expected type range vector"),
            ("x{a=1}", 4, "expected string"),
            ("1 > 2", 2, "comparisons between scalars must use BOOL modifier"),
            ("x[5]", 2, "expected duration"),
            ("{a=~\"\"}", 0, "at least one non-empty matcher"),
            ("x{a=~\"(\"}", 5, "invalid regular expression"),
            ("sum(x) +", 8, "unexpected end of input"),
        ]
        for (text, position, message) in cases {
            do {
                _ = try PromQL.parse(text)
                Issue.record("\(text) parsed")
            } catch let error as PromQLError {
                #expect(error.position == position, "\(text): \(error)")
                #expect(error.message.contains(message), "\(text): \(error)")
            } catch { Issue.record("\(text): \(error)") }
        }
    }

    @Test func numbersAndDurations() throws {
        #expect(try PromQL.parse("0x1f") == .number(31))
        #expect(try PromQL.parse("1.5e3") == .number(1500))
        guard case .number(let inf) = try PromQL.parse("-Inf"), case .number(let nan) = try PromQL.parse("NaN") else { Issue.record("not numbers"); return }
        #expect(inf == -.infinity && nan.isNaN)
        #expect(Lexer.duration("1h30m") == 5_400_000 && Lexer.duration("1m1h") == nil && Lexer.duration("250ms") == 250)
    }

    /// An agent's expression (the `metrics` tool) cannot nest deep enough to overflow a stack.
    @Test func deepNestingAndLongChainsAreRefusedWithAPosition() throws {
        let nested = String(repeating: "(", count: 10_000) + "up" + String(repeating: ")", count: 10_000)
        #expect(throws: PromQLError.self) { try PromQL.parse(nested) }
        #expect(throws: PromQLError.self) { try PromQL.parse(String(repeating: "- ", count: 10_000) + "up") }
        #expect(throws: PromQLError.self) { try PromQL.parse(Array(repeating: "up", count: 10_000).joined(separator: " + ")) }
        do { _ = try PromQL.parse(nested) } catch let error as PromQLError { #expect(error.message.contains("nested deeper") && error.position == 64) }
        _ = try PromQL.parse(String(repeating: "(", count: 60) + "up" + String(repeating: ")", count: 60))
        _ = try PromQL.parse(Array(repeating: "up", count: 200).joined(separator: " + "))
    }
}

import Testing
@testable import RatchetMetrics

/// PromQL is read scalar by scalar, as Prometheus's Go lexer reads runes (adr/0066): a combining
/// mark (U+0301) after a delimiter or a prepended character (U+0600) before one forms one grapheme
/// cluster with it in Swift, and must change nothing about where strings, selectors and operators end.
@Suite struct PromQLUnicodeTests {
    static let prepend = "\u{0600}", mark = "\u{0301}"

    /// The scalars of every matcher value of every selector, in order.
    static func values(_ text: String) throws -> [[UInt32]] {
        PromQL.selectors(try PromQL.parse(text)).flatMap { $0.matchers.map { $0.value.unicodeScalars.map(\.value) } }
    }

    @Test func quotesNextToCombiningMarksAndPrependedCharactersStillDelimitStrings() throws {
        let (p, m) = (Self.prepend, Self.mark)
        // U+0600 then `"` and `"` then U+0301 are single Characters; still three selectors joined by `or`.
        let attack = "{job=\"\(p)\"} or {__name__=~\"\(m)?.+|\(p)\"} or {x=\"\(m)\"}"
        #expect(try Self.values(attack) == [[0x600], [0x301, 0x3F, 0x2E, 0x2B, 0x7C, 0x600], [0x301]])
        guard case .binary(let or, _, _, _) = try PromQL.parse(attack) else { Issue.record("not a binary operation"); return }
        #expect(or == .or)
        #expect(try Self.values("x{a='\(p)', b=`\(m)`}") == [Array("x".unicodeScalars.map(\.value)), [0x600], [0x301]])
        // `e` + U+0301 is kept as written: not folded into `é` (U+00E9), which is another value to Prometheus.
        #expect(try Self.values("{a=\"e\(m)\"}") == [[0x65, 0x301]])
        #expect(try Self.values("{a=\"\u{E9}\"}") == [[0xE9]])
    }

    @Test func combiningMarksOutsideStringsAreErrorsAtTheirScalar() {
        let m = Self.mark
        let cases: [(String, Int)] = [
            ("x{a=\"v\"\(m)}", 7),          // after the closing quote
            ("{\(m)a=\"v\"}", 1),           // after `{`
            ("x{a=\"v\"}\(m)", 8),          // after `}`
            ("a +\(m) b", 3), ("a or\(m) b", 4), ("a ==\(m) b", 4),   // after operators and keywords
            ("rate(x[5m\(m)])", 9),         // after a duration
            ("1\(m) + 2", 1),               // after a number
            ("x{a=\"\(m)\(m)\"} + \(m)", 12), // positions count scalars
            ("\u{0663}", 0), ("a\u{00A0}+ b", 1), ("\u{00E9}", 0),   // a non-ASCII digit, a no-break space, a non-ASCII letter
        ]
        for (text, position) in cases {
            do {
                _ = try PromQL.parse(text)
                Issue.record("\(text.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()) parsed")
            } catch let error as PromQLError {
                #expect(error.position == position, "\(error)")
            } catch { Issue.record("\(error)") }
        }
    }

    @Test func stringEscapesAreGos() throws {
        #expect(try PromQL.parse(#""\u00e9\U0001F600\x41\101\a\v""#) == .string("\u{E9}\u{1F600}AA\u{07}\u{0B}"))
        #expect(try PromQL.parse(#"'\''"#) == .string("'"))
        #expect(try PromQL.parse("`a\nb\\`") == .string("a\nb\\"))
        // Bytes beyond ASCII (\xff, \377), surrogates, an escape of the other quote, a line break in a quoted string.
        for text in [#""\xff""#, #""\377""#, #""\ud800""#, #""\'""#, "\"a\nb\"", #""\u00e""#, #""\x+1""#, #""\q""#] {
            #expect(throws: PromQLError.self, "\(text)") { try PromQL.parse(text) }
        }
        #expect(throws: PromQLError.self) { try PromQL.parse("x{a:b=\"v\"}") }
        // A comment ends at a carriage return as in Go, and a duration that overflows is an error, not a trap.
        #expect(try PromQL.parse("x # comment\r+ 1") == .binary(.add, try PromQL.parse("x"), .number(1), .none))
        #expect(throws: PromQLError.self) { try PromQL.parse("rate(x[9999999999999999y])") }
        for range in ["1000000s9223372036854775807ms", "9223372036854775807ms", "9007199254740993ms"] {
            #expect(throws: PromQLError.self, "\(range)") { try PromQL.parse("rate(x[\(range)])") }
        }
        #expect(throws: PromQLError.self) { try PromQL.parse("sum by (a:b) (x)") }
    }

    /// Whatever scalars a value holds, its rendering is printable ASCII and reads back to exactly them.
    @Test func renderedStringsArePrintableASCIIAndReadBackExactly() throws {
        let awkward: [Unicode.Scalar] = ["\"", "'", "`", "\\", "\n", "\r", "\t", "\u{0}", "\u{7F}", "{", "}", ",", "=", "~",
                                         "\u{0301}", "\u{0600}", "\u{200D}", "\u{FE0F}", "\u{1F1E6}", "\u{1F600}", "\u{FFFD}", "\u{E9}", "a"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var value = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 1...12, using: &generator) { value.append(awkward.randomElement(using: &generator)!) }
            let text = String(value)
            let rendered = PromQL.render(.vectorSelector(VectorSelector(name: nil, matchers: [try LabelMatcher(name: "a", kind: .equal, value: text)], offset: 0)))
            #expect(rendered.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "\(rendered)")
            #expect(try Self.values(rendered) == [text.unicodeScalars.map(\.value)], "\(rendered)")
        }
        #expect(PromQL.quoted("\"\u{0301}") == #""\"\u0301""#)
        #expect(PromQL.quoted("\u{0600}\"x\u{1F600}") == #""\u0600\"x\U0001F600""#)
    }

    /// The hostile review's query is refused: read as Prometheus reads it, its third selector
    /// `{x!="\u0301"}` matches the empty value. A variant that parses is scoped in all three
    /// selectors, and only the agent's service is read.
    @Test func theAttackIsRefusedOrScopedInEverySelector() throws {
        let (p, m) = (Self.prepend, Self.mark)
        let scope = [try LabelMatcher(name: "service", kind: .equal, value: "svc")]
        let attack = "{job=\"\(p)\"} or {__name__=~\"\(m)?.+|\(p)\"} or {x!=\"\(m)\"}"
        do {
            _ = try PromQL.scoped(attack, to: scope)
            Issue.record("the attack was scoped")
        } catch let error as PromQLError {
            #expect(error.position == 37 && error.message.contains("non-empty matcher"), "\(error)")
        }
        let variant = "{job=\"\(p)\"} or {__name__=~\"\(m)?.+|\(p)\"} or {x!=\"\(m)\", __name__=~\".+\"}"
        let scoped = try PromQL.scoped(variant, to: scope)
        #expect(scoped == #"({job="\u0600", service="svc"} or {__name__=~"\u0301?.+|\u0600", service="svc"}) or {x!="\u0301", __name__=~".+", service="svc"}"#)
        let selectors = PromQL.selectors(try PromQL.parse(scoped))
        #expect(selectors.count == 3 && selectors.allSatisfy { $0.matchers.contains(scope[0]) })
        let series = ["svc", "other"].map { SeriesPoints(labels: Labels(["__name__": "\($0)_secret_total", "service": $0]), points: [Point(time: 0, value: 1337)]) }
        let evaluator = Evaluator(source: MemorySource(series))
        for text in [variant, "{__name__=~\".+\", x!=\"\(m)\"} or {__name__=~\"\(p).*|.+\"}", "sum({__name__=~\"\(m)?.+\"}) + on() group_left {__name__=~\".+\(p)?\"}"] {
            guard case .vector(let read) = try evaluator.query(try PromQL.scoped(text, to: scope), at: 0) else { Issue.record("not a vector"); continue }
            #expect(!read.isEmpty && read.allSatisfy { $0.labels["service"] == "svc" || $0.labels["service"].isEmpty }, "\(text): \(read)")
        }
    }

    /// What does not read back as the tree that was scoped is refused before it is sent.
    @Test func aRenderingThatReadsBackDifferentlyIsRefused() throws {
        let scope = [try LabelMatcher(name: "service", kind: .equal, value: "svc")]
        let tree = try PromQL.parse(#"x{service="svc"}"#)
        try PromQL.requireSameReading(#"x{service="svc"}"#, as: tree, scope: scope)
        for (text, scoped) in [(#"x{service="svc"} or y"#, tree), ("x{service=\"svc\", a=\"\u{0301}\"}", tree), (#"x"#, try PromQL.parse("x"))] {
            #expect(throws: EvaluationError.self, "\(text)") { try PromQL.requireSameReading(text, as: scoped, scope: scope) }
        }
    }
}

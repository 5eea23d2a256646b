/// A PromQL syntax error, at a 0-based offset into the expression counted in Unicode scalars
/// (code points, as Prometheus's Go lexer reads runes; adr/0066).
public struct PromQLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What is wrong.
    public var message: String
    /// 0-based offset, in Unicode scalars, where it was found.
    public var position: Int
    /// Makes an error.
    public init(message: String, position: Int) { self.message = message; self.position = position }
    /// `parse error at char 5: unexpected "}"` (char is 1-based, as people count).
    public var description: String { "parse error at char \(position + 1): \(message)" }
}

/// One token of a PromQL expression.
struct Token: Equatable {
    enum Kind: Equatable { case identifier, number, duration, string, symbol, end }
    var kind: Kind
    var text: String
    var position: Int
    /// The number's value, or the duration in milliseconds, or the string's unescaped content.
    var number: Double = 0
    var string: String = ""

    var quoted: String { kind == .end ? "end of input" : "\"\(text)\"" }
}

/// Splits an expression into tokens; errors carry the position. It reads Unicode scalars, as
/// Prometheus's lexer reads runes, never grapheme clusters: a combining mark after a quote, or a
/// prepended character before one, must not hide the quote from us while Prometheus sees it (adr/0066).
struct Lexer {
    private let scalars: [Unicode.Scalar]
    private var index = 0

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    /// Every token, the last being `.end`.
    static func tokens(_ text: String) throws -> [Token] {
        var lexer = Lexer(text)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private static let symbols: [[Unicode.Scalar]] = ["==", "!=", ">=", "<=", "=~", "!~", "+", "-", "*", "/", "%", "^", ">", "<", "=",
                                                      "(", ")", "{", "}", "[", "]", ",", ":", "@"].map { Array($0.unicodeScalars) }

    /// ASCII digits, letters and `_`, and the four spaces Go's lexer skips: nothing else is part of a
    /// token outside a string.
    static func isDigit(_ s: Unicode.Scalar) -> Bool { ("0"..."9").contains(s) }
    static func isAlpha(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_" }
    static func isSpace(_ s: Unicode.Scalar) -> Bool { s == " " || s == "\t" || s == "\n" || s == "\r" }

    private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }
    private func text(_ range: Range<Int>) -> String { String(String.UnicodeScalarView(scalars[range])) }

    private mutating func next() throws -> Token {
        skipSpaceAndComments()
        guard let c = current else { return Token(kind: .end, text: "", position: index) }
        let start = index
        if Self.isDigit(c) || (c == "." && index + 1 < scalars.count && Self.isDigit(scalars[index + 1])) {
            return try numberOrDuration(start)
        }
        if Self.isAlpha(c) || c == ":" {
            while let s = current, Self.isAlpha(s) || Self.isDigit(s) || s == ":" { index += 1 }
            let text = self.text(start..<index)
            if ["inf", "nan"].contains(text.lowercased()) {
                return Token(kind: .number, text: text, position: start, number: text.lowercased() == "inf" ? .infinity : .nan)
            }
            return Token(kind: .identifier, text: text, position: start)
        }
        if c == "\"" || c == "'" || c == "`" { return try stringLiteral(start, quote: c) }
        for symbol in Self.symbols where matches(symbol) {
            index += symbol.count
            return Token(kind: .symbol, text: self.text(start..<index), position: start)
        }
        throw PromQLError(message: "unexpected character \(Self.spoken(c))", position: start)
    }

    /// `"x"`, or `U+0301` for what is not printable ASCII (a combining mark would join the quote).
    static func spoken(_ s: Unicode.Scalar) -> String {
        s.value >= 0x20 && s.value < 0x7f ? "\"\(s)\"" : "U+" + hex(s.value, width: 4)
    }

    /// `value` in upper-case hexadecimal, zero-padded to `width` digits.
    static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private func matches(_ symbol: [Unicode.Scalar]) -> Bool {
        index + symbol.count <= scalars.count && scalars[index..<(index + symbol.count)].elementsEqual(symbol)
    }

    private mutating func skipSpaceAndComments() {
        while let c = current {
            if Self.isSpace(c) { index += 1; continue }
            if c == "#" {
                while let s = current, s != "\n" && s != "\r" { index += 1 }   // Go ends a comment at either
                continue
            }
            break
        }
    }

    private static let units: [(String, Int64)] = [("ms", 1), ("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000),
                                                   ("h", 3_600_000), ("m", 60_000), ("s", 1000)]

    /// A number (`1`, `1.5e3`, `0x1f`) or a duration (`5m`, `1h30m`): ASCII only.
    private mutating func numberOrDuration(_ start: Int) throws -> Token {
        while let s = current, Self.isAlpha(s) || Self.isDigit(s) || s == "." ||
                ((s == "+" || s == "-") && index > start && (scalars[index - 1] == "e" || scalars[index - 1] == "E") && !isHex(start)) {
            index += 1
        }
        let text = self.text(start..<index)
        if let value = Self.number(text) { return Token(kind: .number, text: text, position: start, number: value) }
        if let milliseconds = Self.duration(text) { return Token(kind: .duration, text: text, position: start, number: Double(milliseconds)) }
        throw PromQLError(message: "bad number or duration syntax: \"\(text)\"", position: start)
    }

    private func isHex(_ start: Int) -> Bool {
        start + 1 < scalars.count && scalars[start] == "0" && (scalars[start + 1] == "x" || scalars[start + 1] == "X")
    }

    static func number(_ text: String) -> Double? {
        let lower = text.lowercased()
        if lower.hasPrefix("0x") { return UInt64(lower.dropFirst(2), radix: 16).map { Double($0) } }
        guard lower.unicodeScalars.allSatisfy({ isDigit($0) || "e.+-".unicodeScalars.contains($0) }) else { return nil }
        return Double(text)
    }

    /// `1h30m` → milliseconds; units in decreasing order, each at most once.
    static func duration(_ text: String) -> Int64? {
        var rest = Substring(text).unicodeScalars
        var total: Int64 = 0
        var lastUnit = Int.min
        while !rest.isEmpty {
            let digits = rest.prefix { isDigit($0) }
            guard !digits.isEmpty, let count = Int64(String(String.UnicodeScalarView(digits))) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let (offset, unit) = Self.units.enumerated().first(where: { rest.starts(with: $0.element.0.unicodeScalars) })
                .map({ ($0.offset, $0.element) }) else { return nil }
            let order = [6, 0, 1, 2, 3, 4, 5][offset]   // y < w < d < h < m < s < ms; ms is listed first only so that it wins over m
            guard order > lastUnit else { return nil }
            lastUnit = order
            rest = rest.dropFirst(unit.0.count)
            // An agent's `99999999999999999y` is refused, not a trap on overflow; the token carries the
            // milliseconds as a Double, exact up to 2^53 (285,000 years).
            let (product, overflow) = count.multipliedReportingOverflow(by: unit.1)
            let (sum, overflowSum) = total.addingReportingOverflow(product)
            guard !overflow && !overflowSum && sum <= 1 << 53 else { return nil }
            total = sum
        }
        return total
    }

    /// A quoted string, scalar by scalar; `"` and `'` take Go's escapes (`\a \b \f \n \r \t \v \\`,
    /// the opening quote, `\u` and `\U` code points, `\x` and octal for ASCII) and end at a line break
    /// as Go's do; backquotes are raw.
    private mutating func stringLiteral(_ start: Int, quote: Unicode.Scalar) throws -> Token {
        index += 1
        var value = String.UnicodeScalarView()
        while true {
            guard let c = current, quote == "`" || c != "\n" else { throw PromQLError(message: "unterminated quoted string", position: start) }
            index += 1
            if c == quote { break }
            if c == "\\" && quote != "`" { value.append(try escape(quote)) } else { value.append(c) }
        }
        return Token(kind: .string, text: text(start..<index), position: start, string: String(value))
    }

    /// A hexadecimal digit's value, 16 for anything else.
    static func digitValue(_ s: Unicode.Scalar) -> Int {
        switch s {
        case "0"..."9": return Int(s.value) - 48
        case "a"..."f": return Int(s.value) - 87
        case "A"..."F": return Int(s.value) - 55
        default: return 16
        }
    }

    /// The scalar an escape after `\` stands for.
    private mutating func escape(_ quote: Unicode.Scalar) throws -> Unicode.Scalar {
        let at = index - 1
        guard let c = current else { throw PromQLError(message: "escape sequence not terminated", position: at) }
        index += 1
        let simple: [Unicode.Scalar: Unicode.Scalar] = ["a": "\u{07}", "b": "\u{08}", "f": "\u{0C}", "n": "\n", "r": "\r", "t": "\t", "v": "\u{0B}", "\\": "\\"]
        if let scalar = simple[c] { return scalar }
        if c == quote { return c }
        let (digits, radix): (Int, Int) = switch c {
        case "0"..."7": (3, 8)
        case "x": (2, 16)
        case "u": (4, 16)
        case "U": (8, 16)
        default: throw PromQLError(message: "unknown escape sequence \(Self.spoken(c))", position: at)
        }
        if c != "x" && c != "u" && c != "U" { index -= 1 }
        guard index + digits <= scalars.count, scalars[index..<(index + digits)].allSatisfy({ Self.digitValue($0) < radix }),
              let code = UInt32(text(index..<(index + digits)), radix: radix) else {
            throw PromQLError(message: "illegal character in escape sequence", position: at)
        }
        index += digits
        // \x and octal are bytes in Go: only an ASCII one is a whole character on its own.
        guard let scalar = Unicode.Scalar(code), c == "u" || c == "U" || scalar.isASCII else {
            throw PromQLError(message: "escape sequence is not a Unicode code point\(c == "u" || c == "U" ? "" : " (write \\u for characters beyond ASCII)")", position: at)
        }
        return scalar
    }
}

/// A PromQL syntax error, at a 0-based character offset into the expression.
public struct PromQLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What is wrong.
    public var message: String
    /// 0-based character offset where it was found.
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

/// Splits an expression into tokens; errors carry the position.
struct Lexer {
    private let characters: [Character]
    private var index = 0

    init(_ text: String) { characters = Array(text) }

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

    private static let symbols = ["==", "!=", ">=", "<=", "=~", "!~", "+", "-", "*", "/", "%", "^", ">", "<", "=",
                                  "(", ")", "{", "}", "[", "]", ",", ":", "@"]

    private mutating func next() throws -> Token {
        skipSpaceAndComments()
        guard index < characters.count else { return Token(kind: .end, text: "", position: index) }
        let start = index
        let c = characters[index]
        if c.isNumber || (c == "." && index + 1 < characters.count && characters[index + 1].isNumber) {
            return try numberOrDuration(start)
        }
        if c.isLetter || c == "_" || c == ":" {
            while index < characters.count, characters[index].isASCII, characters[index].isLetter || characters[index].isNumber || characters[index] == "_" || characters[index] == ":" {
                index += 1
            }
            if index > start {
                let text = String(characters[start..<index])
                if ["inf", "nan"].contains(text.lowercased()) {
                    return Token(kind: .number, text: text, position: start, number: text.lowercased() == "inf" ? .infinity : .nan)
                }
                return Token(kind: .identifier, text: text, position: start)
            }
        }
        if c == "\"" || c == "'" || c == "`" { return try stringLiteral(start, quote: c) }
        for symbol in Self.symbols where matches(symbol) {
            index += symbol.count
            return Token(kind: .symbol, text: symbol, position: start)
        }
        throw PromQLError(message: "unexpected character \"\(c)\"", position: start)
    }

    private func matches(_ symbol: String) -> Bool {
        let s = Array(symbol)
        return index + s.count <= characters.count && Array(characters[index..<(index + s.count)]) == s
    }

    private mutating func skipSpaceAndComments() {
        while index < characters.count {
            if characters[index].isWhitespace { index += 1; continue }
            if characters[index] == "#" {
                while index < characters.count && characters[index] != "\n" { index += 1 }
                continue
            }
            break
        }
    }

    private static let units: [(String, Int64)] = [("ms", 1), ("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000),
                                                   ("h", 3_600_000), ("m", 60_000), ("s", 1000)]

    /// A number (`1`, `1.5e3`, `0x1f`) or a duration (`5m`, `1h30m`).
    private mutating func numberOrDuration(_ start: Int) throws -> Token {
        while index < characters.count, characters[index].isASCII, characters[index].isLetter || characters[index].isNumber || characters[index] == "." ||
                ((characters[index] == "+" || characters[index] == "-") && index > start && "eE".contains(characters[index - 1]) && !isHex(start)) {
            index += 1
        }
        let text = String(characters[start..<index])
        if let value = Self.number(text) { return Token(kind: .number, text: text, position: start, number: value) }
        if let milliseconds = Self.duration(text) { return Token(kind: .duration, text: text, position: start, number: Double(milliseconds)) }
        throw PromQLError(message: "bad number or duration syntax: \"\(text)\"", position: start)
    }

    private func isHex(_ start: Int) -> Bool {
        start + 1 < characters.count && characters[start] == "0" && (characters[start + 1] == "x" || characters[start + 1] == "X")
    }

    static func number(_ text: String) -> Double? {
        let lower = text.lowercased()
        if lower.hasPrefix("0x") { return UInt64(lower.dropFirst(2), radix: 16).map { Double($0) } }
        guard lower.allSatisfy({ $0.isNumber || "e.+-".contains($0) }) else { return nil }
        return Double(text)
    }

    /// `1h30m` → milliseconds; units in decreasing order, each at most once.
    static func duration(_ text: String) -> Int64? {
        var rest = Substring(text)
        var total: Int64 = 0
        var lastUnit = Int.min
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isNumber }
            guard !digits.isEmpty, let count = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let (offset, unit) = Self.units.enumerated().first(where: { rest.hasPrefix($0.element.0) })
                .map({ ($0.offset, $0.element) }) else { return nil }
            let order = [6, 0, 1, 2, 3, 4, 5][offset]   // y < w < d < h < m < s < ms; ms is listed first only so that it wins over m
            guard order > lastUnit else { return nil }
            lastUnit = order
            rest = rest.dropFirst(unit.0.count)
            total += count * unit.1
        }
        return total
    }

    /// A quoted string; `"` and `'` take Go escapes, backquotes are raw.
    private mutating func stringLiteral(_ start: Int, quote: Character) throws -> Token {
        index += 1
        var value = ""
        while true {
            guard index < characters.count else { throw PromQLError(message: "unterminated quoted string", position: start) }
            let c = characters[index]
            index += 1
            if c == quote { break }
            if c == "\\" && quote != "`" {
                guard index < characters.count else { throw PromQLError(message: "unterminated quoted string", position: start) }
                let escaped = characters[index]
                index += 1
                switch escaped {
                case "n": value.append("\n")
                case "t": value.append("\t")
                case "r": value.append("\r")
                case "\\", "\"", "'": value.append(escaped)
                default: throw PromQLError(message: "unknown escape sequence \"\\\(escaped)\"", position: index - 2)
                }
            } else {
                value.append(c)
            }
        }
        return Token(kind: .string, text: String(characters[start..<index]), position: start, string: value)
    }
}

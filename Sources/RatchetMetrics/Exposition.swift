/// The Prometheus text exposition format 0.0.4, and OpenMetrics 1.0 text for import.
///
/// A malformed line is reported with its line number and the rest is kept, as a scrape
/// should not lose a whole page for one bad line.
public enum Exposition {
    /// Which text format a page is in. OpenMetrics timestamps are seconds, 0.0.4's milliseconds.
    public enum Format: String, Sendable { case text, openMetrics }

    /// A metric family's declared type (`# TYPE`).
    public struct MetricType: Hashable, Sendable, CustomStringConvertible {
        public var name: String
        public var description: String { name }
        public static let counter = MetricType(name: "counter"), gauge = MetricType(name: "gauge")
        public static let histogram = MetricType(name: "histogram"), summary = MetricType(name: "summary")
        public static let untyped = MetricType(name: "untyped")
        /// The types each format declares (OpenMetrics adds unknown, gaugehistogram, stateset, info).
        static let known: [Format: Set<String>] = [
            .text: ["counter", "gauge", "histogram", "summary", "untyped"],
            .openMetrics: ["counter", "gauge", "histogram", "summary", "unknown", "gaugehistogram", "stateset", "info"],
        ]
    }

    /// One sample line.
    public struct Line: Sendable, Equatable {
        public var labels: Labels
        public var value: Double
        /// Milliseconds since the epoch, when the line carries a timestamp.
        public var time: Int64?
        /// The 1-based line number in the page.
        public var lineNumber: Int
    }

    /// A line that could not be read.
    public struct LineError: Error, Sendable, Equatable, CustomStringConvertible {
        /// 1-based.
        public var lineNumber: Int
        public var message: String
        public var description: String { "line \(lineNumber): \(message)" }
    }

    /// What a page held.
    public struct Page: Sendable {
        public var format: Format
        public var samples: [Line] = []
        public var errors: [LineError] = []
        /// Family name → declared type.
        public var types: [String: MetricType] = [:]
        /// Family name → help text.
        public var help: [String: String] = [:]
    }

    /// Parses a page. Without `format`, a page whose last line is `# EOF` is OpenMetrics.
    public static func parse(_ text: String, format: Format? = nil) -> Page {
        let bytes = Array(text.utf8)
        let format = format ?? detectFormat(bytes)
        var page = Page(format: format)
        var seen = Set<SeriesAtTime>()
        var reachedEOF = false
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            lineNumber += 1
            var reader = LineReader(bytes: bytes, position: start, end: end)
            do {
                if reachedEOF {
                    if end > start { throw reader.fail("content after # EOF") }
                } else if try readLine(&reader, format: format, page: &page, seen: &seen, lineNumber: lineNumber) {
                    reachedEOF = true
                }
            } catch let error as ParseFailure {
                page.errors.append(LineError(lineNumber: lineNumber, message: error.message))
            } catch {}
            start = end + 1
        }
        if format == .openMetrics && !reachedEOF {
            page.errors.append(LineError(lineNumber: lineNumber, message: "OpenMetrics page does not end with # EOF"))
        }
        return page
    }

    private static func detectFormat(_ bytes: [UInt8]) -> Format {
        var end = bytes.count
        while end > 0 && (bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\r")) { end -= 1 }
        let eof = Array("# EOF".utf8)
        return end >= eof.count && Array(bytes[(end - eof.count)..<end]) == eof ? .openMetrics : .text
    }

    private struct SeriesAtTime: Hashable { var labels: Labels; var time: Int64? }

    /// Reads one line into `page`; true when it is `# EOF`.
    private static func readLine(_ reader: inout LineReader, format: Format, page: inout Page, seen: inout Set<SeriesAtTime>, lineNumber: Int) throws -> Bool {
        if reader.end > reader.position && reader.bytes[reader.end - 1] == UInt8(ascii: "\r") { reader.end -= 1 }
        reader.skipSpaces()
        if reader.atEnd { return false }
        if reader.peek == UInt8(ascii: "#") { return try readComment(&reader, format: format, page: &page) }
        let labels = try readSeries(&reader)
        let value = try reader.value(format: format)
        var time: Int64?
        reader.skipSpaces()
        if !reader.atEnd && reader.peek != UInt8(ascii: "#") {
            time = try reader.timestamp(format: format)
            reader.skipSpaces()
        }
        // OpenMetrics exemplars (`# {…} v [ts]`) are accepted and dropped.
        if !reader.atEnd && !(format == .openMetrics && reader.peek == UInt8(ascii: "#")) {
            throw reader.fail("unexpected text after the sample")
        }
        guard seen.insert(SeriesAtTime(labels: labels, time: time)).inserted else {
            throw reader.fail("duplicate sample for \(labels)")
        }
        page.samples.append(Line(labels: labels, value: value, time: time, lineNumber: lineNumber))
        return false
    }

    /// `# HELP`, `# TYPE`, `# UNIT`, `# EOF` or a comment; true for `# EOF`.
    private static func readComment(_ reader: inout LineReader, format: Format, page: inout Page) throws -> Bool {
        reader.position += 1
        reader.skipSpaces()
        let keyword = reader.word()
        switch keyword {
        case "EOF" where format == .openMetrics:
            return true
        case "HELP":
            reader.skipSpaces()
            let name = try reader.metricName()
            if reader.peek == UInt8(ascii: " ") { reader.position += 1 }
            page.help[name] = reader.helpText()
        case "TYPE":
            reader.skipSpaces()
            let name = try reader.metricName()
            reader.skipSpaces()
            let type = reader.word()
            guard MetricType.known[format]!.contains(type) else { throw reader.fail("unknown metric type '\(type)' for \(name)") }
            if page.types[name] != nil { throw reader.fail("second TYPE line for \(name)") }
            page.types[name] = MetricType(name: type == "unknown" ? "untyped" : type)
        default:
            break   // a comment (and `# UNIT`) carries nothing we keep
        }
        return false
    }

    /// `name{label="value",…}` or `name`.
    private static func readSeries(_ reader: inout LineReader) throws -> Labels {
        var pairs: [String: String] = [:]
        pairs[Labels.metricName] = try reader.metricName()
        reader.skipSpaces()
        guard reader.peek == UInt8(ascii: "{") else { return Labels(pairs) }
        reader.position += 1
        while true {
            reader.skipSpaces()
            if reader.peek == UInt8(ascii: "}") { reader.position += 1; break }
            let name = try reader.labelName()
            reader.skipSpaces()
            try reader.expect("=")
            reader.skipSpaces()
            let value = try reader.quoted()
            if pairs[name] != nil { throw reader.fail("label \(name) given twice") }
            pairs[name] = value
            reader.skipSpaces()
            if reader.peek == UInt8(ascii: ",") { reader.position += 1; continue }
            try reader.expect("}")
            break
        }
        return Labels(pairs)
    }
}

/// A failure inside one line (turned into a `LineError` with the line's number).
struct ParseFailure: Error { var message: String }

/// A cursor over one line's bytes.
struct LineReader {
    let bytes: [UInt8]
    var position: Int
    var end: Int

    var atEnd: Bool { position >= end }
    var peek: UInt8? { position < end ? bytes[position] : nil }

    func fail(_ message: String) -> ParseFailure { ParseFailure(message: message) }

    mutating func skipSpaces() {
        while position < end && (bytes[position] == UInt8(ascii: " ") || bytes[position] == UInt8(ascii: "\t")) { position += 1 }
    }

    /// Bytes up to the next space.
    mutating func word() -> String {
        let start = position
        while position < end && bytes[position] != UInt8(ascii: " ") && bytes[position] != UInt8(ascii: "\t") { position += 1 }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    mutating func expect(_ character: Unicode.Scalar) throws {
        guard peek == UInt8(ascii: character) else {
            throw fail(atEnd ? "expected '\(character)' at the end of the line" : "expected '\(character)' at column \(position + 1 - lineStart)")
        }
        position += 1
    }

    private var lineStart: Int {
        var start = position
        while start > 0 && bytes[start - 1] != UInt8(ascii: "\n") { start -= 1 }
        return start
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    mutating func metricName() throws -> String { try identifier(colons: true, what: "metric name") }
    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    mutating func labelName() throws -> String { try identifier(colons: false, what: "label name") }

    private mutating func identifier(colons: Bool, what: String) throws -> String {
        let start = position
        while let byte = peek, isNameByte(byte, first: position == start, colons: colons) { position += 1 }
        guard position > start else { throw fail("expected a \(what)") }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private func isNameByte(_ byte: UInt8, first: Bool, colons: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"): return true
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return !first
        case UInt8(ascii: ":"): return colons
        default: return false
        }
    }

    /// A double-quoted label value with `\\`, `\"` and `\n` escapes.
    mutating func quoted() throws -> String {
        try expect("\"")
        var out: [UInt8] = []
        while true {
            guard let byte = peek else { throw fail("unterminated label value") }
            position += 1
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                guard let next = peek else { throw fail("unterminated label value") }
                position += 1
                switch next {
                case UInt8(ascii: "\\"): out.append(next)
                case UInt8(ascii: "\""): out.append(next)
                case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                default: throw fail("invalid escape '\\\(Character(Unicode.Scalar(next)))' in label value")
                }
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The rest of a HELP line, unescaping `\\` and `\n`.
    mutating func helpText() -> String {
        let text = String(decoding: bytes[position..<end], as: UTF8.self)
        position = end
        return text.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\\\", with: "\\")
    }

    /// A sample value: a float as Go's ParseFloat reads it, including NaN, +Inf and -Inf.
    mutating func value(format: Format) throws -> Double {
        skipSpaces()
        let token = word()
        guard !token.isEmpty else { throw fail("missing value") }
        guard let value = Self.parseFloat(token) else { throw fail("invalid value '\(token)'") }
        return value
    }

    typealias Format = Exposition.Format

    /// Milliseconds (0.0.4: an integer of milliseconds; OpenMetrics: a float of seconds).
    mutating func timestamp(format: Format) throws -> Int64 {
        let token = word()
        switch format {
        case .text:
            guard let milliseconds = Int64(token) else { throw fail("invalid timestamp '\(token)'") }
            return milliseconds
        case .openMetrics:
            // Bounded before the conversion: a scraped page (branch code writes it) must not trap us.
            guard let seconds = Double(token), seconds.isFinite, abs(seconds) < 9.2e15 else { throw fail("invalid timestamp '\(token)'") }
            return Int64((seconds * 1000).rounded())
        }
    }

    /// Go's strconv.ParseFloat for the spellings expositions use.
    static func parseFloat(_ token: String) -> Double? {
        // The common case, a plain decimal, without lowercasing a copy first.
        if let first = token.utf8.first, first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9"), let value = Double(token) { return value }
        switch token.lowercased() {
        case "nan": return .nan
        case "+inf", "inf", "+infinity", "infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default:
            guard token.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true else { return nil }
            return Double(token)
        }
    }
}

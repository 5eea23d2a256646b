import Foundation
import RatchetTerminalText

/// The rules for names and single-line text that reach refs, trailers and paths.
///
/// Ticket ids are `T-<n>`; service and agent names are lowercase slugs. Titles, reasons
/// and other one-line texts may hold any printable character (they never become ref
/// names: branches are `ticket/<id>/<n>`) but no control character, so a newline can
/// never smuggle in a trailer.
public enum Names {
    /// The longest title accepted, in characters.
    public static let maximumTitleLength = 200
    /// The longest one-line reason or note accepted, in characters.
    public static let maximumLineLength = 1000

    /// Checks a ticket id (`T-7`) and returns it.
    public static func ticketID(_ text: String) throws -> String {
        let bytes = Array(text.utf8)
        guard bytes.count >= 3, bytes.count <= 11, bytes[0] == UInt8(ascii: "T"), bytes[1] == UInt8(ascii: "-"), bytes[2] != UInt8(ascii: "0"),
              bytes.dropFirst(2).allSatisfy(ASCII.isDigit) else {
            throw RatchetError("invalid ticket id '\(printable(text))': expected T-<number>, e.g. T-7")
        }
        return text
    }

    /// Checks a service name: lowercase letters, digits and single dashes, 1–63 characters.
    public static func serviceName(_ text: String) throws -> String {
        guard ASCII.isSlug(text, maximumLength: 63), !text.contains("--") else {
            throw RatchetError("invalid service name '\(printable(text))': use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit")
        }
        return text
    }

    /// Checks an agent name (the author name of its commits).
    public static func agentName(_ text: String) throws -> String {
        guard ASCII.isSlug(text, maximumLength: 32) else {
            throw RatchetError("invalid agent name '\(printable(text))': use 1-32 lowercase letters, digits and dashes")
        }
        return text
    }

    /// Checks a one-line text (`what` names it in the error): no control characters, not
    /// empty unless `allowEmpty`, at most `limit` characters. Leading and trailing spaces are trimmed.
    public static func line(_ text: String, what: String, limit: Int = maximumLineLength, allowEmpty: Bool = false) throws -> String {
        if let bad = text.unicodeScalars.first(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" || isBidiControl($0) }) {
            let name = bad == "\n" ? "a newline" : isBidiControl(bad) ? String(format: "bidirectional control U+%04X", bad.value)
                : String(format: "control character U+%04X", bad.value)
            throw RatchetError("\(what) must be a single line without control characters (found \(name))")
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty && !allowEmpty { throw RatchetError("\(what) must not be empty") }
        if trimmed.count > limit { throw RatchetError("\(what) is \(trimmed.count) characters long; the limit is \(limit)") }
        return trimmed
    }

    /// Whether `scalar` reorders text when shown (the bidirectional embeddings, overrides,
    /// isolates and marks): a title holding one can show something other than it says.
    public static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool { TerminalText.isBidiControl(scalar) }

    /// `text` safe to show on a terminal: control characters (but newline and tab) and
    /// bidirectional controls are shown escaped (`\u{1B}`), so no output can move the
    /// cursor, rewrite the screen or reorder what a person reads.
    public static func escapedForTerminal(_ text: String) -> String { TerminalText.escaped(text) }

    /// `text` with control characters escaped and cut to 60 characters, for error messages.
    public static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(60) {
            if scalar.properties.generalCategory == .control { out += String(format: "\\x%02X", scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
        return text.unicodeScalars.count > 60 ? out + "…" : out
    }
}

/// Matchers for the fixed ASCII shapes of names, written out: a regular expression
/// (`range(of:options: .regularExpression)`) starts ICU's regex engine, about 1.5 ms of a
/// command's start-up for the first one (adr/0038).
enum ASCII {
    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    static func isLower(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") }
    static func isLetter(_ byte: UInt8) -> Bool { isLower(byte) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) }
    static func isLowerHex(_ byte: UInt8) -> Bool { isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f")) }

    /// `^[a-z0-9]([a-z0-9-]{0,N-2}[a-z0-9])?$`: lowercase letters, digits and dashes, not
    /// starting or ending with a dash, 1…`maximumLength` characters.
    static func isSlug(_ text: String, maximumLength: Int) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last, bytes.count <= maximumLength else { return false }
        let dash = UInt8(ascii: "-")
        return first != dash && last != dash && bytes.allSatisfy { isLower($0) || isDigit($0) || $0 == dash }
    }

    /// `^[A-Za-z_][A-Za-z0-9_]*$`: a name the environment can hold.
    static func isEnvironmentName(_ text: String) -> Bool {
        let underscore = UInt8(ascii: "_")
        guard let first = text.utf8.first, isLetter(first) || first == underscore else { return false }
        return text.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == underscore }
    }

    /// `^[A-Za-z][A-Za-z0-9-]*$`: a git trailer key.
    static func isTrailerKey(_ text: String) -> Bool {
        guard let first = text.utf8.first, isLetter(first) else { return false }
        return text.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-") }
    }
}

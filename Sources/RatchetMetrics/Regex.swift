import Foundation

/// A regular expression anchored at both ends, as PromQL's `=~` and `!~` use them (RE2 syntax
/// is approximated by ICU's, which accepts the same common subset).
struct AnchoredRegex: @unchecked Sendable {
    // NSRegularExpression is immutable and documented as thread safe once made.
    private let expression: NSRegularExpression

    /// Compiles `^(?:pattern)$`; throws `RegexError` with the reason when it does not compile.
    init(_ pattern: String) throws {
        do {
            expression = try NSRegularExpression(pattern: "^(?:\(pattern))$", options: [.dotMatchesLineSeparators])
        } catch {
            throw RegexError(pattern: pattern)
        }
    }

    /// Whether the whole of `text` matches.
    func matches(_ text: String) -> Bool {
        let range = NSRange(text.startIndex..., in: text)
        return expression.firstMatch(in: text, options: [], range: range) != nil
    }
}

/// A regular expression that does not compile.
struct RegexError: Error { var pattern: String }

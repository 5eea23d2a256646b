import Foundation

/// The one place where a file's PromQL expression is checked before it is stored or run.
enum PromQLCheck {
    /// Why `expression` does not parse, or nil when it does.
    static func problem(_ expression: String) -> String? {
        // Filled in with RatchetMetrics' parser once the metrics seam is merged.
        expression.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? "is empty" : nil
    }

    /// Throws `FILE: KEY: does not parse: …` when `expression` does not parse.
    static func require(_ expression: String, _ fields: YAMLFields, _ key: String) throws {
        if let problem = problem(expression) { throw fields.fail(key, "does not parse: \(problem)") }
    }
}

import Foundation
import RatchetMetrics

/// The one place where a file's PromQL expression is checked before it is stored or run,
/// with RatchetMetrics' parser (unknown functions and syntax errors give the position).
enum PromQLCheck {
    /// Why `expression` does not parse, or nil when it does.
    static func problem(_ expression: String) -> String? {
        do { _ = try PromQL.parse(expression); return nil } catch { return describe(error) }
    }

    /// Throws `FILE: KEY: does not parse: …` when `expression` does not parse.
    static func require(_ expression: String, _ fields: YAMLFields, _ key: String) throws {
        if let problem = problem(expression) { throw fields.fail(key, "does not parse: \(problem)") }
    }

    /// The left side of a top-level filtering comparison (`A > 0.5` → `A`), written back as
    /// PromQL; nil for any other expression.
    static func valueExpression(_ expression: String) -> String? {
        guard var expr = try? PromQL.parse(expression) else { return nil }
        while case .parenthesis(let inner) = expr { expr = inner }
        guard case .binary(let op, let left, _, let modifiers) = expr, op.isComparison, !modifiers.returnsBool else { return nil }
        return PromQLText.render(left)
    }

    /// The metric names an expression's selectors name, in order of appearance.
    static func metricNames(_ expression: String) -> [String] {
        guard let expr = try? PromQL.parse(expression) else { return [] }
        var names: [String] = []
        func walk(_ expr: Expr) {
            switch expr {
            case .number, .string: return
            case .vectorSelector(let selector), .matrixSelector(let selector, _):
                if let name = selector.name, !names.contains(name) { names.append(name) }
            case .call(_, let arguments): arguments.forEach(walk)
            case .aggregate(_, let inner, let parameter, _): parameter.map(walk); walk(inner)
            case .binary(_, let left, let right, _): walk(left); walk(right)
            case .negation(let inner), .parenthesis(let inner): walk(inner)
            }
        }
        walk(expr)
        return names
    }
}

/// Writes a parsed expression back as PromQL text (for evaluating a part of an expression
/// on a Prometheus server, which takes text).
enum PromQLText {
    static func render(_ expr: Expr) -> String { PromQL.render(expr) }
}

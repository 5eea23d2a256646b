extension PromQL {
    /// A counter expression's events over a window, as Prometheus counts them: every instant
    /// vector selector `s` of `expression` becomes `increase(s[window])` (reset-aware and
    /// extrapolated per series), so `sum(x{code!~"5.."})` becomes `sum(increase(x{code!~"5.."}[1h]))`:
    /// the increase of each series, then the sum. Range selectors are left as written. The result
    /// is rendered as PromQL (`render`), so the embedded evaluator and a real Prometheus read the
    /// same expression (adr/0061).
    public static func increase(_ expression: String, overMilliseconds window: Int64) throws -> String {
        render(increase(try parse(expression), overMilliseconds: window))
    }

    /// `expr` with every instant vector selector wrapped in `increase(selector[window])`.
    public static func increase(_ expr: Expr, overMilliseconds window: Int64) -> Expr {
        func inner(_ expr: Expr) -> Expr { increase(expr, overMilliseconds: window) }
        switch expr {
        case .number, .string, .matrixSelector: return expr
        case .vectorSelector(let selector):
            return .call(function: "increase", arguments: [.matrixSelector(selector, range: window)])
        case .call(let function, let arguments): return .call(function: function, arguments: arguments.map(inner))
        case .aggregate(let op, let expression, let parameter, let grouping):
            return .aggregate(op, inner(expression), parameter: parameter, grouping: grouping)
        case .binary(let op, let left, let right, let modifiers): return .binary(op, inner(left), inner(right), modifiers)
        case .negation(let expression): return .negation(inner(expression))
        case .parenthesis(let expression): return .parenthesis(inner(expression))
        }
    }
}

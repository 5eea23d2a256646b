extension PromQL {
    /// `expression` narrowed to one service: every vector and matrix selector also carries
    /// `scope`'s matchers (ANDed with its own, so a selector naming another service matches
    /// nothing), written back as PromQL (`render`). An expression that does not parse — including
    /// what the parser does not read (subqueries, `@`, functions it does not know) — is refused
    /// with its `PromQLError`, since what is not parsed cannot be scoped. Every matcher of `scope`
    /// must reject the empty value, or a series without the label would pass it.
    public static func scoped(_ expression: String, to scope: [LabelMatcher]) throws -> String {
        guard !scope.isEmpty, scope.allSatisfy({ !$0.matchesEmpty }) else {
            throw EvaluationError("a scope needs matchers that reject series without the label (got {\(scope.map(\.description).joined(separator: ", "))})")
        }
        return render(self.scope(try parse(expression), to: scope))
    }

    /// `expr` with `scope`'s matchers added to every selector.
    public static func scope(_ expr: Expr, to scope: [LabelMatcher]) -> Expr {
        func narrow(_ selector: VectorSelector) -> VectorSelector {
            var narrowed = selector
            narrowed.matchers += scope
            return narrowed
        }
        switch expr {
        case .number, .string: return expr
        case .vectorSelector(let selector): return .vectorSelector(narrow(selector))
        case .matrixSelector(let selector, let range): return .matrixSelector(narrow(selector), range: range)
        case .call(let function, let arguments): return .call(function: function, arguments: arguments.map { self.scope($0, to: scope) })
        case .aggregate(let op, let inner, let parameter, let grouping):
            return .aggregate(op, self.scope(inner, to: scope), parameter: parameter.map { self.scope($0, to: scope) }, grouping: grouping)
        case .binary(let op, let left, let right, let modifiers):
            return .binary(op, self.scope(left, to: scope), self.scope(right, to: scope), modifiers)
        case .negation(let inner): return .negation(self.scope(inner, to: scope))
        case .parenthesis(let inner): return .parenthesis(self.scope(inner, to: scope))
        }
    }
}

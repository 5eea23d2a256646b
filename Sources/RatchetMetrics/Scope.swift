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
        let scoped = self.scope(try parse(expression), to: scope)
        let text = render(scoped)
        try requireSameReading(text, as: scoped, scope: scope)
        return text
    }

    /// Defence in depth (adr/0066): the text sent must be printable ASCII (no character that any
    /// lexer could join to a quote), must parse back to the scoped tree (parentheses and written
    /// names aside) and render to itself byte for byte, and every selector read back must carry
    /// the scope. Otherwise the query is refused, never sent.
    static func requireSameReading(_ text: String, as scoped: Expr, scope: [LabelMatcher]) throws {
        let again = try? parse(text)
        guard text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }), let again,
              render(again).utf8.elementsEqual(text.utf8), canonical(again) == canonical(scoped),
              selectors(again).allSatisfy({ selector in scope.allSatisfy(selector.matchers.contains) }) else {
            throw EvaluationError("refused: the scoped expression does not read back as the expression that was scoped, so it is not sent")
        }
    }

    /// `expr` without parentheses and with every selector's written name dropped (`x` and
    /// `{__name__="x"}` are one selector; parentheses only group).
    static func canonical(_ expr: Expr) -> Expr {
        switch expr {
        case .number, .string: return expr
        case .vectorSelector(var s): s.name = nil; return .vectorSelector(s)
        case .matrixSelector(var s, let range): s.name = nil; return .matrixSelector(s, range: range)
        case .call(let f, let arguments): return .call(function: f, arguments: arguments.map(canonical))
        case .aggregate(let op, let inner, let parameter, let grouping): return .aggregate(op, canonical(inner), parameter: parameter.map(canonical), grouping: grouping)
        case .binary(let op, let l, let r, let m): return .binary(op, canonical(l), canonical(r), m)
        case .negation(let inner): return .negation(canonical(inner))
        case .parenthesis(let inner): return canonical(inner)
        }
    }

    /// Every vector and matrix selector of `expr`.
    static func selectors(_ expr: Expr) -> [VectorSelector] {
        switch expr {
        case .number, .string: return []
        case .vectorSelector(let s), .matrixSelector(let s, _): return [s]
        case .call(_, let arguments): return arguments.flatMap(selectors)
        case .aggregate(_, let inner, let parameter, _): return selectors(inner) + (parameter.map(selectors) ?? [])
        case .binary(_, let l, let r, _): return selectors(l) + selectors(r)
        case .negation(let inner), .parenthesis(let inner): return selectors(inner)
        }
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

/// PromQL: parse an expression (errors carry the character offset).
public enum PromQL {
    /// Parses `text`; throws `PromQLError` with the position of what is wrong.
    public static func parse(_ text: String) throws -> Expr {
        var parser = Parser(tokens: try Lexer.tokens(text))
        let expr = try parser.expression(minimumPrecedence: 1)
        guard parser.current.kind == .end else {
            throw PromQLError(message: "unexpected \(parser.current.quoted)", position: parser.current.position)
        }
        return expr
    }
}

/// A precedence-climbing parser over the lexer's tokens.
struct Parser {
    let tokens: [Token]
    var index = 0
    /// Nesting and binary operations so far: an expression (an agent's, through the
    /// `metrics` tool) must not recurse deep enough to overflow a thread's stack when parsed
    /// or evaluated. Real expressions use a handful of each.
    var depth = 0
    var operations = 0
    static let maximumDepth = 64
    static let maximumOperations = 256

    var current: Token { tokens[index] }

    private mutating func advance() -> Token { defer { index += 1 }; return tokens[index] }

    private func fail(_ message: String, at token: Token? = nil) -> PromQLError {
        PromQLError(message: message, position: (token ?? current).position)
    }

    private func isSymbol(_ text: String) -> Bool { current.kind == .symbol && current.text == text }

    private mutating func expect(_ text: String, _ context: String) throws {
        guard isSymbol(text) else { throw fail("unexpected \(current.quoted) in \(context), expected \"\(text)\"") }
        index += 1
    }

    /// The binary operator at the current token, if any.
    private var binaryOperator: BinaryOperator? {
        switch current.kind {
        case .symbol where ["+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<="].contains(current.text):
            return BinaryOperator(symbol: current.text)
        case .identifier where ["and", "or", "unless", "atan2"].contains(current.text.lowercased()):
            return BinaryOperator(symbol: current.text.lowercased())
        default: return nil
        }
    }

    /// `unary (op unary)*` with operators binding at least `minimumPrecedence`.
    mutating func expression(minimumPrecedence: Int) throws -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw fail("expression nested deeper than \(Self.maximumDepth) levels") }
        var lhs = try unary()
        while let op = binaryOperator, op.precedence >= minimumPrecedence {
            operations += 1
            guard operations <= Self.maximumOperations else { throw fail("more than \(Self.maximumOperations) binary operations") }
            let opToken = advance()
            let modifiers = try binaryModifiers(op, at: opToken)
            let rhs = op.isRightAssociative ? try expression(minimumPrecedence: op.precedence)
                                            : try expression(minimumPrecedence: op.precedence + 1)
            try Typing.checkBinary(op, lhs, rhs, modifiers, at: opToken)
            lhs = .binary(op, lhs, rhs, modifiers)
        }
        return lhs
    }

    /// `-x` binds looser than `^` (so `-2^2` is -4) and tighter than `*`.
    private mutating func unary() throws -> Expr {
        if isSymbol("-") || isSymbol("+") {
            let sign = advance()
            let operand = try expression(minimumPrecedence: 6)
            if sign.text == "+" { return operand }
            if case .number(let value) = operand { return .number(-value) }
            try Typing.require(operand, [.scalar, .vector], "unary expression", at: sign)
            return .negation(operand)
        }
        return try postfix()
    }

    private mutating func binaryModifiers(_ op: BinaryOperator, at token: Token) throws -> BinaryModifiers {
        var modifiers = BinaryModifiers()
        if current.kind == .identifier && current.text == "bool" {
            guard op.isComparison else { throw fail("bool modifier can only be used on comparison operators") }
            index += 1
            modifiers.returnsBool = true
        }
        if current.kind == .identifier && (current.text == "on" || current.text == "ignoring") {
            modifiers.on = advance().text == "on"
            modifiers.matchingLabels = try labelList()
            if current.kind == .identifier && (current.text == "group_left" || current.text == "group_right") {
                if op.isSetOperator { throw fail("no grouping allowed for \"\(op)\" operation") }
                modifiers.grouping = advance().text == "group_left" ? .groupLeft : .groupRight
                if isSymbol("(") { modifiers.includeLabels = try labelList() }
            }
        }
        return modifiers
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`: an identifier without `:` (a metric name may hold one, a label name not).
    static func isLabelName(_ text: String) -> Bool { !text.unicodeScalars.contains(":") }

    /// `(a, b, c)`.
    private mutating func labelList() throws -> [String] {
        try expect("(", "grouping opts")
        var labels: [String] = []
        while !isSymbol(")") {
            guard current.kind == .identifier, Self.isLabelName(current.text) else { throw fail("unexpected \(current.quoted) in grouping opts, expected label") }
            labels.append(advance().text)
            if isSymbol(",") { index += 1 } else if !isSymbol(")") { throw fail("unexpected \(current.quoted) in grouping opts, expected \",\" or \")\"") }
        }
        index += 1
        return labels
    }

    /// A primary followed by `[range]` and `offset d`.
    private mutating func postfix() throws -> Expr {
        var expr = try primary()
        if isSymbol("[") {
            let open = advance()
            guard current.kind == .duration else {
                throw fail("unexpected \(current.quoted) in range, expected duration")
            }
            let range = Int64(advance().number)
            if isSymbol(":") { throw fail("subqueries are not supported", at: open) }
            try expect("]", "range")
            guard case .vectorSelector(let selector) = expr else {
                throw fail("ranges only allowed for vector selectors", at: open)
            }
            if range <= 0 { throw fail("range must be more than 0", at: open) }
            expr = .matrixSelector(selector, range: range)
        }
        if current.kind == .identifier && current.text == "offset" {
            let offsetToken = advance()
            var sign: Int64 = 1
            if isSymbol("-") { index += 1; sign = -1 }
            guard current.kind == .duration else { throw fail("unexpected \(current.quoted) in offset, expected duration") }
            let offset = sign * Int64(advance().number)
            switch expr {
            case .vectorSelector(var selector): selector.offset = offset; expr = .vectorSelector(selector)
            case .matrixSelector(var selector, let range): selector.offset = offset; expr = .matrixSelector(selector, range: range)
            default: throw fail("offset modifier must be preceded by an instant vector selector or range vector selector", at: offsetToken)
            }
        }
        if isSymbol("@") { throw fail("the @ modifier is not supported") }
        return expr
    }

    private mutating func primary() throws -> Expr {
        let token = current
        switch token.kind {
        case .number: index += 1; return .number(token.number)
        case .string: index += 1; return .string(token.string)
        case .duration: throw fail("unexpected duration \(token.quoted)")
        case .end: throw fail("unexpected end of input")
        case .symbol:
            if token.text == "(" {
                index += 1
                let inner = try expression(minimumPrecedence: 1)
                try expect(")", "parenthesised expression")
                return .parenthesis(inner)
            }
            if token.text == "{" { return .vectorSelector(try selector(name: nil)) }
            throw fail("unexpected \(token.quoted)")
        case .identifier:
            index += 1
            if AggregateOperator.all.contains(token.text.lowercased()) && (isSymbol("(") || current.text == "by" || current.text == "without") {
                return try aggregate(AggregateOperator(name: token.text.lowercased()), at: token)
            }
            if isSymbol("(") { return try call(token) }
            if ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"].contains(token.text.lowercased()) {
                throw fail("unexpected \(token.quoted)", at: token)
            }
            return .vectorSelector(try selector(name: token.text))
        }
    }

    /// `{matchers}` after an optional name.
    private mutating func selector(name: String?) throws -> VectorSelector {
        let start = current
        var matchers: [LabelMatcher] = []
        if let name { matchers.append(try LabelMatcher(name: Labels.metricName, kind: .equal, value: name)) }
        if isSymbol("{") {
            index += 1
            while !isSymbol("}") {
                guard current.kind == .identifier, Self.isLabelName(current.text) else {
                    throw fail("unexpected \(current.quoted) in label matching, expected label name")
                }
                let label = advance()
                guard current.kind == .symbol, let kind = LabelMatcher.Kind(rawValue: current.text) else {
                    throw fail("unexpected \(current.quoted) in label matching, expected one of \"=\", \"!=\", \"=~\", \"!~\"")
                }
                index += 1
                guard current.kind == .string else { throw fail("unexpected \(current.quoted) in label matching, expected string") }
                let value = advance()
                do { matchers.append(try LabelMatcher(name: label.text, kind: kind, value: value.string)) } catch {
                    throw fail("invalid regular expression \(value.text)", at: value)
                }
                if isSymbol(",") { index += 1 } else if !isSymbol("}") { throw fail("unexpected \(current.quoted) in label matching, expected \",\" or \"}\"") }
            }
            index += 1
        }
        if name != nil && matchers.contains(where: { $0.name == Labels.metricName && $0 != matchers[0] }) {
            throw fail("metric name must not be set twice", at: start)
        }
        if !matchers.contains(where: { !$0.matchesEmpty }) {
            throw fail("vector selector must contain at least one non-empty matcher", at: start)
        }
        return VectorSelector(name: name, matchers: matchers, offset: 0)
    }

    /// `sum by (a) (x)`, `sum (x) by (a)`, `topk(3, x)`.
    private mutating func aggregate(_ op: AggregateOperator, at token: Token) throws -> Expr {
        var grouping = Grouping.none
        if current.text == "by" || current.text == "without" {
            grouping.without = advance().text == "without"
            grouping.labels = try labelList()
        }
        try expect("(", "aggregation")
        var parameter: Expr?
        if op.takesParameter {
            parameter = try expression(minimumPrecedence: 1)
            try expect(",", "aggregation")
        }
        let innerToken = current
        let inner = try expression(minimumPrecedence: 1)
        try Typing.require(inner, [.vector], "aggregation expression", at: innerToken)
        if isSymbol(",") { throw fail("wrong number of arguments for aggregate expression provided, expected \(op.takesParameter ? 2 : 1)") }
        try expect(")", "aggregation")
        if grouping == .none && (current.text == "by" || current.text == "without") {
            grouping.without = advance().text == "without"
            grouping.labels = try labelList()
        }
        return .aggregate(op, inner, parameter: parameter, grouping: grouping)
    }

    /// `name(args…)`; unknown names fail at the name.
    private mutating func call(_ name: Token) throws -> Expr {
        guard let function = Functions.signatures[name.text] else {
            throw fail("unknown function with name \"\(name.text)\"", at: name)
        }
        index += 1
        var arguments: [Expr] = []
        while !isSymbol(")") {
            let argumentToken = current
            let argument = try expression(minimumPrecedence: 1)
            if arguments.count < function.arguments.count {
                try Typing.require(argument, [function.arguments[arguments.count]], "call to function \"\(name.text)\"", at: argumentToken)
            }
            arguments.append(argument)
            if isSymbol(",") { index += 1 } else if !isSymbol(")") { throw fail("unexpected \(current.quoted) in function call, expected \",\" or \")\"") }
        }
        index += 1
        let minimum = function.arguments.count - function.optional
        guard arguments.count >= minimum && arguments.count <= function.arguments.count else {
            let expected = function.optional > 0 ? "\(minimum) to \(function.arguments.count)" : "\(function.arguments.count)"
            throw fail("expected \(expected) argument(s) in call to \"\(name.text)\", got \(arguments.count)", at: name)
        }
        return .call(function: name.text, arguments: arguments)
    }
}

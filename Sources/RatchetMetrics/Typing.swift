/// The type of a PromQL expression's value.
enum ValueType: String, Sendable, Equatable {
    case scalar, vector, matrix, string

    /// As Prometheus names them in errors ("instant vector", "range vector").
    var spoken: String {
        switch self {
        case .vector: return "instant vector"
        case .matrix: return "range vector"
        default: return rawValue
        }
    }
}

/// Static types, checked while parsing so that errors carry a position.
enum Typing {
    static func type(of expr: Expr) -> ValueType {
        switch expr {
        case .number: return .scalar
        case .string: return .string
        case .vectorSelector, .aggregate: return .vector
        case .matrixSelector: return .matrix
        case .call(let function, _): return Functions.signatures[function]?.returns ?? .vector
        case .binary(_, let lhs, let rhs, _): return type(of: lhs) == .scalar && type(of: rhs) == .scalar ? .scalar : .vector
        case .negation(let inner), .parenthesis(let inner): return type(of: inner)
        }
    }

    static func require(_ expr: Expr, _ allowed: [ValueType], _ context: String, at token: Token) throws {
        let actual = type(of: expr)
        guard allowed.contains(actual) else {
            let expected = allowed.map(\.spoken).joined(separator: " or ")
            throw PromQLError(message: "expected type \(expected) in \(context), got \(actual.spoken)", position: token.position)
        }
    }

    static func checkBinary(_ op: BinaryOperator, _ lhs: Expr, _ rhs: Expr, _ modifiers: BinaryModifiers, at token: Token) throws {
        let left = type(of: lhs), right = type(of: rhs)
        for side in [left, right] where side != .scalar && side != .vector {
            throw PromQLError(message: "binary expression must contain only scalar and instant vector types", position: token.position)
        }
        if op.isComparison && left == .scalar && right == .scalar && !modifiers.returnsBool {
            throw PromQLError(message: "comparisons between scalars must use BOOL modifier", position: token.position)
        }
        if op.isSetOperator && (left == .scalar || right == .scalar) {
            throw PromQLError(message: "set operator \"\(op)\" not allowed in binary scalar expression", position: token.position)
        }
        if (left == .scalar || right == .scalar) && (modifiers.on || !modifiers.matchingLabels.isEmpty || modifiers.grouping != .oneToOne) {
            throw PromQLError(message: "vector matching only allowed between instant vectors", position: token.position)
        }
    }
}

/// A PromQL expression: what `PromQL.parse` returns and `Evaluator` evaluates.
public indirect enum Expr: Sendable, Equatable {
    /// A number literal (`1`, `2.5e3`, `0x1f`, `Inf`, `NaN`).
    case number(Double)
    /// A string literal.
    case string(String)
    /// `name{matchers} [offset d]`.
    case vectorSelector(VectorSelector)
    /// `name{matchers}[range] [offset d]`; range in milliseconds.
    case matrixSelector(VectorSelector, range: Int64)
    /// `function(arguments…)`.
    case call(function: String, arguments: [Expr])
    /// `sum by (a) (expr)`, `topk(3, expr)`…: `parameter` is the first argument of topk/quantile-like operators.
    case aggregate(AggregateOperator, Expr, parameter: Expr?, grouping: Grouping)
    /// `lhs op lhs`.
    case binary(BinaryOperator, Expr, Expr, BinaryModifiers)
    /// `-expr`.
    case negation(Expr)
    /// `(expr)`.
    case parenthesis(Expr)
}

/// A vector selector: the metric name (if written) and every matcher, the name's included.
public struct VectorSelector: Sendable, Equatable {
    /// The metric name written before `{`, if any.
    public var name: String?
    /// All matchers (`__name__="name"` first when a name is written).
    public var matchers: [LabelMatcher]
    /// `offset`, milliseconds.
    public var offset: Int64
}

/// `by (labels)` or `without (labels)`.
public struct Grouping: Sendable, Equatable {
    /// true: `without`; false: `by` (no grouping at all is `by ()`).
    public var without: Bool
    public var labels: [String]
    public static let none = Grouping(without: false, labels: [])
}

/// An aggregation operator.
public struct AggregateOperator: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var description: String { name }
    /// The operators the parser knows; `takesParameter` ones take a first argument.
    static let all: Set<String> = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"]
    static let withParameter: Set<String> = ["topk", "bottomk", "quantile", "count_values"]
    var takesParameter: Bool { Self.withParameter.contains(name) }
}

/// A binary operator, in PromQL's spelling.
public struct BinaryOperator: Hashable, Sendable, CustomStringConvertible {
    public var symbol: String
    public var description: String { symbol }
    public static let add = Self(symbol: "+"), subtract = Self(symbol: "-"), multiply = Self(symbol: "*")
    public static let divide = Self(symbol: "/"), modulo = Self(symbol: "%"), power = Self(symbol: "^")
    public static let equal = Self(symbol: "=="), notEqual = Self(symbol: "!="), greater = Self(symbol: ">")
    public static let less = Self(symbol: "<"), greaterOrEqual = Self(symbol: ">="), lessOrEqual = Self(symbol: "<=")
    public static let and = Self(symbol: "and"), or = Self(symbol: "or"), unless = Self(symbol: "unless")

    /// ==, !=, >, <, >=, <=.
    public var isComparison: Bool { ["==", "!=", ">", "<", ">=", "<="].contains(symbol) }
    /// +, -, *, /, %, ^: the result loses the metric name (comparisons and atan2 keep it, as in Prometheus 2.x).
    public var dropsMetricName: Bool { ["+", "-", "*", "/", "%", "^"].contains(symbol) }
    /// and, or, unless.
    public var isSetOperator: Bool { ["and", "or", "unless"].contains(symbol) }

    /// Binding strength, higher binds tighter (Prometheus's order).
    var precedence: Int {
        switch symbol {
        case "or": return 1
        case "and", "unless": return 2
        case "==", "!=", ">", "<", ">=", "<=": return 3
        case "+", "-": return 4
        case "*", "/", "%", "atan2": return 5
        default: return 6   // ^
        }
    }
    var isRightAssociative: Bool { symbol == "^" }
}

/// `bool`, `on(…)`/`ignoring(…)` and `group_left(…)`/`group_right(…)` of a binary expression.
public struct BinaryModifiers: Sendable, Equatable {
    /// `bool`: a comparison returns 0/1 instead of filtering.
    public var returnsBool = false
    /// `on(labels)` when true, `ignoring(labels)` when false (with no labels: match on all but the name).
    public var on = false
    public var matchingLabels: [String] = []
    /// `group_left` / `group_right`, with the labels to copy from the "one" side.
    public var grouping: MatchGrouping = .oneToOne
    public var includeLabels: [String] = []
    public static let none = BinaryModifiers()
}

/// The cardinality of a vector match.
public enum MatchGrouping: Sendable, Equatable { case oneToOne, groupLeft, groupRight }

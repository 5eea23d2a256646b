extension PromQL {
    /// A parsed expression written back as PromQL that Prometheus 2.x and `parse` read as the same
    /// expression: every selector in `{__name__="…", …}` form, strings and durations spelled
    /// out, binary operands in parentheses where they are themselves operations.
    public static func render(_ expr: Expr) -> String {
        switch expr {
        case .number(let value): return number(value)
        case .string(let text): return quoted(text)
        case .vectorSelector(let selector): return self.selector(selector, range: nil)
        case .matrixSelector(let selector, let range): return self.selector(selector, range: range)
        case .call(let function, let arguments): return "\(function)(\(arguments.map(render).joined(separator: ", ")))"
        case .aggregate(let op, let inner, let parameter, let grouping):
            let by = grouping.labels.isEmpty && !grouping.without ? "" : " \(grouping.without ? "without" : "by") (\(grouping.labels.joined(separator: ", ")))"
            return "\(op.name)\(by)\(by.isEmpty ? "" : " ")(" + (parameter.map { render($0) + ", " } ?? "") + render(inner) + ")"
        case .binary(let op, let left, let right, let modifiers):
            return "\(operand(left)) \(op.symbol)\(modifierText(modifiers)) \(operand(right))"
        case .negation(let inner): return "-" + operand(inner)
        case .parenthesis(let inner): return "(\(render(inner)))"
        }
    }

    /// An operand of a binary operator or of unary minus: in parentheses when it is an operation.
    private static func operand(_ expr: Expr) -> String {
        switch expr {
        case .binary, .negation: return "(\(render(expr)))"
        case .number(let value) where value < 0 || value.sign == .minus: return "(\(render(expr)))"
        default: return render(expr)
        }
    }

    /// A number as Go's ParseFloat reads it back to the same double.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Inf" : "-Inf" }
        return "\(value)"
    }

    /// A double-quoted string of printable ASCII only, escaped scalar by scalar: `\\`, `\"`, `\n`,
    /// `\r`, `\t`, and every other scalar (controls, anything beyond ASCII) as `\uXXXX` or
    /// `\UXXXXXXXX`. No combining mark or prepended character is left to join a quote, so Go's
    /// lexer, ours, and anything reading grapheme clusters split the text alike (adr/0066).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case " "..."~": out.unicodeScalars.append(scalar)
            default: out += scalar.value <= 0xFFFF ? "\\u" + Lexer.hex(scalar.value, width: 4) : "\\U" + Lexer.hex(scalar.value, width: 8)
            }
        }
        return out + "\""
    }

    /// A duration in the largest unit that divides it (Prometheus reads `ms`, `s`, `m`, `h`, `d`).
    static func duration(_ milliseconds: Int64) -> String {
        let sign = milliseconds < 0 ? "-" : "", magnitude = milliseconds.magnitude
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] as [(String, UInt64)]
        where magnitude >= size && magnitude % size == 0 {
            return "\(sign)\(magnitude / size)\(unit)"
        }
        return "\(sign)\(magnitude)ms"
    }

    /// `name{…}` when the name cannot be read as anything else, else `{__name__="name", …}`.
    private static func selector(_ selector: VectorSelector, range: Int64?) -> String {
        var matchers = selector.matchers, name = ""
        if let written = selector.name, !reserved.contains(written.lowercased()),
           let index = matchers.firstIndex(where: { $0.name == Labels.metricName && $0.kind == .equal && $0.value == written }) {
            matchers.remove(at: index)
            name = written
        }
        let braces = name.isEmpty || !matchers.isEmpty ? "{" + matchers.map { "\($0.name)\($0.kind.rawValue)\(quoted($0.value))" }.joined(separator: ", ") + "}" : ""
        return name + braces + (range.map { "[\(duration($0))]" } ?? "") + (selector.offset == 0 ? "" : " offset \(duration(selector.offset))")
    }

    /// Words a bare metric name must not be: keywords, aggregations and functions.
    private static let reserved: Set<String> = Set(["and", "or", "unless", "bool", "on", "ignoring", "group_left", "group_right", "offset",
                                                     "by", "without", "atan2", "inf", "nan", "start", "end"])
        .union(AggregateOperator.all).union(Functions.signatures.keys)

    private static func modifierText(_ modifiers: BinaryModifiers) -> String {
        var text = modifiers.returnsBool ? " bool" : ""
        if modifiers.on || !modifiers.matchingLabels.isEmpty {
            text += " \(modifiers.on ? "on" : "ignoring")(\(modifiers.matchingLabels.joined(separator: ", ")))"
        }
        switch modifiers.grouping {
        case .oneToOne: break
        case .groupLeft: text += " group_left(\(modifiers.includeLabels.joined(separator: ", ")))"
        case .groupRight: text += " group_right(\(modifiers.includeLabels.joined(separator: ", ")))"
        }
        return text
    }
}

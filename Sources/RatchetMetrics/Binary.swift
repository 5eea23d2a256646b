import Foundation

/// Binary operators between scalars and instant vectors, with vector matching (`on`/`ignoring`, `group_left`/`group_right`).
enum Binary {
    typealias Value = Evaluator.Value

    static func apply(_ op: BinaryOperator, _ lhs: Value, _ rhs: Value, _ modifiers: BinaryModifiers) throws -> Value {
        switch (lhs, rhs) {
        case (.scalar(let l), .scalar(let r)):
            let (value, keep) = element(op, l, r)
            return .scalar(op.isComparison ? (keep ? 1 : 0) : value)
        case (.vector(let l), .scalar(let r)):
            return .vector(try requireUniqueLabels(withScalar(op, l, r, scalarOnLeft: false, returnsBool: modifiers.returnsBool)))
        case (.scalar(let l), .vector(let r)):
            return .vector(try requireUniqueLabels(withScalar(op, r, l, scalarOnLeft: true, returnsBool: modifiers.returnsBool)))
        case (.vector(let l), .vector(let r)):
            if op.isSetOperator { return .vector(setOperation(op, l, r, modifiers)) }
            return .vector(try requireUniqueLabels(try vectors(op, l, r, modifiers)))
        default:
            throw EvaluationError("binary expression must contain only scalar and instant vector types")
        }
    }

    /// Prometheus's vectorElemBinop: the value, and for comparisons whether the element is kept.
    static func element(_ op: BinaryOperator, _ l: Double, _ r: Double) -> (Double, Bool) {
        switch op.symbol {
        case "+": return (l + r, true)
        case "-": return (l - r, true)
        case "*": return (l * r, true)
        case "/": return (l / r, true)
        case "%": return (fmod(l, r), true)
        case "^": return (pow(l, r), true)
        case "atan2": return (atan2(l, r), true)
        case "==": return (l, l == r)
        case "!=": return (l, l != r)
        case ">": return (l, l > r)
        case "<": return (l, l < r)
        case ">=": return (l, l >= r)
        case "<=": return (l, l <= r)
        default: return (.nan, false)
        }
    }

    private static func withScalar(_ op: BinaryOperator, _ vector: [InstantSample], _ scalar: Double, scalarOnLeft: Bool, returnsBool: Bool) -> [InstantSample] {
        vector.compactMap { sample in
            let (l, r) = scalarOnLeft ? (scalar, sample.value) : (sample.value, scalar)
            var (value, keep) = element(op, l, r)
            // A comparison keeps the vector's value even when the scalar is on the left.
            if op.isComparison && scalarOnLeft { value = r }
            if returnsBool { value = keep ? 1 : 0; keep = true }
            guard keep else { return nil }
            let labels = (op.dropsMetricName || returnsBool) ? sample.labels.droppingName() : sample.labels
            return InstantSample(labels: labels, value: value)
        }
    }

    /// The labels two samples are matched on.
    static func signature(_ labels: Labels, _ modifiers: BinaryModifiers) -> Labels {
        modifiers.on ? labels.keeping(Set(modifiers.matchingLabels))
                     : labels.removing(Set(modifiers.matchingLabels + [Labels.metricName]))
    }

    private static func setOperation(_ op: BinaryOperator, _ lhs: [InstantSample], _ rhs: [InstantSample], _ modifiers: BinaryModifiers) -> [InstantSample] {
        let rightSignatures = Set(rhs.map { signature($0.labels, modifiers) })
        switch op.symbol {
        case "and": return lhs.filter { rightSignatures.contains(signature($0.labels, modifiers)) }
        case "unless": return lhs.filter { !rightSignatures.contains(signature($0.labels, modifiers)) }
        default:
            let leftSignatures = Set(lhs.map { signature($0.labels, modifiers) })
            return lhs + rhs.filter { !leftSignatures.contains(signature($0.labels, modifiers)) }
        }
    }

    /// One-to-one and many-to-one/one-to-many matching, as Prometheus's VectorBinop.
    private static func vectors(_ op: BinaryOperator, _ lhs: [InstantSample], _ rhs: [InstantSample], _ modifiers: BinaryModifiers) throws -> [InstantSample] {
        let swapped = modifiers.grouping == .groupRight
        let (many, one) = swapped ? (rhs, lhs) : (lhs, rhs)
        var oneSide: [Labels: InstantSample] = [:]
        for sample in one {
            let key = signature(sample.labels, modifiers)
            if let duplicate = oneSide[key] {
                throw EvaluationError("found duplicate series for the match group \(key) on the \(swapped ? "left" : "right") hand-side of the operation: [\(sample.labels), \(duplicate.labels)];many-to-many matching not allowed: matching labels must be unique on one side")
            }
            oneSide[key] = sample
        }
        var matched: [Labels: Set<Labels>] = [:]
        var out: [InstantSample] = []
        for sample in many {
            let key = signature(sample.labels, modifiers)
            guard let other = oneSide[key] else { continue }
            let (l, r) = swapped ? (other.value, sample.value) : (sample.value, other.value)
            var (value, keep) = element(op, l, r)
            if modifiers.returnsBool { value = keep ? 1 : 0; keep = true }
            guard keep else { continue }
            var labels = resultLabels(sample.labels, other.labels, op, modifiers)
            if modifiers.returnsBool { labels = labels.droppingName() }
            if modifiers.grouping == .oneToOne {
                if matched[key] != nil { throw EvaluationError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)") }
                matched[key] = []
            } else {
                guard matched[key, default: []].insert(labels).inserted else {
                    throw EvaluationError("multiple matches for labels: grouping labels must ensure unique matches")
                }
            }
            out.append(InstantSample(labels: labels, value: value))
        }
        return out
    }

    private static func resultLabels(_ many: Labels, _ one: Labels, _ op: BinaryOperator, _ modifiers: BinaryModifiers) -> Labels {
        var labels = op.dropsMetricName ? many.droppingName() : many
        if modifiers.grouping == .oneToOne {
            labels = modifiers.on ? labels.keeping(Set(modifiers.matchingLabels)) : labels.removing(Set(modifiers.matchingLabels))
        }
        for name in modifiers.includeLabels {
            labels.pairs[name] = one.pairs[name]
        }
        return labels
    }
}

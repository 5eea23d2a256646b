/// A series' label set, `__name__` included (the metric name).
public struct Labels: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Label name → value. An empty value is the same as an absent label (as in Prometheus).
    public var pairs: [String: String]

    /// Makes a label set; empty values are dropped.
    public init(_ pairs: [String: String] = [:]) {
        self.pairs = pairs.values.contains(where: \.isEmpty) ? pairs.filter { !$0.value.isEmpty } : pairs
    }

    /// Makes a label set from `pairs`; empty values are dropped.
    public init(pairs: [String: String]) { self.init(pairs) }

    /// The metric name (`__name__`), if any.
    public var name: String? { pairs[Labels.metricName] }

    /// The label that holds the metric name.
    public static let metricName = "__name__"

    /// The value of `label`, or "" when absent.
    public subscript(label: String) -> String { pairs[label] ?? "" }

    /// The pairs sorted by name: the canonical order for display, hashing into the store and comparison.
    public var sorted: [(name: String, value: String)] {
        pairs.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    }

    /// The label set without the metric name.
    public func droppingName() -> Labels {
        var copy = self
        copy.pairs.removeValue(forKey: Labels.metricName)
        return copy
    }

    /// Only the labels in `names`.
    public func keeping(_ names: Set<String>) -> Labels {
        Labels(pairs.filter { names.contains($0.key) })
    }

    /// Every label except those in `names`.
    public func removing(_ names: Set<String>) -> Labels {
        Labels(pairs.filter { !names.contains($0.key) })
    }

    /// `name{a="b", c="d"}`, as Prometheus prints a series (label values escaped).
    public var description: String {
        let inner = sorted.filter { $0.name != Labels.metricName }
            .map { "\($0.name)=\"\(Labels.escape($0.value))\"" }.joined(separator: ", ")
        let name = self.name ?? ""
        return inner.isEmpty && !name.isEmpty ? name : "\(name){\(inner)}"
    }

    /// Escapes `\`, `"` and newline as the exposition format does, scalar by scalar (a combining
    /// mark after a quote must not hide it from the escaping).
    public static func escape(_ value: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// Orders label sets as Prometheus sorts series: label by label, in name order.
    public static func < (lhs: Labels, rhs: Labels) -> Bool {
        let left = lhs.sorted, right = rhs.sorted
        for (l, r) in zip(left, right) {
            if l.name != r.name { return l.name < r.name }
            if l.value != r.value { return l.value < r.value }
        }
        return left.count < right.count
    }
}

/// One label matcher of a selector: `name="v"`, `!=`, `=~`, `!~` (regular expressions are fully anchored).
public struct LabelMatcher: Sendable, Hashable, CustomStringConvertible {
    /// The comparison a matcher makes.
    public enum Kind: String, Sendable, Hashable { case equal = "=", notEqual = "!=", regex = "=~", notRegex = "!~" }
    /// The label's name.
    public var name: String
    /// How the value is compared.
    public var kind: Kind
    /// The value or the regular expression.
    public var value: String
    private let pattern: AnchoredRegex?

    /// Makes a matcher; a bad regular expression throws with `message` saying why.
    public init(name: String, kind: Kind, value: String) throws {
        self.name = name
        self.kind = kind
        self.value = value
        pattern = (kind == .regex || kind == .notRegex) ? try AnchoredRegex(value) : nil
    }

    /// Whether a label value (empty when absent) satisfies the matcher. Values are compared byte
    /// for byte, as Prometheus compares them (Swift's `==` would call `é` and `e` + U+0301 equal).
    public func matches(_ labelValue: String) -> Bool {
        switch kind {
        case .equal: return labelValue.utf8.elementsEqual(value.utf8)
        case .notEqual: return !labelValue.utf8.elementsEqual(value.utf8)
        case .regex: return pattern!.matches(labelValue)
        case .notRegex: return !pattern!.matches(labelValue)
        }
    }

    /// Whether the matcher accepts the empty value (then it also selects series without the label).
    public var matchesEmpty: Bool { matches("") }

    /// `name="value"`.
    public var description: String { "\(name)\(kind.rawValue)\"\(Labels.escape(value))\"" }

    /// Same name, kind and value, byte for byte.
    public static func == (lhs: LabelMatcher, rhs: LabelMatcher) -> Bool {
        lhs.name.utf8.elementsEqual(rhs.name.utf8) && lhs.kind == rhs.kind && lhs.value.utf8.elementsEqual(rhs.value.utf8)
    }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(name); hasher.combine(kind); hasher.combine(value)
    }
}

extension Array where Element == LabelMatcher {
    /// Whether every matcher accepts `labels`.
    public func matches(_ labels: Labels) -> Bool {
        allSatisfy { $0.matches(labels[$0.name]) }
    }
}

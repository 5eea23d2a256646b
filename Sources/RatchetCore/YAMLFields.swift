import Foundation
import Yams

/// Typed, path-tracking access to one YAML mapping, so that every validation error says
/// exactly what is wrong where: `service.yaml: limits.agent_timeout: expected a duration …`.
struct YAMLFields {
    let file: String
    let path: String
    let mapping: Node.Mapping

    /// Parses `text` (YAML or JSON) whose top level must be a mapping.
    ///
    /// With `typed: false` every scalar keeps the tag `str`: the typed accessors below still
    /// read integers, booleans, durations and nulls from its text, and Yams' type resolver is
    /// never built (it compiles seven regular expressions with ICU, about 1.5 ms of every
    /// command's start-up). For files whose fields are read only through these accessors
    /// (`ratchet.yaml`, `service.yaml`); a file whose raw nodes keep their YAML types
    /// (a runbook's arguments) stays typed.
    static func parse(_ text: String, file: String, typed: Bool = true) throws -> YAMLFields {
        let node: Node?
        do { node = try Yams.compose(yaml: text, typed ? .default : .basic) } catch {
            throw RatchetError("\(file): not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        guard let node else { throw RatchetError("\(file): empty document") }
        guard let mapping = node.mapping else { throw RatchetError("\(file): expected a mapping of keys at the top level") }
        return YAMLFields(file: file, path: "", mapping: mapping)
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func fail(_ key: String, _ message: String) -> RatchetError {
        RatchetError("\(file): \(name(key)): \(message)")
    }

    /// Refuses keys outside `known`.
    func rejectUnknown(_ known: Set<String>) throws {
        for key in mapping.keys {
            guard let text = key.string else { throw RatchetError("\(file): \(path.isEmpty ? "top level" : path): keys must be strings") }
            if !known.contains(text) {
                throw fail(text, "unknown key (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
    }

    private func value(_ key: String) -> Node? {
        guard let node = mapping[key] else { return nil }
        if case .scalar(let scalar) = node, scalar.tag.rawValue == Tag.Name.null.rawValue || (scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)) {
            return nil
        }
        return node
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func string(_ key: String) throws -> String? {
        guard let node = value(key) else { return nil }
        guard let scalar = node.scalar else { throw fail(key, "expected a string") }
        return scalar.string
    }

    func requiredString(_ key: String) throws -> String {
        guard let text = try string(key), !text.isEmpty else { throw fail(key, "is required") }
        return text
    }

    func int(_ key: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let node = value(key) else { return nil }
        guard let number = node.int else { throw fail(key, "expected an integer, got '\(node.any)'") }
        if let range, !range.contains(number) { throw fail(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(number)") }
        return number
    }

    func bool(_ key: String) throws -> Bool? {
        guard let node = value(key) else { return nil }
        guard let flag = node.bool ?? Self.plainBool(node) else { throw fail(key, "expected true or false, got '\(node.any)'") }
        return flag
    }

    /// A plain (unquoted) YAML 1.1 boolean read from an untyped scalar, as Yams' resolver would tag it.
    private static func plainBool(_ node: Node) -> Bool? {
        guard let scalar = node.scalar, scalar.style == .plain else { return nil }
        switch scalar.string {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: return nil
        }
    }

    func stringList(_ key: String) throws -> [String]? {
        guard let node = value(key) else { return nil }
        if let scalar = node.scalar { return [scalar.string] }
        guard let sequence = node.sequence else { throw fail(key, "expected a list of strings") }
        return try sequence.enumerated().map { index, item in
            guard let scalar = item.scalar else { throw fail("\(key)[\(index)]", "expected a string") }
            return scalar.string
        }
    }

    /// A duration such as `90s`, `10m`, `2h`, `30d` (or a bare number of seconds), in seconds.
    func duration(_ key: String) throws -> Double? {
        guard let text = try string(key) else { return nil }
        guard let seconds = Duration.parse(text) else { throw fail(key, "expected a duration such as 600s, 10m or 2h, got '\(text)'") }
        return seconds
    }

    /// Every document of a YAML stream (`---` separated) whose top level is a mapping;
    /// each is named `FILE (document N)` when there are several.
    static func documents(_ text: String, file: String) throws -> [YAMLFields] {
        let nodes: [Node]
        do { nodes = Array(try Yams.compose_all(yaml: text)) } catch {
            throw RatchetError("\(file): not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        guard !nodes.isEmpty else { throw RatchetError("\(file): empty document") }
        return try nodes.enumerated().map { index, node in
            let name = nodes.count == 1 ? file : "\(file) (document \(index + 1))"
            guard let mapping = node.mapping else { throw RatchetError("\(name): expected a mapping of keys at the top level") }
            return YAMLFields(file: name, path: "", mapping: mapping)
        }
    }

    func nested(_ key: String) throws -> YAMLFields? {
        guard let node = value(key) else { return nil }
        guard let mapping = node.mapping else { throw fail(key, "expected a mapping") }
        return YAMLFields(file: file, path: name(key), mapping: mapping)
    }
}

extension Node {
    fileprivate var any: String { scalar?.string ?? "(a \(mapping != nil ? "mapping" : "list"))" }
}

/// Durations written as `<number><unit>`, unit one of ms, s, m, h, d, w.
public enum Duration {
    /// Seconds in `text`, or nil when it is not a duration.
    public static func parse(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 604800)]
        for (unit, factor) in units where trimmed.hasSuffix(unit) {
            if let number = Double(trimmed.dropLast(unit.count)), number >= 0, number.isFinite { return number * factor }
        }
        if let number = Double(trimmed), number >= 0, number.isFinite { return number }
        return nil
    }
}

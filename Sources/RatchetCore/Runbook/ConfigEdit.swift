import Foundation
import Yams

/// A scalar in a configuration file or a runbook argument: what `set_key` reads and writes.
public enum ConfigScalar: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case string(String)
    case bool(Bool)

    /// The number, if this is one.
    var number: Double? { if case .number(let value) = self { return value } else { return nil } }

    /// The scalar as JSON, TOML and YAML all read it: integral numbers without a fraction,
    /// strings double-quoted with JSON escapes.
    var literal: String {
        switch self {
        case .bool(let value): return value ? "true" : "false"
        case .number(let value):
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return "\(value)"
        case .string(let value):
            let data = (try? JSONSerialization.data(withJSONObject: [value], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
            return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
        }
    }

    public var description: String { literal }

    /// The scalar as plain text (strings unquoted).
    var text: String { if case .string(let value) = self { return value } else { return literal } }

    /// A scalar from a runbook's YAML argument (numbers and booleans as such).
    init(yaml node: Node) {
        if let bool = node.bool, node.tag.description.hasSuffix(":bool") { self = .bool(bool); return }
        if let number = node.float, node.scalar?.style == .plain { self = .number(number); return }
        self = .string(node.string ?? "")
    }
}

/// Sets one scalar key of a JSON, YAML or TOML file in place: only the value's characters
/// change, so comments, order and indentation stay as they were and the step commit's diff
/// is one line (adr/0030). A key that is missing or not a scalar fails with a clear error.
enum ConfigEdit {
    /// The formats, by file extension.
    enum Format: String { case json, yaml, toml }

    /// The format of `file` from its extension.
    static func format(of file: String) throws -> Format {
        switch (file as NSString).pathExtension.lowercased() {
        case "json": return .json
        case "yaml", "yml": return .yaml
        case "toml": return .toml
        default: throw RatchetError("\(file): set_key edits .json, .yaml, .yml and .toml files")
        }
    }

    /// The current value of `key` (dotted path) in `text`, and where its characters are.
    static func locate(_ key: String, in text: String, format: Format, file: String) throws -> (range: Range<String.Index>, value: ConfigScalar) {
        let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !path.contains(where: \.isEmpty) else { throw RatchetError("\(file): '\(key)' is not a key path (a.b.c)") }
        switch format {
        case .json:
            var locator = JSONScalarLocator(text: text, file: file)
            return try locator.locate(path)
        case .yaml: return try LineScalarLocator(text: text, file: file).locateYAML(path)
        case .toml: return try LineScalarLocator(text: text, file: file).locateTOML(path)
        }
    }

    /// `text` with `key` set to `value`; checks that the result still parses (JSON, YAML)
    /// and holds the new value at `key`.
    static func set(_ key: String, to value: ConfigScalar, in text: String, format: Format, file: String) throws -> String {
        let (range, _) = try locate(key, in: text, format: format, file: file)
        var result = text
        result.replaceSubrange(range, with: value.literal)
        guard try locate(key, in: result, format: format, file: file).value == value else {
            throw RatchetError("\(file): setting \(key) did not give \(value.literal)")
        }
        if format == .yaml { _ = try YAMLFields.parse(result, file: file) }
        if format == .json, (try? JSONSerialization.jsonObject(with: Data(result.utf8), options: [.fragmentsAllowed])) == nil {
            throw RatchetError("\(file): not valid JSON after setting \(key)")
        }
        return result
    }
}

/// Finds the characters of one scalar value in a JSON document.
private struct JSONScalarLocator {
    let text: String
    let file: String
    let bytes: [UInt8]
    var position = 0

    init(text: String, file: String) {
        self.text = text
        self.file = file
        bytes = Array(text.utf8)
    }

    func fail(_ message: String) -> RatchetError { RatchetError("\(file): \(message)") }

    mutating func locate(_ path: [String]) throws -> (range: Range<String.Index>, value: ConfigScalar) {
        skipSpace()
        guard let range = try value(at: path[...]) else { throw fail("no key \(path.joined(separator: "."))") }
        let scalarText = String(decoding: bytes[range], as: UTF8.self)
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(scalarText.utf8), options: [.fragmentsAllowed]) else {
            throw fail("\(path.joined(separator: ".")) is not a scalar")
        }
        let scalar: ConfigScalar
        switch parsed {
        case let string as String: scalar = .string(string)
        case let number as NSNumber where scalarText == "true" || scalarText == "false": scalar = .bool(number.boolValue)
        case let number as NSNumber: scalar = .number(number.doubleValue)
        default: throw fail("\(path.joined(separator: ".")) is not a scalar (an object, array or null)")
        }
        let utf8 = text.utf8
        return (utf8.index(utf8.startIndex, offsetBy: range.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: range.upperBound), scalar)
    }

    mutating func skipSpace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    /// Parses the value at `position`; returns the range of the value `path` leads to inside it.
    mutating func value(at path: ArraySlice<String>) throws -> Range<Int>? {
        guard position < bytes.count else { throw fail("unexpected end of the document") }
        let start = position
        switch bytes[position] {
        case UInt8(ascii: "{"):
            guard let key = path.first else { try skipContainer(); return start..<position }
            return try member(key, rest: path.dropFirst())
        case UInt8(ascii: "["):
            guard let key = path.first else { try skipContainer(); return start..<position }
            guard let index = Int(key) else { try skipContainer(); return nil }
            return try element(index, rest: path.dropFirst())
        case UInt8(ascii: "\""):
            try skipString()
        default:
            while position < bytes.count, !",}] \t\r\n".utf8.contains(bytes[position]) { position += 1 }
        }
        return path.isEmpty ? start..<position : nil
    }

    mutating func member(_ key: String, rest: ArraySlice<String>) throws -> Range<Int>? {
        position += 1
        var found: Range<Int>?
        while true {
            skipSpace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return found }
            let keyStart = position
            try skipString()
            let name = try JSONSerialization.jsonObject(with: Data(bytes[keyStart..<position]), options: [.fragmentsAllowed]) as? String
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':' at byte \(position)") }
            position += 1
            skipSpace()
            let inner = try value(at: name == key ? rest : [])
            if name == key, let inner { found = inner }
            skipSpace()
            guard position < bytes.count else { throw fail("unexpected end of the document") }
            if bytes[position] == UInt8(ascii: ",") { position += 1 }
        }
    }

    mutating func element(_ index: Int, rest: ArraySlice<String>) throws -> Range<Int>? {
        position += 1
        var found: Range<Int>?
        var count = 0
        while true {
            skipSpace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return found }
            let inner = try value(at: count == index ? rest : [])
            if count == index { found = inner }
            count += 1
            skipSpace()
            guard position < bytes.count else { throw fail("unexpected end of the document") }
            if bytes[position] == UInt8(ascii: ",") { position += 1 }
        }
    }

    mutating func skipContainer() throws {
        var depth = 0
        repeat {
            guard position < bytes.count else { throw fail("unexpected end of the document") }
            switch bytes[position] {
            case UInt8(ascii: "\""): try skipString(); continue
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
            position += 1
        } while depth > 0
    }

    mutating func skipString() throws {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a string at byte \(position)") }
        position += 1
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "\\"): position += 2
            case UInt8(ascii: "\""): position += 1; return
            default: position += 1
            }
        }
        throw fail("unterminated string")
    }
}

/// Finds the characters of one scalar value on its line, in YAML block mappings or TOML tables.
private struct LineScalarLocator {
    let text: String
    let file: String
    /// Each line's content (without its newline) as a range of `text`.
    let lines: [Range<String.Index>]

    init(text: String, file: String) {
        self.text = text
        self.file = file
        var lines: [Range<String.Index>] = []
        var start = text.startIndex
        while start < text.endIndex {
            let end = text[start...].firstIndex(of: "\n") ?? text.endIndex
            lines.append(start..<end)
            start = end < text.endIndex ? text.index(after: end) : end
        }
        self.lines = lines
    }

    func fail(_ message: String) -> RatchetError { RatchetError("\(file): \(message)") }

    static func indent(_ line: Substring) -> Int { line.prefix { $0 == " " }.count }

    static func isContent(_ line: Substring) -> Bool {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        return !trimmed.isEmpty && !trimmed.hasPrefix("#") && trimmed != "---"
    }

    /// The key of a `key: value` line (plain or quoted), and where its value starts.
    static func yamlKey(_ line: Substring) -> (String, Substring.Index)? {
        let body = line.drop { $0 == " " }
        guard let colon = body.firstIndex(where: { $0 == ":" }) else { return nil }
        let after = body.index(after: colon)
        guard after == body.endIndex || body[after] == " " else { return nil }
        var key = String(body[..<colon]).trimmingCharacters(in: .whitespaces)
        if key.count >= 2, let first = key.first, first == key.last, first == "\"" || first == "'" { key = String(key.dropFirst().dropLast()) }
        return (key, after)
    }

    /// The value characters after `start` up to a comment, trimmed.
    func valueRange(_ line: Range<String.Index>, from start: String.Index, comment: Character = "#") -> Range<String.Index> {
        var end = line.upperBound
        var quote: Character?
        var index = start
        while index < line.upperBound {
            let character = text[index]
            if let open = quote {
                if character == "\\" && open == "\"" { index = text.index(after: index) } else if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == comment, index == start || text[text.index(before: index)] == " " || text[text.index(before: index)] == "\t" {
                end = index
                break
            }
            if index < line.upperBound { index = text.index(after: index) }
        }
        var lower = start
        while lower < end, text[lower] == " " || text[lower] == "\t" { lower = text.index(after: lower) }
        var upper = end
        while upper > lower, text[text.index(before: upper)] == " " || text[text.index(before: upper)] == "\t" || text[text.index(before: upper)] == "\r" {
            upper = text.index(before: upper)
        }
        return lower..<upper
    }

    func locateYAML(_ path: [String]) throws -> (range: Range<String.Index>, value: ConfigScalar) {
        var block = 0..<lines.count
        var parentIndent = -1
        for (depth, key) in path.enumerated() {
            guard let childIndent = block.map({ text[lines[$0]] }).first(where: Self.isContent).map(Self.indent), childIndent > parentIndent,
                  let found = block.first(where: { index in
                      let line = text[lines[index]]
                      return Self.isContent(line) && Self.indent(line) == childIndent && Self.yamlKey(line)?.0 == key
                  }), let (_, valueStart) = Self.yamlKey(text[lines[found]]) else {
                throw fail("no key \(path.prefix(depth + 1).joined(separator: "."))")
            }
            let range = valueRange(lines[found], from: valueStart)
            if depth == path.count - 1 {
                let raw = String(text[range])
                guard !raw.isEmpty, !"|>{[&*!".contains(raw.first!) else { throw fail("\(path.joined(separator: ".")) is not a scalar on one line") }
                return (range, try yamlScalar(raw, key: path.joined(separator: ".")))
            }
            guard text[range].isEmpty else { throw fail("\(path.prefix(depth + 1).joined(separator: ".")) is not a mapping") }
            var end = found + 1
            while end < block.upperBound, !Self.isContent(text[lines[end]]) || Self.indent(text[lines[end]]) > childIndent { end += 1 }
            block = (found + 1)..<end
            parentIndent = childIndent
        }
        throw fail("no key \(path.joined(separator: "."))")
    }

    func yamlScalar(_ raw: String, key: String) throws -> ConfigScalar {
        guard let node = try? Yams.compose(yaml: "v: " + raw), let value = node.mapping?["v"], value.scalar != nil else {
            throw fail("\(key) is not a scalar")
        }
        return ConfigScalar(yaml: value)
    }

    func locateTOML(_ path: [String]) throws -> (range: Range<String.Index>, value: ConfigScalar) {
        var table: [String] = []
        let wanted = path.joined(separator: ".")
        for line in lines {
            let body = text[line].trimmingCharacters(in: .whitespaces)
            if body.hasPrefix("[") {
                guard !body.hasPrefix("[["), let close = body.firstIndex(of: "]") else { table = ["[["]; continue }
                table = body[body.index(after: body.startIndex)..<close].split(separator: ".")
                    .map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
                continue
            }
            guard !body.isEmpty, !body.hasPrefix("#"), let equals = text[line].firstIndex(of: "=") else { continue }
            let key = text[line.lowerBound..<equals].split(separator: ".")
                .map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
            guard (table + key).joined(separator: ".") == wanted else { continue }
            let range = valueRange(line, from: text.index(after: equals))
            return (range, try tomlScalar(String(text[range]), key: wanted))
        }
        throw fail("no key \(wanted)")
    }

    func tomlScalar(_ raw: String, key: String) throws -> ConfigScalar {
        if raw == "true" || raw == "false" { return .bool(raw == "true") }
        if raw.hasPrefix("\"\"\"") || raw.hasPrefix("'''") || raw.hasPrefix("[") || raw.hasPrefix("{") {
            throw fail("\(key) is not a one-line scalar (set_key writes numbers, booleans and one-line strings)")
        }
        if raw.hasPrefix("'"), raw.hasSuffix("'"), raw.count >= 2 { return .string(String(raw.dropFirst().dropLast())) }
        if raw.hasPrefix("\""), let string = try? JSONSerialization.jsonObject(with: Data(raw.utf8), options: [.fragmentsAllowed]) as? String {
            return .string(string)
        }
        if let number = Double(raw.replacingOccurrences(of: "_", with: "")) { return .number(number) }
        throw fail("\(key) has a value set_key cannot read: \(raw)")
    }
}

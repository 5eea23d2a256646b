import Foundation

/// One named invariant of `invariants.yaml` (SPEC §3, §8): a binary condition over the
/// service's metrics. It holds while its PromQL expression returns a non-empty result.
public struct Invariant: Codable, Sendable, Equatable {
    public var name: String
    /// PromQL; holds while the result is a non-empty vector (or a non-zero scalar).
    public var expr: String
    /// `ticket` or `page`: how urgent a breach is (the ticket's priority).
    public var severity: String
    /// The runbook that works a breach (`runbooks/NAME.yaml`), if any.
    public var runbook: String?
    public var description: String
}

/// The severities a breach can have: `ticket` files a ticket, `page` files one with the
/// highest priority (Ratchet pages nobody: "alerts create tickets").
public enum BreachSeverity {
    public static let all = ["ticket", "page"]

    /// The ticket priority of a severity.
    static func priority(_ severity: String) -> Int { severity == "page" ? 2 : 1 }
}

/// Reads `invariants.yaml`.
public enum InvariantsFile {
    /// Where the file lives in a service repo.
    public static let path = "invariants.yaml"

    /// Parses and validates the file; throws its first problem (`FILE: invariants[2].expr: …`).
    public static func parse(_ text: String, file: String = path) throws -> [Invariant] {
        let read = try read(text, file: file)
        if let first = read.problems.first { throw first }
        return read.invariants
    }

    /// Every valid invariant, every name the file defines (valid or not) and one problem per
    /// invalid key (`service check` reports them all). Only a file that is not YAML, or not
    /// shaped as `invariants: [...]`, throws. `fileExists` checks runbooks against main.
    static func read(_ text: String, file: String, fileExists: ((String) -> Bool)? = nil)
        throws -> (invariants: [Invariant], names: Set<String>, problems: [RatchetError]) {
        let fields = try YAMLFields.parse(text, file: file)
        try fields.rejectUnknown(["invariants"])
        var invariants: [Invariant] = []
        var problems: [RatchetError] = []
        var names: Set<String> = []
        for item in try fields.mappingList("invariants") ?? [] {
            if let name = try? item.string("name"), !names.insert(name).inserted {
                problems.append(item.fail("name", "'\(Names.printable(name))' is defined twice"))
                continue
            }
            let found = parseOne(item, fileExists: fileExists)
            if found.problems.isEmpty, let invariant = found.invariant { invariants.append(invariant) }
            problems += found.problems
        }
        return (invariants, names, problems)
    }

    /// One invariant, or every problem of its keys.
    private static func parseOne(_ item: YAMLFields, fileExists: ((String) -> Bool)?) -> (invariant: Invariant?, problems: [RatchetError]) {
        var problems: [RatchetError] = []
        func check<T>(_ body: () throws -> T) -> T? {
            do { return try body() } catch { problems.append(asRatchetError(error)); return nil }
        }
        _ = check { try item.rejectUnknown(["name", "expr", "severity", "runbook", "description"]) }
        let name = check { try CheckName.parse(item, "name") }
        let expr = check { () throws -> String in
            let expr = try item.requiredString("expr")
            try PromQLCheck.require(expr, item, "expr")
            return expr
        }
        let severity = check { () throws -> String in
            let severity = try item.string("severity") ?? "ticket"
            guard BreachSeverity.all.contains(severity) else {
                throw item.fail("severity", "expected \(BreachSeverity.all.joined(separator: " or ")), got '\(Names.printable(severity))'")
            }
            return severity
        }
        let runbook = check { () throws -> String? in
            guard let runbook = try item.string("runbook"), let fileExists else { return try item.string("runbook") }
            guard runbook.hasPrefix("runbooks/"), !runbook.split(separator: "/").contains(".."), fileExists(runbook) else {
                throw item.fail("runbook", "'\(Names.printable(runbook))' is not a file under runbooks/ on main")
            }
            return runbook
        }
        let description = check { try item.string("description") ?? "" }
        guard let name, let expr, let severity, let runbook, let description else { return (nil, problems) }
        return (Invariant(name: name, expr: expr, severity: severity, runbook: runbook, description: description), problems)
    }
}

/// Names of invariants and SLOs: they appear in ticket sources (`invariant:NAME`),
/// fingerprints and acceptance criteria, so they are short words.
enum CheckName {
    static func parse(_ fields: YAMLFields, _ key: String) throws -> String {
        let name = try fields.requiredString(key)
        guard name.count <= 100, name.range(of: #"^[A-Za-z][A-Za-z0-9_.-]*\z"#, options: .regularExpression) != nil else {
            throw fields.fail(key, "'\(Names.printable(name))' must start with a letter and hold only letters, digits, '_', '.' and '-'")
        }
        return name
    }
}

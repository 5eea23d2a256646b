import Foundation
import RatchetTestSupport
import Testing

/// The docs' catalogs are tested for accuracy against the source: every event Ratchet
/// records is in docs/events.md, and every failpoint is in docs/crash-safety.md and is
/// killed at by some test (the standing rule: a durable step joins the crash suite).
@Suite("Catalogs")
struct CatalogTests {
    /// Every string literal `pattern` captures in the Swift files under `folder`.
    private func literals(_ pattern: String, under folder: String) throws -> Set<String> {
        let expression = try NSRegularExpression(pattern: pattern)
        var found: Set<String> = []
        let enumerator = try #require(FileManager.default.enumerator(atPath: repositoryRoot + "/" + folder))
        for case let path as String in enumerator where path.hasSuffix(".swift") {
            let text = try String(contentsOfFile: repositoryRoot + "/\(folder)/\(path)", encoding: .utf8)
            for match in expression.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                found.insert((text as NSString).substring(with: match.range(at: 1)))
            }
        }
        return found
    }

    private func doc(_ name: String) throws -> String {
        try String(contentsOfFile: repositoryRoot + "/docs/" + name, encoding: .utf8)
    }

    @Test func everyEventIsInTheCatalog() throws {
        // Literal kinds only: interpolated ones (`recovery.\(kind)`, `deploy.\(status)`) are
        // listed by their expansions, which the recovery and deploy tests check.
        let kinds = try literals(#"appendEvent\([^)]*?kind: "([a-z0-9_.-]+)""#, under: "Sources")
        #expect(kinds.count > 40, "the pattern no longer finds Ratchet's events")
        let catalog = try doc("events.md")
        let missing = kinds.filter { !catalog.contains("`\($0)`") }.sorted()
        #expect(missing.isEmpty, "events missing from docs/events.md: \(missing)")
    }

    @Test func everyFailpointIsDocumentedAndKilledAtByATest() throws {
        let points = try literals(#"Failpoints\.hit\("([a-z0-9_.-]+)"\)"#, under: "Sources")
        #expect(points.count > 30, "the pattern no longer finds Ratchet's failpoints")
        let catalog = try doc("crash-safety.md")
        let undocumented = points.filter { !catalog.contains("`\($0)`") }.sorted()
        #expect(undocumented.isEmpty, "failpoints missing from docs/crash-safety.md: \(undocumented)")
        let tested = try literals(#""([a-z0-9_.-]+)(?:=crash)?""#, under: "Tests")
        let untested = points.subtracting(tested).sorted()
        #expect(untested.isEmpty, "failpoints no test kills at: \(untested)")
    }

    /// Every command path the binary's help lists, with that command's help text.
    private func commands(_ path: [String] = []) throws -> [(path: [String], help: String)] {
        let help = try ratchet(["help"] + path, in: repositoryRoot).stdout
        guard let start = help.range(of: "SUBCOMMANDS:\n") else { return [(path, help)] }
        let names = help[start.upperBound...].split(separator: "\n")
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") && !$0.contains("See '") }
            .compactMap { $0.split(separator: " ").first.map(String.init) }
        return try names.flatMap { try commands(path + [$0]) }
    }

    /// The section of docs/commands.md for a command: its heading names it
    /// (`## ratchet service pause NAME … / resume NAME …` covers both; the default
    /// subcommand `canary run` is documented as `ratchet canary`).
    private func section(of path: [String], in reference: [Substring]) -> Substring? {
        let name = "ratchet " + path.joined(separator: " ")
        let parent = "ratchet " + path.dropLast().joined(separator: " ")
        return reference.first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "\n") }
            ?? reference.first { $0.hasPrefix(parent + " ") && $0.contains(" / \(path.last ?? "") ") }
            ?? (path == ["canary", "run"] ? reference.first { $0.hasPrefix("ratchet canary (") } : nil)
    }

    @Test func everyCommandAndOptionIsInTheReference() throws {
        let reference = try doc("commands.md").components(separatedBy: "\n## ").dropFirst().map { Substring($0) }
        let all = try commands()
        #expect(all.count > 30, "the help no longer lists Ratchet's commands")
        for (path, help) in all {
            let name = "ratchet " + path.joined(separator: " ")
            guard let text = section(of: path, in: reference) else {
                Issue.record("\(name) has no section in docs/commands.md")
                continue
            }
            let options = Set(help.split(separator: "\n").compactMap { line -> String? in
                let trimmed = line.drop { $0 == " " }
                guard trimmed.hasPrefix("--"), line.hasPrefix("  ") else { return nil }
                return String(trimmed.prefix { $0 != " " && $0 != "," && $0 != "=" && $0 != "<" })
            }).subtracting(["--help", "--workspace", "--version"])
            for option in options.sorted() where !text.contains(option) {
                Issue.record("\(name): \(option) is not in its section of docs/commands.md")
            }
        }
    }
}

import Foundation
@testable import RatchetCore
import Testing

/// The start-up path avoids ICU (adr/0038): names are checked by hand-written matchers and
/// `ratchet.yaml`/`service.yaml` are parsed without Yams' regex type resolver. These tests
/// hold both to what they replaced.
@Suite("Start-up shapes")
struct StartupShapeTests {
    /// Inputs near every edge of the shapes: lengths, first and last characters, non-ASCII.
    static let inputs: [String] = {
        var texts = ["", "T-", "T-0", "T-1", "T-01", "T-123456789", "T-1234567890", "T-9", "t-1", "T-1\n", "T-1 ", " T-1", "T-١",
                     "a", "-", "a-", "-a", "a-b", "a--b", "ab9", "A", "a_b", "é", "a.b", "_x", "x_", "X1", "1x", "Ticket-Id", "ab-",
                     "0190c7a4-1b2c-7d3e-8f40-123456789abc", "0190c7a4-1b2c-6d3e-8f40-123456789abc", "0190c7a4-1b2c-7d3e-cf40-123456789abc",
                     "0190C7A4-1b2c-7d3e-8f40-123456789abc", "0190c7a4-1b2c-7d3e-8f40-123456789abc\n", "0190c7a41b2c-7d3e-8f40-123456789abcd"]
        texts += [String(repeating: "a", count: 32), String(repeating: "a", count: 33), String(repeating: "a", count: 63), String(repeating: "a", count: 64)]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("aZ09-_T.é ")
        for _ in 0..<400 {
            texts.append(String((0..<Int.random(in: 1...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
        }
        return texts
    }()

    private func matches(_ pattern: String, _ text: String) -> Bool {
        text.range(of: pattern, options: .regularExpression) != nil
    }

    @Test func handWrittenMatchersAgreeWithTheRegularExpressionsTheyReplace() {
        for text in Self.inputs {
            #expect(((try? Names.ticketID(text)) != nil) == matches(#"^T-[1-9][0-9]{0,8}\z"#, text), "ticket id \(text.debugDescription)")
            #expect(ASCII.isSlug(text, maximumLength: 63) == matches(#"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\z"#, text), "service \(text.debugDescription)")
            #expect(ASCII.isSlug(text, maximumLength: 32) == matches(#"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?\z"#, text), "agent \(text.debugDescription)")
            #expect(ASCII.isEnvironmentName(text) == matches(#"^[A-Za-z_][A-Za-z0-9_]*\z"#, text), "environment \(text.debugDescription)")
            #expect(ASCII.isTrailerKey(text) == matches(#"^[A-Za-z][A-Za-z0-9-]*\z"#, text), "trailer \(text.debugDescription)")
            #expect(UUIDv7.isValid(text) == matches(#"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\z"#, text), "uuid \(text.debugDescription)")
        }
        #expect(UUIDv7.isValid(UUIDv7.make()))
    }

    @Test func untypedSettingsReadBooleansIntegersAndNullsAsTheTypedParserDoes() throws {
        let text = """
            a: true
            b: Off
            c: "true"
            d: 0x10
            e: null
            f: ~
            g: 12
            h: [x, "y"]
            i: yes
            """
        let typed = try YAMLFields.parse(text, file: "t.yaml")
        let untyped = try YAMLFields.parse(text, file: "t.yaml", typed: false)
        for key in ["a", "b", "i"] { #expect(try typed.bool(key) == untyped.bool(key), "\(key)") }
        #expect(try untyped.bool("a") == true && untyped.bool("b") == false && untyped.bool("i") == true)
        #expect(throws: RatchetError.self) { try typed.bool("c") }
        #expect(throws: RatchetError.self) { try untyped.bool("c") }
        for key in ["d", "g"] { #expect(try typed.int(key) == untyped.int(key), "\(key)") }
        for key in ["e", "f"] { #expect(!typed.has(key) && !untyped.has(key), "\(key)") }
        #expect(try typed.stringList("h") == untyped.stringList("h"))
        #expect(try untyped.string("c") == "true" && untyped.string("a") == "true")
        // The shipped settings parse to the same values.
        #expect(try WorkspaceConfig.parse(WorkspaceConfig.initialText) == WorkspaceConfig.defaults)
    }

    /// The secret scanner's trigger words skip ICU only where no default pattern could match:
    /// its redaction and findings equal the bare regular expressions' on tokens, near misses,
    /// mixed case, non-ASCII text and random mixtures of the trigger words' pieces.
    @Test func secretTriggersNeverHideAMatchOfTheRegularExpressions() throws {
        let regexes = SecretScanner.defaults.map { try! NSRegularExpression(pattern: $0.pattern) }
        func bare(_ text: String) -> String {
            regexes.reduce(text) { $1.stringByReplacingMatches(in: $0, range: NSRange($0.startIndex..., in: $0), withTemplate: "[REDACTED]") }
        }
        var texts = ["", "plain title", "-----BEGIN RSA PRIVATE KEY-----", "-----begin rsa private key-----", "AKIAABCDEFGHIJKLMNOP", "ASIA1234567890ABCDEF",
                     "ghp_" + String(repeating: "a", count: 36), "GHP_" + String(repeating: "a", count: 36), "github_pat_" + String(repeating: "B", count: 40),
                     "xoxb-1234567890-abc", "sk-ant-" + String(repeating: "x", count: 20), "AIza" + String(repeating: "Q", count: 35),
                     "Authorization: Bearer " + String(repeating: "t", count: 24), "BEARER " + String(repeating: "t", count: 24),
                     "PASSWORD = 'hunter2hunter2'", "api-key: \"abcdefgh12\"", "Client_Secret='12345678'", "auth token= \"zzzzzzzzz\"",
                     "passwd:'abcdefghij'", "secret 'abcdefghij'", "apikey='abcdefghij'", "pa\u{17F}sword='abcdefghij'", "Ké password='abcdefghij'",
                     "\u{212A}EY sk-" + String(repeating: "y", count: 22), "Merge 12", "echo 3 > merge-3.txt", "command:true"]
        var generator = SystemRandomNumberGenerator()
        let pieces = ["sk-", "AKIA", "ghp_", "xox", "b-", "Bearer ", "bearer\t", "password", "SECRET", "api_key", "access-token", "=", ":", "'", "\"",
                      "-----BEGIN ", "PRIVATE KEY-----", "AIza", "x", "0", "Q", " ", "é", "\n", String(repeating: "a", count: 12)]
        for _ in 0..<2000 {
            texts.append((0..<Int.random(in: 1...8, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined())
        }
        let scanner = SecretScanner(extra: [])
        for text in texts {
            #expect(scanner.redact(text) == bare(text), "\(text.debugDescription)")
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
                .filter { line in regexes.contains { $0.firstMatch(in: String(line.1), range: NSRange(String(line.1).startIndex..., in: String(line.1))) != nil } }
                .map { $0.0 + 1 }
            #expect(scanner.findings(in: Data(text.utf8)).map(\.line) == lines, "\(text.debugDescription)")
        }
        #expect(!scanner.mayMatch("Merge 12: echo 3 > merge-3.txt".utf8) && scanner.mayMatch("a password: x".utf8))
    }
}

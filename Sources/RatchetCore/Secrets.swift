import Foundation

/// Finds and redacts secrets: the default patterns for common tokens and keys plus the
/// workspace's `secret_patterns`. The defaults never match commit shas, trajectory ids or
/// other UUIDs (hex alone is not a secret).
struct SecretScanner {
    /// One kind of secret: its name (shown instead of the secret) and its pattern.
    struct Pattern {
        var kind: String
        var regex: NSRegularExpression
    }

    /// The default patterns (docs/security.md).
    static let defaults: [(kind: String, pattern: String)] = [
        ("private key", #"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"#),
        ("AWS access key", #"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"#),
        ("GitHub token", #"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"#),
        ("Slack token", #"\bxox[abprs]-[A-Za-z0-9-]{10,}"#),
        ("API key", #"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"#),
        ("Google API key", #"\bAIza[0-9A-Za-z_-]{35}\b"#),
        ("bearer token", #"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{20,}=*"#),
        ("assigned secret", #"(?i)\b(?:password|passwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret)\b["']?\s*[:=]\s*["'][^"'\s]{8,}["']"#),
    ]

    private static let compiledDefaults: [Pattern] = defaults.map { Pattern(kind: $0.kind, regex: try! NSRegularExpression(pattern: $0.pattern)) }

    /// Lower-case ASCII words of which every match of a default pattern holds at least one
    /// (`defaults` in the same order); the last pattern also needs a `:` or `=`. Text that is
    /// ASCII and holds none of them cannot match, and is passed without starting ICU's regex
    /// engine (2–4 ms a process, on every `ticket new`, `work` and `merge`; adr/0054).
    static let triggers: [[String]] = [
        ["-----begin "], ["akia", "asia"], ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"], ["xox"], ["sk-"], ["aiza"], ["bearer"],
        ["password", "passwd", "secret", "api", "access", "auth", "client"],
    ]

    /// The workspace's `secret_patterns`, compiled only when a text is scanned.
    let extra: [String]

    /// The defaults and `extra` (patterns already validated by the workspace's config).
    init(extra: [String]) {
        self.extra = extra
    }

    /// The defaults, compiled on first use, and the configured patterns.
    var patterns: [Pattern] {
        Self.compiledDefaults + extra.compactMap { pattern in
            (try? NSRegularExpression(pattern: pattern)).map { Pattern(kind: "configured pattern", regex: $0) }
        }
    }

    /// False only when no pattern can match `text`: no configured pattern, ASCII text, and
    /// none of the defaults' trigger words (ignoring case).
    func mayMatch<Bytes: Collection<UInt8>>(_ text: Bytes) -> Bool {
        guard extra.isEmpty else { return true }
        var lowered: [UInt8] = []
        lowered.reserveCapacity(text.count)
        for byte in text {
            guard byte < 0x80 else { return true }
            lowered.append(byte >= 65 && byte <= 90 ? byte + 32 : byte)
        }
        let assigns = lowered.contains(UInt8(ascii: ":")) || lowered.contains(UInt8(ascii: "="))
        for (index, words) in Self.triggers.enumerated() where index < Self.triggers.count - 1 || assigns {
            if words.contains(where: { Self.contains(lowered, Array($0.utf8)) }) { return true }
        }
        return false
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        var start = 0
        while start + needle.count <= haystack.count {
            if haystack[start] == needle[0], haystack[start..<start + needle.count].elementsEqual(needle) { return true }
            start += 1
        }
        return false
    }

    /// `text` with every match replaced by `[REDACTED]`.
    func redact(_ text: String) -> String {
        guard mayMatch(text.utf8) else { return text }
        var result = text
        for pattern in patterns {
            result = pattern.regex.stringByReplacingMatches(in: result, range: NSRange(result.startIndex..., in: result), withTemplate: "[REDACTED]")
        }
        return result
    }

    /// The lines of `content` (text; binary content is skipped) that hold a match: line
    /// number and kind, never the match.
    func findings(in content: Data) -> [(line: Int, kind: String)] {
        guard !content.prefix(8000).contains(0), mayMatch(content) else { return [] }
        let patterns = self.patterns
        let text = String(decoding: content, as: UTF8.self)
        var found: [(Int, String)] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(line)
            let range = NSRange(line.startIndex..., in: line)
            if let pattern = patterns.first(where: { $0.regex.firstMatch(in: line, range: range) != nil }) {
                found.append((index + 1, pattern.kind))
            }
        }
        return found
    }
}

/// Text made safe to show on a terminal, without Foundation (the `ratchet tool` thin client,
/// Sources/ratchet-tool, links nothing else, so that it starts in about a millisecond).
public enum TerminalText {
    /// `text` with control characters (but newline and tab), bidirectional controls and the
    /// line/paragraph separators shown escaped (`\u{1B}`), so no output can move the cursor,
    /// rewrite the screen or reorder what a person reads.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if needsEscape(scalar) {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Whether `scalar` reorders text when shown (the bidirectional embeddings, overrides,
    /// isolates and marks): a title holding one can show something other than it says.
    public static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
        (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value)
            || [0x200E, 0x200F, 0x061C].contains(scalar.value)
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value >= 0x20 && scalar.value < 0x7F { return false }  // printable ASCII: most of every text
        return scalar != "\n" && scalar != "\t" && (scalar.properties.generalCategory == .control || isBidiControl(scalar)
            || scalar == "\u{2028}" || scalar == "\u{2029}")
    }
}

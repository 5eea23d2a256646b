import Foundation

/// Files that git and libgit2 read from a working tree as instructions, checked where an
/// agent's change enters a branch (the step commit's reading): Ratchet itself reads none of
/// them, but a person's git, libgit2's status and checkout of the service's main do.
enum GitControlFiles {
    /// Read by git and libgit2 from the tree itself: a link there is refused (git ignores a
    /// linked one since 2.32; libgit2 follows it, and a link to a FIFO hung every landing).
    static let regularOnly: Set<String> = [".gitattributes", ".gitignore", ".mailmap"]
    /// Attributes that make a checkout's bytes differ from the blob's, or a status's hash
    /// differ from the checkout's (and so wedge main as "changed"), or run a program.
    static let convertingAttributes: Set<String> = ["text", "eol", "crlf", "ident", "working-tree-encoding", "filter"]

    /// Why `path` (content `content`, a link's target when `isLink`) is refused, or nil.
    static func refusal(_ path: String, content: Data, isLink: Bool) -> String? {
        let name = (path.split(separator: "/").last.map(String.init) ?? path).lowercased()
        if name == ".gitmodules" { return "\(path): a .gitmodules file is refused (Ratchet does not make submodules)" }
        if isLink, regularOnly.contains(name) {
            return "\(path): a \(name) must be a regular file, not a symbolic link (libgit2 would follow it)"
        }
        if name == ".gitattributes", !isLink, let token = convertingAttribute(in: content) {
            let what = token.hasPrefix("filter") ? "names a filter driver" : "converts files on checkout"
            return "\(path): a .gitattributes that \(what) (`\(token)`) is refused: what is checked out must be the verified bytes"
        }
        return nil
    }

    /// The first attribute of a `.gitattributes` text that sets (or gives a value to) one of
    /// `convertingAttributes`, as git parses the file: a pattern (possibly quoted), then
    /// attributes separated by blanks; `-name` unsets and `!name` unspecifies, both harmless.
    static func convertingAttribute(in content: Data) -> String? {
        for line in String(decoding: content, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            for token in attributes(of: Substring(line)) where !token.hasPrefix("-") && !token.hasPrefix("!") {
                let name = token.split(separator: "=", maxSplits: 1).first.map(String.init) ?? token
                if convertingAttributes.contains(name) { return token }
            }
        }
        return nil
    }

    /// The attribute tokens of one line (empty for a blank line or a comment).
    private static func attributes(of line: Substring) -> [String] {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        var rest = line.drop(while: blank)
        guard let first = rest.first, first != "#" else { return [] }
        if first == "\"" {
            // A C-quoted pattern: up to the closing quote that is not escaped.
            var index = rest.index(after: rest.startIndex)
            var escaped = false
            while index < rest.endIndex, escaped || rest[index] != "\"" {
                escaped = !escaped && rest[index] == "\\"
                index = rest.index(after: index)
            }
            rest = index < rest.endIndex ? rest[rest.index(after: index)...] : ""
        } else {
            rest = rest.drop { !blank($0) }
        }
        return rest.split(whereSeparator: blank).map(String.init)
    }
}

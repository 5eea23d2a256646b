import Foundation

/// A unified diff (`git diff`, `diff -u`) applied with `git apply`'s semantics, in
/// Ratchet's own process: every hunk's context and removed lines must match exactly (no
/// fuzz; a hunk may be found at another line when the file moved, as `git apply` does),
/// paths are stripped of one leading component (`a/`, `b/`), `/dev/null` creates or
/// deletes a file, and a patch that does not apply cleanly changes nothing.
struct UnifiedPatch {
    /// One file's part of the patch.
    struct FilePatch {
        var oldPath: String?
        var newPath: String?
        var hunks: [Hunk]
    }

    /// One `@@ -a,b +c,d @@` hunk: its lines with their markers (' ', '-', '+').
    struct Hunk {
        var oldStart: Int
        var lines: [(marker: Character, text: String)]
        var oldNoNewline = false
        var newNoNewline = false
        var oldLines: [String] { lines.filter { $0.marker != "+" }.map(\.text) }
        var newLines: [String] { lines.filter { $0.marker != "-" }.map(\.text) }
    }

    var files: [FilePatch]

    /// Parses `text`; a patch without any file or hunk is an error.
    static func parse(_ text: String) throws -> UnifiedPatch {
        var files: [FilePatch] = []
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("--- "), index + 1 < lines.count, lines[index + 1].hasPrefix("+++ ") else { index += 1; continue }
            var file = FilePatch(oldPath: try path(line), newPath: try path(lines[index + 1]), hunks: [])
            index += 2
            while index < lines.count, lines[index].hasPrefix("@@") {
                let (hunk, next) = try parseHunk(lines, at: index)
                file.hunks.append(hunk)
                index = next
            }
            guard !file.hunks.isEmpty || file.oldPath == nil || file.newPath == nil else { throw RatchetError("patch: \(line) has no hunk") }
            files.append(file)
        }
        guard !files.isEmpty else { throw RatchetError("patch: no '--- a/PATH' / '+++ b/PATH' file header found") }
        return UnifiedPatch(files: files)
    }

    /// The path of a `---`/`+++` line with its first component stripped; nil for `/dev/null`.
    private static func path(_ line: String) throws -> String? {
        var name = String(line.dropFirst(4))
        if let tab = name.firstIndex(of: "\t") { name = String(name[..<tab]) }
        if name == "/dev/null" { return nil }
        guard let slash = name.firstIndex(of: "/") else { throw RatchetError("patch: '\(Names.printable(name))' has no a/ or b/ prefix") }
        let stripped = String(name[name.index(after: slash)...])
        _ = try BeneathFolder.check(stripped)
        return stripped
    }

    private static func parseHunk(_ lines: [String], at start: Int) throws -> (Hunk, Int) {
        let header = lines[start]
        let numbers = header.split(separator: " ").dropFirst().prefix(2)
        guard numbers.count == 2, let old = numbers.first?.dropFirst().split(separator: ",").map({ Int($0) }), let oldStart = old.first ?? nil,
              let new = numbers.last?.dropFirst().split(separator: ",").map({ Int($0) }) else {
            throw RatchetError("patch: bad hunk header '\(Names.printable(header))'")
        }
        let oldCount = old.count > 1 ? (old[1] ?? -1) : 1
        let newCount = new.count > 1 ? (new[1] ?? -1) : 1
        // Line numbers a file can have: a patch is input, and overflowing arithmetic traps.
        let limit = 100_000_000
        guard oldCount >= 0, newCount >= 0, oldCount <= limit, newCount <= limit, (0...limit).contains(oldStart) else {
            throw RatchetError("patch: bad hunk header '\(Names.printable(header))'")
        }
        var hunk = Hunk(oldStart: oldStart, lines: [])
        var (seenOld, seenNew) = (0, 0)
        var index = start + 1
        while index < lines.count, seenOld < oldCount || seenNew < newCount || lines[index].hasPrefix("\\") {
            let line = lines[index]
            if line.hasPrefix("\\") {
                if hunk.lines.last?.marker == "-" { hunk.oldNoNewline = true } else if hunk.lines.last?.marker == "+" { hunk.newNoNewline = true } else {
                    hunk.oldNoNewline = true; hunk.newNoNewline = true
                }
                index += 1
                continue
            }
            let marker = line.first ?? " "
            guard " -+".contains(marker) else { throw RatchetError("patch: unexpected line '\(Names.printable(line))' in a hunk") }
            hunk.lines.append((marker, String(line.dropFirst())))
            if marker != "+" { seenOld += 1 }
            if marker != "-" { seenNew += 1 }
            index += 1
        }
        guard seenOld == oldCount, seenNew == newCount else { throw RatchetError("patch: hunk '\(Names.printable(header))' is cut short") }
        return (hunk, index)
    }

    /// The new contents of every file the patch touches (nil: deleted), computed from
    /// `read` without writing anything; throws when any hunk does not apply.
    func apply(reading read: (String) throws -> [UInt8]?) throws -> [(path: String, content: [UInt8]?)] {
        var results: [(String, [UInt8]?)] = []
        for file in files {
            let path = file.newPath ?? file.oldPath!
            let existing = try read(file.oldPath ?? path)
            if file.oldPath == nil, existing != nil { throw RatchetError("patch: \(path) already exists") }
            if file.oldPath != nil, existing == nil { throw RatchetError("patch: no file \(file.oldPath!) in the worktree") }
            let text = String(decoding: existing ?? [], as: UTF8.self)
            var lines = text.isEmpty ? [] : text.components(separatedBy: "\n")
            var endsWithNewline = text.isEmpty || text.hasSuffix("\n")
            if endsWithNewline, !lines.isEmpty { lines.removeLast() }
            var offset = 0
            for hunk in file.hunks {
                let wanted = hunk.oldLines
                guard let at = Self.find(wanted, in: lines, near: max(hunk.oldStart - 1, 0) + offset) else {
                    throw RatchetError("patch: a hunk at line \(hunk.oldStart) of \(path) does not apply (its context differs)")
                }
                lines.replaceSubrange(at..<(at + wanted.count), with: hunk.newLines)
                offset += hunk.newLines.count - wanted.count
                if at + hunk.newLines.count == lines.count, hunk.newNoNewline || hunk.oldNoNewline { endsWithNewline = !hunk.newNoNewline }
            }
            if file.newPath == nil {
                guard lines.isEmpty else { throw RatchetError("patch: deleting \(path) leaves lines the patch does not name") }
                results.append((path, nil))
                continue
            }
            let joined = lines.joined(separator: "\n") + (endsWithNewline && !lines.isEmpty ? "\n" : "")
            results.append((path, Array(joined.utf8)))
        }
        return results
    }

    /// Where `wanted` occurs in `lines`, searching outwards from `start` (nearest first).
    static func find(_ wanted: [String], in lines: [String], near start: Int) -> Int? {
        let last = lines.count - wanted.count
        guard last >= 0 else { return nil }
        let start = min(max(start, 0), last)
        for distance in 0...max(last, 0) {
            for candidate in [start - distance, start + distance] where candidate >= 0 && candidate <= last {
                if Array(lines[candidate..<(candidate + wanted.count)]) == wanted { return candidate }
            }
        }
        return nil
    }
}

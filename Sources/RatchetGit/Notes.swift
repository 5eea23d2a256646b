import Clibgit2
import Foundation

extension Repository {
    /// Ratchet's notes reference.
    public static let ratchetNotesRef = "refs/notes/ratchet"

    /// The note on `object` under `notesRef`; nil when there is none.
    public func note(on object: ObjectID, notesRef: String = Repository.ratchetNotesRef) throws -> String? {
        var note: OpaquePointer?
        var oid = object.raw
        let rc = git_note_read(&note, pointer, notesRef, &oid)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "read note")
        defer { git_note_free(note) }
        return String(cString: git_note_message(note))
    }

    /// Writes (or replaces) the note on `object`, moving `notesRef` by compare-and-swap and
    /// rebuilding on top of a concurrent writer's note when it lost the race.
    ///
    /// New notes go to a 2/38 fan-out path (`ab/cdef…`), as git does for large note trees, so
    /// that each note rewrites two small trees instead of one tree holding every note. An
    /// existing note is replaced where it is. `git notes` reads both layouts.
    public func setNote(_ text: String, on object: ObjectID, author: Signature, notesRef: String = Repository.ratchetNotesRef) throws {
        let hex = object.hex
        let fanned = String(hex.prefix(2)) + "/" + String(hex.dropFirst(2))
        for _ in 0..<50 {
            let parent = try resolveReference(notesRef)
            let base = try parent.map { try commit($0).tree } ?? emptyTree()
            var path = fanned
            if let parent, try fileContents(fanned, in: parent) == nil, try fileContents(hex, in: parent) != nil { path = hex }
            let tree = try makeTree(from: base, applying: [.upsert(path, try writeBlob(Data(text.utf8)))])
            let notes = try createCommit(tree: tree, parents: parent.map { [$0] } ?? [], author: author, committer: author,
                                         message: "Notes added by Ratchet\n")
            do {
                try updateReference(notesRef, to: notes, expected: parent, message: "notes: Notes added by Ratchet")
                return
            } catch let error as GitError where error.code == .modified || error.code == .exists || error.code == .locked {
                continue
            }
        }
        throw GitError(code: .modified, message: "\(notesRef) kept moving; the note on \(object.short) was not written")
    }
}

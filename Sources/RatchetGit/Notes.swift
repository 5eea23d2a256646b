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

    /// A notes commit written but not yet published: the reference still points to `parent`.
    public struct PendingNote: Sendable, Equatable {
        /// The new notes commit.
        public var commit: ObjectID
        /// The value of the notes reference it was built on (nil: no notes yet).
        public var parent: ObjectID?
        /// The notes reference.
        public var reference: String
    }

    /// Writes the objects of a note on `object` (blob, trees, notes commit) on top of the
    /// current `notesRef`, without moving it. New notes go to a 2/38 fan-out path
    /// (`ab/cdef…`), as git does for large note trees; an existing note is replaced where it is.
    public func makeNote(_ text: String, on object: ObjectID, author: Signature,
                         notesRef: String = Repository.ratchetNotesRef) throws -> PendingNote {
        let hex = object.hex
        let fanned = String(hex.prefix(2)) + "/" + String(hex.dropFirst(2))
        let parent = try resolveReference(notesRef)
        let base = try parent.map { try commit($0).tree } ?? emptyTree()
        var path = fanned
        if let parent, try fileContents(fanned, in: parent) == nil, try fileContents(hex, in: parent) != nil { path = hex }
        let tree = try makeTree(from: base, applying: [.upsert(path, try writeBlob(Data(text.utf8)))])
        let notes = try createCommit(tree: tree, parents: parent.map { [$0] } ?? [], author: author, committer: author,
                                     message: "Notes added by Ratchet\n")
        return PendingNote(commit: notes, parent: parent, reference: notesRef)
    }

    /// Moves the notes reference to a pending note by compare-and-swap (`.modified` when
    /// another writer moved it first: make the note again on top of theirs).
    public func publish(_ note: PendingNote) throws {
        try updateReference(note.reference, to: note.commit, expected: note.parent, message: "notes: Notes added by Ratchet")
    }

    /// Writes (or replaces) the note on `object` and publishes it, rebuilding on top of a
    /// concurrent writer's note when it lost the race.
    public func setNote(_ text: String, on object: ObjectID, author: Signature, notesRef: String = Repository.ratchetNotesRef) throws {
        for _ in 0..<1000 { // each lost race is another writer's win
            do {
                try publish(try makeNote(text, on: object, author: author, notesRef: notesRef))
                return
            } catch let error as GitError where error.code == .modified || error.code == .exists || error.code == .locked {
                continue
            }
        }
        throw GitError(code: .modified, message: "\(notesRef) kept moving; the note on \(object.short) was not written")
    }
}

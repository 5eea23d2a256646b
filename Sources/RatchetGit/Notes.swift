import Clibgit2

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

    /// Writes (or replaces) the note on `object`. Retries when a concurrent writer moved
    /// the notes reference first (`GIT_EMODIFIED`).
    public func setNote(_ text: String, on object: ObjectID, author: Signature, notesRef: String = Repository.ratchetNotesRef) throws {
        var attempt = 0
        while true {
            attempt += 1
            var out = git_oid()
            var oid = object.raw
            let rc = try author.withGitSignature { signature in
                git_note_create(&out, pointer, notesRef, signature, signature, &oid, text, 1)
            }
            if (rc == GIT_EMODIFIED.rawValue || rc == GIT_ELOCKED.rawValue) && attempt < 50 { continue }
            try GitError.check(rc, "write note")
            return
        }
    }
}

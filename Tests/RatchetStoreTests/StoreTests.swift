import Foundation
import GRDB
import RatchetStore
import Testing

@Suite("RatchetStore")
struct StoreTests {
    private func makeFileStore() throws -> (RatchetDatabase, String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("ratchet.sqlite").path
        return (try RatchetDatabase(path: path), folder.path)
    }

    @Test func fileStoreRunsInWALModeAndPassesIntegrityCheck() throws {
        let (database, folder) = try makeFileStore()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(try database.journalMode() == "wal")
        #expect(try database.integrityCheck() == "ok")
    }

    @Test func readingCommandsOpenTheStoreReadOnlyAndWriteNothing() throws {
        let (writer, folder) = try makeFileStore()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try writer.write { db in try RatchetDatabase.appendEvent(db, kind: "workspace.created") }
        let path = folder + "/ratchet.sqlite"
        // The WAL file outlives the last connection (persistent WAL), so readers can open without writing.
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let reader = try RatchetDatabase(path: path, readOnly: true)
        #expect(try reader.events().map(\.kind) == ["workspace.created"])
        #expect(throws: (any Error).self) { try reader.write { db in try RatchetDatabase.appendEvent(db, kind: "x") } }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        // Without a WAL file to read from, a reading open falls back to the writable one.
        let fresh = folder + "/fresh.sqlite"
        let fallback = try RatchetDatabase(path: fresh, readOnly: true)
        try fallback.write { db in try RatchetDatabase.appendEvent(db, kind: "workspace.created") }
        #expect(try fallback.events().count == 1)
    }

    /// What a new process reads to rebuild the WAL's index stays bounded (adr/0055): after many
    /// small commits the WAL holds at most the checkpoint threshold and the last commit's pages.
    @Test func theWALAProcessRecoversAtOpenStaysSmall() throws {
        let (store, folder) = try makeFileStore()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for index in 0..<600 {
            try store.write { db in try RatchetDatabase.appendEvent(db, kind: "test.event", data: ["index": .number(Double(index))]) }
        }
        // Another connection, outside any transaction (a checkpoint cannot run inside one).
        let probe = try DatabaseQueue(path: folder + "/ratchet.sqlite")
        let frames = try probe.inDatabase { db in try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")?[1] as Int? } ?? -1
        _ = store
        #expect(frames >= 0 && frames <= RatchetDatabase.walCheckpointPages + 8, "\(frames) frames in the WAL")
    }

    @Test func stateChangeAndEventCommitOrRollBackTogether() throws {
        let database = try RatchetDatabase()
        try database.write { db in
            try ServiceRecord(name: "svc", path: "services/svc", template: nil, createdAt: Date()).insert(db)
            try RatchetDatabase.appendEvent(db, kind: "service.added", service: "svc")
        }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try database.write { db in
                try ServiceRecord(name: "other", path: "services/other", template: nil, createdAt: Date()).insert(db)
                try RatchetDatabase.appendEvent(db, kind: "service.added", service: "other")
                throw Boom()
            }
        }
        let events = try database.events()
        #expect(events.map(\.service) == ["svc"])
        #expect(try database.read { db in try ServiceRecord.fetchCount(db) } == 1)
    }

    @Test func jsonColumnsRoundTripExactly() throws {
        let database = try RatchetDatabase()
        let data: JSONValue = ["flag": true, "n": 3, "x": 1.5, "s": "text", "list": [1, "two", nil], "nested": ["k": false]]
        try database.write { db in try RatchetDatabase.appendEvent(db, kind: "k", data: data) }
        #expect(try database.events().first?.data == data)
    }

    @Test func eventsAreReadFromACursor() throws {
        let database = try RatchetDatabase()
        try database.write { db in
            for index in 0..<5 { try RatchetDatabase.appendEvent(db, kind: "e\(index)") }
        }
        let all = try database.events()
        #expect(all.map(\.kind) == ["e0", "e1", "e2", "e3", "e4"])
        let cursor = try #require(all[2].seq)
        #expect(try database.events(since: cursor).map(\.kind) == ["e3", "e4"])
    }

    @Test func onlyOneOpenTicketPerFingerprint() throws {
        let database = try RatchetDatabase()
        func ticket(_ number: Int, state: TicketState) -> TicketRecord {
            TicketRecord(id: "T-\(number)", number: number, service: "svc", title: "t", objective: "", acceptance: [], constraints: [],
                         context: "", source: "invariant:x", fingerprint: "fp", risk: "low", priority: 0, agent: nil,
                         assignee: "agent", state: state, createdAt: Date(), updatedAt: Date())
        }
        try database.write { db in
            try ServiceRecord(name: "svc", path: "services/svc", template: nil, createdAt: Date()).insert(db)
            try ticket(1, state: .merged).insert(db)
            try ticket(2, state: .open).insert(db)
        }
        #expect(throws: DatabaseError.self) { try database.write { db in try ticket(3, state: .open).insert(db) } }
    }
}

import ArgumentParser
import Foundation
import RatchetCore
import RatchetStore

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "Read the event log.")
    @OptionGroup var workspace: WorkspaceOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Only events after this cursor (the seq of the last event seen).") var since: Int64 = 0
    @Flag(help: "Keep printing new events as they are written (with --json: one JSON object per line).") var follow = false

    func run() throws {
        let workspace = try workspace.openForReading()
        var cursor = since
        let first = try workspace.database.events(since: cursor)
        if output.json && !follow {
            struct Page: Encodable { var events: [EventView]; var cursor: Int64 }
            try Terminal.printJSON(Page(events: first.map(EventView.init), cursor: first.last?.seq ?? cursor))
            return
        }
        func emit(_ events: [EventRecord]) throws {
            for event in events {
                let line = output.json ? try RatchetJSON.string(EventView(event), pretty: false) : EventView(event).line
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
                cursor = event.seq ?? cursor
            }
        }
        try emit(first)
        while follow {
            Thread.sleep(forTimeInterval: 0.5)
            try emit(try workspace.database.events(since: cursor))
        }
    }
}

/// An event as `ratchet events` prints it.
struct EventView: Encodable {
    var seq: Int64
    var time: Date
    var kind: String
    var service: String?
    var ticket: String?
    var attempt: Int?
    var data: JSONValue

    init(_ event: EventRecord) {
        seq = event.seq ?? 0; time = event.time; kind = event.kind; service = event.service
        ticket = event.ticketId; attempt = event.attemptNumber; data = event.data
    }

    var line: String {
        var subject = service ?? ""
        if let ticket { subject += (subject.isEmpty ? "" : " ") + ticket + (attempt.map { "/\($0)" } ?? "") }
        let details = (try? RatchetJSON.string(data, pretty: false)) ?? ""
        return "\(seq)\t\(time.ISO8601Format())\t\(kind)\t\(subject)\t\(details)"
    }
}

import Foundation
import RatchetCore
import RatchetGit
import RatchetStore
import RatchetTestSupport
import Testing

/// A week of work on `svc`: T-1 landed then reverted by carol, T-2 approved by alice (a
/// protected path), T-3 rejected by bob, T-4 escalated after three failures, T-5 open.
func makeReviewedWeek(_ folder: ScratchFolder) throws -> Workspace {
    let workspace = try makeWorkspace(folder)
    let one = try file(workspace, "Raise capacity")
    try workspace.work(ticket: one, agent: "command:sed -i s/1024/2048/ config/cache.json")
    try workspace.merge(ticket: one)
    let two = try file(workspace, "Note the SLO review")
    try workspace.work(ticket: two, agent: "command:echo '# reviewed' >> slos.yaml")
    _ = message { _ = try workspace.merge(ticket: two) }
    try workspace.approve(ticket: two, by: "alice", note: "checked the SLO file")
    let three = try file(workspace, "Try a bigger cache")
    try workspace.work(ticket: three, agent: "command:sed -i s/2048/4096/ config/cache.json")
    _ = try workspace.rejectTicket(three, reason: "too big for the host", by: "bob")
    let four = try file(workspace, "Never works")
    for _ in 0..<3 { _ = message { try workspace.work(ticket: four, agent: "command:exit 1") } }
    try workspace.revert(ticket: one, reason: "capacity was fine", by: "carol")
    _ = try file(workspace, "Still to do")
    return workspace
}

/// `text` with everything that changes from run to run replaced by numbered placeholders:
/// the workspace path, shas (full and 12-character), trajectory ids, times and the week.
func normalised(_ text: String, root: String) -> String {
    var text = text.replacingOccurrences(of: root, with: "WORKSPACE")
    var names: [String: String] = [:]
    func replace(_ pattern: String, _ label: String, key: (String) -> String = { $0 }) {
        let regex = try! NSRegularExpression(pattern: pattern)
        var result = ""
        var last = text.startIndex
        for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            let range = Range(match.range, in: text)!
            let found = String(text[range])
            let name = names[key(found)] ?? "<\(label)-\(names.count + 1)>"
            names[key(found)] = name
            result += text[last..<range.lowerBound] + name
            last = range.upperBound
        }
        text = result + text[last...]
    }
    replace("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", "trajectory")
    replace("\\b[0-9a-f]{40}\\b", "sha", key: { String($0.prefix(12)) })
    replace("\\b[0-9a-f]{12}\\b", "sha")
    for pattern in ["\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z", "\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} UTC", "\\d{4}-\\d{2}-\\d{2}", "\\d{4}-W\\d{2}"] {
        text = text.replacingOccurrences(of: pattern, with: "<time>", options: .regularExpression)
    }
    return text
}

/// Compares `text` with `Golden/NAME`; `RATCHET_RECORD_GOLDEN=1` writes it instead.
func expectGolden(_ text: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name)")
    if ProcessInfo.processInfo.environment["RATCHET_RECORD_GOLDEN"] == "1" { try Data(text.utf8).write(to: url) }
    let golden = try String(contentsOf: url, encoding: .utf8)
    #expect(text == golden, "differs from Golden/\(name)", sourceLocation: sourceLocation)
}

@Suite("Weekly summary")
struct SummaryTests {
    @Test func isoWeeksFollowTheStandard() throws {
        let utc = ISO8601DateFormatter()
        #expect(ISOWeek(containing: utc.date(from: "2026-12-02T01:00:00Z")!).description == "2026-W49")
        #expect(ISOWeek(containing: utc.date(from: "2021-01-03T23:59:59Z")!).description == "2020-W53")
        #expect(ISOWeek(containing: utc.date(from: "2024-12-30T00:00:00Z")!).description == "2025-W01")
        let week = try ISOWeek.parse("2026-W01")
        #expect(utc.string(from: week.start) == "2025-12-29T00:00:00Z" && utc.string(from: week.end) == "2026-01-05T00:00:00Z")
        #expect(try ISOWeek.parse("2026-W53").description == "2026-W53")
        for bad in ["2025-W53", "2026-W00", "2026-49", "2026-W4", "26-W10", "2026-W10x", ""] {
            #expect(message { _ = try ISOWeek.parse(bad) }?.hasPrefix("invalid week") == true, "\(bad)")
        }
    }

    @Test func aFutureWeekIsRefusedAndAnEmptyWorkspaceSaysSo() throws {
        let folder = ScratchFolder()
        let workspace = try Workspace.create(at: folder("ws"))
        let now = ISO8601DateFormatter().date(from: "2026-12-02T01:00:00Z")!
        #expect(message { _ = try workspace.summary(SummaryRequest(week: try ISOWeek.parse("2026-W50"), now: now)) }
            == "week 2026-W50 has not started yet (this is 2026-W49)")
        let summary = try workspace.summary(SummaryRequest(now: now))
        #expect(summary.week == "2026-W49" && summary.isPartial && summary.services.isEmpty)
        #expect(try summary.rendered(as: .markdown).contains("no services in this workspace yet"))
        let past = try workspace.summary(SummaryRequest(week: try ISOWeek.parse("2026-W40"), now: now))
        #expect(!past.isPartial && past.remarks.count == 1)
    }

    @Test func theWeekMatchesTheGoldenFiles() throws {
        let folder = ScratchFolder()
        let workspace = try makeReviewedWeek(folder)
        let path = workspace.servicePath("svc")
        let committed = try git(["log", "-1", "--format=%cI", "main"], in: path)
        let week = ISOWeek(containing: ISO8601DateFormatter().date(from: committed)!)
        let (markdown, report) = try workspace.writeSummary(SummaryRequest(week: week), format: .markdown)
        #expect(report == workspace.root.path + "/reports/\(week).md")
        #expect(try String(contentsOfFile: report, encoding: .utf8) == markdown)
        try expectGolden(normalised(markdown, root: workspace.root.path), "summary.md")
        let json = try workspace.summary(SummaryRequest(week: week)).rendered(as: .json)
        try expectGolden(normalised(json, root: workspace.root.path), "summary.json")
        // The commands it prints work as printed.
        let summary = try workspace.summary(SummaryRequest(week: week))
        let landing = try #require(summary.services.first?.landings.first)
        let shown = try run(["/bin/sh", "-c", landing.showCommand + " --stat --format=%s"], in: folder.path)
        #expect(shown.status == 0 && shown.stdout.hasPrefix("Merge T-1: Raise capacity"))
        #expect(landing.revertedBy != nil && summary.services[0].landings[1].approvedBy == "alice")
        #expect(summary.services[0].landings[1].approvalNote == "checked the SLO file")
    }

    @Test func missingNotesAndHandEditedLandingsStillRender() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let path = workspace.servicePath("svc")
        let id = try file(workspace, "Raise capacity")
        try workspace.work(ticket: id, agent: "command:sed -i s/1024/2048/ config/cache.json")
        try workspace.merge(ticket: id)
        // A person rewrites the landing's message by hand, and the notes are lost.
        _ = try run(["git", "commit", "-q", "--amend", "-m", "Merge T-1: Raise capacity (edited)\n\nTicket: T-1\nTrajectory: 0190f5c2-8f3e-7c4a-9d1e-3b5a7c9e1f20\nAgent: command\nCanary: none\nRisk: low"], in: path)
        try git(["update-ref", "-d", "refs/notes/ratchet"], in: path)
        let summary = try workspace.summary(SummaryRequest())
        let service = try #require(summary.services.first)
        #expect(service.landings.map(\.source) == ["trailers"])
        #expect(service.landings.first?.title == "Raise capacity")
        #expect(service.missing.count == 1 && service.missing[0].contains("is not in the store and has no note"))
        // A corrupt note is named as such.
        try git(["notes", "--ref=ratchet", "add", "-m", "{not json", "main"], in: path)
        let again = try workspace.summary(SummaryRequest()).services[0]
        #expect(again.missing.first?.contains("is not a Ratchet landing note") == true)
        #expect(try again.landings.count == 1 && workspace.summary(SummaryRequest()).rendered(as: .markdown).contains("### Missing (1)"))
    }

    @Test func reindexRebuildsTheStoresViewOfLandingsFromGitAlone() throws {
        let folder = ScratchFolder()
        let workspace = try makeReviewedWeek(folder)
        let request = SummaryRequest(now: Date())
        let before = try workspace.summary(request).rendered(as: .json)
        try workspace.database.write { db in
            try db.execute(sql: "UPDATE attempt SET landing = NULL, revert = NULL, state = 'failed' WHERE landing IS NOT NULL")
            try db.execute(sql: "UPDATE ticket SET state = 'open' WHERE state IN ('merged', 'reverted')")
        }
        let damaged = try workspace.summary(request)
        #expect(damaged.services[0].landings.map(\.source) == ["note", "note"])
        let report = try workspace.reindex()
        #expect(report.landings == 2 && report.reverts == 1 && report.updated == 3 && report.unknown.isEmpty)
        #expect(try workspace.summary(request).rendered(as: .json) == before)
        #expect(try workspace.ticket("T-1").state == .reverted && workspace.ticket("T-2").state == .merged)
        #expect(try workspace.reindex().updated == 0)
        try expectConsistent(workspace)
    }
}

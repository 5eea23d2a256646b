import Foundation
import RatchetCore
import RatchetGit
import RatchetStore
import RatchetTestSupport
import Testing

/// Files, works and lands one ticket whose agent runs `shell`.
@discardableResult
private func land(_ workspace: Workspace, _ title: String, fingerprint: String? = nil, _ shell: String) throws -> String {
    var draft = TicketDraft(service: "svc", title: title)
    draft.fingerprint = fingerprint
    let id = try workspace.createTicket(draft).id
    try workspace.work(ticket: id, agent: "command:\(shell)")
    try workspace.merge(ticket: id)
    return id
}

/// Sets `capacity` in config/cache.json from `old` to `new`.
private func capacity(_ old: Int, _ new: Int) -> String { "sed -i 's/\"capacity\": \(old)/\"capacity\": \(new)/' config/cache.json" }

@Suite("Reflection")
struct ReflectionTests {
    @Test func hysteresisFilesOneTicketStaysQuietWhenResolvedAndReturnsPastHigh() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, landingsPerHour: 10_000)
        for (index, value) in [2048, 4096, 8192].enumerated() {
            try land(workspace, "Fix latency \(index)", fingerprint: "invariant:latency", "echo \(value) > fix-a.txt")
        }
        for value in [1, 2] { try land(workspace, "Fix errors \(value)", fingerprint: "invariant:errors", "echo \(value) > fix-b.txt") }
        let first = try workspace.reflect()
        let latency = try #require(first.findings.first { $0.subject == "invariant:latency" })
        #expect(latency.kind == "hysteresis" && latency.count == 3 && latency.status == "filed")
        // The near miss: two fixes stay under the high threshold of 3.
        #expect(first.findings.first { $0.subject == "invariant:errors" }?.status == "below")
        #expect(first.filed.count == 1)
        let ticket = try workspace.ticket(try #require(latency.ticket))
        #expect(ticket.source == "reflection:hysteresis" && ticket.assignee == "human" && ticket.state == .open)
        #expect(ticket.objective.contains("Ratchet needs a person here") && ticket.context.contains("ticket T-1 landed"))

        // Deduplicated: the next run finds it flagged, files nothing.
        let second = try workspace.reflect()
        #expect(second.filed.isEmpty && second.findings.first { $0.subject == "invariant:latency" }?.status == "flagged")

        // Resolved: quiet until it recurs past high again.
        try workspace.resolveTicket(ticket.id, note: "raised the latency budget", by: "alice")
        #expect(try workspace.ticket(ticket.id).state == .resolved)
        #expect(try workspace.reflect().findings.first { $0.subject == "invariant:latency" }?.status == "quiet")
        try land(workspace, "Fix latency again", fingerprint: "invariant:latency", "echo 3 > fix-a.txt")
        #expect(try workspace.reflect().filed.isEmpty)
        try land(workspace, "Fix latency again 2", fingerprint: "invariant:latency", "echo 4 > fix-a.txt")
        try land(workspace, "Fix latency again 3", fingerprint: "invariant:latency", "echo 5 > fix-a.txt")
        let again = try workspace.reflect()
        #expect(again.filed.count == 1 && again.filed.first != ticket.id)
        // Out of the window, a flagged pattern clears (count 0 is at or below low).
        let later = try workspace.reflect(now: Date().addingTimeInterval(40 * 86400))
        #expect(later.findings.contains { $0.subject == "invariant:latency" && $0.status == "cleared" })
        #expect(try workspace.database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE kind IN ('reflection.flagged', 'reflection.cleared')")
        } == 3)
    }

    @Test func oscillationOfAValueIsFlaggedButARevertOrAProgressionIsNot() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        try land(workspace, "Capacity up", capacity(1024, 2048))
        try land(workspace, "Capacity down", capacity(2048, 1024))
        let report = try workspace.reflect()
        let finding = try #require(report.findings.first { $0.kind == "oscillation" })
        #expect(finding.subject == "svc:config/cache.json#capacity" && finding.status == "filed" && report.filed.count == 1)
        #expect(finding.evidence.first?.contains("sets config/cache.json#capacity back to an earlier content") == true)

        // Near misses: a revert and a re-landing, a progression A→B→C, a file changed twice.
        let otherFolder = ScratchFolder()
        let other = try makeWorkspace(otherFolder)
        let undone = try land(other, "TTL up", "sed -i 's/\"ttl_seconds\": 300/\"ttl_seconds\": 600/' config/cache.json")
        try other.revert(ticket: undone, reason: "not yet")
        try land(other, "TTL up again", "sed -i 's/\"ttl_seconds\": 300/\"ttl_seconds\": 600/' config/cache.json")
        try land(other, "Capacity 2048", capacity(1024, 2048))
        try land(other, "Capacity 4096", capacity(2048, 4096))
        try land(other, "Notes 1", "echo one > notes.txt")
        try land(other, "Notes 2", "echo two > notes.txt")
        #expect(try other.reflect().findings.filter { $0.kind == "oscillation" }.isEmpty)
    }

    @Test func exhaustedAttemptsAskForHelpAndSayWhatWasTried() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let id = try file(workspace, "Never works")
        for _ in 0..<3 { _ = message { try workspace.work(ticket: id, agent: "command:exit 1") } }
        let report = try workspace.reflect()
        let stuck = try #require(report.findings.first { $0.kind == "non-convergence" })
        #expect(stuck.subject == id && stuck.status == "filed")
        let ticket = try workspace.ticket(try #require(stuck.ticket))
        #expect(ticket.objective.contains("3 attempt(s) at \(id) by command; none landed"))
        #expect(ticket.context.contains("attempt \(id)/1 by command (trajectory "))
        // One escalation is a near miss for repeated escalations (high 3).
        #expect(report.findings.first { $0.kind == "escalations" }?.status == "below")
        // The escalated ticket itself can be resolved by a person; other states cannot.
        try workspace.resolveTicket(id, note: "the service needs a redesign")
        #expect(message { try workspace.resolveTicket(id, note: "again") }?.contains("resolved is final") == true)
        #expect(message { try workspace.resolveTicket("T-1", note: "bad\nnote") }?.contains("note") == true)
    }

    @Test func thresholdsComeFromRatchetYAML() throws {
        let config = try WorkspaceConfig.parse("reflect:\n  hysteresis: {high: 5, low: 2}\n")
        #expect(config.reflect.hysteresis == FlapThresholds(high: 5, low: 2) && config.reflect.oscillation == FlapThresholds(high: 1, low: 0))
        #expect(message { _ = try WorkspaceConfig.parse("reflect:\n  hysteresis: {high: 2, low: 2}\n") }?.contains("must be below high") == true)
        #expect(try WorkspaceConfig.parse("reflect:\n  drift: {high: 2}\n").reflect.drift == FlapThresholds(high: 2, low: 0))
        #expect(message { _ = try WorkspaceConfig.parse("reflect:\n  drifting: {high: 2}\n") }?.contains("drifting") == true)
        #expect(try WorkspaceConfig.parse(WorkspaceConfig.initialText).reflect == ReflectionThresholds())
    }

    @Test func driftIsAWeekOfSmallRegressionsEachInsideTheAllowance() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        let service = workspace.servicePath("svc")
        // An adopted history: the first commit ten days ago, then latency creeping up by
        // under 5% per commit (the canary allows 10%): the test module's `level` file.
        func commit(level: String?, daysAgo: Double) throws {
            let date = "@\(Int(Date().timeIntervalSince1970 - daysAgo * 86400)) +0000"
            var arguments = ["git", "commit", "-q", "--date", date]
            if let level {
                try Data(level.utf8).write(to: URL(fileURLWithPath: service + "/level"))
                try git(["add", "level"], in: service)
                arguments += ["-m", "Latency level \(level)"]
            } else {
                arguments += ["--amend", "--no-edit"]
            }
            let output = try run(arguments, in: service, environment: ["GIT_COMMITTER_DATE": date])
            #expect(output.status == 0, "\(output.stderr)")
        }
        try commit(level: nil, daysAgo: 10)
        try commit(level: "10.4", daysAgo: 6)
        try commit(level: "10.8", daysAgo: 4)

        // +8% over the week: judged, passes, nothing filed.
        let first = try workspace.reflect()
        let judged = try #require(first.drift.first)
        #expect(judged.status == "judged" && judged.verdict == "pass" && first.findings.allSatisfy { $0.kind != "drift" })
        #expect(judged.baseline == (try git(["rev-list", "-n1", "main~2"], in: service)).trimmingCharacters(in: .whitespacesAndNewlines))
        // Once a week: the next run does not start the canary again.
        let reports = { try workspace.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM canaryReport") } }
        let before = try reports()
        let second = try workspace.reflect()
        #expect(second.drift.first?.status == "skipped" && second.drift.first?.reason.hasPrefix("judged ") == true)
        #expect(try reports() == before)

        // Two more small steps: each inside the allowance, +20% together.
        try commit(level: "11.3", daysAgo: 2)
        try commit(level: "12", daysAgo: 1)
        let third = try workspace.reflect(drift: .force)
        #expect(third.drift.first?.verdict == "fail")
        let finding = try #require(third.findings.first { $0.kind == "drift" })
        #expect(finding.status == "filed" && finding.subject == "svc" && finding.count == 1)
        let ticket = try workspace.ticket(try #require(finding.ticket))
        #expect(ticket.source == "reflection:drift" && ticket.assignee == "human")
        #expect(ticket.context.contains("against main a week earlier") && ticket.objective.contains("passed its canary"))
        #expect(try workspace.reflect(drift: .never).drift.isEmpty)
        #expect(try run(["git", "fsck", "--strict"], in: service).status == 0)
    }
}

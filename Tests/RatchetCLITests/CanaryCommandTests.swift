import Foundation
import RatchetTestSupport
import Testing

/// Asserts one `error:` line on stderr and a non-zero exit.
private func expectOneError(_ output: Output, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(output.status != 0, sourceLocation: sourceLocation)
    let lines = output.stderr.split(separator: "\n").filter { !$0.isEmpty }
    #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "stderr was: \(output.stderr)", sourceLocation: sourceLocation)
    #expect(output.stderr.contains(text), "stderr was: \(output.stderr)", sourceLocation: sourceLocation)
}

private func json(_ output: Output) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(output.stdout.utf8))
}

@Suite("Canary command line")
struct CanaryCommandTests {
    /// A workspace with a batch-worker service `bw` (its real canary).
    private func makeWorkspace(_ folder: ScratchFolder) throws -> String {
        let root = folder("ws")
        #expect(try ratchet(["init", root], in: folder.path).status == 0)
        let added = try ratchet(["service", "add", "bw", "--template", "batch-worker"], in: root)
        #expect(added.status == 0, "\(added.stderr)")
        // The real module, judged without timing: throughput may move 300%, few rounds.
        let service = root + "/services/bw"
        try judgeCanaryWithoutTiming(service: service)
        try git(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-qam", "Canary without timing for tests"], in: service)
        return root
    }

    @Test func handRunsShowAndJSON() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        #expect(try ratchet(["service", "check", "bw"], in: root).status == 0)
        // By ref: main against itself passes.
        let byRef = try ratchet(["canary", "--service", "bw", "--ref", "main", "--json"], in: root)
        #expect(byRef.status == 0, "\(byRef.stderr)")
        let report = try #require(try json(byRef) as? [String: Any])
        #expect(report["verdict"] as? String == "pass" && report["schema"] as? String == "ratchet.canary/v1")
        #expect((report["metrics"] as? [[String: Any]])?.map { $0["name"] as? String } == ["correctness", "missing_results", "throughput_jobs_per_s"])
        // By ticket: a broken wordcount is judged without changing any state.
        #expect(try ratchet(["ticket", "new", "--service", "bw", "--title", "Split words on spaces"], in: root).status == 0)
        let agent = "command:sed -i 's/split())/split(\" \"))/' batchworker/jobs.py"
        #expect(try ratchet(["work", "T-1", "--agent", agent], in: root).status == 0)
        let byTicket = try ratchet(["canary", "T-1"], in: root)
        #expect(byTicket.status == 0, "\(byTicket.stderr)")
        #expect(byTicket.stdout.contains("verdict fail score=0"))
        #expect(byTicket.stdout.contains("correctness*"))
        let shown = try ratchet(["canary", "show", "T-1", "--json"], in: root)
        let reports = try #require(try json(shown) as? [[String: Any]])
        #expect(reports.count == 1 && reports[0]["ticket"] as? String == "T-1" && reports[0]["verdict"] as? String == "fail")
        #expect(try ratchet(["ticket", "show", "T-1", "--json"], in: root).stdout.contains("\"state\" : \"proposed\""))
        #expect(try ratchet(["canary", "show", "1"], in: root).stdout.contains("verdict pass"))
        // The gate rejects it: the table on stdout, one error line, ticket open.
        let merge = try ratchet(["merge", "T-1"], in: root)
        expectOneError(merge, containing: "the canary rejected T-1/1")
        #expect(merge.stdout.contains("correctness*") && merge.stdout.contains("  Low  "))
        #expect(try ratchet(["canary", "show", "T-1", "--json"], in: root).stdout.components(separatedBy: "\"schema\"").count == 3)
        try git(["fsck", "--strict"], in: root + "/services/bw")
    }

    @Test func approveAndRejectThroughTheBinary() throws {
        let folder = ScratchFolder()
        let root = try makeWorkspace(folder)
        let service = root + "/services/bw"
        for title in ["Retune threads", "Loosen the job SLO"] {
            #expect(try ratchet(["ticket", "new", "--service", "bw", "--title", title], in: root).status == 0)
        }
        // service.yaml and slos.yaml are protected: held for approval whatever the verdict.
        #expect(try ratchet(["work", "T-1", "--agent", "command:echo '# threads reviewed' >> service.yaml"], in: root).status == 0)
        let held = try ratchet(["merge", "T-1", "--json"], in: root)
        expectOneError(held, containing: "T-1 needs approval because it changes protected path(s) service.yaml")
        #expect((try json(held) as? [String: Any])?["state"] as? String == "needs-approval")
        let approved = try ratchet(["approve", "T-1", "--by", "Pat Person", "--note", "reviewed", "--json"], in: root)
        #expect(approved.status == 0, "\(approved.stderr)")
        #expect((try json(approved) as? [String: Any])?["state"] as? String == "merged")
        #expect(try git(["log", "-1", "--format=%(trailers:key=Approved-By,valueonly)%(trailers:key=Canary,valueonly)", "main"], in: service)
            == "Pat Person\npass score=100")

        #expect(try ratchet(["work", "T-2", "--agent", "command:echo '# looser' >> slos.yaml"], in: root).status == 0)
        expectOneError(try ratchet(["approve", "T-2"], in: root), containing: "ticket T-2 is proposed, not needs-approval")
        expectOneError(try ratchet(["merge", "T-2"], in: root), containing: "needs approval")
        let rejected = try ratchet(["reject", "T-2", "--reason", "SLOs stay", "--json"], in: root)
        #expect(rejected.status == 0, "\(rejected.stderr)")
        let ticket = try #require(try json(rejected) as? [String: Any])
        #expect(ticket["state"] as? String == "open")
        #expect((ticket["attempts"] as? [[String: Any]])?.first?["state"] as? String == "rejected")
        expectOneError(try ratchet(["reject", "T-2"], in: root), containing: "only a proposed or needs-approval ticket")
        expectOneError(try ratchet(["approve", "T-2", "--by", "a\u{07}b"], in: root), containing: "control character")
        expectOneError(try ratchet(["canary"], in: root), containing: "give a ticket id, or both --service S and --ref REF")
        expectOneError(try ratchet(["canary", "T-1", "--service", "bw", "--ref", "main"], in: root), containing: "not both")
        expectOneError(try ratchet(["canary", "show", "T-9"], in: root), containing: "no ticket T-9")
        expectOneError(try ratchet(["canary", "show", "99"], in: root), containing: "no canary report #99")
        let kinds = try ratchet(["events", "--json"], in: root).stdout
        for kind in ["canary.reported", "ticket.needs_approval", "ticket.approved", "ticket.rejected", "attempt.rejected"] {
            #expect(kinds.contains("\"\(kind)\""), "missing event \(kind)")
        }
        try git(["fsck", "--strict"], in: service)
    }
}

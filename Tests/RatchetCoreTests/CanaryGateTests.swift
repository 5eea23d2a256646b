import Foundation
import RatchetCore
import RatchetGit
import RatchetStore
import RatchetTestSupport
import Testing

/// Commits `files` on a new branch `name` of services/svc (from main) with the git CLI.
private func branch(_ workspace: Workspace, _ name: String, files: [String: String]) throws {
    let path = workspace.servicePath("svc")
    let scratch = path + "/../branch-\(name)"
    try git(["worktree", "add", "-q", "-b", name, scratch, "main"], in: path)
    for (file, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: scratch + "/" + file)) }
    try git(["add", "-A"], in: scratch)
    try git(["commit", "-qm", "test change"], in: scratch)
    try git(["worktree", "remove", "--force", scratch], in: path)
}

/// An agent command that writes `text` into `file` of its worktree.
private func writes(_ file: String, _ text: String) -> String { "command:printf '%s' '\(text)' > \(file)" }

@Suite("Canary runner faults")
struct CanaryRunnerTests {
    private func judge(_ fault: String, yaml: String = TestCanaryModule.yaml()) throws -> CanaryReport {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: yaml))
        try branch(workspace, "faulty", files: ["fault": fault])
        let report = try workspace.runCanary(service: "svc", ref: "faulty")
        // Nothing is left behind: scratch folders are removed, the store holds the report.
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.scratchPath).isEmpty)
        #expect(try workspace.canaryReports(String(report.id!)).first?.summary == report.summary)
        return report
    }

    @Test func aHealthyCanaryRunsBothSidesFromMainsReadOnlyModule() throws {
        let report = try judge("none")
        #expect(report.verdict == .pass && report.score == 100 && report.fault == nil)
        #expect(report.runs.map(\.role) == ["baseline", "candidate"] && report.runs.allSatisfy(\.ok))
        #expect(Set(report.runs.compactMap(\.side)) == ["a", "b"])
        // probe = 1 only when no role was in the environment and the module folder was not writable.
        #expect(report.checks.first?.ok == true)
        // Zero-variance rounds are clear at the minimum of 3 rounds.
        #expect(report.rounds?.used == 3 && report.rounds?.stop == "every round metric was clear after 3 rounds")
        #expect(report.runs.allSatisfy { $0.rounds == 3 })
    }

    @Test func bothSidesSeeTheSameWorldSoNeitherKnowsItIsTheCandidate() throws {
        let report = try judge("none")
        func seen(_ run: CanaryRun) throws -> String {
            String(try #require(run.stderr.split(separator: "\n").first { $0.hasPrefix("canary: sees ") }))
        }
        let (baseline, candidate) = (try seen(report.runs[0]), try seen(report.runs[1]))
        // Same environment, same folder, same module path, same file times: byte for byte.
        #expect(baseline == candidate)
        #expect(baseline.contains("\"cwd\": \"/srv/checkout\"") && baseline.contains("\"RATCHET_CANARY_DIR\": \"/srv/canary\""))
        #expect(!baseline.contains("baseline") && !baseline.contains("candidate") && !baseline.contains("ROLE"))
        #expect(baseline.contains("\"mtimes\": [946684800]"))
    }

    @Test func aCrashFailsNamingTheRoundAndItsLastDiagnostic() throws {
        let report = try judge("crash 2")
        #expect(report.verdict == .fail && report.score == 0)
        let side = try #require(report.runs[1].side)
        #expect(report.fault == "candidate run (side \(side)) exited with status 3 in round 2: canary: boom in round 2")
        #expect(report.runs[1].rounds == 1)
    }

    @Test func aHangIsKilledAtTheTimeout() throws {
        let report = try judge("hang", yaml: TestCanaryModule.yaml(timeout: "1s"))
        #expect(report.verdict == .fail)
        // (The waiting baseline may reach the same 1 s limit; the candidate's run names the round it hung in.)
        #expect(report.fault?.contains(" timed out after 1 s ") == true)
        #expect(report.runs[1].fault == "timed out after 1 s in round 1; its process group was killed")
        #expect(report.runs[1].timedOut)
    }

    @Test func aModuleThatStopsEarlyIsMarginalWithTheReason() throws {
        let report = try judge("stop 2")
        #expect(report.verdict == .marginal && report.fault == nil)
        #expect(report.summary.contains("exited after 2 round(s) without being asked to stop"))
        #expect(report.metrics.first { $0.name == "latency_ms" }?.classification == .inconclusive)
    }

    @Test func disagreeingRoundsEndMarginalAtTheMaximum() throws {
        let report = try judge("bimodal")
        #expect(report.verdict == .marginal && report.fault == nil)
        #expect(report.rounds?.used == 6 && report.rounds?.stop == "reached the maximum of 6 rounds")
        let latency = try #require(report.metrics.first { $0.name == "latency_ms" })
        #expect(latency.classification == .inconclusive && latency.reason.contains("straddles"))
    }

    @Test func garbageOutputFails() throws {
        let report = try judge("garbage")
        #expect(report.verdict == .fail)
        #expect(report.fault?.contains("printed a line that is not a JSON sample") == true)
        #expect(report.fault?.contains("line 1: 'this is not json'") == true)
    }

    @Test func aGigabyteOfOutputIsCutOff() throws {
        let report = try judge("flood")
        #expect(report.verdict == .fail)
        #expect(report.fault?.hasSuffix(" printed more than 32 MiB on stdout; its process group was killed") == true)
        #expect(report.runs[1].outputTruncated)
    }

    @Test func childrenLeftBehindFailAndAreKilled() throws {
        let report = try judge("orphan /tmp/orphan.pid")
        #expect(report.verdict == .fail)
        #expect(report.fault?.contains("left processes running") == true)
        // The orphan lived in the candidate's sandbox, whose pid namespace died with the run.
        #expect(report.runs[1].leftProcesses && report.runs[0].ok)
    }

    @Test func noSamplesForACriticalMetricFails() throws {
        let report = try judge("nodata")
        #expect(report.verdict == .fail && report.score == 0 && report.fault == nil)
        #expect(report.metrics.first { $0.name == "latency_ms" }?.classification == .noData)
    }

    @Test func invalidOrMissingCanaryYAMLFails() throws {
        let invalid = try judge("none", yaml: "command: [./run]\nmetrics: [{name: x, direction: sideways}]")
        #expect(invalid.verdict == .fail)
        #expect(invalid.fault == "canary/canary.yaml on main: metrics[0].direction: must be increase, decrease or either, not 'sideways'")

        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        let path = workspace.servicePath("svc")
        try git(["rm", "-q", "canary/canary.yaml"], in: path)
        try git(["commit", "-qm", "lose the canary definition"], in: path)
        let missing = try workspace.runCanary(service: "svc", ref: "main")
        #expect(missing.verdict == .fail && missing.fault == "main has a canary/ folder but no canary/canary.yaml")

        let missingProgram = try judge("none", yaml: TestCanaryModule.yaml().replacingOccurrences(of: "./run", with: "./nope"))
        #expect(missingProgram.fault?.contains("./nope is not an executable file in main's canary/ folder") == true)
    }

    @Test func handRunsNeedACanaryAndACommit() throws {
        let folder = ScratchFolder()
        let plain = try makeWorkspace(folder)
        #expect(message { _ = try plain.runCanary(service: "svc", ref: "main") }?.contains("has no canary/canary.yaml on main") == true)
        let other = ScratchFolder()
        let workspace = try makeWorkspace(other, canary: .scripted(yaml: TestCanaryModule.yaml()))
        #expect(message { _ = try workspace.runCanary(service: "svc", ref: "no-such-branch") }?.contains("names no commit") == true)
        #expect(message { _ = try workspace.runCanary(ticket: "T-9") }?.contains("no ticket T-9") == true)
        #expect(try workspace.database.read { db in try CanaryReportRecord.fetchCount(db) } == 0)
    }
}

@Suite("Canary gate")
struct CanaryGateTests {
    @Test func aPassingCanaryLandsWithTheTrailerAndTheReportInTheNote() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        let path = workspace.servicePath("svc")
        let id = try file(workspace, "Harmless", accept: ["command:true", "canary"])
        try workspace.work(ticket: id, agent: writes("notes.txt", "hello"))
        let landing = try workspace.merge(ticket: id)
        #expect(landing.canary?.verdict == .pass && landing.canary?.score == 100)
        #expect(landing.acceptance.map(\.status) == ["passed", "passed"])
        #expect(try git(["log", "-1", "--format=%(trailers:key=Canary,valueonly)", "main"], in: path) == "pass score=100")
        let note = try git(["notes", "--ref=ratchet", "show", "main"], in: path)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(note.utf8)) as? [String: Any])
        let canary = try #require(document["canary"] as? [String: Any])
        #expect(canary["verdict"] as? String == "pass" && canary["schema"] as? String == "ratchet.canary/v1")
        #expect(canary["candidate"] as? String == landing.canary?.candidate)
        // The judged candidate has exactly the landed tree and parents.
        #expect(try git(["rev-parse", "\(landing.canary!.candidate)^{tree}", "\(landing.canary!.candidate)^@"], in: path)
            == git(["rev-parse", "main^{tree}", "main^@"], in: path))
        #expect(try workspace.canaryReports(id).count == 1)
        #expect(try workspace.database.events().map(\.kind).contains("canary.reported"))
        try expectConsistent(workspace)
    }

    @Test func aRegressionIsRejectedAndTheTicketReopens() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        let path = workspace.servicePath("svc")
        let before = try git(["rev-parse", "main"], in: path)
        let id = try file(workspace, "Slower")
        try workspace.work(ticket: id, agent: writes("level", "50"))
        var stop: GateStop?
        do { try workspace.merge(ticket: id) } catch let error as GateStop { stop = error }
        let rejected = try #require(stop)
        #expect(rejected.outcome == "rejected")
        #expect(rejected.message.contains("critical latency_ms High: round medians 10.095 → 50.095 (+396.2%, interval +396.2%…+396.2%), 3 paired rounds"))
        // A clear critical failure stops at the minimum of rounds.
        #expect(rejected.report?.rounds?.stop == "critical latency_ms was clearly High after 3 rounds")
        #expect(rejected.message.hasSuffix("attempt T-1/1 is rejected and ticket T-1 is open"))
        #expect(try git(["rev-parse", "main"], in: path) == before)
        let view = try workspace.ticketView(id)
        #expect(view.state == "open" && view.attempts.map(\.state) == ["rejected"])
        // The report is kept and the trajectory says why.
        #expect(try workspace.canaryReports(id).map(\.verdict) == [.fail])
        let trajectory = try workspace.trajectoryDocument(view.attempts[0].trajectory)
        #expect(trajectory.outcome?["status"]?.stringValue == "rejected")
        let kinds = try workspace.database.events().map(\.kind)
        #expect(kinds.suffix(3) == ["canary.reported", "attempt.rejected", "ticket.reopened"])
        try expectConsistent(workspace)
    }

    @Test func aMarginalVerdictWaitsForApprovalAndApproveLandsIt() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml(latencyCritical: false)))
        let path = workspace.servicePath("svc")
        let id = try file(workspace, "A bit slower", accept: ["canary"])
        try workspace.work(ticket: id, agent: writes("level", "20"))
        var stop: GateStop?
        do { try workspace.merge(ticket: id) } catch let error as GateStop { stop = error }
        #expect(stop?.outcome == "needs-approval" && stop?.report?.verdict == .marginal && stop?.report?.score == 75)
        #expect(stop?.acceptance.first?.status == "failed")
        let held = try workspace.ticketView(id)
        #expect(held.state == "needs-approval" && held.attempts[0].state == "proposed")
        #expect(FileManager.default.fileExists(atPath: workspace.worktreePath(ticket: id, attempt: 1)))
        #expect(message { try workspace.merge(ticket: id) }?.contains("needs approval") == true)

        let landing = try workspace.approve(ticket: id, by: "Alice Operator", note: "latency budget allows it")
        // Main did not move: the judged candidate is not judged again.
        #expect(try workspace.canaryReports(id).count == 1)
        #expect(try git(["log", "-1", "--format=%(trailers:key=Canary,valueonly)%(trailers:key=Approved-By,valueonly)", "main"], in: path)
            == "marginal score=75\nAlice Operator")
        let view = try workspace.ticketView(id)
        #expect(view.state == "merged" && view.landing == landing.landing.hex)
        let label = try #require(try workspace.trajectoryDocument(view.attempts[0].trajectory).labels.first)
        #expect(label["kind"]?.stringValue == "approval" && label["by"]?.stringValue == "Alice Operator")
        #expect(label["note"]?.stringValue == "latency budget allows it")
        #expect(try workspace.database.events().map(\.kind).contains("ticket.approved"))
        #expect(message { _ = try workspace.approve(ticket: id) }?.contains("already merged") == true)
        try expectConsistent(workspace)
    }

    @Test func aProtectedPathNeedsApprovalWhateverTheVerdictAndRejectReopens() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        let path = workspace.servicePath("svc")
        let id = try file(workspace, "Loosen the SLOs")
        try workspace.work(ticket: id, agent: "command:echo '# looser' >> slos.yaml")
        var stop: GateStop?
        do { try workspace.merge(ticket: id) } catch let error as GateStop { stop = error }
        #expect(stop?.outcome == "needs-approval" && stop?.report?.verdict == .pass)
        #expect(stop?.message.contains("protected path(s) slos.yaml") == true)
        #expect(message { _ = try workspace.approve(ticket: "T-1", by: "bad\nApproved-By: x") }?.contains("newline") == true)
        #expect(try workspace.ticket(id).state == .needsApproval)

        let ticket = try workspace.rejectTicket(id, reason: "SLOs stay as they are", by: "bob")
        #expect(ticket.state == .open)
        let view = try workspace.ticketView(id)
        #expect(view.attempts[0].state == "rejected" && view.attempts[0].error == "rejected by bob: SLOs stay as they are")
        let label = try #require(try workspace.trajectoryDocument(view.attempts[0].trajectory).labels.first)
        #expect(label["kind"]?.stringValue == "rejection" && label["by"]?.stringValue == "bob")
        #expect(!FileManager.default.fileExists(atPath: workspace.worktreePath(ticket: id, attempt: 1)))
        #expect(message { _ = try workspace.rejectTicket(id) }?.contains("only a proposed or needs-approval ticket") == true)

        // A second attempt touching the same path is approved and lands with Approved-By.
        try workspace.work(ticket: id, agent: "command:echo '# looser' >> slos.yaml")
        #expect(throws: GateStop.self) { try workspace.merge(ticket: id) }
        let landing = try workspace.approve(ticket: id, by: "carol")
        #expect(landing.protectedPaths == ["slos.yaml"])
        #expect(try git(["log", "-1", "--format=%(trailers:key=Approved-By,valueonly)", "main"], in: path) == "carol")
        try expectConsistent(workspace)
    }

    @Test func aBranchThatLoosensItsCanaryIsJudgedByMainsAndNeedsApproval() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        let path = workspace.servicePath("svc")
        let id = try file(workspace, "Faster, trust me")
        // The regression, plus a canary that would judge nothing and allow anything.
        let loosened = "command:echo 50 > level && printf 'command: [./run]\\nmetrics: [{name: latency_ms, allowed_change: 100}]\\n' > canary/canary.yaml && printf '#!/bin/sh\\n' > canary/run"
        try workspace.work(ticket: id, agent: loosened)
        var stop: GateStop?
        do { try workspace.merge(ticket: id) } catch let error as GateStop { stop = error }
        let held = try #require(stop)
        #expect(held.outcome == "needs-approval")
        #expect(held.report?.verdict == .fail && held.report?.metrics.first?.classification == .high)
        #expect(held.message.contains("protected path(s) canary/canary.yaml, canary/run"))
        #expect(try workspace.ticket(id).state == .needsApproval)
        try expectConsistent(workspace)
    }

    @Test func approvingAfterMainMovedVerifiesTheRebuiltCandidate() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        let path = workspace.servicePath("svc")
        let held = try file(workspace, "Touch the runbooks", accept: ["command:test -f runbooks/extra.yaml"])
        try workspace.work(ticket: held, agent: "command:echo 'steps: []' > runbooks/extra.yaml")
        #expect(throws: GateStop.self) { try workspace.merge(ticket: held) }
        let other = try file(workspace, "Unrelated")
        try workspace.work(ticket: other, agent: writes("other.txt", "x"))
        try workspace.merge(ticket: other)
        let landing = try workspace.approve(ticket: held, by: "dana")
        #expect(try workspace.canaryReports(held).count == 2)
        #expect(try git(["rev-parse", "main^1"], in: path) == workspace.ticketView(other).landing)
        #expect(try landing.canary?.baseline == workspace.ticketView(other).landing)
        #expect(try git(["log", "-1", "--format=%(trailers:key=Canary,valueonly)", "main"], in: path) == "pass score=100")
        try expectConsistent(workspace)
    }

    @Test func anApprovalDoesNotCoverARebuiltCandidateThatNowFails() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        let path = workspace.servicePath("svc")
        let held = try file(workspace, "Touch the runbooks and add drag")
        try workspace.work(ticket: held, agent: "command:echo 'steps: []' > runbooks/extra.yaml && printf 5 > drag")
        #expect(throws: GateStop.self) { try workspace.merge(ticket: held) }
        #expect(try workspace.canaryReports(held).last?.verdict == .pass)
        let other = try file(workspace, "Add the amplifier")
        try workspace.work(ticket: other, agent: writes("amplifier", "on"))
        try workspace.merge(ticket: other)
        // The approval saw a pass; on the new main the rebuilt candidate fails: held again.
        var stop: GateStop?
        do { try workspace.approve(ticket: held, by: "dana") } catch let error as GateStop { stop = error }
        #expect(stop?.outcome == "needs-approval")
        #expect(stop?.report?.verdict == .fail)
        #expect(try workspace.ticket(held).state == .needsApproval)
        #expect(try git(["log", "-1", "--format=%s", "main"], in: path) == "Merge T-2: Add the amplifier")
        // A second approval of that exact candidate lands it, with the verdict it got.
        try workspace.approve(ticket: held, by: "dana")
        #expect(try git(["log", "-1", "--format=%(trailers:key=Canary,valueonly)%(trailers:key=Approved-By,valueonly)", "main"], in: path)
            == "fail score=0\ndana")
        try expectConsistent(workspace)
    }

    @Test func theKVCacheCanaryPassesAHarmlessChangeAndRejectsASleep() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .kvCache)
        let good = try file(workspace, "Document the cache")
        try workspace.work(ticket: good, agent: "command:echo '# notes' >> README.md")
        let landing = try workspace.merge(ticket: good)
        #expect(landing.canary?.verdict == .pass)
        #expect(landing.canary?.metrics.map(\.name) == ["latency_ms", "put_latency_ms", "cpu_us_per_request", "error_rate", "hit_ratio"])
        let slow = try file(workspace, "Warm the cache")
        try workspace.work(ticket: slow, agent: #"command:sed -i 's/        value = self.server.cache.get(key)/        time.sleep(0.003)\n        value = self.server.cache.get(key)/' kvcache/server.py"#)
        var stop: GateStop?
        do { try workspace.merge(ticket: slow) } catch let error as GateStop { stop = error }
        #expect(stop?.outcome == "rejected")
        #expect(stop?.report?.metrics.first?.classification == .high)
        try expectConsistent(workspace)
    }
}

@Suite("Canary lock and calibration")
struct CanaryLockTests {
    @Test func oneCanaryAtATimePerWorkspace() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        // Another canary holds the lock: this one says it waits, then runs once it is free.
        try FileManager.default.createDirectory(atPath: workspace.root.path + "/.ratchet/locks", withIntermediateDirectories: true)
        let fd = open(workspace.root.path + "/.ratchet/locks/canary", O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0 && flock(fd, LOCK_EX) == 0)
        let waiting = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        let box = ReportBox()
        Thread.detachNewThread {
            box.report = try? workspace.runCanary(service: "svc", ref: "main") { line in
                if line.contains("waiting for another canary") { waiting.signal() }
            }
            finished.signal()
        }
        waiting.wait()
        #expect(try workspace.database.read { db in try CanaryReportRecord.fetchCount(db) } == 0)
        flock(fd, LOCK_UN)
        close(fd)
        finished.wait()
        #expect(box.report?.verdict == .pass)
    }

    @Test func serviceCheckWarnsFromTheLatestCalibration() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder, canary: .scripted(yaml: TestCanaryModule.yaml()))
        #expect(try workspace.checkService("svc").isEmpty)
        let calibration = try workspace.calibrateCanary(service: "svc", runs: 2, resamples: 200)
        // The scripted module has no noise: every allowance holds, none is needed.
        #expect(calibration.metrics.map(\.name) == ["latency_ms", "error_rate", "probe"])
        #expect(calibration.metrics.allSatisfy { $0.recommended == 0 && $0.falseAlarmRate == 0 } && calibration.rounds == [6, 6])
        #expect(try workspace.latestCalibration("svc")?.id == calibration.id)
        #expect(try workspace.checkService("svc").filter(\.isWarning).isEmpty)
        // Main moves: the calibration is older than the last landing.
        let path = workspace.servicePath("svc")
        try Data("x".utf8).write(to: URL(fileURLWithPath: path + "/notes.txt"))
        try git(["add", "notes.txt"], in: path)
        try git(["commit", "-qm", "a landing"], in: path)
        let warnings = try workspace.checkService("svc").filter(\.isWarning).map(\.message)
        #expect(warnings.count == 1 && warnings[0].contains("older than the last landing"))
        #expect(message { _ = try workspace.calibrateCanary(service: "svc", runs: 1) } == "--runs must be from 2 to 200, got 1")
        let events = try workspace.database.read { db in try String.fetchAll(db, sql: "SELECT kind FROM event WHERE kind = 'canary.calibrated'") }
        #expect(events.count == 1)
    }
}

/// A report written by one thread and read after it signalled.
private final class ReportBox: @unchecked Sendable {
    var report: CanaryReport?
}

import Foundation
import RatchetTestSupport
import Testing

/// A workspace made through the binary, with service `svc` from the kv-cache template
/// (its canary judged without timing).
private func observedWorkspace(_ folder: ScratchFolder) throws -> String {
    let root = folder("ws")
    #expect(try ratchet(["init", root], in: folder.path).status == 0)
    let added = try ratchet(["service", "add", "svc", "--template", "kv-cache"], in: root)
    #expect(added.status == 0, "\(added.stderr)")
    try judgeCanaryWithoutTiming(service: root + "/services/svc")
    try git(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-qa", "--amend", "--no-edit"], in: root + "/services/svc")
    return root
}

/// Replaces `old` with `new` in a file of the service and commits it on main.
private func commitEdit(_ root: String, _ path: String, _ old: String, _ new: String) throws {
    let file = root + "/services/svc/" + path
    let text = try String(contentsOfFile: file, encoding: .utf8)
    #expect(text.contains(old), "\(path) does not contain \(old)")
    try Data(text.replacingOccurrences(of: old, with: new).utf8).write(to: URL(fileURLWithPath: file))
    try git(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "-qam", "Edit \(path)"], in: root + "/services/svc")
}

private func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite("Service pause and check")
struct ServicePauseAndCheckTests {
    @Test func aPausedServiceRefusesMergesUntilResumed() throws {
        let folder = ScratchFolder()
        let root = try observedWorkspace(folder)
        let service = root + "/services/svc"
        #expect(try ratchet(["ticket", "new", "--service", "svc", "--title", "Add a note"], in: root).status == 0)
        #expect(try ratchet(["work", "T-1", "--agent", "command:echo hello > note.txt"], in: root).status == 0)
        let main = try git(["rev-parse", "main"], in: service)

        let paused = try ratchet(["service", "pause", "svc", "--reason", "maintenance window"], in: root)
        #expect(paused.status == 0 && paused.stdout == "svc: paused\n", "\(paused.stderr)")
        #expect(try ratchet(["service", "pause", "svc"], in: root).stdout == "svc: already paused\n")
        #expect(try json(ratchet(["service", "show", "svc", "--json"], in: root).stdout)["paused"] as? Bool == true)
        let refused = try ratchet(["merge", "T-1"], in: root)
        #expect(refused.status != 0 && refused.stderr == "error: service svc is paused; landings resume with 'ratchet service resume svc'\n")
        #expect(try git(["rev-parse", "main"], in: service) == main)

        let resumed = try json(ratchet(["service", "resume", "svc", "--json"], in: root).stdout)
        #expect(resumed["paused"] as? Bool == false && resumed["changed"] as? Bool == true)
        let merged = try ratchet(["merge", "T-1"], in: root)
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(try git(["rev-parse", "main"], in: service) != main)
        let events = try ratchet(["events"], in: root).stdout.split(separator: "\n")
        #expect(events.contains { $0.contains("\tservice.paused\tsvc\t") && $0.contains(#""reason":"maintenance window""#) })
        #expect(events.filter { $0.contains("\tservice.paused\t") }.count == 1)
        #expect(events.contains { $0.contains("\tservice.resumed\tsvc\t") })
        let unknown = try ratchet(["service", "pause", "nope"], in: root)
        #expect(unknown.status != 0 && unknown.stderr.hasPrefix("error: no service named 'nope'"))
    }

    /// Before issue 14 this repo printed `svc: ok`.
    @Test func brokenInvariantsSLOsRunbooksAndCanaryAreEachNamedWithFileAndKey() throws {
        let folder = ScratchFolder()
        let root = try observedWorkspace(folder)
        #expect(try ratchet(["service", "check", "svc"], in: root).stdout == "svc: ok\n")
        try commitEdit(root, "invariants.yaml", "expr: kvcache_items <= kvcache_capacity", "expr: \"\"")
        try commitEdit(root, "invariants.yaml", "severity: page\n    runbook: runbooks/high-error-rate.yaml", "severity: urgent\n    runbook: runbooks/gone.yaml")
        try commitEdit(root, "slos.yaml", "objective: 0.999\n    window: 30d\n    good: sum(kvcache_request_duration", "objective: 1.5\n    window: 30d\n    good: sum(kvcache_request_duration")
        try commitEdit(root, "runbooks/low-hit-ratio.yaml", "key: capacity", "key: capacityy")
        try commitEdit(root, "runbooks/low-hit-ratio.yaml", "goto: raise_ttl}", "goto: raise_tttl}")
        try commitEdit(root, "runbooks/high-error-rate.yaml", "action: set_key", "action: rewrite_everything")
        try commitEdit(root, "canary/canary.yaml", "thresholds: { pass: 95, marginal: 75 }", "thresholds: { pass: 95, marginal: 175 }")
        let check = try ratchet(["service", "check", "svc"], in: root)
        #expect(check.status == 1 && !check.stdout.contains("ok"))
        let expected = [
            "services/svc/canary/canary.yaml: thresholds.marginal: must be between 0 and the pass threshold",
            "services/svc/invariants.yaml: invariants[1].severity: expected ticket or page, got 'urgent'",
            "services/svc/invariants.yaml: invariants[1].runbook: 'runbooks/gone.yaml' is not a file under runbooks/ on main",
            "services/svc/invariants.yaml: invariants[3].expr: is required",
            "services/svc/slos.yaml: slos[1].objective: must be between 0 and 1, exclusive, got 1.5",
            "services/svc/runbooks/high-error-rate.yaml: steps.raise_max_value.action: unknown action 'rewrite_everything'",
            "services/svc/runbooks/low-hit-ratio.yaml: steps.check_expirations.next[0].goto: names no step ('raise_tttl')",
            "services/svc/runbooks/low-hit-ratio.yaml: steps.raise_capacity.args.key: 'capacityy' is not a key of config/cache.json on main",
            "error: service svc has 8 problem(s)",
        ]
        let lines = check.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == expected.count, "\(check.stderr)")
        for (line, prefix) in zip(lines, expected) { #expect(line.hasPrefix(prefix), "\(line)") }
        let report = try json(ratchet(["service", "check", "svc", "--json"], in: root).stdout)
        let files = (report["findings"] as? [[String: Any]] ?? []).compactMap { $0["file"] as? String }
        #expect(report["ok"] as? Bool == false && Set(files) == ["services/svc/canary/canary.yaml", "services/svc/invariants.yaml",
                                                                  "services/svc/slos.yaml", "services/svc/runbooks/high-error-rate.yaml",
                                                                  "services/svc/runbooks/low-hit-ratio.yaml"])
    }
}

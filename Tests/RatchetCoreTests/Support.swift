import Foundation
import RatchetCore
import RatchetGit
import RatchetTestSupport
import Testing

/// Which canary the test service `svc` has on main.
enum TestCanary {
    /// None: the template's canary/ is removed from the first commit (landings say `Canary: none`).
    case none
    /// The template's own kv-cache canary (starts the real service).
    case kvCache
    /// `TestCanaryModule`: deterministic samples from files of the checkout, faults on demand.
    case scripted(yaml: String)
}

/// A fresh workspace with one kv-cache service named `svc`.
func makeWorkspace(_ folder: ScratchFolder, limits: String? = nil, canary: TestCanary = .none, landingsPerHour: Int? = nil) throws -> Workspace {
    let workspace = try Workspace.create(at: folder("ws"))
    try workspace.addService(name: "svc", template: "kv-cache")
    let service = workspace.servicePath("svc")
    // Rewrite the first commit in place, so that history looks as the template made it.
    let ratchet = ["GIT_COMMITTER_NAME": "Ratchet", "GIT_COMMITTER_EMAIL": "ratchet@ratchet.invalid"]
    switch canary {
    case .kvCache:
        // The real module, judged without timing: allowances far above this machine's noise
        // and few rounds, so that only gross regressions (a 3 ms sleep: +1000%) fail.
        try judgeCanaryWithoutTiming(service: service)
        try git(["add", "canary"], in: service)
        _ = try run(["git", "commit", "-q", "--amend", "--no-edit"], in: service, environment: ratchet)
    case .none:
        try git(["rm", "-rq", "canary"], in: service)
        _ = try run(["git", "commit", "-q", "--amend", "--no-edit"], in: service, environment: ratchet)
    case .scripted(let yaml):
        try git(["rm", "-rq", "canary"], in: service)
        try FileManager.default.createDirectory(atPath: service + "/canary", withIntermediateDirectories: true)
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: service + "/canary/canary.yaml"))
        try Data(TestCanaryModule.script.utf8).write(to: URL(fileURLWithPath: service + "/canary/run"))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: service + "/canary/run")
        try git(["add", "canary"], in: service)
        _ = try run(["git", "commit", "-q", "--amend", "--no-edit"], in: service, environment: ratchet)
    }
    if let landingsPerHour {
        // For tests that land many tickets in a minute: the gate itself is tested in PumpTests.
        let path = workspace.servicePath("svc")
        let text = try String(contentsOfFile: path + "/service.yaml", encoding: .utf8)
        try Data(text.replacingOccurrences(of: "max_landings_per_hour: 6", with: "max_landings_per_hour: \(landingsPerHour)").utf8)
            .write(to: URL(fileURLWithPath: path + "/service.yaml"))
        try git(["commit", "-qam", "Landing rate limit for the test"], in: path)
    }
    if let limits {
        let path = workspace.servicePath("svc")
        var text = try String(contentsOfFile: path + "/service.yaml", encoding: .utf8)
        let start = text.range(of: "limits:")!.lowerBound
        text = String(text[..<start]) + "limits:\n" + limits
        try Data(text.utf8).write(to: URL(fileURLWithPath: path + "/service.yaml"))
        try git(["commit", "-qam", "Tighten limits for the test"], in: path)
    }
    return workspace
}

/// Files a ticket for `svc`.
func file(_ workspace: Workspace, _ title: String, accept: [String] = []) throws -> String {
    var draft = TicketDraft(service: "svc", title: title)
    draft.acceptance = accept
    return try workspace.createTicket(draft).id
}

/// Asserts what must hold after any operation, failed or not.
func expectConsistent(_ workspace: Workspace, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let path = workspace.servicePath("svc")
    let fsck = try run(["git", "fsck", "--strict"], in: path)
    #expect(fsck.status == 0, "git fsck --strict: \(fsck.stderr)", sourceLocation: sourceLocation)
    #expect(try workspace.database.integrityCheck() == "ok", sourceLocation: sourceLocation)
    #expect(try git(["status", "--porcelain"], in: path) == "", "services/svc has local changes", sourceLocation: sourceLocation)
    #expect(try git(["for-each-ref", "refs/ratchet/"], in: path) == "", "refs/ratchet/* left behind", sourceLocation: sourceLocation)
    // Only the main working tree remains unless an attempt is proposed (or held for approval).
    let proposed = try workspace.tickets(state: "proposed").count + workspace.tickets(state: "needs-approval").count
    let listed = try git(["worktree", "list", "--porcelain"], in: path).components(separatedBy: "\n\n")
    let pooled = listed.filter { $0.contains("/worktrees/.pool/") }
    #expect(listed.count - pooled.count == 1 + proposed, "orphaned worktrees", sourceLocation: sourceLocation)
    // Pooled worktrees are detached, clean and at most two.
    #expect(pooled.count <= 2, sourceLocation: sourceLocation)
    for entry in pooled {
        #expect(entry.contains("\ndetached"), "pooled worktree holds a branch: \(entry)", sourceLocation: sourceLocation)
        let folder = String(entry.split(separator: "\n")[0].dropFirst("worktree ".count))
        #expect(try git(["status", "--porcelain", "--ignored"], in: folder) == "", "pooled worktree not clean", sourceLocation: sourceLocation)
    }
}

/// `text` with its error message, for expectations on RatchetError.
func message(of body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return describe(error) }
}

/// `count` loose branches `PREFIX/N` at main of the repository at `path`, written by git itself.
func looseBranches(_ count: Int, prefix: String, in path: String) throws {
    let main = try git(["rev-parse", "main"], in: path)
    let input = path + "/../bulk-\(prefix.replacingOccurrences(of: "/", with: "-")).txt"
    try Data((0..<count).map { "create \(prefix)/\($0) \(main)\n" }.joined().utf8).write(to: URL(fileURLWithPath: input))
    let result = try run(["/bin/sh", "-c", "git update-ref --stdin < \"$0\"", input], in: path)
    #expect(result.status == 0, "\(result.stderr)")
}

import Foundation
import RatchetGit

/// The quickstart's first scenes: the loop closed from an observed breach (issue 14).
extension Quickstart {
    /// kv-cache deployed misconfigured on loopback `port`; `observe` files a ticket for the
    /// breached invariant; `ratchet pump --once` has the runbook agent fix it, the canary
    /// judge it, the landing deploy it from main; `observe` then shows the invariant holding.
    /// Returns the ticket's id.
    static func loopScene(_ workspace: Workspace, service: String, port: Int, print: (String) -> Void) throws -> String {
        let path = workspace.servicePath(service)
        print("\n== 1b. kv-cache deployed with a misconfigured capacity (16 entries for a working set of 24 keys)")
        try configureForTheLoop(path, port: port)
        print("$ git log --oneline -1   # the operator enables deploy on loopback port \(port) and sets capacity 16")
        print(git(["log", "--format=%h %s", "-1"], in: path))
        guard let deployed = try workspace.deploy(service: service, trigger: "operator"), deployed.succeeded else {
            throw RatchetError("the quickstart could not deploy kv-cache (see 'ratchet events')")
        }
        print("deploy: \(deployed.output.trimmingCharacters(in: .whitespacesAndNewlines)) (sandboxed, no RATCHET_* in its environment)")
        _ = try workspace.observe(service: service, file: false)
        print("clients: " + (try load(port: port, rounds: 3)))

        print("\n== 1c. observe: scrape, evaluate the invariants, file a ticket per breach")
        print("$ ratchet observe")
        let observed = try workspace.observe(service: service, file: true)
        print(indent(table(observed.checks)))
        guard let filed = observed.checks.first(where: { $0.name == "hit_ratio_floor" })?.ticket else {
            throw RatchetError("observe filed no ticket for hit_ratio_floor; the quickstart cannot go on")
        }
        let ticket = try workspace.ticketView(filed)
        print("\(ticket.id): \(ticket.title) (source \(ticket.source), restores \(ticket.restores))")

        print("\n== 1d. the pump: the runbook agent works \(ticket.id), the canary judges it, it lands and deploy restarts kv-cache from main")
        print("$ ratchet pump --once")
        let summary = try Pump(workspace: workspace, options: PumpOptions(once: true, concurrency: 1), progress: { _ in }).run()
        print("pump: \(summary.worked) worked, \(summary.landed) landed, \(summary.held) held, \(summary.reverted) reverted by the watch")
        var trajectory = try workspace.trajectoryDocument(try workspace.ticketView(filed).attempts.last?.trajectory ?? "")
        for step in trajectory.steps {
            print("  step \(step.index) \(step.action.tool) (risk \(step.action.risk), \(step.action.effect))"
                  + (step.commit.map { " commit \($0.prefix(7))" } ?? "") + ": " + (step.observation.output.split(separator: "\n").first.map(String.init) ?? ""))
        }
        if try workspace.ticket(filed).state == .needsApproval {
            trajectory = try workspace.trajectoryDocument(trajectory.id)
            // Until invariant criteria are evaluated on the candidate, `invariant:NAME` holds the ticket for a person.
            let reasons = trajectory.outcome?["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
            print("\(filed) needs approval because \(reasons.isEmpty ? "a criterion only a person can judge" : reasons.joined(separator: " and "))")
            print("$ ratchet approve \(filed) --by quickstart")
            _ = try workspace.approve(ticket: filed, by: "quickstart")
        }
        print("$ git log --first-parent --oneline -2 main")
        print(git(["log", "--first-parent", "--format=%h %s", "-2", "main"], in: path))
        print("$ git show main:config/cache.json | grep capacity")
        print(git(["show", "main:config/cache.json"], in: path).split(separator: "\n").filter { $0.contains("capacity") }.joined(separator: "\n"))

        print("\n== 1e. the same clients against the redeployed kv-cache; observe shows the invariant holding again")
        print("clients: " + (try load(port: port, rounds: 9)))
        print("$ ratchet observe")
        let after = try workspace.observe(service: service, file: true)
        print(indent(table(after.checks)))
        print("\(filed) is \(try workspace.ticket(filed).state)")
        return filed
    }

    /// The operator's commit on main: deploy on loopback `port` (sandbox.deploy_network
    /// host), the scrape pointed there, and the misconfigured capacity.
    private static func configureForTheLoop(_ path: String, port: Int) throws {
        try edit(path + "/service.yaml", [("deploy: null ", "deploy: sh deploy/restart.sh "), ("deploy_network: none", "deploy_network: host"),
                                          ("127.0.0.1:8080", "127.0.0.1:\(port)")])
        try edit(path + "/config/cache.json", [("\"capacity\": 1024", "\"capacity\": 16"), ("\"port\": 8080", "\"port\": \(port)")])
        let person = Signature(name: "quickstart", email: "quickstart@operators.ratchet.invalid")
        _ = try Repository.open(path).commitWorkingTree(author: person, committer: person,
                                                        message: "Deploy kv-cache on loopback port \(port) with capacity 16\n")
    }

    private static func edit(_ file: String, _ replacements: [(String, String)]) throws {
        var text = try String(contentsOfFile: file, encoding: .utf8)
        for (old, new) in replacements {
            guard text.contains(old) else { throw RatchetError("\(file) has no '\(old)'") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
    }

    /// Clients of the cache: `rounds` passes over 24 keys, each GET followed by a PUT on a miss.
    private static func load(port: Int, rounds: Int) throws -> String {
        let script = """
            import sys, urllib.request, urllib.error
            base = "http://127.0.0.1:%s/kv/" % sys.argv[1]
            hits = gets = 0
            for _ in range(int(sys.argv[2])):
                for i in range(24):
                    gets += 1
                    try:
                        urllib.request.urlopen(base + "key%d" % i, timeout=10).read(); hits += 1
                    except urllib.error.HTTPError as error:
                        if error.code != 404: raise
                        urllib.request.urlopen(urllib.request.Request(base + "key%d" % i, data=b"v" * 64, method="PUT"), timeout=10).read()
            print("%d GETs, %d hits" % (gets, hits))
            """
        let result = try ProcessRunner.run(["/usr/bin/env", "python3", "-c", script, "\(port)", "\(rounds)"], directory: "/",
                                           environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
                                           limits: ProcessLimits(timeout: 120, outputBytes: 64 * 1024))
        guard result.succeeded else { throw RatchetError("the clients failed: \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The checks as `ratchet observe` prints them (name, state, value).
    private static func table(_ checks: [CheckStatus]) -> String {
        checks.map { check in
            "\(check.kind) \(check.name): \(check.state == "breach" ? "BREACH" : check.state)"
                + (check.value.map { " (value \(String(format: "%.3g", $0)))" } ?? "") + (check.ticket.map { " -> \($0)" } ?? "")
        }.joined(separator: "\n")
    }

    /// A loopback TCP port nobody listens on now.
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RatchetError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard bound == 0, named == 0 else { throw RatchetError("cannot find a free loopback port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

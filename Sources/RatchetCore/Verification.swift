import Foundation
import RatchetGit

/// What a change touches that a person must see before it lands (SPEC §3, §6): protected
/// paths, existing tests modified or deleted, files that change how Python or the test
/// runner starts, and lines that look like secrets.
struct ChangeReview: Equatable {
    /// Protected paths the change touches.
    var protected: [String] = []
    /// Existing files under `test_paths` the change modifies or deletes (adding tests is free).
    var tests: [String] = []
    /// Files under `startup_paths` the change adds, modifies or deletes (adr/0069).
    var startup: [String] = []
    /// Files the change adds under `test_paths`: not a finding, but acceptance commands also
    /// run without them, so that main's tests judge the candidate's code (adr/0068).
    var addedTests: [String] = []
    /// `path:line (kind)` of each line that matches a secret pattern; never the secret itself.
    var secrets: [String] = []

    /// One reason per kind of finding, for the hold message.
    var reasons: [String] {
        var reasons: [String] = []
        if !protected.isEmpty { reasons.append("it changes protected path(s) \(protected.prefix(10).joined(separator: ", "))") }
        if !tests.isEmpty { reasons.append("it modifies or deletes existing test(s) \(tests.prefix(10).joined(separator: ", "))") }
        if !startup.isEmpty {
            reasons.append("it changes file(s) that change how Python or the test runner starts \(startup.prefix(10).joined(separator: ", "))")
        }
        if !secrets.isEmpty { reasons.append("it adds what looks like a secret at \(secrets.prefix(10).joined(separator: ", "))") }
        return reasons
    }
}

extension Acceptance {
    /// The status of a criterion Ratchet cannot evaluate (an `invariant:` without exposition
    /// snapshots of the candidate, or without data): it holds the ticket for a person instead
    /// of letting it land (SPEC §12).
    static let unevaluable = "cannot-evaluate"
}

extension Workspace {
    /// Reviews the change from tree `old` (main) to `new` (the candidate).
    func review(from old: ObjectID, to new: ObjectID, config serviceConfig: ServiceConfig, repository: Repository) throws -> ChangeReview {
        let scanner = SecretScanner(extra: config.secretPatterns)
        var review = ChangeReview()
        for difference in try repository.treeDifferences(from: old, to: new) {
            if serviceConfig.isProtected(difference.path) { review.protected.append(difference.path) }
            if serviceConfig.isStartup(difference.path) { review.startup.append(difference.path) }
            if difference.old == nil, difference.new != nil, serviceConfig.isTestPath(difference.path) { review.addedTests.append(difference.path) }
            if difference.old != nil, difference.new?.id != difference.old?.id || difference.new?.mode != difference.old?.mode,
               serviceConfig.isTestPath(difference.path) {
                review.tests.append(difference.path)
            }
            guard let added = difference.new, added.isFile, let content = try repository.blobContent(added.id) else { continue }
            review.secrets += scanner.findings(in: content).map { "\(difference.path):\($0.line) (\($0.kind))" }
        }
        return review
    }

    /// Runs the acceptance criteria on `candidate`: each `command:` in a verification sandbox
    /// over a pooled checkout of it with a writable layer of its own (the service's `.git` and
    /// the store unreachable), with the network of `sandbox.verify_network`. When the change
    /// adds files under `test_paths` (`addedTests`), each command runs a second time with
    /// those files removed from that run's layer: main's tests judge the candidate's code,
    /// so an added test cannot end the run with success before they run (adr/0068).
    func runAcceptance(_ criteria: [Acceptance], candidate: ObjectID, addedTests: [String] = [], repository: Repository,
                       config serviceConfig: ServiceConfig, progress: @Sendable (String) -> Void) throws -> [AcceptanceResult] {
        var results: [AcceptanceResult] = []
        for criterion in criteria {
            switch criterion {
            case .command(let command):
                progress("acceptance: \(command)")
                var result = try acceptanceRun(command, criterion: criterion, on: candidate, removing: [], repository: repository, config: serviceConfig)
                if result.status == "passed" && !addedTests.isEmpty {
                    progress("acceptance on main's tests (\(addedTests.count) added test file(s) removed): \(command)")
                    result = try acceptanceRun(command, criterion: criterion, on: candidate, removing: addedTests, repository: repository, config: serviceConfig)
                }
                results.append(result)
            case .invariant:
                results.append(AcceptanceResult(criterion: criterion.text, status: Acceptance.unevaluable,
                                                detail: "evaluated on the candidate's exposition snapshots after the canary"))
            case .canary:
                results.append(AcceptanceResult(criterion: criterion.text, status: "not-evaluated", detail: "judged by the canary after the commands"))
            case .text:
                results.append(AcceptanceResult(criterion: criterion.text, status: "not-evaluated", detail: "judged by a person"))
            }
        }
        return results
    }

    /// One run of acceptance command `command` on `candidate`, with the repository paths
    /// `removing` taken out of the run's own layer first (never out of the pooled checkout).
    private func acceptanceRun(_ command: String, criterion: Acceptance, on candidate: ObjectID, removing: [String], repository: Repository,
                               config serviceConfig: ServiceConfig) throws -> AcceptanceResult {
        // `rm` runs before any branch code, in the overlay; a path's folders are trees of the candidate, never links.
        let argv = removing.isEmpty ? ["/bin/sh", "-c", command]
            : ["/bin/sh", "-c", "command=$1; shift; rm -rf -- \"$@\" || exit 125; exec /bin/sh -c \"$command\"", "ratchet-main-tests", command] + removing
        let run = try runVerification(argv, on: candidate, repository: repository, config: serviceConfig)
        let scope = removing.isEmpty ? ""
            : "on main's tests (the candidate without the \(removing.count) test file(s) it adds: \(removing.prefix(10).joined(separator: ", "))): "
        return AcceptanceResult(criterion: criterion.text, status: run.succeeded ? "passed" : "failed",
                                detail: run.succeeded ? scope + redact(run.output) : "\(scope)\(redact(run.output))\n\(scope)\(run.summary)")
    }

    /// Runs `argv` on a pooled checkout of `commit` in a verification sandbox, with a
    /// writable layer that vanishes with the run.
    func runVerification(_ argv: [String], on commit: ObjectID, repository: Repository, config serviceConfig: ServiceConfig) throws -> ProcessResult {
        let checkout = try pooledCheckout(of: commit, service: serviceConfig.name, repository: repository)
        defer { checkout.release() }
        let privateFolder = try makeScratchFolder("verify")
        defer { try? FileManager.default.removeItem(atPath: privateFolder) }
        let sandbox = try verificationSandbox(checkout: checkout.files, layered: true, network: serviceConfig.verifyNetwork, privateFolder: privateFolder)
        let environment = childEnvironment(allowing: [], extra: ["RATCHET_SERVICE": serviceConfig.name, "RATCHET_CANDIDATE": commit.hex])
        return try sandbox.run(argv, environment: environment,
                               limits: ProcessLimits(timeout: serviceConfig.agentTimeout, outputBytes: 64 * 1024, fileBytes: serviceConfig.agentFileBytes))
    }
}

import Foundation
import RatchetGit
#if canImport(Glibc)
import Glibc
#endif

/// What one canary run measured, mapped back from neutral sides to baseline and candidate.
struct CanaryMeasurement: Sendable {
    /// Per role, baseline first; each names its neutral side.
    var runs: [CanaryRun]
    var baseline: SideSamples
    var candidate: SideSamples
    /// The first fault of any run, naming the role and the side.
    var fault: String?
    /// Rounds every side completed, and why the rounds stopped.
    var rounds: Int
    var stopReason: String
    /// Set when a module ended by itself before it was told to stop.
    var endedEarly: String?
}

extension Workspace {
    /// The lock that lets one canary run at a time in this workspace (two at once on a
    /// small machine void any calibration): `.ratchet/locks/canary`, flock, held until the
    /// returned descriptor is closed.
    func lockCanary(progress: (String) -> Void) throws -> Int32 {
        let folder = root.appendingPathComponent(".ratchet/locks").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let fd = open(folder + "/canary", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RatchetError("cannot open \(folder)/canary: \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            progress("canary: waiting for another canary of this workspace to finish")
            guard flock(fd, LOCK_EX) == 0 else {
                close(fd)
                throw RatchetError("cannot lock \(folder)/canary: \(String(cString: strerror(errno)))")
            }
        }
        return fd
    }

    /// Takes pooled checkouts of `baseline` and `candidate` (`CheckoutPool.swift`: switched by
    /// difference, every file at one fixed time) for neutral sides assigned at random, copies
    /// main's `canary/` read-only, and runs the module on both sides, each in its own sandbox
    /// with a writable layer of its own over its checkout (docs/canary.md). `decide` receives
    /// (baseline, candidate) samples after each round from the minimum on.
    func measureCanary(_ config: CanaryConfig, service: String, repository: Repository, baseline: ObjectID, candidate: ObjectID,
                       judge: ObjectID? = nil, decide: @escaping @Sendable (Int, SideSamples, SideSamples) -> String?) throws -> CanaryMeasurement {
        let folder = try makeScratchFolder("canary")
        defer { Self.removeScratch(folder) }
        let module = folder + "/module"
        let names = ["a", "b"].shuffled()  // names[0] is the baseline's side, names[1] the candidate's
        let commits = [names[0]: baseline, names[1]: candidate]
        var checkouts: [String: PooledCheckout] = [:]
        defer { checkouts.values.forEach { $0.release() } }
        for name in ["a", "b"] { checkouts[name] = try pooledCheckout(of: commits[name]!, service: service, repository: repository) }
        try copyCanaryModule(of: judge ?? baseline, sides: [(baseline, checkouts[names[0]]!.files), (candidate, checkouts[names[1]]!.files)],
                             to: module, repository: repository)
        try Self.makeReadOnly(module)
        let network = (try? serviceConfig(service))?.verifyNetwork ?? false
        let sides = try ["a", "b"].map { name in
            var sandbox = try verificationSandbox(checkout: checkouts[name]!.files, layered: true,
                                                  readOnly: [Sandbox.Mount(module, at: CanaryRunner.modulePath)],
                                                  network: network, privateFolder: folder + "/private-" + name)
            sandbox.guardsStreams = true // the module's stdout is the evidence; its children run branch code
            return CanarySide(name: name, checkout: checkouts[name]!.files, sandbox: sandbox)
        }
        let environment = childEnvironment(allowing: [], extra: ["RATCHET_SERVICE": service])
        let baselineIndex = names[0] == "a" ? 0 : 1
        let outcome = CanaryRunner.run(config, module: module, sides: sides, environment: environment) { round, samples in
            decide(round, samples[baselineIndex], samples[1 - baselineIndex])
        }
        var runs = outcome.runs
        for index in runs.indices { runs[index].role = index == baselineIndex ? "baseline" : "candidate" }
        runs.sort { $0.role < $1.role }
        let fault = runs.compactMap { run in run.fault.map { "\(run.role) run (side \(run.side ?? "?")) \($0)" } }.first
        return CanaryMeasurement(runs: runs, baseline: outcome.samples[baselineIndex], candidate: outcome.samples[1 - baselineIndex],
                                 fault: fault, rounds: outcome.rounds, stopReason: outcome.stopReason, endedEarly: outcome.endedEarly)
    }

    /// Copies the judge's `canary/` folder to `module` from the side whose checkout has the
    /// same `canary/` tree: the baseline on every landing, the candidate (today's main) when
    /// drift judges an older main with today's canary.
    private func copyCanaryModule(of judge: ObjectID, sides: [(commit: ObjectID, files: String)], to module: String,
                                  repository: Repository) throws {
        let wanted = try repository.entryID("canary", in: judge)
        guard let side = try sides.first(where: { try repository.entryID("canary", in: $0.commit) == wanted }) else {
            throw RatchetError("neither side of the canary has the judge's canary/ folder (\(judge.short))")
        }
        try Self.copyClosingOnExec(side.files + "/canary", to: module)
    }

    /// Copies a folder tree (folders, files with their modes, symbolic links), writing every
    /// file through a descriptor that closes on exec: Foundation's `copyItem` leaves its
    /// descriptor inheritable, and a process started meanwhile by another thread kept the
    /// module's `run` open for writing for its whole life, so that starting it failed with
    /// "Text file busy" (ETXTBSY).
    static func copyClosingOnExec(_ source: String, to target: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: target, withIntermediateDirectories: false)
        var links: [String] = []
        for item in try fm.subpathsOfDirectory(atPath: source).sorted() where !links.contains(where: { item.hasPrefix($0 + "/") }) {
            let from = source + "/" + item, to = target + "/" + item
            let attributes = try fm.attributesOfItem(atPath: from)
            switch attributes[.type] as? FileAttributeType {
            case .typeDirectory?: try fm.createDirectory(atPath: to, withIntermediateDirectories: false)
            case .typeSymbolicLink?:
                links.append(item)  // copied as a link, never followed
                try fm.createSymbolicLink(atPath: to, withDestinationPath: fm.destinationOfSymbolicLink(atPath: from))
            default:
                let bytes = try Data(contentsOf: URL(fileURLWithPath: from))
                let fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t((attributes[.posixPermissions] as? Int) ?? 0o644))
                guard fd >= 0 else { throw RatchetError("cannot write \(to): \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                try bytes.withUnsafeBytes { try writeAll(fd, $0, path: to) }
            }
        }
    }
}

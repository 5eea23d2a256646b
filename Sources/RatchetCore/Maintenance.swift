import CPosix
import Foundation
import RatchetGit
import RatchetStore

/// What one packing of a service repo did.
public struct PackResult: Encodable, Sendable {
    public var service: String
    /// Loose objects moved into a new pack.
    public var objects: Int
    /// Loose references moved into `packed-refs`.
    public var references: Int = 0
    /// A `packed-refs.lock` older than `staleReferenceLockAge` was removed before packing.
    public var staleLockRemoved = false
    /// Another writer held `packed-refs.lock`: the references wait for the next packing.
    public var referencesDeferred = false
    /// Small packs combined into one.
    public var packsCombined: Int
    public var durationMs: Double
    /// Whether a landing started it in the background.
    public var background: Bool

    enum CodingKeys: String, CodingKey {
        case service, objects, references, background
        case packsCombined = "packs_combined"
        case staleLockRemoved = "stale_lock_removed"
        case referencesDeferred = "references_deferred"
        case durationMs = "duration_ms"
    }
}

/// Packing of service repos: loose objects into a pack, small packs into one, loose
/// references into `packed-refs`.
///
/// libgit2 has no gc, and lookups slow down with loose objects and with the number of
/// packs. A landing, a revert or an attempt (each writes packs) that finds either past its
/// threshold starts `ratchet service pack NAME --if-needed` in the background and returns;
/// one packer runs per service at a time, serialised by `.ratchet/locks/pack-NAME`, which
/// the starter takes before it starts the packer and hands over to it. The packer holds no
/// lease and leaves the workspace lock alone; `ratchet doctor` waits for running packers
/// instead (docs/performance.md).
extension Workspace {
    /// Loose objects beyond which they are packed (about 40 landings' worth).
    public static let looseObjectsToPack = 1024
    /// Packs beyond which the small ones are combined (each durable step writes one).
    public static let packsToConsolidate = 32
    /// Loose references beyond which they are packed (each ticket leaves a branch, and
    /// every reference listing reads each loose one: docs/performance.md).
    public static let looseReferencesToPack = 128

    /// Seconds after which a `packed-refs.lock` is a leftover of a killed writer, not a write
    /// in progress (git holds it for milliseconds; `core.packedRefsTimeout` waits 1 s for it).
    static let staleReferenceLockAge: TimeInterval = 600

    /// The lock file that serialises the packers of `service`.
    func packLockPath(_ service: String) -> String {
        root.appendingPathComponent(".ratchet/locks/pack-\(service)").path
    }

    private func openPackLock(_ service: String) throws -> Int32 {
        let path = packLockPath(service)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RatchetError("cannot open \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Whether `service`'s repo has passed a packing threshold.
    func needsPacking(_ repository: Repository) -> Bool {
        repository.estimatedLooseObjects() >= Self.looseObjectsToPack || repository.packCount() >= Self.packsToConsolidate
            || repository.looseReferenceCount(upTo: Self.looseReferencesToPack) >= Self.looseReferencesToPack
    }

    /// Packs `service`'s repo: its loose objects into one pack, then its small packs into one,
    /// then its loose references into `packed-refs`.
    /// With `ifNeeded`, only what passed its threshold. `lockDescriptor` is the pack lock
    /// handed over by a landing (already held); without it the lock is taken here, waiting
    /// for a packer that runs. Records `service.packed` (or `service.pack_failed`).
    @discardableResult
    ///
    /// A packer process (`ratchet service pack`) passes `ownProcess`: it holds no lease,
    /// worktree or child doctor could repair, so it gives the workspace lock back and
    /// doctor waits for the pack lock instead.
    public func packService(_ rawName: String, ifNeeded: Bool, lockDescriptor: Int32? = nil, ownProcess: Bool = false,
                            progress: @Sendable (String) -> Void = { _ in }) throws -> PackResult {
        let name = try Names.serviceName(rawName)
        _ = try service(name)
        if ownProcess { try releaseWorkspaceLock() }
        if let lockDescriptor {
            // Handed over by a landing: it must be this service's pack lock, held by us.
            var held = stat(), file = stat()
            guard fstat(lockDescriptor, &held) == 0, stat(packLockPath(name), &file) == 0,
                  held.st_dev == file.st_dev, held.st_ino == file.st_ino, flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 else {
                throw RatchetError("--lock-fd \(lockDescriptor) is not the pack lock of \(name) (\(packLockPath(name)))")
            }
        }
        let fd = try lockDescriptor ?? openPackLock(name)
        defer { close(fd) }
        if lockDescriptor == nil, flock(fd, LOCK_EX | LOCK_NB) != 0 {
            progress("waiting for the packing of \(name) in progress")
            try Self.lock(fd, LOCK_EX, path: packLockPath(name))
        }
        let started = Date()
        let repository = try Repository.open(servicePath(name))
        let packLoose = !ifNeeded || repository.estimatedLooseObjects() >= Self.looseObjectsToPack
        let combine = !ifNeeded || repository.packCount() >= Self.packsToConsolidate
        let packReferences = !ifNeeded || repository.looseReferenceCount(upTo: Self.looseReferencesToPack) >= Self.looseReferencesToPack
        var result = PackResult(service: name, objects: 0, packsCombined: 0, durationMs: 0, background: lockDescriptor != nil)
        do {
            if packLoose {
                progress("packing the loose objects of \(name)")
                result.objects = try repository.packLooseObjects { try Failpoints.hit("pack.loose-written") }
            }
            if combine {
                progress("combining the small packs of \(name)")
                result.packsCombined = try repository.consolidatePacks { try Failpoints.hit("pack.combined") }
            }
            if packReferences {
                progress("packing the references of \(name)")
                let packing = try withReferenceLock(name, shared: false) { try repository.packReferences(staleLockAge: Self.staleReferenceLockAge) }
                (result.references, result.staleLockRemoved, result.referencesDeferred) = (packing.packed, packing.staleLockRemoved, packing.deferred)
                if packing.deferred { progress("the references of \(name) wait for the next packing: packed-refs.lock is held") }
                try Failpoints.hit("pack.references-written")
            }
        } catch {
            let message = describe(error)
            _ = try? database.write { db in
                try RatchetDatabase.appendEvent(db, kind: "service.pack_failed", service: name, data: ["error": .string(message)])
            }
            throw RatchetError("packing \(name) failed: \(message)")
        }
        result.durationMs = Date().timeIntervalSince(started) * 1000
        if result.objects > 0 || result.packsCombined > 0 || result.references > 0 || result.staleLockRemoved {
            let recorded = result
            try database.write { db in
                try RatchetDatabase.appendEvent(db, kind: "service.packed", service: name,
                                                data: ["objects": .number(Double(recorded.objects)), "packs_combined": .number(Double(recorded.packsCombined)),
                                                       "references": .number(Double(recorded.references)),
                                                       "stale_lock_removed": .bool(recorded.staleLockRemoved),
                                                       "references_deferred": .bool(recorded.referencesDeferred),
                                                       "duration_ms": .number(recorded.durationMs.rounded()), "background": .bool(recorded.background)])
            }
        }
        return result
    }

    /// After a landing, a revert or an attempt: when `service`'s repo passed a packing
    /// threshold, starts a packer in the background (its own session, output discarded) and
    /// hands it the pack lock. Does nothing when a packer already runs. Failures only log:
    /// the work that wrote the objects is done.
    ///
    /// Inside another program (a test, an embedder) there is no `ratchet` to start: the
    /// packing then runs inline.
    func startBackgroundPacking(_ repository: Repository, service: String) {
        guard needsPacking(repository) else { return }
        guard (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                .map({ ($0 as NSString).lastPathComponent == "ratchet" }) == true else {
            do { try packService(service, ifNeeded: true) } catch {
                logger.warning("packing failed", metadata: ["service": "\(service)", "error": "\(describe(error))"])
            }
            return
        }
        do {
            // Close-on-exec here, so no other child started meanwhile inherits it; the packer gets
            // its own copy, `childLock`, made for it alone by the spawn (a dup2 clears the flag).
            let fd = try openPackLock(service)
            defer { close(fd) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return }
            let childLock: Int32 = fd == 3 ? 4 : 3
            var environment = ProcessInfo.processInfo.environment
            // Not a child of this workspace's commands: doctor must not take it for an orphan.
            environment["RATCHET_WORKSPACE"] = nil
            let arguments = ["ratchet", "service", "pack", service, "--workspace", root.path, "--if-needed", "--lock-fd", String(childLock)]
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, fd, childLock)
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            posix_spawnattr_setflags(&attributes, ratchet_spawn_setsid_flag())
            let argv = arguments.map { strdup($0) } + [nil]
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { (argv + envp).forEach { free($0) } }
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv, envp)
            guard rc == 0 else { throw RatchetError("cannot start the packer: \(String(cString: strerror(rc)))") }
            // The child holds the lock through the inherited descriptor until it exits.
        } catch {
            logger.warning("background packing not started", metadata: ["service": "\(service)", "error": "\(describe(error))"])
        }
    }

    /// Waits until no packer runs on any service (doctor checks a quiet repo).
    func waitForPackers() {
        for service in (try? services()) ?? [] {
            guard let fd = try? openPackLock(service.name) else { continue }
            defer { close(fd) }
            do { try Self.lock(fd, LOCK_SH, path: packLockPath(service.name)) } catch {
                logger.warning("cannot wait for the packer", metadata: ["service": "\(service.name)", "error": "\(describe(error))"])
            }
        }
    }
}

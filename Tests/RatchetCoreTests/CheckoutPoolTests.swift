import Foundation
@testable import RatchetCore
import RatchetGit
import RatchetTestSupport
import Testing

@Suite("Verification checkouts")
struct CheckoutPoolTests {
    @Test func aPooledCheckoutIsSwitchedNotRewrittenAndRunsNeverDirtyIt() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let repository = try Repository.open(workspace.servicePath("svc"))
        let main = try #require(try repository.resolveReference("refs/heads/main"))
        let identity = Signature(name: "T", email: "t@example.invalid")
        let next = try repository.commit(on: main, applying: [.upsert("extra.txt", try repository.writeBlob(Data("x\n".utf8)))],
                                         author: identity, committer: identity, message: "next\n")
        let config = try workspace.serviceConfig("svc")
        // A run plants a sitecustomize.py in its checkout; the next run on the same slot never sees it.
        let planted = try workspace.runVerification(["/bin/sh", "-c", "echo 'raise SystemExit(3)' > sitecustomize.py && pwd"], on: main,
                                                    repository: repository, config: config)
        #expect(planted.succeeded && planted.output.hasPrefix(Sandbox.checkoutPath), "\(planted.output)")
        let next1 = try workspace.runVerification(["/bin/sh", "-c", "test ! -e sitecustomize.py && test -f extra.txt"], on: next,
                                                  repository: repository, config: config)
        #expect(next1.succeeded, "\(next1.output)")
        let slot = workspace.checkoutPoolFolder("svc") + "/0"
        #expect(try String(contentsOfFile: slot + "/tree", encoding: .utf8).hasPrefix(try repository.commit(next).tree.hex))
        #expect(!FileManager.default.fileExists(atPath: slot + "/files/sitecustomize.py"))
        // Back to main: extra.txt goes, the same slot is used.
        let back = try workspace.pooledCheckout(of: main, service: "svc", repository: repository)
        #expect(back.files == slot + "/files" && !FileManager.default.fileExists(atPath: back.files + "/extra.txt"))
        // While it is claimed, another claim gets another slot.
        let other = try workspace.pooledCheckout(of: main, service: "svc", repository: repository)
        #expect(other.files != back.files)
        back.release()
        other.release()
    }

    @Test func aHalfSwitchedSlotIsRebuiltAndDoctorKnowsThePool() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let repository = try Repository.open(workspace.servicePath("svc"))
        let main = try #require(try repository.resolveReference("refs/heads/main"))
        try workspace.pooledCheckout(of: main, service: "svc", repository: repository).release()
        let slot = workspace.checkoutPoolFolder("svc") + "/0"
        // A kill mid-switch: no tree file, a stray file.
        try FileManager.default.removeItem(atPath: slot + "/tree")
        try Data("stray\n".utf8).write(to: URL(fileURLWithPath: slot + "/files/stray.txt"))
        let report = try workspace.doctor(repair: false)
        #expect(report.findings.contains { $0.kind == "checkout-pool" && !$0.repaired })
        let rebuilt = try workspace.pooledCheckout(of: main, service: "svc", repository: repository)
        #expect(rebuilt.files == slot + "/files" && !FileManager.default.fileExists(atPath: slot + "/files/stray.txt"))
        rebuilt.release()
        try FileManager.default.removeItem(atPath: slot + "/tree")
        let repaired = try workspace.doctor(repair: true)
        #expect(repaired.findings.contains { $0.kind == "checkout-pool" && $0.repaired })
        #expect(!FileManager.default.fileExists(atPath: slot))
    }

    /// A failed try for the exclusive workspace lock keeps the shared one: on Linux the
    /// failed upgrade had dropped it, so a second process could then take the lock
    /// exclusively and repair while the first still worked.
    @Test func aFailedExclusiveTryKeepsTheSharedWorkspaceLock() throws {
        let folder = ScratchFolder()
        let first = try makeWorkspace(folder)
        let second = try Workspace.locate(explicit: first.root.path)
        #expect(!second.holdWorkspaceLockExclusively())
        #expect(!first.holdWorkspaceLockExclusively(), "the second still has the workspace open")
        #expect(!second.holdWorkspaceLockExclusively())
    }

    /// A lock given back is free at once, even while a child process holds a copy of its
    /// descriptor (a child another thread is starting holds every descriptor until its exec):
    /// a lock that was only closed stayed held, and doctor then skipped a broken slot as busy.
    @Test func aReleasedLockIsFreeWhileAChildStillHoldsItsDescriptor() throws {
        let folder = ScratchFolder()
        let path = folder("a.lock")
        let lock = try FileLock(path: path)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var input: [Int32] = [0, 0]
        #expect(pipe(&input) == 0)
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_addclose(&actions, input[1])  // or the child never sees the end of its input
        posix_spawn_file_actions_adddup2(&actions, lock.fd, 3)  // the child's own copy of the locked descriptor
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup("read line"), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        #expect(posix_spawn(&pid, "/bin/sh", &actions, nil, argv, environ) == 0)
        close(input[0])
        lock.release()
        let other = open(path, O_RDWR | O_CLOEXEC)
        defer { close(other) }
        #expect(flock(other, LOCK_EX | LOCK_NB) == 0, "the child's copy kept the lock")
        close(input[1])  // the child reads end of input and exits
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
    }

    /// A leftover folder under worktrees/ nested past PATH_MAX (an agent's relative `mkdir`
    /// chain) is removed by `doctor --repair`, and a removal that fails is never reported as
    /// repaired (it was: "repaired leftover-removed" every run, the folder still there).
    @Test func doctorRemovesALeftoverNestedPastPathMax() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let leftover = workspace.root.appendingPathComponent("worktrees/T-9-1").path
        try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: true)
        var fd = open(leftover, O_RDONLY | O_DIRECTORY)
        let name = String(repeating: "d", count: 100)
        for _ in 0..<60 {  // 60 × 101 bytes: past PATH_MAX (4,096)
            #expect(mkdirat(fd, name, 0o755) == 0)
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = next
        }
        close(fd)
        let report = try workspace.doctor(repair: true)
        let finding = try #require(report.findings.first { $0.kind == "leftover-removed" && $0.detail.hasPrefix("worktrees/T-9-1") })
        #expect(finding.repaired)
        var info = stat()
        #expect(lstat(leftover, &info) != 0)
    }

    /// `git status` of a slot's files against `tree`, through a private index: what differs
    /// (content or mode) and what the tree does not have. Empty when the slot is exactly the tree.
    private func difference(_ files: String, from tree: ObjectID, service: String, index: String) throws -> String {
        let environment = ["GIT_INDEX_FILE": index, "GIT_DIR": service + "/.git", "GIT_WORK_TREE": files]
        let read = try run(["git", "read-tree", tree.hex], in: files, environment: environment)
        #expect(read.status == 0, "\(read.stderr)")
        _ = try run(["git", "update-index", "-q", "--refresh"], in: files, environment: environment)
        return try run(["git", "diff-files", "--name-status"], in: files, environment: environment).stdout
            + run(["git", "ls-files", "--others"], in: files, environment: environment).stdout
    }

    @Test func aRunThatDeletesWritesAndChmodsLeavesTheNextRunExactlyItsTree() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let service = workspace.servicePath("svc")
        let repository = try Repository.open(service)
        let main = try #require(try repository.resolveReference("refs/heads/main"))
        let config = try workspace.serviceConfig("svc")
        let hostile = "rm -f service.yaml && rm -rf tests && chmod 000 kvcache/cache.py && chmod +x config/cache.json"
            + " && echo changed > kvcache/server.py && mkdir -p service.yaml.d && ln -s /etc/passwd planted"
        let first = try workspace.runVerification(["/bin/sh", "-c", hostile], on: main, repository: repository, config: config)
        #expect(first.succeeded, "\(first.output)")
        let check = "test -f service.yaml && test -d tests && test -r kvcache/cache.py && test ! -x config/cache.json"
            + " && test ! -e planted && test ! -e service.yaml.d && ! grep -qx changed kvcache/server.py"
        let second = try workspace.runVerification(["/bin/sh", "-c", check], on: main, repository: repository, config: config)
        #expect(second.succeeded, "\(second.output)")
        let slot = workspace.checkoutPoolFolder("svc") + "/0/files"
        let status = try difference(slot, from: try repository.commit(main).tree, service: service, index: folder("index"))
        #expect(status == "", "\(status)")
    }

    @Test func aPoolFolderDeletedByHandIsRebuilt() throws {
        let folder = ScratchFolder()
        let workspace = try makeWorkspace(folder)
        let service = workspace.servicePath("svc")
        let repository = try Repository.open(service)
        let main = try #require(try repository.resolveReference("refs/heads/main"))
        let tree = try repository.commit(main).tree
        try workspace.pooledCheckout(of: main, service: "svc", repository: repository).release()
        let pool = workspace.checkoutPoolFolder("svc")
        // Only the files (the slot's `tree` file still names the tree), then the whole pool.
        try FileManager.default.removeItem(atPath: pool + "/0/files")
        let afterFiles = try workspace.pooledCheckout(of: main, service: "svc", repository: repository)
        #expect(try difference(afterFiles.files, from: tree, service: service, index: folder("index1")) == "")
        afterFiles.release()
        try FileManager.default.removeItem(atPath: pool)
        let afterPool = try workspace.pooledCheckout(of: main, service: "svc", repository: repository)
        #expect(afterPool.files == pool + "/0/files")
        #expect(try difference(afterPool.files, from: tree, service: service, index: folder("index2")) == "")
        afterPool.release()
    }
}

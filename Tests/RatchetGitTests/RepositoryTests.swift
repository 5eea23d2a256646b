import Foundation
import RatchetGit
import RatchetTestSupport
import Testing

private let person = Signature(name: "Agent", email: "agent@agents.ratchet.invalid")
private let ratchet = Signature(name: "Ratchet", email: "ratchet@ratchet.invalid")

/// A repository with `files` committed as the root commit on main.
private func makeRepository(_ folder: ScratchFolder, files: [String: String]) throws -> (Repository, ObjectID) {
    let path = folder("repo")
    let repository = try Repository.create(at: path)
    try write(files, in: path)
    let root = try #require(try repository.commitWorkingTree(author: ratchet, committer: ratchet, message: "root\n"))
    return (repository, root)
}

private func write(_ files: [String: String], in directory: String) throws {
    for (path, text) in files {
        let url = URL(fileURLWithPath: directory + "/" + path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
}

/// Commits `files` (nil deletes) on top of `parent` without any working tree, via a scratch worktree.
private func commit(_ repository: Repository, _ folder: ScratchFolder, branch: String, from parent: ObjectID,
                    files: [String: String?], message: String) throws -> ObjectID {
    if try repository.resolveReference("refs/heads/\(branch)") == nil { try repository.createBranch(branch, at: parent) }
    let name = "wt-\(branch.replacingOccurrences(of: "/", with: "-"))-\(UUID().uuidString.prefix(6))"
    let path = folder(name)
    try repository.addWorktree(name: name, path: path, branch: branch)
    defer { try? repository.removeWorktree(name) }
    for (file, text) in files {
        if let text { try write([file: text], in: path) } else { try FileManager.default.removeItem(atPath: path + "/" + file) }
    }
    let worktree = try Repository.open(path)
    return try #require(try worktree.commitWorkingTree(author: person, committer: ratchet, message: message))
}

/// Errors collected from several threads.
private final class Failures: @unchecked Sendable {
    // `errors` is guarded by `lock`.
    private let lock = NSLock()
    private var errors: [String] = []
    func add(_ error: String) { lock.withLock { errors.append(error) } }
    var all: [String] { lock.withLock { errors } }
}

@Suite("RatchetGit")
struct RepositoryTests {
    /// libgit2's start-up asks mbedTLS to parse the CA bundle and gets Ratchet's empty chain
    /// (adr/0053): the definitions in the executable are the ones libgit2 calls.
    @Test func libgit2StartsWithoutParsingTheCABundle() throws {
        let folder = ScratchFolder()
        _ = try makeRepository(folder, files: ["a.txt": "a\n"])
        #expect(GitSettings.caBundleParsesSkipped >= 1)
    }

    /// An HTTP remote asking for Negotiate (Kerberos) authentication gets nothing: Ratchet sets
    /// no credential callback, so libgit2 refuses before it would call GSSAPI, whose functions
    /// are Ratchet's refusing answers anyway (adr/0081). A real HTTP server on loopback.
    @Test func anHTTPRemoteAskingForNegotiateAuthenticationGetsNoCredentials() throws {
        let folder = ScratchFolder()
        let server = try NegotiateServer(folder)
        defer { server.stop() }
        var message = ""
        do {
            _ = try Repository.clone(from: "http://127.0.0.1:\(server.port)/service.git", to: folder("clone"), branch: "main")
        } catch {
            message = "\(error)"
        }
        #expect(message.contains("authentication required"), "\(message)")
        #expect(server.requests() >= 1)
        #expect(server.authorizations().isEmpty, "\(server.authorizations())")
    }

    @Test func commitsAdditionsModificationsDeletionsHonouringGitignore() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a.txt": "a\n", "b.txt": "b\n", ".gitignore": "*.log\n"])
        let path = folder("repo")
        try write(["a.txt": "a2\n", "new/c.txt": "c\n", "debug.log": "ignored\n"], in: path)
        try FileManager.default.removeItem(atPath: path + "/b.txt")
        let message = "change\n\nTicket: T-1\nTrajectory: 01900000-0000-7000-8000-000000000000\nStep: 1\n"
        let id = try #require(try repository.commitWorkingTree(author: person, committer: ratchet, message: message))
        #expect(try repository.commit(id).parents == [root])
        #expect(try git(["ls-tree", "-r", "--name-only", "main"], in: path).split(separator: "\n") == [".gitignore", "a.txt", "new/c.txt"])
        #expect(try git(["log", "-1", "--format=%an <%ae>|%cn <%ce>"], in: path) == "Agent <agent@agents.ratchet.invalid>|Ratchet <ratchet@ratchet.invalid>")
        #expect(try git(["log", "-1", "--format=%(trailers:key=Ticket,valueonly)"], in: path) == "T-1")
        #expect(try git(["status", "--porcelain"], in: path) == "")
        try git(["fsck", "--strict"], in: path)
        // Nothing changed: no commit.
        #expect(try repository.commitWorkingTree(author: person, committer: ratchet, message: "noop\n") == nil)
    }

    @Test func referenceUpdatesAreCompareAndSwap() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        let next = try commit(repository, folder, branch: "topic", from: root, files: ["a": "2\n"], message: "two\n")
        // Expected value wrong: refused, ref unchanged.
        #expect(throws: GitError.self) { try repository.updateReference("refs/heads/main", to: next, expected: next, message: "x") }
        #expect(try repository.resolveReference("refs/heads/main") == root)
        do {
            try repository.updateReference("refs/heads/main", to: next, expected: next, message: "x")
        } catch let error as GitError {
            #expect(error.code == .modified)
        }
        try repository.updateReference("refs/heads/main", to: next, expected: root, message: "land")
        #expect(try git(["rev-parse", "main"], in: folder("repo")) == next.hex)
        // Creating a ref that exists is refused.
        #expect(throws: GitError.self) { try repository.updateReference("refs/heads/topic", to: root, expected: nil, message: "x") }
        #expect(!Repository.isValidReferenceName("refs/heads/a..b"))
        #expect(!Repository.isValidReferenceName("refs/heads/x@{1}"))
        #expect(Repository.isValidReferenceName("refs/heads/ticket/T-1/1"))
    }

    @Test func branchesCanBeListedAndDeleted() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        try repository.createBranch("ticket/T-1/1", at: root)
        #expect(try repository.branches() == ["main", "ticket/T-1/1"])
        try repository.deleteBranch("ticket/T-1/1")
        #expect(try repository.branches() == ["main"])
        #expect(try git(["branch", "--format=%(refname:short)"], in: folder("repo")) == "main")
    }

    @Test func inMemoryMergeMatchesGitMergeTree() throws {
        let folder = ScratchFolder()
        var files: [String: String] = [:]
        for index in 0..<30 { files["dir\(index % 5)/file\(index).txt"] = (0..<20).map { "line \($0) of \(index)\n" }.joined() }
        let (repository, root) = try makeRepository(folder, files: files)
        let path = folder("repo")
        let indexBefore = try Data(contentsOf: URL(fileURLWithPath: path + "/.git/index"))
        var generator = SystemRandomNumberGenerator()
        var cleanCount = 0, conflictCount = 0
        for round in 0..<12 {
            // Odd rounds edit disjoint files (must merge cleanly); even rounds may collide.
            let ourRange = round % 2 == 1 ? 0..<15 : 0..<30
            let theirRange = round % 2 == 1 ? 15..<30 : 0..<30
            // Two sides edit random files; sometimes the same line (a conflict), sometimes different lines.
            var ours: [String: String?] = [:], theirs: [String: String?] = [:]
            for _ in 0..<4 {
                let pick = Int.random(in: ourRange, using: &generator)
                let name = "dir\(pick % 5)/file\(pick).txt"
                var lines = files[name]!.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                lines[Int.random(in: 0..<5, using: &generator)] = "ours \(round)"
                ours[name] = lines.joined(separator: "\n")
            }
            for _ in 0..<4 {
                let pick = Int.random(in: theirRange, using: &generator)
                let name = "dir\(pick % 5)/file\(pick).txt"
                var lines = files[name]!.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                lines[Int.random(in: 0..<20, using: &generator)] = "theirs \(round)"
                theirs[name] = lines.joined(separator: "\n")
            }
            theirs["added-\(round).txt"] = "new\n"
            if round % 4 == 1 { theirs["dir1/file16.txt"] = String?.none }
            if round % 2 == 0 { ours["both-\(round).txt"] = "ours\n"; theirs["both-\(round).txt"] = "theirs\n" }
            let a = try commit(repository, folder, branch: "a\(round)", from: root, files: ours, message: "ours\n")
            let b = try commit(repository, folder, branch: "b\(round)", from: root, files: theirs, message: "theirs\n")
            let expected = try run(["git", "merge-tree", "--write-tree", "--no-messages", "--name-only", a.hex, b.hex], in: path)
            let lines = expected.stdout.split(separator: "\n").map(String.init)
            switch try repository.merge(ours: a, theirs: b) {
            case .clean(let tree):
                cleanCount += 1
                #expect(expected.status == 0, "git saw a conflict where Ratchet saw none")
                #expect(tree.hex == lines.first)
            case .conflicts(let paths):
                conflictCount += 1
                #expect(paths.contains("both-\(round).txt"))
                #expect(expected.status == 1, "Ratchet saw a conflict where git saw none")
                #expect(Set(paths) == Set(lines.dropFirst()))
            }
        }
        #expect(cleanCount == 6 && conflictCount == 6)
        // The merge touched neither the index nor the working tree.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/.git/index")) == indexBefore)
        #expect(try git(["status", "--porcelain"], in: path) == "")
        try git(["fsck", "--strict"], in: path)
    }

    @Test func attemptBranchesMoveByCompareAndSwapWithoutAReflog() throws {
        // The product's policy (Workspace sets the same value).
        GitSettings.unloggedReferencePrefixes = ["refs/heads/ticket/"]
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        let path = folder("repo")
        let next = try repository.commit(on: root, applying: [.upsert("a", try repository.writeBlob(Data("2\n".utf8)))],
                                         author: ratchet, committer: ratchet, message: "next\n")
        try repository.createBranch("ticket/T-1/1", at: root)
        #expect(try git(["rev-parse", "ticket/T-1/1"], in: path) == root.hex)
        // Compare-and-swap: a wrong expectation, an existing branch and a held lock all refuse.
        #expect(throws: GitError.self) { try repository.updateReference("refs/heads/ticket/T-1/1", to: next, expected: next, message: "m") }
        #expect(throws: GitError.self) { try repository.createBranch("ticket/T-1/1", at: next) }
        try Data().write(to: URL(fileURLWithPath: path + "/.git/refs/heads/ticket/T-1/1.lock"))
        #expect((try? repository.updateReference("refs/heads/ticket/T-1/1", to: next, expected: root, message: "m")) == nil)
        try FileManager.default.removeItem(atPath: path + "/.git/refs/heads/ticket/T-1/1.lock")
        try repository.updateReference("refs/heads/ticket/T-1/1", to: next, expected: root, message: "m")
        #expect(try git(["rev-parse", "ticket/T-1/1"], in: path) == next.hex)
        // No log file (nor folder) for the attempt branch.
        #expect(!FileManager.default.fileExists(atPath: path + "/.git/logs/refs/heads/ticket"))
        // git's own writer and ours exclude each other through the same lock file, and agree.
        try git(["update-ref", "refs/heads/ticket/T-1/1", root.hex, next.hex], in: path)
        try repository.updateReference("refs/heads/ticket/T-1/1", to: next, expected: root, message: "m")
        // Main keeps its reflog.
        try repository.updateReference("refs/heads/main", to: next, expected: root, message: "land")
        #expect(try git(["reflog", "show", "--format=%gs", "main"], in: path).contains("land"))
        #expect(throws: GitError.self) { try repository.updateReference("refs/heads/ticket/T-1/../x", to: next, expected: nil, message: "m") }
        try git(["fsck", "--strict"], in: path)
    }

    /// A kill between a landing's files and its index leaves main's checkout part old, part
    /// new; finishing it is safe exactly when no path holds anything else.
    @Test func aHalfAppliedCheckoutIsFinishedOnlyWhenNothingIsAPersons() throws {
        for personEdits in [false, true] {
            let folder = ScratchFolder()
            let path = folder("repo")
            _ = try git(["init", "-q", "-b", "main", path], in: folder.path)
            func write(_ file: String, _ text: String) throws {
                try FileManager.default.createDirectory(atPath: (path + "/" + file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(text.utf8).write(to: URL(fileURLWithPath: path + "/" + file))
            }
            for (file, text) in ["a.txt": "a1\n", "c.txt": "c\n", "dir/b.txt": "b\n", "x": "x is a file\n"] { try write(file, text) }
            _ = try git(["add", "-A"], in: path)
            _ = try git(["-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "A"], in: path)
            try write("a.txt", "a2\n")
            try write("f16.txt", "new\n")
            try FileManager.default.removeItem(atPath: path + "/dir")
            try FileManager.default.removeItem(atPath: path + "/x")
            try write("x/y", "x is a folder\n")
            _ = try git(["add", "-A"], in: path)
            _ = try git(["-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "B"], in: path)
            // HEAD is B, the index A, the files half-way: a.txt still A's, the rest B's.
            _ = try git(["read-tree", "HEAD~1"], in: path)
            try write("a.txt", "a1\n")
            if personEdits { try write("c.txt", "a person's edit\n") }
            let repository = try Repository.open(path)
            let old = try #require(ObjectID(hex: try git(["rev-parse", "HEAD~1^{tree}"], in: path).trimmingCharacters(in: .whitespacesAndNewlines)))
            let new = try #require(ObjectID(hex: try git(["rev-parse", "HEAD^{tree}"], in: path).trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(try repository.finishCheckoutDifference(from: old, to: new, apply: false) == !personEdits)
            #expect(try repository.finishCheckoutDifference(from: old, to: new) == !personEdits)
            if personEdits {
                #expect(try String(contentsOfFile: path + "/a.txt", encoding: .utf8) == "a1\n", "nothing touched")
                #expect(try git(["status", "--porcelain"], in: path).contains(" M c.txt"))
            } else {
                let status = try git(["status", "--porcelain", "--untracked-files=all"], in: path)
                #expect(status == "", "\(status)")
                #expect(try String(contentsOfFile: path + "/a.txt", encoding: .utf8) == "a2\n")
            }
        }
    }

    @Test func treeDifferencesMatchGitDiffTreeAndAPooledSwitchMatchesACheckout() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        func tree(_ files: [String: String]) throws -> ObjectID {
            try repository.makeTree(from: try repository.emptyTree(),
                                    applying: try files.map { .upsert($0.key, try repository.writeBlob(Data($0.value.utf8))) })
        }
        var before: [String: String] = ["a/b/c": "1\n", "a/d": "2\n", "x": "file\n", "k/l/m": "3\n", "k/n": "4\n", "gone/g": "5\n"]
        for index in 0..<40 { before["same/s\(index)"] = "\(index)\n" }
        // Names that git orders differently from plain strings around the folders x/ and k/.
        for name in ["x.txt", "x-1", "x0", "k.md", "k-2", "k0"] { before[name] = name + "\n" }
        var after = before
        after["x.txt"] = "changed\n"
        after["k-2"] = nil
        after["a/b/c"] = "changed\n"
        after["a/e"] = "new\n"
        after["x"] = nil
        after["x/y"] = "x is a folder now\n"
        after["k/l/m"] = nil
        after["k/n"] = nil
        after["k"] = "k is a file now\n"
        after["gone/g"] = nil
        let old = try repository.createCommit(tree: try tree(before), parents: [], author: ratchet, committer: ratchet, message: "old\n")
        let new = try repository.createCommit(tree: try tree(after), parents: [old], author: ratchet, committer: ratchet, message: "new\n")
        let differences = try repository.treeDifferences(from: try repository.commit(old).tree, to: try repository.commit(new).tree)
        let ours = Set(differences.map { "\($0.old == nil ? "A" : $0.new == nil ? "D" : "M") \($0.path)" })
        let theirs = Set(try git(["diff-tree", "-r", "--no-renames", "--name-status", old.hex, new.hex], in: path)
            .split(separator: "\n").map { $0.replacingOccurrences(of: "\t", with: " ") })
        #expect(ours == theirs)
        #expect(ours.count == 10)
        // An applier can follow the order: a file goes before the folder that takes its name
        // is filled, and a folder is emptied before the file that takes its name.
        let order = differences.map(\.path)
        #expect(order.firstIndex(of: "x")! < order.firstIndex(of: "x/y")!)
        #expect(order.firstIndex(of: "k/n")! < order.lastIndex(of: "k")!)
        #expect(try repository.changedPaths(from: try repository.commit(old).tree, to: try repository.commit(new).tree)
            == Array(Set(differences.map(\.path))).sorted())

        // A clean worktree switched between them has exactly the new commit's files and a clean status.
        try repository.createBranch("old", at: old)
        try repository.createBranch("new", at: new)
        let worktreePath = folder("pooled")
        try repository.addWorktree(name: "pooled", path: worktreePath, branch: "old")
        try Repository.open(worktreePath).switchCleanWorktree(toBranch: "new")
        #expect(try git(["status", "--porcelain", "--untracked-files=all"], in: worktreePath) == "")
        #expect(try git(["rev-parse", "HEAD"], in: worktreePath) == new.hex)
        #expect(try String(contentsOfFile: worktreePath + "/x/y", encoding: .utf8) == "x is a folder now\n")
        #expect(try String(contentsOfFile: worktreePath + "/k", encoding: .utf8) == "k is a file now\n")
        #expect(!FileManager.default.fileExists(atPath: worktreePath + "/gone"))
        try git(["diff", "--quiet", "new"], in: worktreePath)
    }

    @Test func aSwitchedFolderIsExactlyTheTreeItClaims() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        func tree(_ files: [String: (String, UInt32)]) throws -> ObjectID {
            try repository.makeTree(from: try repository.emptyTree(), applying: try files.map {
                .upsert($0.key, try repository.writeBlob(Data($0.value.0.utf8)), mode: $0.value.1)
            })
        }
        let file: UInt32 = 0o100644, executable: UInt32 = 0o100755, link: UInt32 = 0o120000
        let first = try tree(["a/b": ("1\n", file), "x": ("file\n", file), "run": ("#!/bin/sh\n", file), "k/l/m": ("3\n", file),
                              "ln": ("a/b", link), "keep": ("same\n", file)])
        let second = try tree(["a/b": ("changed\n", file), "x/y": ("x is a folder\n", file), "run": ("#!/bin/sh\n", executable),
                               "k": ("k is a file\n", file), "ln": ("x/y", link), "keep": ("same\n", file), "new/n": ("n\n", file)])
        let checkout = folder("checkout")
        try FileManager.default.createDirectory(atPath: checkout, withIntermediateDirectories: true)
        let fixed = timespec(tv_sec: 1_000_000_000, tv_nsec: 0)
        try repository.switchFolder(checkout, from: nil, to: first, fixedTime: fixed)
        let index = folder("index")
        func status(_ tree: ObjectID) throws -> String {
            let environment = ["GIT_INDEX_FILE": index, "GIT_DIR": path + "/.git", "GIT_WORK_TREE": checkout]
            let read = try run(["git", "read-tree", tree.hex], in: checkout, environment: environment)
            #expect(read.status == 0, "\(read.stderr)")
            _ = try run(["git", "update-index", "-q", "--refresh"], in: checkout, environment: environment)
            // Files that differ from the tree (content or mode), and files the tree does not have.
            return try run(["git", "diff-files", "--name-status"], in: checkout, environment: environment).stdout
                + run(["git", "ls-files", "--others"], in: checkout, environment: environment).stdout
        }
        let initial = try status(first)
        #expect(initial == "", "\(initial)")
        for (from, to) in [(first, second), (second, first), (first, second)] {
            try repository.switchFolder(checkout, from: from, to: to, fixedTime: fixed)
            #expect(try status(to) == "", "switched to \(to.short)")
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: checkout + "/ln") == "x/y")
        #expect(FileManager.default.isExecutableFile(atPath: checkout + "/run"))
        var info = stat()
        #expect(lstat(checkout + "/a/b", &info) == 0 && info.st_mtim.tv_sec == 1_000_000_000)
    }

    /// Names Swift calls equal ("e\u{301}" and "\u{e9}") are two files to git and Linux: a
    /// folder of one name and a link of the other must never be switched as one entry, or
    /// the next switch writes through the link (adr/0071; the hostile review's X → Y → Z).
    @Test func namesThatSwiftCallsEqualStayTwoFilesAndNoSwitchWritesThroughALink() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        let outside = folder("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let decomposed = "e\u{301}", composed = "\u{e9}"
        #expect(decomposed == composed && Array(decomposed.utf8) != Array(composed.utf8))
        func tree(_ files: [(String, String, UInt32)]) throws -> ObjectID {
            try repository.makeTree(from: try repository.emptyTree(), applying: try files.map {
                .upsert($0.0, try repository.writeBlob(Data($0.1.utf8)), mode: $0.2)
            })
        }
        let x = try tree([(decomposed + "/file", "one\n", 0o100644)])
        let y = try tree([(composed, outside, 0o120000)])
        let z = try tree([(composed, outside, 0o120000), (decomposed + "/pwned", "through the link\n", 0o100644)])
        #expect(try repository.treeDifferences(from: x, to: y).map(\.path).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                == [decomposed + "/file", composed].sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        let checkout = folder("checkout")
        try FileManager.default.createDirectory(atPath: checkout, withIntermediateDirectories: true)
        try repository.switchFolder(checkout, from: nil, to: x)
        for (from, to) in [(x, y), (y, z), (z, x), (x, z)] {
            try repository.switchFolder(checkout, from: from, to: to)
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "written outside after \(to.short)")
            let listed = try run(["git", "ls-tree", "-r", "--name-only", "-z", to.hex], in: path).stdout
                .split(separator: "\0").map(String.init)
            let found = try FileManager.default.subpathsOfDirectory(atPath: checkout).filter { sub in
                var info = stat()
                return lstat(checkout + "/" + sub, &info) == 0 && info.st_mode & S_IFMT != S_IFDIR
            }
            #expect(Set(found.map { Array($0.utf8) }) == Set(listed.map { Array($0.utf8) }), "checkout of \(to.short)")
            #expect(repository.folderMatches(checkout, tree: to, cache: nil), "Ratchet's reading of \(to.short)")
        }
    }

    /// The merge pairs entries by bytes too: one side adding "e\u{301}" and the other "\u{e9}"
    /// is two new files, as `git merge-tree` has it, not one file changed on both sides.
    @Test func aMergeKeepsBothNamesThatSwiftCallsEqual() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        let ours = try commit(repository, folder, branch: "ours", from: root, files: ["e\u{301}": "decomposed\n"], message: "ours\n")
        let theirs = try commit(repository, folder, branch: "theirs", from: root, files: ["\u{e9}": "composed\n"], message: "theirs\n")
        guard case .clean(let tree) = try repository.merge(ours: ours, theirs: theirs) else { Issue.record("conflict"); return }
        let expected = try git(["merge-tree", "--write-tree", "ours", "theirs"], in: folder("repo"))
        #expect(tree.hex == expected)
    }

    /// A chain of folders deeper than `Repository.folderDepthLimit` is refused by the reading
    /// (it overflowed the recursive walk's stack at 30,000 levels), never recursed into.
    @Test func aFolderChainPastTheDepthLimitIsRefused() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        let deep = folder("repo") + "/" + Array(repeating: "d", count: Repository.folderDepthLimit + 1).joined(separator: "/")
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        try Data("x\n".utf8).write(to: URL(fileURLWithPath: deep + "/f"))
        let tree = try repository.commit(root).tree
        #expect(throws: GitError.self) {
            try repository.readFolder(folder("repo"), against: tree, cache: nil,
                                      limits: FolderLimits(fileBytes: 1 << 20, changeBytes: 1 << 30, changeCount: 1000)) { _, _ in false }
        }
        #expect(!repository.folderMatches(folder("repo"), tree: tree, cache: nil))
    }

    /// A live agent swaps a folder for a link to a folder outside while it is read (here at
    /// the moment its `.gitignore` rules are asked for, which is after the folder was looked
    /// at and before anything in it was): the reading holds the folder it looked at open and
    /// never reaches outside, so nothing outside becomes a blob (the walk used paths, and
    /// committed the outside file as `sub/secret.txt`).
    @Test func aFolderSwappedForALinkWhileItIsReadNeverReachesOutside() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n", "sub/.gitignore": "*.log\n", "sub/kept.txt": "agent's\n"])
        let path = folder("repo")
        try FileManager.default.createDirectory(atPath: folder("outside"), withIntermediateDirectories: true)
        try Data("the host's secret\n".utf8).write(to: URL(fileURLWithPath: folder("outside/secret.txt")))
        try Data("agent's new\n".utf8).write(to: URL(fileURLWithPath: path + "/sub/new.txt"))
        var swapped = false
        let changes = try repository.readFolder(path, against: try repository.commit(root).tree, cache: nil,
                                                limits: FolderLimits(fileBytes: 1 << 20, changeBytes: 1 << 30, changeCount: 1000),
                                                ignoreRules: { prefix, _ in
            guard prefix == "sub/", !swapped else { return }
            swapped = true
            try FileManager.default.moveItem(atPath: path + "/sub", toPath: folder("moved-away"))
            try FileManager.default.createSymbolicLink(atPath: path + "/sub", withDestinationPath: folder("outside"))
        }, isIgnored: { _, _ in false })
        #expect(swapped)
        let secretID = try git(["hash-object", folder("outside/secret.txt")], in: path)
        #expect(changes.map(\.path) == ["sub/new.txt"] && changes.allSatisfy { $0.id?.hex != secretID }, "\(changes)")
        #expect(throws: (any Error).self) { try git(["cat-file", "-e", secretID], in: path) }
    }

    /// What git reads from the tree as instructions is refused at the reading when it would
    /// be followed (a link) or would make a checkout differ from the blob (H2-2, H2-4): a
    /// linked `.gitattributes` to a FIFO hung every landing in libgit2's status, and `eol=crlf`
    /// wrote other bytes to main than were verified. Harmless attributes stay allowed.
    @Test func gitControlFilesThatWouldBeFollowedOrConvertAreRefused() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        let path = folder("repo")
        let tree = try repository.commit(root).tree
        let limits = FolderLimits(fileBytes: 1 << 20, changeBytes: 1 << 30, changeCount: 1000)
        func reading() throws -> [FolderChange] { try repository.readFolder(path, against: tree, cache: nil, limits: limits) { _, _ in false } }
        for name in [".gitattributes", "sub/.mailmap"] {
            try FileManager.default.createDirectory(atPath: path + "/sub", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: path + "/" + name, withDestinationPath: "/tmp/anything")
            #expect { try reading() } throws: { "\($0)".contains("\(name): a \((name as NSString).lastPathComponent) must be a regular file") }
            try FileManager.default.removeItem(atPath: path + "/" + name)
        }
        for text in ["* text eol=crlf\n", "*.c\tident\n", "# ok\n[attr]mine text\n", "\"a b\" working-tree-encoding=UTF-16\n", "*.txt filter=evil\n",
                     "* crlf\n", "*.sh eol=lf\n"] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path + "/.gitattributes"))
            #expect { try reading() } throws: { "\($0)".contains(".gitattributes: a .gitattributes that") }
        }
        try Data("# text eol=crlf\n*.png binary\n* -text\n*.txt !eol\n*.md linguist-documentation diff=markdown\n\"with text\" -ident\n".utf8)
            .write(to: URL(fileURLWithPath: path + "/.gitattributes"))
        #expect(try reading().map(\.path) == [".gitattributes"])
    }

    /// A reading's cost is not only what changed (H2-3): every untracked path is asked about
    /// every ignore rule above it. The reading has a deadline and says why it stopped; with
    /// none it reads as before.
    @Test func aReadingStopsAtItsDeadlineNamingWhatItLookedAt() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        let path = folder("repo")
        for index in 0..<50 { try Data().write(to: URL(fileURLWithPath: path + "/f\(index).ign")) }
        let tree = try repository.commit(root).tree
        var limits = FolderLimits(fileBytes: 1 << 20, changeBytes: 1 << 30, changeCount: 1000, seconds: 0)
        #expect { try repository.readFolder(path, against: tree, cache: nil, limits: limits) { _, _ in true } } throws: {
            "\($0)".contains("reading the worktree took more than 0 s (1 paths looked at, ignored ones included")
        }
        limits.seconds = nil
        #expect(try repository.readFolder(path, against: tree, cache: nil, limits: limits) { path, _ in path.hasSuffix(".ign") }.isEmpty)
    }

    @Test func aCheckoutMovesByItsDifferenceOnlyWhenThatIsSafe() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n", "b": "2\n", "d/e": "3\n"])
        let path = folder("repo")
        let next = try repository.commit(on: root, applying: [.upsert("a", try repository.writeBlob(Data("changed\n".utf8))), .remove("d/e"),
                                                              .remove("b"), .upsert("b/c", try repository.writeBlob(Data("b is a folder\n".utf8)))],
                                         author: ratchet, committer: ratchet, message: "next\n")
        try repository.updateReference("refs/heads/main", to: next, expected: root, message: "land")
        // A file that becomes a folder, a folder that goes away: by difference, untracked files untouched.
        try Data("person\n".utf8).write(to: URL(fileURLWithPath: path + "/untracked"))
        #expect(try repository.applyCheckoutDifference(from: try repository.commit(root).tree, to: try repository.commit(next).tree))
        #expect(try git(["status", "--porcelain"], in: path) == "?? untracked")
        try git(["diff", "--quiet", "HEAD"], in: path)
        #expect(try String(contentsOfFile: path + "/b/c", encoding: .utf8) == "b is a folder\n")
        #expect(!FileManager.default.fileExists(atPath: path + "/d"))
        // A person's change to a path the difference touches: refused, nothing touched.
        let third = try repository.commit(on: next, applying: [.upsert("a", try repository.writeBlob(Data("third\n".utf8)))],
                                          author: ratchet, committer: ratchet, message: "third\n")
        try repository.updateReference("refs/heads/main", to: third, expected: next, message: "land")
        try Data("person's a\n".utf8).write(to: URL(fileURLWithPath: path + "/a"))
        #expect(try !repository.applyCheckoutDifference(from: try repository.commit(next).tree, to: try repository.commit(third).tree))
        #expect(try String(contentsOfFile: path + "/a", encoding: .utf8) == "person's a\n")
    }

    @Test func readingAFolderBoundsChangedFilesOnly() throws {
        let folder = ScratchFolder()
        let big = String(repeating: "x", count: 4096) + "\n"
        let (repository, root) = try makeRepository(folder, files: ["big.txt": big, "small.txt": "1\n"])
        let path = folder("repo")
        let tree = try repository.commit(root).tree
        let limits = FolderLimits(fileBytes: 1024, changeBytes: 1 << 20, changeCount: 100)
        // Without a stat cache every file is read: an unchanged file over the limit is not a change.
        try Data("2\n".utf8).write(to: URL(fileURLWithPath: path + "/small.txt"))
        let changes = try repository.readFolder(path, against: tree, cache: nil, limits: limits) { _, _ in false }
        #expect(changes.map(\.path) == ["small.txt"] && changes.first?.kind == .modified)
        // A changed file over the limit is refused, naming it.
        try Data((big + "y").utf8).write(to: URL(fileURLWithPath: path + "/big.txt"))
        #expect { try repository.readFolder(path, against: tree, cache: nil, limits: limits) { _, _ in false } } throws: { error in
            "\(error)".contains("big.txt is 4098 bytes")
        }
    }

    @Test func fastForwardCaseTakesTheirTreeAndRevertRestoresMainline() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n", "b": "2\n"])
        let head = try commit(repository, folder, branch: "topic", from: root, files: ["a": "changed\n", "c": "3\n"], message: "topic\n")
        guard case .clean(let tree) = try repository.merge(ours: root, theirs: head) else { Issue.record("conflict"); return }
        #expect(tree == (try repository.commit(head).tree))
        let landing = try repository.createCommit(tree: tree, parents: [root, head], author: ratchet, committer: ratchet, message: "Merge\n")
        try repository.updateReference("refs/heads/main", to: landing, expected: root, message: "land")
        guard case .clean(let reverted) = try repository.revert(landing, onto: landing) else { Issue.record("conflict"); return }
        #expect(reverted == (try repository.commit(root).tree))
        let path = folder("repo")
        let revert = try repository.createCommit(tree: reverted, parents: [landing], author: ratchet, committer: ratchet, message: "Revert\n")
        try repository.updateReference("refs/heads/main", to: revert, expected: landing, message: "revert")
        #expect(try git(["rev-parse", "main^{tree}"], in: path) == git(["rev-parse", "\(root.hex)^{tree}"], in: path))
        #expect(try repository.firstParentHistory(from: revert).map(\.id) == [revert, landing, root])
        try git(["fsck", "--strict"], in: path)
    }

    @Test func notesAreReadableByGit() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        try repository.setNote("{\"ticket\": \"T-1\"}\n", on: root, author: ratchet)
        #expect(try git(["notes", "--ref=ratchet", "show", root.hex], in: folder("repo")) == "{\"ticket\": \"T-1\"}")
        try repository.setNote("{\"ticket\": \"T-2\"}\n", on: root, author: ratchet)
        #expect(try repository.note(on: root) == "{\"ticket\": \"T-2\"}\n")
        #expect(try repository.note(on: root, notesRef: "refs/notes/other") == nil)
    }

    @Test func worktreesAreAddedAndRemovedKeepingTheBranch() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n"])
        try repository.createBranch("ticket/T-1/1", at: root)
        try repository.addWorktree(name: "T-1-1", path: folder("wt"), branch: "ticket/T-1/1")
        #expect(try repository.worktrees() == ["T-1-1"])
        #expect(try git(["worktree", "list", "--porcelain"], in: folder("repo")).contains("branch refs/heads/ticket/T-1/1"))
        #expect(FileManager.default.fileExists(atPath: folder("wt/a")))
        try repository.removeWorktree("T-1-1")
        #expect(try repository.worktrees() == [])
        #expect(!FileManager.default.fileExists(atPath: folder("wt")))
        #expect(try repository.branches().contains("ticket/T-1/1"))
        try git(["fsck", "--strict"], in: folder("repo"))
    }

    /// Two workers adding the first worktrees of a repository at once: libgit2 1.5 fails the
    /// loser of the race to create `.git/worktrees` ("directory exists"), which failed an
    /// attempt of the pump now and then. Raced on 40 fresh repositories, with a barrier.
    @Test func worktreesAddedAtOnceOnAFreshRepositoryAllSucceed() throws {
        let folder = ScratchFolder()
        for round in 0..<40 {
            let path = folder("repo\(round)")
            let repository = try Repository.create(at: path)
            try write(["a": "1\n"], in: path)
            let root = try #require(try repository.commitWorkingTree(author: ratchet, committer: ratchet, message: "root\n"))
            for branch in ["one", "two"] { try repository.createBranch(branch, at: root) }
            let failures = Failures()
            let start = DispatchSemaphore(value: 0)
            let group = DispatchGroup()
            for branch in ["one", "two"] {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    start.wait()
                    do { try Repository.open(path).addWorktree(name: branch, path: folder("wt\(round)-\(branch)"), branch: branch) }
                    catch { failures.add("\(error)") }
                }
            }
            start.signal()
            start.signal()
            group.wait()
            #expect(failures.all == [], "round \(round)")
            #expect(try repository.worktrees() == ["one", "two"])
        }
    }

    @Test func safeCheckoutNeverOverwritesLocalChanges() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["a": "1\n", "b": "2\n"])
        let next = try commit(repository, folder, branch: "topic", from: root, files: ["a": "new\n"], message: "t\n")
        let path = folder("repo")
        try write(["a": "local edit\n"], in: path)
        try repository.updateReference("refs/heads/main", to: next, expected: root, message: "move")
        #expect(throws: GitError.self) { try repository.safeCheckoutHead() }
        #expect(try String(contentsOfFile: path + "/a", encoding: .utf8) == "local edit\n")
        // Without local changes the checkout follows main.
        try write(["a": "1\n"], in: path)
        try repository.safeCheckoutHead()
        #expect(try String(contentsOfFile: path + "/a", encoding: .utf8) == "new\n")
        #expect(try git(["status", "--porcelain"], in: path) == "")
    }

    @Test func materializeWritesTheTreeWithoutTouchingTheIndex() throws {
        let folder = ScratchFolder()
        let (repository, root) = try makeRepository(folder, files: ["run.sh": "#!/bin/sh\necho hi\n", "sub/x": "x\n"])
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder("repo/run.sh"))
        let head = try #require(try repository.commitWorkingTree(author: ratchet, committer: ratchet, message: "exec\n"))
        let indexBefore = try Data(contentsOf: URL(fileURLWithPath: folder("repo/.git/index")))
        try repository.materialize(head, into: folder("out"))
        #expect(try String(contentsOfFile: folder("out/sub/x"), encoding: .utf8) == "x\n")
        #expect(FileManager.default.isExecutableFile(atPath: folder("out/run.sh")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder("repo/.git/index"))) == indexBefore)
        #expect(root != head)
    }

    @Test func trailersParseLikeGit() {
        let trailers = Repository.trailers(of: "Subject\n\nBody line\nApproved-By: not a trailer here\n\nTicket: T-7\nRisk: low\n")
        #expect(trailers == [Trailer("Ticket", "T-7"), Trailer("Risk", "low")])
    }

    @Test func errorsCarryLibgit2CodeAndMessage() throws {
        let folder = ScratchFolder()
        #expect(throws: GitError.self) { try Repository.open(folder("missing")) }
        do { _ = try Repository.open(folder("missing")) } catch let error as GitError {
            #expect(error.code == .notFound)
            #expect(!error.message.isEmpty)
        }
    }
}

@Suite("Packing")
struct PackingTests {
    @Test func looseObjectsArePackedAndStayReadable() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        try repository.prepareObjectFolders()
        #expect(FileManager.default.fileExists(atPath: path + "/.git/objects/ab"))
        let empty = try repository.emptyTree()
        var changes: [TreeChange] = []
        for index in 0..<50 { changes.append(.upsert("d\(index % 5)/f\(index)", try repository.writeBlob(Data("\(index)\n".utf8)))) }
        let signature = Signature(name: "R", email: "r@x")
        let root = try repository.createCommit(tree: try repository.makeTree(from: empty, applying: changes), parents: [],
                                               author: signature, committer: signature, message: "root\n")
        try repository.updateReference("refs/heads/main", to: root, expected: nil, message: "root")
        let loose = try repository.looseObjects().count
        #expect(loose >= 57) // 50 blobs, 5 folders, the root tree, the commit (the empty tree too)
        #expect(try repository.packLooseObjects() == loose)
        #expect(try repository.looseObjects().isEmpty)
        #expect(repository.packCount() == 1)
        #expect(try repository.fileContents("d3/f13", in: root) == Data("13\n".utf8))
        #expect(try git(["count-objects", "-v"], in: path).contains("in-pack: \(loose)"))
        try git(["fsck", "--strict", "--no-dangling"], in: path)
        #expect(try repository.packLooseObjects() == 0)
    }
}

@Suite("Notes")
struct NoteLayoutTests {
    @Test func notesFanOutAndReplaceInPlaceAndGitReadsThem() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        let signature = Signature(name: "R", email: "r@x")
        var commits: [ObjectID] = []
        var parent: ObjectID?
        for index in 0..<5 {
            let tree = try repository.makeTree(from: try repository.emptyTree(), applying: [.upsert("f", try repository.writeBlob(Data("\(index)\n".utf8)))])
            let id = try repository.createCommit(tree: tree, parents: parent.map { [$0] } ?? [], author: signature, committer: signature, message: "c\(index)\n")
            commits.append(id)
            parent = id
        }
        try repository.updateReference("refs/heads/main", to: parent!, expected: nil, message: "main")
        for (index, id) in commits.enumerated() { try repository.setNote("note \(index)\n", on: id, author: signature) }
        try repository.setNote("replaced\n", on: commits[2], author: signature)
        #expect(try git(["notes", "--ref=ratchet", "show", commits[2].hex], in: path) == "replaced")
        #expect(try git(["notes", "--ref=ratchet", "show", commits[4].hex], in: path) == "note 4")
        #expect(try git(["notes", "--ref=ratchet", "list"], in: path).split(separator: "\n").count == 5)
        let hex = commits[0].hex
        // Fanned out 2/38 (two of the commits may share a folder: their ids depend on the clock).
        #expect(try git(["ls-tree", "--name-only", "refs/notes/ratchet", String(hex.prefix(2)) + "/"], in: path)
            .split(separator: "\n").contains { $0 == String(hex.prefix(2)) + "/" + String(hex.dropFirst(2)) })
        #expect(try git(["ls-tree", "--name-only", "refs/notes/ratchet"], in: path).split(separator: "\n").allSatisfy { $0.count == 2 })
        #expect(try git(["rev-list", "--count", "refs/notes/ratchet"], in: path) == "6")
        try git(["fsck", "--strict"], in: path)
    }
}

@Suite("Object batches")
struct ObjectBatchTests {
    @Test func aBatchWritesOnePackThatGitReadsAndNothingLoose() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        try repository.prepareObjectFolders()
        let signature = Signature(name: "R", email: "r@x")
        var changes: [TreeChange] = []
        for index in 0..<30 { changes.append(.upsert("d\(index % 3)/f\(index)", try repository.writeBlob(Data("\(index)\n".utf8)))) }
        let root = try repository.createCommit(tree: try repository.makeTree(from: try repository.emptyTree(), applying: changes),
                                               parents: [], author: signature, committer: signature, message: "root\n")
        try repository.updateReference("refs/heads/main", to: root, expected: nil, message: "root")
        try repository.packLooseObjects()
        let packsBefore = repository.packCount()

        let batch = try ObjectBatch(path: path)
        let big = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let head = try batch.repository.commit(on: root, applying: [.upsert("d1/f1", try batch.repository.writeBlob(Data("edited\n".utf8))),
                                                                   .upsert("new/big.bin", try batch.repository.writeBlob(big)),
                                                                   .remove("d2/f2")],
                                               author: signature, committer: signature, message: "batched\n")
        let note = try batch.repository.makeNote("{\"n\": 1}\n", on: head, author: signature)
        // Before the flush nothing is on disk: git cannot see the commit, and the batch's
        // handle refuses to move a reference to it (a ref must never point to memory).
        #expect(try run(["git", "cat-file", "-t", head.hex], in: path).status != 0)
        #expect(throws: GitError.self) { try batch.repository.updateReference("refs/heads/early", to: head, expected: nil, message: "early") }
        #expect(try repository.resolveReference("refs/heads/early") == nil)
        let written = try batch.flush(roots: [head, note.commit])
        // The commit; the root, d1, d2 and new trees; two blobs; the note's blob, two trees and commit.
        #expect(written == 1 + 4 + 2 + 4)
        try repository.updateReference("refs/heads/main", to: head, expected: root, message: "land")
        try repository.publish(note)
        #expect(repository.packCount() == packsBefore + 1)
        #expect(try repository.looseObjects().isEmpty)
        #expect(try git(["show", "main:d1/f1"], in: path) == "edited")
        #expect(try run(["git", "cat-file", "-e", "main:d2/f2"], in: path).status != 0)
        #expect(try git(["cat-file", "-s", "main:new/big.bin"], in: path) == "100000")
        #expect(try git(["notes", "--ref=ratchet", "show", head.hex], in: path) == "{\"n\": 1}")
        try git(["fsck", "--strict", "--no-dangling"], in: path)
        // git checks the pack and the index we wrote ourselves.
        let packs = try FileManager.default.contentsOfDirectory(atPath: path + "/.git/objects/pack").filter { $0.hasSuffix(".idx") }
        for pack in packs { try git(["verify-pack", "--verbose", ".git/objects/pack/" + pack], in: path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/.git/objects/pack").allSatisfy { !$0.hasPrefix("tmp_") })
        // A second, empty flush writes nothing.
        #expect(try batch.flush(roots: [head]) == 0)
    }

    @Test func aNoteThatLostTheRaceIsRemadeOnTopOfTheWinner() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        let signature = Signature(name: "R", email: "r@x")
        let one = try repository.createCommit(tree: try repository.emptyTree(), parents: [], author: signature, committer: signature, message: "one\n")
        let two = try repository.createCommit(tree: try repository.emptyTree(), parents: [one], author: signature, committer: signature, message: "two\n")
        try repository.updateReference("refs/heads/main", to: two, expected: nil, message: "main")
        let mine = try ObjectBatch(path: path), theirs = try ObjectBatch(path: path)
        // Made and flushed before the landing, as a merge does; another writer then moves the notes ref.
        let pending = try mine.repository.makeNote("{\"n\": 1}\n", on: one, author: signature)
        try mine.flush(roots: [pending.commit])
        try theirs.publishNote("{\"n\": 2}\n", on: two, author: signature)
        try mine.publishNote("{\"n\": 1}\n", on: one, author: signature, pending: pending)
        #expect(try git(["notes", "--ref=ratchet", "show", one.hex], in: path) == "{\"n\": 1}")
        #expect(try git(["notes", "--ref=ratchet", "show", two.hex], in: path) == "{\"n\": 2}")
        #expect(try repository.resolveReference(Repository.ratchetNotesRef) != pending.commit)
        try git(["fsck", "--strict", "--no-dangling"], in: path)
    }

    @Test func objectsOtherWritersPackStayVisibleAfterAWrite() throws {
        // The gate skips the pack-folder scan after a new object's existence check, never after a read miss.
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        let signature = Signature(name: "R", email: "r@x")
        let root = try repository.createCommit(tree: try repository.makeTree(from: try repository.emptyTree(), applying: [.upsert("a", try repository.writeBlob(Data("a\n".utf8)))]),
                                               parents: [], author: signature, committer: signature, message: "root\n")
        try repository.updateReference("refs/heads/main", to: root, expected: nil, message: "root")
        let first = try ObjectBatch(path: path)
        let second = try ObjectBatch(path: path)
        // The first handle writes (a freshen miss), then the second publishes a pack the first has never seen.
        let mine = try first.repository.commit(on: root, applying: [.upsert("b", try first.repository.writeBlob(Data("b\n".utf8)))],
                                               author: signature, committer: signature, message: "mine\n")
        let theirs = try second.repository.commit(on: root, applying: [.upsert("c", try second.repository.writeBlob(Data("c\n".utf8)))],
                                                  author: signature, committer: signature, message: "theirs\n")
        try second.flush(roots: [theirs])
        try second.repository.updateReference("refs/heads/main", to: theirs, expected: root, message: "theirs")
        // The first handle reads their commit and merges onto it; its flush and ref move succeed.
        let main = try first.repository.resolveReference("refs/heads/main")!
        #expect(try first.repository.commit(main).parents == [root])
        guard case .clean(let tree) = try first.repository.merge(ours: main, theirs: mine) else { Issue.record("conflict"); return }
        let landing = try first.repository.createCommit(tree: tree, parents: [main, mine], author: signature, committer: signature, message: "merge\n")
        try first.flush(roots: [landing])
        try first.repository.updateReference("refs/heads/main", to: landing, expected: theirs, message: "land")
        #expect(try git(["ls-tree", "--name-only", "main"], in: path) == "a\nb\nc")
        try git(["fsck", "--strict", "--no-dangling"], in: path)
    }
}

/// An HTTP server on loopback (Python's http.server) that answers every request with 401
/// and `WWW-Authenticate: Negotiate`, and writes each request's `Authorization` header (or
/// `-`) as one line to a file.
private final class NegotiateServer {
    let process = Process()
    let port: Int
    let log: String

    init(_ folder: ScratchFolder) throws {
        log = folder("requests.txt")
        let script = """
            import http.server, sys
            out = sys.argv[1]
            class Ask(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    with open(out, 'a') as f: f.write((self.headers.get('Authorization') or '-') + '\\n')
                    self.send_response(401)
                    self.send_header('WWW-Authenticate', 'Negotiate')
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                def log_message(self, *args): pass
            server = http.server.HTTPServer(('127.0.0.1', 0), Ask)
            print(server.server_port, flush=True)
            server.serve_forever()
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, log]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // The port line is printed once the socket listens: reading it is the synchronisation.
        port = Int(try firstLine(of: output)) ?? 0
    }

    private var lines: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func requests() -> Int { lines.count }
    func authorizations() -> [String] { lines.filter { $0 != "-" } }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

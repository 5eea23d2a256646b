import Foundation
import RatchetGit
import RatchetTestSupport
import Testing

private let ratchet = Signature(name: "Ratchet", email: "ratchet@ratchet.invalid", time: Date(timeIntervalSince1970: 1_700_000_000))

@Suite("Subtree-aware merge against git merge-tree")
struct TreeMergeTests {
    /// A random edit of the files in `files` (path → lines); returns the tree changes.
    private func randomSide(_ files: [String: [String]], label: String, using rng: inout SplitMix,
                            repository: Repository) throws -> [TreeChange] {
        var changes: [String: TreeChange] = [:]
        let paths = files.keys.sorted()
        for _ in 0..<Int.random(in: 1...5, using: &rng) {
            let path = paths.randomElement(using: &rng)!
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5: // edit one line
                var lines = files[path]!
                lines[Int.random(in: 0..<lines.count, using: &rng)] = "\(label) \(Int.random(in: 0..<3, using: &rng))"
                changes[path] = .upsert(path, try repository.writeBlob(Data((lines.joined(separator: "\n") + "\n").utf8)))
            case 5: // delete a file
                changes[path] = .remove(path)
            case 6: // make it executable
                changes[path] = .upsert(path, try repository.writeBlob(Data((files[path]!.joined(separator: "\n") + "\n").utf8)), mode: 0o100755)
            case 7: // add a file, sometimes the same name on both sides
                let name = "d\(Int.random(in: 0..<4, using: &rng))/new\(Int.random(in: 0..<3, using: &rng)).txt"
                if files[name] == nil { changes[name] = .upsert(name, try repository.writeBlob(Data("\(label) added\n".utf8))) }
            case 8: // add a file in a new folder
                let name = "fresh\(Int.random(in: 0..<2, using: &rng))/deep/file.txt"
                changes[name] = .upsert(name, try repository.writeBlob(Data("\(label)\n".utf8)))
            default: // delete a whole folder
                let folder = "d\(Int.random(in: 0..<4, using: &rng))/"
                for file in paths where file.hasPrefix(folder) { changes[file] = .remove(file) }
            }
        }
        return Array(changes.values)
    }

    @Test func cleanMergesGiveIdenticalTreesAndConflictsTheSamePaths() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        var rng = SplitMix(state: 20_261_127)
        var files: [String: [String]] = [:]
        for index in 0..<40 { files["d\(index % 4)/sub\(index % 2)/f\(index).txt"] = (0..<12).map { "line \($0) of \(index)" } }
        files["top.txt"] = ["a", "b", "c"]
        var rootChanges: [TreeChange] = []
        for (file, lines) in files { rootChanges.append(.upsert(file, try repository.writeBlob(Data((lines.joined(separator: "\n") + "\n").utf8)))) }
        let emptyTree = try git(["hash-object", "-t", "tree", "-w", "/dev/null"], in: path)
        let rootTree = try repository.makeTree(from: ObjectID(hex: emptyTree)!, applying: rootChanges)
        let root = try repository.createCommit(tree: rootTree, parents: [], author: ratchet, committer: ratchet, message: "root\n")
        var clean = 0, conflicted = 0
        for round in 0..<80 {
            let ours = try repository.commit(on: root, applying: try randomSide(files, label: "ours", using: &rng, repository: repository),
                                             author: ratchet, committer: ratchet, message: "ours \(round)\n")
            let theirs = try repository.commit(on: root, applying: try randomSide(files, label: "theirs", using: &rng, repository: repository),
                                               author: ratchet, committer: ratchet, message: "theirs \(round)\n")
            let expected = try run(["git", "-c", "merge.renames=false", "-c", "diff.renames=false", "merge-tree", "--write-tree",
                                    "--no-messages", "--name-only", ours.hex, theirs.hex], in: path)
            let lines = expected.stdout.split(separator: "\n").map(String.init)
            switch try repository.merge(ours: ours, theirs: theirs) {
            case .clean(let tree):
                clean += 1
                #expect(expected.status == 0, "round \(round): git saw a conflict in \(lines.dropFirst())")
                #expect(tree.hex == lines.first, "round \(round): trees differ")
            case .conflicts(let paths):
                conflicted += 1
                #expect(expected.status == 1, "round \(round): Ratchet saw conflicts \(paths) where git saw none")
                #expect(Set(paths) == Set(lines.dropFirst()), "round \(round)")
            }
        }
        #expect(clean > 10 && conflicted > 10, "clean \(clean), conflicted \(conflicted)")
        try git(["fsck", "--strict"], in: path)
    }

    @Test func revertOfAMergeRestoresTheMainlineTreeAndOnlyTouchesChangedPaths() throws {
        let folder = ScratchFolder()
        let path = folder("repo")
        let repository = try Repository.create(at: path)
        let emptyTree = ObjectID(hex: try git(["hash-object", "-t", "tree", "-w", "/dev/null"], in: path))!
        var changes: [TreeChange] = []
        for index in 0..<200 { changes.append(.upsert("dir\(index % 10)/file\(index)", try repository.writeBlob(Data("\(index)\n".utf8)))) }
        let root = try repository.createCommit(tree: try repository.makeTree(from: emptyTree, applying: changes), parents: [],
                                               author: ratchet, committer: ratchet, message: "root\n")
        let head = try repository.commit(on: root, applying: [.upsert("dir3/file3", try repository.writeBlob(Data("changed\n".utf8))),
                                                              .remove("dir4/file4"), .upsert("new/x", try repository.writeBlob(Data("x\n".utf8)))],
                                         author: ratchet, committer: ratchet, message: "step\n")
        let landing = try repository.createCommit(tree: try repository.commit(head).tree, parents: [root, head], author: ratchet,
                                                  committer: ratchet, message: "Merge\n")
        // Main moved on after the landing, elsewhere.
        let later = try repository.commit(on: landing, applying: [.upsert("dir9/file9", try repository.writeBlob(Data("later\n".utf8)))],
                                          author: ratchet, committer: ratchet, message: "later\n")
        guard case .clean(let tree) = try repository.revert(landing, onto: later) else { Issue.record("conflict"); return }
        let expected = try run(["git", "-c", "merge.renames=false", "merge-tree", "--write-tree", "--merge-base", landing.hex, later.hex, root.hex], in: path)
        if expected.status == 0 || expected.status == 1 {
            // git 2.40+ has --merge-base; older gits print usage and are skipped here.
            #expect(tree.hex == expected.stdout.split(separator: "\n").first.map(String.init))
        }
        #expect(try repository.changedPaths(from: try repository.commit(root).tree, to: tree) == ["dir9/file9"])
        try git(["fsck", "--strict"], in: path)
    }
}

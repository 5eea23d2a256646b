import Foundation
import RatchetGit

/// What observation reads of one service, from main: its invariants, SLOs and the files
/// they refer to.
struct ObservedFiles {
    var invariants: [Invariant] = []
    var slos: [SLO] = []
}

extension Workspace {
    /// `service check`'s findings for invariants.yaml, slos.yaml and runbooks/*.yaml on main:
    /// one per invalid invariant, SLO, runbook step or key, each naming its file and key.
    func observeFindings(_ service: String) throws -> [CheckFinding] {
        let repository = try Repository.open(servicePath(service))
        guard let main = try repository.resolveReference("refs/heads/main") else { return [] }
        let prefix = "services/\(service)/"
        let fileOnMain = { (path: String) throws -> Data? in try repository.fileContents(path, in: main) }
        var findings: [CheckFinding] = []
        func record(_ file: String, _ problems: [RatchetError]) {
            findings += problems.map { CheckFinding(file: prefix + file, message: $0.message) }
        }
        if try repository.hasEntry("canary", in: main), try fileOnMain(CanaryConfig.path) == nil {
            findings.append(CheckFinding(file: prefix + CanaryConfig.path,
                                         message: "\(prefix)\(CanaryConfig.path): missing: main has a canary/ folder without it, so every canary run fails"))
        }
        var invariantNames: Set<String> = [], sloNames: Set<String> = []
        if let data = try fileOnMain(InvariantsFile.path) {
            do {
                let read = try InvariantsFile.read(String(decoding: data, as: UTF8.self), file: prefix + InvariantsFile.path,
                                                   fileExists: { (try? fileOnMain($0)) != nil })
                invariantNames = read.names
                record(InvariantsFile.path, read.problems)
            } catch { record(InvariantsFile.path, [asRatchetError(error)]) }
        }
        if let data = try fileOnMain(SLOsFile.path) {
            do {
                let read = try SLOsFile.read(String(decoding: data, as: UTF8.self), file: prefix + SLOsFile.path)
                sloNames = read.names
                record(SLOsFile.path, read.problems)
            } catch { record(SLOsFile.path, [asRatchetError(error)]) }
        }
        let check = RunbookCheck(fileOnMain: fileOnMain, invariants: invariantNames, slos: sloNames)
        for path in try runbookPaths(repository, main: main) {
            guard let data = try fileOnMain(path) else { continue }
            record(path, check.problems(String(decoding: data, as: UTF8.self), file: prefix + path))
        }
        return findings
    }

    /// `runbooks/*.yaml` (and `.yml`) on main, sorted.
    func runbookPaths(_ repository: Repository, main: ObjectID) throws -> [String] {
        guard try repository.hasEntry("runbooks", in: main) else { return [] }
        let tree = try repository.commit(main).tree
        return try repository.changedPaths(from: nil, to: tree).filter {
            $0.hasPrefix("runbooks/") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml"))
        }
    }

    /// The service's invariants and SLOs as committed on main (absent files: none). Throws
    /// the first problem of an invalid file.
    func observedFiles(_ service: String) throws -> ObservedFiles {
        let repository = try Repository.open(servicePath(service))
        guard let main = try repository.resolveReference("refs/heads/main") else { throw RatchetError("service \(service) has no main") }
        return try observedFiles(service, repository: repository, main: main)
    }

    /// The invariants and SLOs of `service` in commit `main`, read through an open `repository`.
    func observedFiles(_ service: String, repository: Repository, main: ObjectID) throws -> ObservedFiles {
        var files = ObservedFiles()
        let prefix = "services/\(service)/"
        if let data = try repository.fileContents(InvariantsFile.path, in: main) {
            files.invariants = try InvariantsFile.parse(String(decoding: data, as: UTF8.self), file: prefix + InvariantsFile.path)
        }
        if let data = try repository.fileContents(SLOsFile.path, in: main) {
            files.slos = try SLOsFile.parse(String(decoding: data, as: UTF8.self), file: prefix + SLOsFile.path)
        }
        return files
    }
}

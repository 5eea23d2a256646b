import Foundation
import GRDB
import RatchetGit
import RatchetStore

/// What `ratchet service show` reports.
public struct ServiceView: Codable, Sendable {
    public var name: String
    public var path: String
    public var template: String?
    public var paused: Bool
    public var main: String?
    public var description: String
    public var owners: [String]
    public var protectedPaths: [String]
    public var maxAttempts: Int
    public var tickets: [String: Int]
    enum CodingKeys: String, CodingKey {
        case name, path, template, paused, main, description, owners, tickets
        case protectedPaths = "protected_paths", maxAttempts = "max_attempts"
    }
}

/// One problem `ratchet service check` found.
public struct CheckFinding: Codable, Sendable, Equatable {
    public var file: String
    public var message: String
    /// `error` (the file is wrong; `service check` fails) or `warning` (allowed, but a
    /// person should know: a changed default, a risky setting).
    public var severity: String = "error"

    /// Whether this finding is only a warning.
    public var isWarning: Bool { severity == "warning" }
}

extension Workspace {
    /// Registers a new service: from `template` (`templates/T` plus `canaries/T` as
    /// `canary/`), committed as the first commit on `main`, or adopted from the repo at `from`.
    /// Nothing is left behind when it fails: the folder goes with the error.
    @discardableResult
    public func addService(name rawName: String, template: String? = nil, from source: String? = nil) throws -> ServiceRecord {
        let name = try Names.serviceName(rawName)
        guard (template == nil) != (source == nil) else { throw RatchetError("give exactly one of --template T or --from PATH") }
        if try database.read({ db in try ServiceRecord.fetchOne(db, key: name) }) != nil {
            throw RatchetError("service '\(name)' already exists")
        }
        let path = servicePath(name)
        if FileManager.default.fileExists(atPath: path) {
            throw RatchetError("\(path) already exists; remove it or choose another name")
        }
        let folders = try template.map(Self.templateFolders)
        do {
            if let template, let folders {
                try createService(name, at: path, template: template, folders: folders)
            } else if let source {
                try adoptService(name, at: path, from: source)
            }
            return try recordService(name, at: path, template: template, source: source)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    /// A template's folder and, when it has one, its canary's.
    private static func templateFolders(_ template: String) throws -> (template: URL, canary: URL?) {
        guard let root = Resources.root() else {
            throw RatchetError("cannot find Ratchet's templates/ folder; set RATCHET_HOME to the folder that holds templates/ and canaries/")
        }
        let folder = root.appendingPathComponent("templates/\(template)")
        guard !template.contains("/"), !template.hasPrefix("."), FileManager.default.fileExists(atPath: folder.appendingPathComponent("service.yaml").path) else {
            let known = Resources.templates()
            throw RatchetError("unknown template '\(Names.printable(template))' (available: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
        }
        let canary = root.appendingPathComponent("canaries/\(template)")
        return (folder, FileManager.default.fileExists(atPath: canary.path) ? canary : nil)
    }

    /// A new repository at `path` whose first commit on main is the template.
    private func createService(_ name: String, at path: String, template: String, folders: (template: URL, canary: URL?)) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try copyContents(of: folders.template.path, to: path)
        if let canary = folders.canary { try copyContents(of: canary.path, to: path + "/canary") }
        try renameService(in: path + "/service.yaml", to: name)
        _ = try ServiceConfig.parse(String(contentsOfFile: path + "/service.yaml", encoding: .utf8), file: "service.yaml")
        let repository = try Repository.create(at: path, initialBranch: "main")
        try repository.prepareObjectFolders()
        let message = "Add service \(name) from template \(template)\n"
        guard try repository.commitWorkingTree(author: config.identity, committer: config.identity, message: message) != nil else {
            throw RatchetError("template '\(template)' is empty")
        }
    }

    /// A clone of the repository at `source`, whose main must hold a `service.yaml` naming `name`.
    private func adoptService(_ name: String, at path: String, from source: String) throws {
        let sourcePath = URL(fileURLWithPath: source).standardizedFileURL.path
        let origin: Repository
        do { origin = try Repository.open(sourcePath) } catch { throw RatchetError("\(sourcePath) is not a git repository") }
        guard let main = try origin.resolveReference("refs/heads/main") else {
            throw RatchetError("\(sourcePath) has no main branch; Ratchet lands on main")
        }
        guard let text = try origin.fileContents("service.yaml", in: main) else {
            throw RatchetError("\(sourcePath) has no service.yaml on main (see templates/kv-cache/service.yaml)")
        }
        let config = try ServiceConfig.parse(String(decoding: text, as: UTF8.self), file: "service.yaml")
        guard config.name == name else {
            throw RatchetError("service.yaml on main of \(sourcePath) names the service '\(config.name)', not '\(name)'")
        }
        try Repository.clone(from: sourcePath, to: path, branch: "main").prepareObjectFolders()
    }

    /// The service's row and its `service.added` event, in one transaction.
    private func recordService(_ name: String, at path: String, template: String?, source: String?) throws -> ServiceRecord {
        let record = ServiceRecord(name: name, path: "services/\(name)", template: template, createdAt: Date())
        try database.write { db in
            try record.insert(db)
            let head = try Repository.open(path).headCommit()
            try RatchetDatabase.appendEvent(db, kind: "service.added", service: name, data: [
                "template": .optional(template), "from": .optional(source), "main": .optional(head?.hex)])
        }
        return record
    }

    /// The registered services, by name.
    public func services() throws -> [ServiceRecord] {
        try database.read { db in try ServiceRecord.order(ServiceRecord.Columns.name).fetchAll(db) }
    }

    /// The service record, or a clear error.
    public func service(_ rawName: String) throws -> ServiceRecord {
        let name = try Names.serviceName(rawName)
        guard let record = try database.read({ db in try ServiceRecord.fetchOne(db, key: name) }) else {
            throw RatchetError("no service named '\(name)' (see 'ratchet service list')")
        }
        return record
    }

    /// The service's `service.yaml` as committed on main.
    public func serviceConfig(_ name: String) throws -> ServiceConfig {
        try serviceConfig(name, repository: try Repository.open(servicePath(name)))
    }

    /// The service's `service.yaml` on main, read through a handle the caller already holds
    /// (each open of a service reads its pack indexes again).
    func serviceConfig(_ name: String, repository: Repository) throws -> ServiceConfig {
        guard let main = try repository.resolveReference("refs/heads/main"),
              let data = try repository.fileContents("service.yaml", in: main) else {
            throw RatchetError("service '\(name)' has no service.yaml on main")
        }
        return try ServiceConfig.parse(String(decoding: data, as: UTF8.self), file: "services/\(name)/service.yaml")
    }

    /// What `ratchet service show` prints.
    public func serviceView(_ name: String) throws -> ServiceView {
        let record = try service(name)
        let config = try serviceConfig(record.name)
        let main = try Repository.open(servicePath(record.name)).resolveReference("refs/heads/main")
        let counts = try database.read { db in
            try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM ticket WHERE service = ? GROUP BY state", arguments: [record.name])
        }
        var tickets: [String: Int] = [:]
        for row in counts { tickets[row["state"]] = row["n"] }
        return ServiceView(name: record.name, path: record.path, template: record.template, paused: record.isPaused,
                           main: main?.hex, description: config.description, owners: config.owners,
                           protectedPaths: config.allProtectedPaths, maxAttempts: config.maxAttempts, tickets: tickets)
    }

    /// Validates the service's files in its checked-out main; empty means all is well.
    public func checkService(_ name: String) throws -> [CheckFinding] {
        let record = try service(name)
        let path = servicePath(record.name)
        var findings: [CheckFinding] = []
        let file = "services/\(record.name)/service.yaml"
        do {
            let text = try String(contentsOfFile: path + "/service.yaml", encoding: .utf8)
            let config = try ServiceConfig.parse(text, file: file)
            if config.name != record.name {
                findings.append(CheckFinding(file: file, message: "\(file): name: '\(config.name)' does not match the service name '\(record.name)'"))
            }
            findings += sandboxWarnings(config, file: file)
        } catch let error as RatchetError {
            findings.append(CheckFinding(file: file, message: error.message))
        } catch {
            findings.append(CheckFinding(file: file, message: "\(file): cannot read: \(describe(error))"))
        }
        findings += try canaryFindings(record.name)
        findings += try observeFindings(record.name)
        return findings
    }

    /// Warnings about sandbox settings: the network default changed from host to none, and
    /// a service that allows unsandboxed runs.
    private func sandboxWarnings(_ config: ServiceConfig, file: String) -> [CheckFinding] {
        var warnings: [CheckFinding] = []
        if !config.declaresNetwork {
            warnings.append(CheckFinding(file: file, message: "\(file): sandbox.network is not set: agents get loopback only (the default changed from host to none); set 'network: host' if the agent must reach its model", severity: "warning"))
        }
        if config.allowUnsandboxed {
            warnings.append(CheckFinding(file: file, message: "\(file): sandbox.allow_unsandboxed is true: 'ratchet work --unsandboxed' runs agents with this user's full rights", severity: "warning"))
        }
        return warnings
    }

    /// Copies a template folder's contents, owned by whoever runs Ratchet: files keep only
    /// their executable bit, links their target (FileManager's copy would also try to keep
    /// the owner, which fails for a user who is not the templates' owner).
    private func copyContents(of source: String, to destination: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: destination, withIntermediateDirectories: true)
        for item in try fm.contentsOfDirectory(atPath: source) where item != "__pycache__" {
            let from = source + "/" + item, to = destination + "/" + item
            var info = stat()
            guard lstat(from, &info) == 0 else { throw RatchetError("cannot read \(from): \(String(cString: strerror(errno)))") }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: try copyContents(of: from, to: to)
            case S_IFLNK: try fm.createSymbolicLink(atPath: to, withDestinationPath: try fm.destinationOfSymbolicLink(atPath: from))
            default:
                guard fm.createFile(atPath: to, contents: try Data(contentsOf: URL(fileURLWithPath: from)),
                                    attributes: [.posixPermissions: info.st_mode & 0o111 != 0 ? 0o755 : 0o644]) else {
                    throw RatchetError("cannot write \(to)")
                }
            }
        }
    }

    private func renameService(in file: String, to name: String) throws {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        guard let index = lines.firstIndex(where: { $0.hasPrefix("name:") }) else {
            throw RatchetError("template service.yaml has no top-level name: line")
        }
        let comment = lines[index].range(of: "#").map { "   " + lines[index][$0.lowerBound...] } ?? ""
        lines[index] = "name: \(name)\(comment)"
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: file))
    }
}

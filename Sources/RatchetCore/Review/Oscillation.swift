import Foundation
import RatchetGit

/// Oscillation: a path's blob, or a value in a JSON file, set by a landing to a content it
/// had before (A→B→A). Reverts are excluded: a revert takes back what its landing set, so
/// undoing a landing is never counted, and a hand-made commit only sets the starting point.
struct OscillationScan {
    let repository: Repository
    let service: String
    /// Per subject, the contents it went through, each with the landing that set it (nil: not a landing).
    private var contents: [String: [(value: String, landing: String?)]] = [:]
    /// Per subject, how many entries of `contents` hold each value (so a check is O(1)).
    private var counts: [String: [String: Int]] = [:]
    private var touched: [String: [String]] = [:]
    private var found: [String: ReflectionObservation] = [:]
    /// Parsed JSON blobs: a landing's new content is the next landing's old one.
    private var parsed: [ObjectID: [String: String]?] = [:]

    init(repository: Repository, service: String) {
        self.repository = repository
        self.service = service
    }

    /// The oscillations of main's first-parent history since `since`.
    mutating func run(since: Date) throws -> [ReflectionObservation] {
        guard let main = try repository.resolveReference("refs/heads/main") else { return [] }
        var commits: [CommitInfo] = []
        try repository.walkFirstParents(from: main) { commit in
            guard (commit.committer.time ?? .distantPast) >= since else { return false }
            commits.append(commit)
            return true
        }
        for commit in commits.reversed() where !commit.parents.isEmpty {
            let trailers = TrailerValues(commit.message)
            if commit.parents.count == 1, let reverted = trailers["Reverts"] {
                for subject in touched[reverted] ?? [] { forget(reverted, in: subject) }
                continue
            }
            let landing = commit.parents.count == 2 && trailers["Ticket"] != nil ? commit.id.hex : nil
            for (subject, old, new) in try changes(commit) {
                record(subject, old: old, new: new, commit: commit, ticket: trailers["Ticket"], landing: landing)
            }
        }
        return found.keys.sorted().map { found[$0]! }
    }

    private mutating func record(_ subject: String, old: String, new: String, commit: CommitInfo, ticket: String?, landing: String?) {
        // In place and O(1) per change: a subject's history grows with every landing that touches it.
        if contents[subject]?.last?.value != old { append(old, landing: nil, to: subject) }
        // `new` differs from `old`, the latest content, so any entry holding it is earlier.
        if let landing, counts[subject]?[new, default: 0] ?? 0 > 0 {
            let earlier = latestLandings(of: subject)
            if found[subject] == nil {
                found[subject] = ReflectionObservation(kind: "oscillation", subject: "\(service):\(subject)", service: service, times: [],
                                                       evidence: [], tried: "landings keep setting \(subject) back to a content it had before")
            }
            found[subject]!.times.append(commit.committer.time ?? Date())
            found[subject]!.evidence.append("commit \(landing.prefix(12)) (\(ticket ?? "?")) sets \(subject) back to an earlier content"
                                            + (earlier.isEmpty ? "" : "; latest earlier landings: \(earlier.joined(separator: ", "))"))
        }
        append(new, landing: landing, to: subject)
        if let landing { touched[landing, default: []].append(subject) }
    }

    /// The latest three landings that set `subject`, oldest first, as short shas.
    private func latestLandings(of subject: String) -> [String] {
        var result: [String] = []
        for entry in (contents[subject] ?? []).reversed() {
            guard let landing = entry.landing else { continue }
            result.append(String(landing.prefix(12)))
            if result.count == 3 { break }
        }
        return result.reversed()
    }

    private mutating func append(_ value: String, landing: String?, to subject: String) {
        contents[subject, default: []].append((value, landing))
        counts[subject, default: [:]][value, default: 0] += 1
    }

    /// A revert takes back what `landing` set.
    private mutating func forget(_ landing: String, in subject: String) {
        for entry in contents[subject] ?? [] where entry.landing == landing { counts[subject]?[entry.value]? -= 1 }
        contents[subject]?.removeAll { $0.landing == landing }
    }

    /// The subjects a commit changes against its first parent: each path's blob, and each
    /// leaf value of a changed JSON file (`path#key/sub`).
    private mutating func changes(_ commit: CommitInfo) throws -> [(String, String, String)] {
        var result: [(String, String, String)] = []
        for difference in try repository.treeDifferences(from: repository.commit(commit.parents[0]).tree, to: commit.tree) {
            if difference.old?.isTree == true || difference.new?.isTree == true { continue }
            // A JSON file is followed value by value (a blob that returns has values that return).
            if difference.path.hasSuffix(".json"), let old = try leaves(difference.old?.id), let new = try leaves(difference.new?.id) {
                for key in Set(old.keys).union(new.keys).sorted() where old[key] != new[key] {
                    result.append(("\(difference.path)#\(key)", old[key] ?? "absent", new[key] ?? "absent"))
                }
            } else {
                result.append((difference.path, difference.old?.id.hex ?? "absent", difference.new?.id.hex ?? "absent"))
            }
        }
        return result
    }

    /// The leaf values of a JSON blob of at most 64 KiB, by key path; `[:]` for no blob, nil
    /// when it is too large or not JSON.
    private mutating func leaves(_ blob: ObjectID?) throws -> [String: String]? {
        guard let blob else { return [:] }
        if let known = parsed[blob] { return known }
        if parsed.count >= 4096 { parsed.removeAll(keepingCapacity: true) }
        let result = try parseLeaves(blob)
        parsed[blob] = .some(result)
        return result
    }

    private func parseLeaves(_ blob: ObjectID) throws -> [String: String]? {
        guard try repository.blobSize(blob) <= 65_536, let data = try repository.blobContent(blob),
              let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return nil }
        var result: [String: String] = [:]
        func walk(_ value: Any, _ path: String) {
            if let object = value as? [String: Any] {
                for (key, child) in object { walk(child, path.isEmpty ? key : "\(path)/\(key)") }
            } else if let array = value as? [Any] {
                for (index, child) in array.enumerated() { walk(child, "\(path)/\(index)") }
            } else {
                result[path] = "\(value)"
            }
        }
        walk(root, "")
        return result
    }
}

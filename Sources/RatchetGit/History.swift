import Clibgit2

/// One `Key: value` trailer of a commit message.
public struct Trailer: Sendable, Equatable, Codable {
    /// The key, as written.
    public var key: String
    /// The value.
    public var value: String
    /// Makes a trailer.
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

extension Repository {
    /// Parses the trailers of a commit message the way `git interpret-trailers` does.
    public static func trailers(of message: String) -> [Trailer] {
        Library.ensure()
        var array = git_message_trailer_array()
        guard git_message_trailers(&array, message) == 0 else { return [] }
        defer { git_message_trailer_array_free(&array) }
        var result: [Trailer] = []
        for index in 0..<array.count {
            let trailer = array.trailers[index]
            result.append(Trailer(String(cString: trailer.key), String(cString: trailer.value)))
        }
        return result
    }

    /// Commits reachable from `start` through first parents only, newest first.
    public func firstParentHistory(from start: ObjectID, limit: Int = .max) throws -> [CommitInfo] {
        var result: [CommitInfo] = []
        guard limit > 0 else { return result }
        try walkFirstParents(from: start) { commit in
            result.append(commit)
            return result.count < limit
        }
        return result
    }
}

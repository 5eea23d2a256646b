import Foundation
import RatchetGit

/// An error meant for the person at the terminal: one line, printed as `error: …`.
public struct RatchetError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The one-line message.
    public let message: String
    /// Makes an error with a one-line message (newlines are flattened).
    public init(_ message: String) {
        self.message = message.replacingOccurrences(of: "\n", with: " ")
    }
    public var description: String { message }
}

/// Turns any error into the one line the command line prints after `error: `.
public func describe(_ error: any Error) -> String {
    switch error {
    case let error as RatchetError: return error.message
    case let error as GitError: return "git: \(error.message)"
    case let error as DecodingError:
        switch error {
        case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    default:
        return String(describing: error).replacingOccurrences(of: "\n", with: " ")
    }
}

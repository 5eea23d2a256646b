import Clibgit2
import Foundation

/// Who made a commit or note, and when.
public struct Signature: Sendable, Equatable {
    /// The display name.
    public var name: String
    /// The email address.
    public var email: String
    /// When; nil means now.
    public var time: Date?

    /// Makes a signature; `time` nil means the moment it is used.
    public init(name: String, email: String, time: Date? = nil) {
        self.name = name
        self.email = email
        self.time = time
    }

    /// Calls `body` with a libgit2 signature that lives for the call only.
    func withGitSignature<T>(_ body: (UnsafeMutablePointer<git_signature>) throws -> T) throws -> T {
        var pointer: UnsafeMutablePointer<git_signature>?
        if let time {
            let seconds = git_time_t(time.timeIntervalSince1970.rounded(.down))
            try GitError.check(git_signature_new(&pointer, name, email, seconds, 0), "signature")
        } else {
            try GitError.check(git_signature_now(&pointer, name, email), "signature")
        }
        defer { git_signature_free(pointer) }
        return try body(pointer!)
    }

    init(_ signature: UnsafePointer<git_signature>) {
        name = String(cString: signature.pointee.name)
        email = String(cString: signature.pointee.email)
        time = Date(timeIntervalSince1970: TimeInterval(signature.pointee.when.time))
    }
}

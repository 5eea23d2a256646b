import Clibgit2

/// The one error type of the git layer: libgit2's error class, return code and message.
public struct GitError: Error, CustomStringConvertible, Sendable, Equatable {
    /// libgit2's return code (`GIT_ENOTFOUND`, `GIT_EMODIFIED`, …), an open set.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        /// A generic failure (`GIT_ERROR`).
        public static let generic = Code(rawValue: GIT_ERROR.rawValue)
        /// The object or reference does not exist (`GIT_ENOTFOUND`).
        public static let notFound = Code(rawValue: GIT_ENOTFOUND.rawValue)
        /// The object or reference already exists (`GIT_EEXISTS`).
        public static let exists = Code(rawValue: GIT_EEXISTS.rawValue)
        /// A compare-and-swap lost: the reference was modified (`GIT_EMODIFIED`).
        public static let modified = Code(rawValue: GIT_EMODIFIED.rawValue)
        /// A checkout or merge conflict (`GIT_ECONFLICT`).
        public static let conflict = Code(rawValue: GIT_ECONFLICT.rawValue)
        /// A lock file is held (`GIT_ELOCKED`).
        public static let locked = Code(rawValue: GIT_ELOCKED.rawValue)
        /// HEAD points to a branch without commits (`GIT_EUNBORNBRANCH`).
        public static let unbornBranch = Code(rawValue: GIT_EUNBORNBRANCH.rawValue)
        /// A name that is not a valid reference name (`GIT_EINVALIDSPEC`).
        public static let invalidSpec = Code(rawValue: GIT_EINVALIDSPEC.rawValue)
        /// Uncommitted changes prevent the operation (`GIT_EUNCOMMITTED`).
        public static let uncommitted = Code(rawValue: GIT_EUNCOMMITTED.rawValue)
        /// The iteration is over (`GIT_ITEROVER`).
        public static let iterationOver = Code(rawValue: GIT_ITEROVER.rawValue)
        public var description: String { "\(rawValue)" }
    }

    /// The return code of the failing call.
    public let code: Code
    /// libgit2's error class (`GIT_ERROR_REFERENCE`, …), 0 when libgit2 set none.
    public let errorClass: Int32
    /// The message libgit2 gave, or the one Ratchet's git layer set.
    public let message: String

    /// Makes an error raised by the git layer itself rather than by libgit2.
    public init(code: Code = .generic, errorClass: Int32 = 0, message: String) {
        self.code = code
        self.errorClass = errorClass
        self.message = message
    }

    public var description: String { message }

    /// Turns a libgit2 return code into a thrown `GitError`, reading `git_error_last()`
    /// on the calling thread. Call it directly around the libgit2 call, with no `await`
    /// in between.
    @discardableResult
    public static func check(_ result: Int32, _ context: @autoclosure () -> String = "") throws -> Int32 {
        guard result < 0 else { return result }
        var message = ""
        var klass: Int32 = 0
        if let last = git_error_last() {
            klass = last.pointee.klass
            if let text = last.pointee.message { message = String(cString: text) }
        }
        let prefix = context()
        if message.isEmpty { message = "libgit2 error \(result)" }
        if !prefix.isEmpty { message = "\(prefix): \(message)" }
        throw GitError(code: Code(rawValue: result), errorClass: klass, message: message)
    }
}

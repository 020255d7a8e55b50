/// Why a users file could not be loaded. Loading is all or nothing: on any error the previous users stay.
public enum PasswordFileError: Error, Hashable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The file is larger than ``PasswordFile/maxFileSizeBytes``.
    case tooLarge(path: String, limitBytes: Int)
    /// The file is not valid UTF-8.
    case notUTF8(path: String)
    /// A line is not a valid entry; `lineNumber` counts from 1.
    case malformedLine(path: String, lineNumber: Int, reason: String)
    /// A user name appears on two lines; `lineNumber` is the second.
    case duplicateUsername(path: String, lineNumber: Int, username: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "users file \(path): cannot read: \(reason)"
        case .tooLarge(let path, let limitBytes):
            "users file \(path): larger than the limit of \(limitBytes) bytes"
        case .notUTF8(let path):
            "users file \(path): not valid UTF-8"
        case .malformedLine(let path, let lineNumber, let reason):
            "users file \(path), line \(lineNumber): \(reason)"
        case .duplicateUsername(let path, let lineNumber, let username):
            "users file \(path), line \(lineNumber): user '\(username)' is already defined on an earlier line"
        }
    }
}

/// Why an ACL file could not be loaded. Loading is all or nothing.
public enum ACLFileError: Error, Hashable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The file is larger than ``ACLFile/maxFileSizeBytes``.
    case tooLarge(path: String, limitBytes: Int)
    /// The file is not valid UTF-8.
    case notUTF8(path: String)
    /// A line is not a valid rule; `lineNumber` counts from 1.
    case malformedLine(path: String, lineNumber: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "ACL file \(path): cannot read: \(reason)"
        case .tooLarge(let path, let limitBytes):
            "ACL file \(path): larger than the limit of \(limitBytes) bytes"
        case .notUTF8(let path):
            "ACL file \(path): not valid UTF-8"
        case .malformedLine(let path, let lineNumber, let reason):
            "ACL file \(path), line \(lineNumber): \(reason)"
        }
    }
}

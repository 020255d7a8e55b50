#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything the store refuses or fails at, with enough context for one clear log line.
public enum LMQStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// A file written by a newer (or unknown) format version; the store refuses to start rather than guess.
    case unsupportedFormat(path: String, found: UInt32, supported: UInt32)
    /// A file whose header is not one of ours.
    case notAStoreFile(path: String)
    /// Data that fails its checksum where the store cannot repair it by truncation.
    case corrupt(path: String, position: Int64, reason: String)
    /// A message over `Limits.maxMessageSizeBytes` once encoded.
    case messageTooLarge(sizeBytes: Int, limitBytes: Int)
    /// More queues in one append than `Limits.maxLMQsPerMessage`, or none.
    case invalidQueueList(count: Int, limit: Int)
    /// A queue name that is empty or longer than `Limits.maxLMQNameBytes`.
    case invalidQueueName(String)
    /// More queues than `Limits.maxLMQs`.
    case tooManyQueues(limit: Int)
    /// The store was closed.
    case closed

    public var description: String {
        switch self {
        case .io(let operation, let path, let code):
            return "\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .unsupportedFormat(let path, let found, let supported):
            return "\(path): format version \(found) is not supported (this build reads version \(supported)); refusing to start"
        case .notAStoreFile(let path):
            return "\(path): not a store file (bad magic)"
        case .corrupt(let path, let position, let reason):
            return "\(path): corrupt at position \(position): \(reason)"
        case .messageTooLarge(let size, let limit):
            return "message of \(size) bytes exceeds the store's limit of \(limit) bytes"
        case .invalidQueueList(let count, let limit):
            return "a message must go to 1...\(limit) queues, not \(count)"
        case .invalidQueueName(let name):
            return "invalid queue name \"\(name.prefix(80))\""
        case .tooManyQueues(let limit):
            return "the store holds its maximum of \(limit) queues"
        case .closed:
            return "the store is closed"
        }
    }

    static func errno(_ operation: String, _ path: String) -> LMQStoreError {
        .io(operation: operation, path: path, errno: Glibc.errno)
    }
}

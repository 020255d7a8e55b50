/// The code of a response. The values below 1000 are RocketMQ's, so its operators recognise them;
/// subsystems add their own from 1000 up in extensions. The table is in `docs/protocol.md`.
public struct RemotingResponseCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The request was carried out.
    public static let success = RemotingResponseCode(rawValue: 0)
    /// The handler failed unexpectedly (the remark says why).
    public static let systemError = RemotingResponseCode(rawValue: 1)
    /// The server is overloaded; retry later. (This server applies back-pressure instead; the code is
    /// kept for peers and handlers that answer with it.)
    public static let systemBusy = RemotingResponseCode(rawValue: 2)
    /// No handler is registered for the request code.
    public static let requestCodeNotSupported = RemotingResponseCode(rawValue: 3)
    /// The server is shutting down.
    public static let serviceNotAvailable = RemotingResponseCode(rawValue: 14)
    /// The topic named in the request does not exist (RocketMQ's `TOPIC_NOT_EXIST`).
    public static let topicNotExist = RemotingResponseCode(rawValue: 17)
    /// The key named in the request does not exist (RocketMQ's `QUERY_NOT_FOUND`).
    public static let keyNotFound = RemotingResponseCode(rawValue: 22)
    /// A header or the body is missing, malformed or over a limit (RocketMQ's `INVALID_PARAMETER`).
    public static let invalidParameter = RemotingResponseCode(rawValue: 29)

    /// A name for logs and error messages, e.g. `KEY_NOT_FOUND(22)`; codes this target does not define
    /// print as `code 1001`.
    public var description: String {
        let name: String
        switch rawValue {
        case 0: name = "SUCCESS"
        case 1: name = "SYSTEM_ERROR"
        case 2: name = "SYSTEM_BUSY"
        case 3: name = "REQUEST_CODE_NOT_SUPPORTED"
        case 14: name = "SERVICE_NOT_AVAILABLE"
        case 17: name = "TOPIC_NOT_EXIST"
        case 22: name = "KEY_NOT_FOUND"
        case 29: name = "INVALID_PARAMETER"
        default: return "code \(rawValue)"
        }
        return "\(name)(\(rawValue))"
    }
}

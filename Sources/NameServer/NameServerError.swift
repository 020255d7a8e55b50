import Remoting

/// Why a name-server operation failed. The in-process and the network client throw the same cases, so
/// callers need not know which one they hold.
public enum NameServerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// An argument is missing, malformed or over a limit; the text says which.
    case invalidArgument(String)
    /// The topic was not created (or was deleted).
    case topicNotFound(String)
    /// No live store node is registered in the cluster.
    case clusterNotFound(String)
    /// The node is not registered (or has expired): it must register again.
    case nodeNotRegistered(kind: NodeKind, address: String)
    /// The database failed; the text is SQLite's.
    case storageFailed(String)
    /// The name server is not running (not started, or shutting down).
    case notRunning
    /// The name server could not be reached or did not answer.
    case unavailable(RemotingError)
    /// The name server answered with a code this client does not expect.
    case unexpectedResponse(code: RemotingResponseCode, remark: String)

    public var description: String {
        switch self {
        case .invalidArgument(let text): return text
        case .topicNotFound(let topic): return "topic \(topic) does not exist"
        case .clusterNotFound(let cluster): return "no live store node is registered in cluster \(cluster)"
        case .nodeNotRegistered(let kind, let address): return "\(kind) node \(address) is not registered"
        case .storageFailed(let text): return "storage failed: \(text)"
        case .notRunning: return "the name server is not running"
        case .unavailable(let error): return "\(error)"
        case .unexpectedResponse(let code, let remark): return "unexpected response \(code)" + (remark.isEmpty ? "" : ": \(remark)")
        }
    }
}

/// Why a request through ``RemotingClient`` failed. Each case names the peer, so the message alone tells
/// an operator where to look.
public enum RemotingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing listens on the address (`ECONNREFUSED`).
    case connectionRefused(address: String)
    /// The TCP connection was not established within the connect timeout.
    case connectTimeout(address: String, timeoutMilliseconds: Int64)
    /// The connection could not be made for another reason (unknown host, unreachable network, ...).
    case connectionFailed(address: String, reason: String)
    /// The connection closed while the request was in flight; `reason` says why when it is known.
    case connectionClosed(address: String, reason: String?)
    /// No response within the request's timeout. The connection stays open; a late response is dropped.
    case timeout(address: String, requestCode: Int32, timeoutMilliseconds: Int64)
    /// The request cannot be sent: it breaks the frame limits (too large, too many headers, ...).
    case invalidRequest(RemotingFrameError)
    /// The connection already has its maximum number of requests in flight.
    case tooManyRequestsInFlight(address: String, limit: Int)
    /// The peer answered with a code other than success (from ``RemotingCommand/expectSuccess(from:)``).
    case remote(address: String, code: RemotingResponseCode, remark: String)
    /// ``RemotingClient/shutdown()`` has been called.
    case clientShutDown

    public var description: String {
        switch self {
        case .connectionRefused(let address):
            return "connection refused by \(address)"
        case .connectTimeout(let address, let milliseconds):
            return "could not connect to \(address) within \(milliseconds) ms"
        case .connectionFailed(let address, let reason):
            return "could not connect to \(address): \(reason)"
        case .connectionClosed(let address, let reason):
            return "connection to \(address) closed" + (reason.map { ": \($0)" } ?? "")
        case .timeout(let address, let code, let milliseconds):
            return "no response from \(address) within \(milliseconds) ms (request code \(code))"
        case .invalidRequest(let frameError):
            return "request cannot be sent: \(frameError)"
        case .tooManyRequestsInFlight(let address, let limit):
            return "\(limit) requests already in flight to \(address)"
        case .remote(let address, let code, let remark):
            return "\(address) answered \(code)" + (remark.isEmpty ? "" : ": \(remark)")
        case .clientShutDown:
            return "the remoting client is shut down"
        }
    }

    /// Whether the peer could not be reached or did not answer (as opposed to answering with an error):
    /// the request may be tried on another server.
    public var isUnavailable: Bool {
        switch self {
        case .connectionRefused, .connectTimeout, .connectionFailed, .connectionClosed, .timeout, .tooManyRequestsInFlight:
            return true
        case .invalidRequest, .remote, .clientShutDown:
            return false
        }
    }
}

extension RemotingCommand {
    /// Returns the response if its code is success; otherwise throws ``RemotingError/remote(address:code:remark:)``.
    public func expectSuccess(from address: RemotingAddress) throws(RemotingError) -> RemotingCommand {
        guard responseCode == .success else {
            throw .remote(address: "\(address)", code: responseCode, remark: remark ?? "")
        }
        return self
    }
}

import Logging
import NIOCore

/// What a request handler knows about the request besides its command.
public struct RemotingRequestContext: Sendable {
    /// The client's address, when the socket knows it.
    public var remoteAddress: SocketAddress?
    /// The server's logger, with the peer in its metadata.
    public var logger: Logger
}

/// Thrown by a request handler to answer with a specific response code and remark.
///
/// Any other error thrown by a handler is answered with ``RemotingResponseCode/systemError`` and the
/// error's description as remark.
public struct RemotingResponseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: RemotingResponseCode
    public var remark: String

    public init(_ code: RemotingResponseCode, _ remark: String) {
        self.code = code
        self.remark = remark
    }

    public var description: String { "\(code): \(remark)" }
}

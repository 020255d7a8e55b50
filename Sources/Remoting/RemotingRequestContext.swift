import Logging
import NIOCore

/// What a request handler knows about the request besides its command.
public struct RemotingRequestContext: Sendable {
    /// The client's address, when the socket knows it.
    public var remoteAddress: SocketAddress?
    /// The server's logger, with the peer in its metadata.
    public var logger: Logger
    /// The connection the request came on: a handler keeps it to push oneway requests to the client later
    /// (notifications), and learns from ``RemotingServerConnection/closeFuture`` when it goes away.
    public var connection: RemotingServerConnection?

    public init(remoteAddress: SocketAddress?, logger: Logger, connection: RemotingServerConnection? = nil) {
        self.remoteAddress = remoteAddress
        self.logger = logger
        self.connection = connection
    }
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

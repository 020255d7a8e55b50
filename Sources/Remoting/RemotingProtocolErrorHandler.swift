import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The last handler of every remoting pipeline: a connection that sent a malformed frame cannot be
/// resynchronised, so it is closed, with the reason in the log. Other connections are not affected.
///
/// Kept apart from the decoder so that what is wrong (``RemotingFrameError``) and what to do about it
/// (log, close) stay separate.
public final class RemotingProtocolErrorHandler: ChannelInboundHandler {
    public typealias InboundIn = NIOAny

    private let logger: Logger
    /// Who is at the other end, for the log: "client" on a server, "server" on a client.
    private let peerRole: String

    public init(logger: Logger, peerRole: String) {
        self.logger = logger
        self.peerRole = peerRole
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let peer = context.remoteAddress.map { "\($0)" } ?? "unknown"
        switch error {
        case let frameError as RemotingFrameError:
            logger.warning(
                "closing connection: malformed frame from \(peerRole)",
                metadata: ["remoting.peer": "\(peer)", "remoting.reason": "\(frameError)"]
            )
        case let ioError as IOError where ioError.errnoCode == ECONNRESET || ioError.errnoCode == EPIPE:
            logger.debug("connection reset by \(peerRole)", metadata: ["remoting.peer": "\(peer)"])
        default:
            logger.warning(
                "closing connection after an error",
                metadata: ["remoting.peer": "\(peer)", "remoting.reason": "\(error)"]
            )
        }
        context.close(promise: nil)
    }
}

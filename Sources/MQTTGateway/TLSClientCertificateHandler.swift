import NIOCore
import NIOSSL
import NIOTLS

/// Sits behind the `NIOSSLServerHandler` of a TLS or WSS connection and, when the handshake completes,
/// takes the verified client certificate's identity for the connection's ``ConnectionTransport``. The
/// handshake completes before any application data is read, so the identity is known before CONNECT.
final class TLSClientCertificateHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The identity of the peer's certificate once the handshake has completed with one.
    private(set) var clientCertificate: TLSClientCertificate?
    /// Told the identity when it is known (TLS listener); a WSS connection reads ``clientCertificate`` at upgrade.
    var connectionHandler: MQTTConnectionHandler?

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            let sslHandler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
            if let certificate = sslHandler?.peerCertificate {
                let identity = TLSClientCertificate(certificate)
                clientCertificate = identity
                connectionHandler?.transport.clientCertificate = identity
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

import MQTTCore
import NIOCore
import NIOPosix

/// The part of a connection's pipeline every listener shares: MQTT decoder, encoder and the
/// `MQTTConnectionHandler`. TLS and WebSocket listeners put their handlers in front of it.
enum MQTTChannelPipeline {
    /// Appends the MQTT handlers to `channel`'s pipeline (on its event loop) and returns the connection
    /// handler.
    @discardableResult
    static func addMQTTHandlers(
        to channel: any Channel, services: GatewayServices, transport: ConnectionTransport
    ) throws -> MQTTConnectionHandler {
        // maxConn and the write-buffer water marks (MQTTChannelPipeline+Limits.swift).
        try admit(channel, services: services)
        let decoderLimits = MQTTPacketDecoder.Limits(maxPacketSizeBytes: services.configuration.connection.maximumPacketSizeBytes)
        // The encoder starts as 3.1.1; `configureEncoder` sets the client's version before the first
        // packet goes out.
        let encoder = MQTTPacketEncoderHandler(encoder: MQTTPacketEncoder(protocolVersion: .v3_1_1))
        let handler = MQTTConnectionHandler(services: services, connectionID: services.makeConnectionID(), encoderHandler: encoder)
        handler.transport = transport
        switch transport.kind {
        case .tcp: break
        case .tls, .webSocket, .secureWebSocket: handler.logger[metadataKey: "transport"] = "\(transport.kind.rawValue)"
        }
        try channel.pipeline.syncOperations.addHandlers(
            [ByteToMessageHandler(MQTTPacketByteDecoder(decoder: MQTTPacketDecoder(limits: decoderLimits)))]
                + inboundLimitHandlers(services: services) + [encoder, handler]
        )
        return handler
    }

    /// A server bootstrap with the socket options of every MQTT listener.
    static func serverBootstrap(group: any EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
    }
}

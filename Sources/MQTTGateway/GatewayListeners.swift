import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// The listeners of a gateway beside plain MQTT over TCP, as ``TransportConfiguration`` asks: MQTT over
/// TLS (`mqttTlsPort`), over WebSocket (`mqttWsPort`) and over WebSocket on TLS (`mqttWssPort`). Every
/// connection ends in the same MQTT handlers as a TCP one (``MQTTChannelPipeline``). Each listener logs
/// one line with its bound address ("MQTT over TLS listening address=HOST:PORT", ...), which is how
/// tests and operators learn a port chosen with 0.
final class GatewayListeners: Sendable {
    let tls: (any Channel)?
    let webSocket: (any Channel)?
    let secureWebSocket: (any Channel)?
    let tlsLoader: TLSConfigurationLoader?

    private init(tls: (any Channel)?, webSocket: (any Channel)?, secureWebSocket: (any Channel)?, tlsLoader: TLSConfigurationLoader?) {
        self.tls = tls
        self.webSocket = webSocket
        self.secureWebSocket = secureWebSocket
        self.tlsLoader = tlsLoader
    }

    /// No listener besides TCP.
    static let none = GatewayListeners(tls: nil, webSocket: nil, secureWebSocket: nil, tlsLoader: nil)

    /// Binds the listeners `services.configuration.transports` enables; on a failure closes those already
    /// bound and throws.
    static func start(services: GatewayServices, group: any EventLoopGroup, logger: Logger) async throws -> GatewayListeners {
        let configuration = services.configuration
        let transports = configuration.transports
        let tlsLoader = transports.tlsEnabled ? try TLSConfigurationLoader(files: transports.tls, logger: logger) : nil
        var bound: [any Channel] = []
        do {
            var tls: (any Channel)?
            var webSocket: (any Channel)?
            var secureWebSocket: (any Channel)?
            if let tlsLoader {
                let channel = try await bindTLS(services: services, group: group, tlsLoader: tlsLoader, port: transports.tlsPort)
                bound.append(channel)
                tls = channel
                log(logger, "MQTT over TLS listening", channel, host: configuration.host)
            }
            if transports.webSocketEnabled {
                let channel = try await bindWebSocket(services: services, group: group, tlsLoader: nil, port: transports.webSocketPort)
                bound.append(channel)
                webSocket = channel
                log(logger, "MQTT over WebSocket listening", channel, host: configuration.host, path: transports.webSocketPath)
            }
            if transports.secureWebSocketEnabled, let tlsLoader {
                let channel = try await bindWebSocket(
                    services: services, group: group, tlsLoader: tlsLoader, port: transports.secureWebSocketPort
                )
                bound.append(channel)
                secureWebSocket = channel
                log(logger, "MQTT over secure WebSocket listening", channel, host: configuration.host, path: transports.webSocketPath)
            }
            tlsLoader?.startWatching(intervalSeconds: transports.tlsReloadIntervalSeconds)
            return GatewayListeners(tls: tls, webSocket: webSocket, secureWebSocket: secureWebSocket, tlsLoader: tlsLoader)
        } catch {
            for channel in bound { try? await channel.close() }
            throw error
        }
    }

    /// Stops accepting on every listener (open connections are left to the gateway's shutdown).
    func close() async {
        tlsLoader?.stopWatching()
        for channel in [tls, webSocket, secureWebSocket].compactMap({ $0 }) {
            try? await channel.close()
        }
    }

    private static func log(_ logger: Logger, _ message: Logger.Message, _ channel: any Channel, host: String, path: String? = nil) {
        var metadata: Logger.Metadata = ["address": "\(host):\(channel.localAddress?.port ?? 0)"]
        if let path { metadata["path"] = "\(path)" }
        logger.info(message, metadata: metadata)
    }

    private static func bindTLS(
        services: GatewayServices, group: any EventLoopGroup, tlsLoader: TLSConfigurationLoader, port: Int
    ) async throws -> any Channel {
        let useCommonName = services.configuration.transports.useCertificateCommonNameAsUsername
        let bootstrap = MQTTChannelPipeline.serverBootstrap(group: group).childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                // The context current at accept: a reload applies to connections accepted after it.
                let identity = TLSClientCertificateHandler()
                try channel.pipeline.syncOperations.addHandlers([NIOSSLServerHandler(context: tlsLoader.context), identity])
                identity.connectionHandler = try MQTTChannelPipeline.addMQTTHandlers(
                    to: channel, services: services,
                    transport: ConnectionTransport(kind: .tls, useCertificateCommonNameAsUsername: useCommonName)
                )
            }
        }
        return try await bootstrap.bind(host: services.configuration.host, port: port).get()
    }

    private static func bindWebSocket(
        services: GatewayServices, group: any EventLoopGroup, tlsLoader: TLSConfigurationLoader?, port: Int
    ) async throws -> any Channel {
        let transports = services.configuration.transports
        let path = transports.webSocketPath
        let useCommonName = transports.useCertificateCommonNameAsUsername
        let kind: ConnectionTransport.Kind = tlsLoader == nil ? .webSocket : .secureWebSocket
        // One frame may carry a whole packet of the largest size the node accepts (MQTT.js sends one
        // packet per frame); the WebSocket decoder refuses larger frames before buffering them.
        let maxFrameSize = min(Int(UInt32.max), max(services.configuration.connection.maximumPacketSizeBytes, 64 * 1024))
        let bootstrap = MQTTChannelPipeline.serverBootstrap(group: group).childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                if let tlsLoader {
                    try sync.addHandlers([NIOSSLServerHandler(context: tlsLoader.context), TLSClientCertificateHandler()])
                }
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: maxFrameSize,
                    automaticErrorHandling: true,
                    shouldUpgrade: { channel, head in
                        channel.eventLoop.makeSucceededFuture(WebSocketMQTTHandler.upgradeHeaders(for: head, path: path))
                    },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            let sync = channel.pipeline.syncOperations
                            var transport = ConnectionTransport(kind: kind, useCertificateCommonNameAsUsername: useCommonName)
                            // The TLS handshake finished before the HTTP request could be read.
                            transport.clientCertificate = try? sync.handler(type: TLSClientCertificateHandler.self).clientCertificate
                            let handshake = try sync.handler(type: WebSocketHandshakeHandler.self)
                            sync.removeHandler(handshake, promise: nil)
                            let webSocket = WebSocketMQTTHandler()
                            try sync.addHandler(webSocket)
                            try MQTTChannelPipeline.addMQTTHandlers(to: channel, services: services, transport: transport)
                            webSocket.activateMQTTHandlers()
                        }
                    }
                )
                try sync.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                try sync.addHandler(WebSocketHandshakeHandler(path: path), name: WebSocketHandshakeHandler.name)
            }
        }
        return try await bootstrap.bind(host: services.configuration.host, port: port).get()
    }
}

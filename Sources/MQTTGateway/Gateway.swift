import Foundation
import LMQStore
import Logging
import MQTTAuth
import MQTTCore
import NIOCore
import NIOPosix

/// One MQTT gateway node: a SwiftNIO server speaking MQTT 3.1, 3.1.1 and 5.0 on one port, backed by an
/// LMQ store. Each connection runs `ServerConnectionStateMachine`; `MQTTConnectionHandler` executes its
/// actions against the store and the node's registries.
public final class Gateway: Sendable {
    public let configuration: GatewayConfiguration
    let services: GatewayServices
    private let serverChannel: any Channel
    private let group: MultiThreadedEventLoopGroup
    private let arrivalListenerID: UInt64

    private init(
        configuration: GatewayConfiguration, services: GatewayServices, serverChannel: any Channel,
        group: MultiThreadedEventLoopGroup, arrivalListenerID: UInt64
    ) {
        self.configuration = configuration
        self.services = services
        self.serverChannel = serverChannel
        self.group = group
        self.arrivalListenerID = arrivalListenerID
    }

    /// The port the MQTT listener is bound to (the chosen one when `mqttPort` is 0).
    public var port: Int { serverChannel.localAddress?.port ?? configuration.mqttPort }

    /// Opens the store, builds the authenticator and starts listening. Returns once the port accepts
    /// connections. `metadataPublisher` is told of the first topics and wildcard filters clients use.
    public static func start(
        configuration: GatewayConfiguration,
        logger: Logger = Logger(label: "mqtt.gateway"),
        threads: Int = System.coreCount,
        metadataPublisher: ClusterMetadataPublisher? = nil
    ) async throws -> Gateway {
        let authManager = try await configuration.auth.makeAuthManager()
        let store = try LMQStore(configuration: configuration.store, logger: logger)
        let metadata: LMQMetadataStore
        do {
            metadata = try await LMQMetadataStore.open(storePathRootDir: configuration.store.storePathRootDir)
        } catch {
            try? store.close()
            throw error
        }
        let services = GatewayServices(
            configuration: configuration, store: store, metadata: metadata, authManager: authManager, logger: logger,
            metadataPublisher: metadataPublisher
        )
        do {
            try await SessionMaintenance.recoverSessions(services: services)
        } catch {
            try? store.close()
            try? await metadata.close()
            throw error
        }
        services.maintenance.start(services: services)
        let listenerID = store.addArrivalListener { [router = services.router] queueOffsets in
            router.notify(queueOffsets)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let decoderLimits = MQTTPacketDecoder.Limits(maxPacketSizeBytes: configuration.connection.maximumPacketSizeBytes)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The encoder starts as 3.1.1; `configureEncoder` sets the client's version before the
                    // first packet goes out.
                    let encoder = MQTTPacketEncoderHandler(encoder: MQTTPacketEncoder(protocolVersion: .v3_1_1))
                    let handler = MQTTConnectionHandler(
                        services: services, connectionID: services.makeConnectionID(), encoderHandler: encoder
                    )
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(MQTTPacketByteDecoder(decoder: MQTTPacketDecoder(limits: decoderLimits))),
                        encoder,
                        handler,
                    ])
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.mqttPort).get()
        } catch {
            services.maintenance.stop()
            services.wills.cancelAll()
            store.removeArrivalListener(listenerID)
            try? store.close()
            try? await metadata.close()
            try? await group.shutdownGracefully()
            throw error
        }
        let gateway = Gateway(
            configuration: configuration, services: services, serverChannel: channel, group: group, arrivalListenerID: listenerID
        )
        logger.info("MQTT gateway listening", metadata: [
            "address": "\(configuration.host):\(gateway.port)", "store": "\(configuration.store.storePathRootDir)",
            "flushDiskType": "\(configuration.store.flushDiskType.rawValue)",
        ])
        return gateway
    }

    /// Stops accepting connections, disconnects every client (v5: DISCONNECT 0x8B), waits up to
    /// `drainTimeout` for them to close, then closes the store (flushing it) and the event loops.
    public func shutdown(drainTimeout: Duration = .seconds(3)) async {
        try? await serverChannel.close()
        for connection in services.openConnections {
            connection.serverShuttingDown()
        }
        let deadline = ContinuousClock.now.advanced(by: drainTimeout)
        // The connections close, then write their sessions and publish their wills.
        while !services.openConnections.isEmpty || services.sessions.settlingCount > 0 || services.maintenance.pendingWorkCount > 0,
            ContinuousClock.now < deadline
        {
            try? await Task.sleep(for: .milliseconds(20))
        }
        services.maintenance.stop()
        // Delayed wills stay in their session records; the next start schedules them again.
        services.wills.cancelAll()
        services.store.removeArrivalListener(arrivalListenerID)
        do {
            try services.store.close()
            try await services.metadata.close()
        } catch {
            services.logger.error("closing the store failed: \(error)")
        }
        try? await group.shutdownGracefully()
        services.logger.info("MQTT gateway stopped")
    }

    /// The number of clients with a session on this node (for tests and metrics).
    public var connectedClientCount: Int { services.sessions.count }
}

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
    /// The TLS, WebSocket and WSS listeners (GatewayListeners.swift).
    private let listeners: GatewayListeners
    /// The store in this process (standalone mode), for the node's store listener; nil in cluster mode.
    let localStore: LocalStore?

    /// A standalone gateway's store, its metadata, and how appends of server applications are dispatched.
    struct LocalStore: Sendable {
        var store: LMQStore
        var metadata: LMQMetadataStore
        var dispatcher: StandaloneDispatcher
    }

    private init(
        configuration: GatewayConfiguration, services: GatewayServices, serverChannel: any Channel,
        group: MultiThreadedEventLoopGroup, arrivalListenerID: UInt64, listeners: GatewayListeners, localStore: LocalStore?
    ) {
        self.localStore = localStore
        self.configuration = configuration
        self.services = services
        self.serverChannel = serverChannel
        self.group = group
        self.arrivalListenerID = arrivalListenerID
        self.listeners = listeners
    }

    /// The port the MQTT listener is bound to (the chosen one when `mqttPort` is 0).
    public var port: Int { serverChannel.localAddress?.port ?? configuration.mqttPort }
    /// The bound port of the MQTT over TLS listener; nil when `enableTlsServer` is off.
    public var tlsPort: Int? { listeners.tls?.localAddress?.port }
    /// The bound port of the MQTT over WebSocket listener; nil when `enableWebSocketServer` is off.
    public var webSocketPort: Int? { listeners.webSocket?.localAddress?.port }
    /// The bound port of the MQTT over secure WebSocket (WSS) listener; nil unless TLS and WebSocket are on.
    public var secureWebSocketPort: Int? { listeners.secureWebSocket?.localAddress?.port }

    /// Where a gateway's messages and sessions are kept.
    enum StoreBackend: Sendable {
        /// An LMQ store and its metadata in this process, under `configuration.store` (standalone mode).
        case local
        /// A store node (cluster mode).
        case remote(any GatewayMessageStore, any LMQMetadataStoring)

        var isRemote: Bool {
            switch self {
            case .local: false
            case .remote: true
            }
        }
    }

    /// Opens the store, builds the authenticator and starts listening. Returns once the port accepts
    /// connections. `metadataPublisher` is told of the first topics and wildcard filters clients use.
    public static func start(
        configuration: GatewayConfiguration,
        logger: Logger = Logger(label: "mqtt.gateway"),
        threads: Int = System.coreCount,
        metadataPublisher: ClusterMetadataPublisher? = nil,
        metrics: GatewayMetrics = GatewayMetrics()
    ) async throws -> Gateway {
        try await start(
            configuration: configuration, logger: logger, threads: threads, metadataPublisher: metadataPublisher, metrics: metrics,
            storeBackend: .local
        )
    }

    static func start(
        configuration: GatewayConfiguration,
        logger: Logger,
        threads: Int,
        metadataPublisher: ClusterMetadataPublisher?,
        metrics: GatewayMetrics,
        storeBackend: StoreBackend
    ) async throws -> Gateway {
        let authManager = try await configuration.auth.makeAuthManager()
        let authorizationManager = try await configuration.auth.makeAuthorizationManager()
        let store: any GatewayMessageStore
        let metadata: any LMQMetadataStoring
        var localMetadata: (store: LMQStore, metadata: LMQMetadataStore)?
        switch storeBackend {
        case .local:
            let local = try LMQStore(configuration: configuration.store, logger: logger)
            let opened: LMQMetadataStore
            do {
                opened = try await LMQMetadataStore.open(storePathRootDir: configuration.store.storePathRootDir)
            } catch {
                try? local.close()
                throw error
            }
            metadata = opened
            localMetadata = (local, opened)
            store = LocalMessageStore(local)
        case .remote(let remote, let remoteMetadata):
            store = remote
            metadata = remoteMetadata
        }
        let services = GatewayServices(
            configuration: configuration, store: store, metadata: metadata, authManager: authManager, logger: logger,
            metadataPublisher: metadataPublisher, authorizationManager: authorizationManager, metrics: metrics,
            isClustered: storeBackend.isRemote
        )
        if let remote = store as? RemoteMessageStore {
            // Before recovery adds the stored sessions' filters, so the store node hears of them too.
            services.router.observeDispatch { changes, added in remote.dispatchChanged(changes, added: added) }
            remote.probeReaders { [router = services.router] queue in router.hasReaders(queue) }
        }
        let localStore = localMetadata.map { local in
            LocalStore(store: local.store, metadata: local.metadata, dispatcher: StandaloneDispatcher(router: services.router, metadata: local.metadata))
        }
        do {
            // Server consumer groups receive from the first PUBLISH on.
            try await localStore?.dispatcher.loadConsumerGroups()
            try await SessionMaintenance.recoverSessions(services: services)
        } catch {
            try? await store.close()
            try? await metadata.close()
            throw error
        }
        services.maintenance.start(services: services)
        let listenerID = store.addArrivalListener { [router = services.router] queueOffsets in
            router.notify(queueOffsets)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        // The TLS and WebSocket listeners end in the same handlers (MQTTChannelPipeline.swift).
        let bootstrap = MQTTChannelPipeline.serverBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try MQTTChannelPipeline.addMQTTHandlers(to: channel, services: services, transport: ConnectionTransport(kind: .tcp))
                }
            }
        let channel: any Channel
        let listeners: GatewayListeners
        do {
            // Sessions record the gateway by the address it registers with (the store node publishes the wills
            // of a gateway that disappears from the registry): known before the first CONNECT is read.
            if configuration.mqttPort != 0 {
                services.boundNodeName.withLockedValue { $0 = MQTTNode.advertisedAddress(host: configuration.host, port: configuration.mqttPort) }
            }
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.mqttPort).get()
            let boundPort = channel.localAddress?.port ?? configuration.mqttPort
            services.boundNodeName.withLockedValue { $0 = MQTTNode.advertisedAddress(host: configuration.host, port: boundPort) }
            do {
                listeners = try await GatewayListeners.start(services: services, group: group, logger: logger)
            } catch {
                try? await channel.close()
                throw error
            }
        } catch {
            services.maintenance.stop()
            services.wills.cancelAll()
            store.removeArrivalListener(listenerID)
            try? await store.close()
            try? await metadata.close()
            try? await group.shutdownGracefully()
            throw error
        }
        let gateway = Gateway(
            configuration: configuration, services: services, serverChannel: channel, group: group, arrivalListenerID: listenerID,
            listeners: listeners, localStore: localStore
        )
        var listening: Logger.Metadata = ["address": "\(configuration.host):\(gateway.port)", "store": "\(store.location)"]
        if !storeBackend.isRemote {
            // A store node has its own (its broker.conf).
            listening["flushDiskType"] = "\(configuration.store.flushDiskType.rawValue)"
        }
        logger.info("MQTT gateway listening", metadata: listening)
        return gateway
    }

    /// Stops accepting connections, disconnects every client (v5: DISCONNECT 0x8B), waits up to
    /// `drainTimeout` for them to close, then closes the store (flushing it) and the event loops.
    public func shutdown(drainTimeout: Duration = .seconds(3)) async {
        try? await serverChannel.close()
        await listeners.close()
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
        // Consumer groups' registrations reach the metadata file before it closes.
        await localStore?.dispatcher.finishWrites()
        do {
            try await services.store.close()
            try await services.metadata.close()
        } catch {
            services.logger.error("closing the store failed: \(error)")
        }
        try? await group.shutdownGracefully()
        services.logger.info("MQTT gateway stopped")
    }

    /// The counters of this gateway (`/metrics`, `$SYS`).
    public var metrics: GatewayMetrics { services.metrics }

    /// The number of clients with a session on this node (for tests and metrics).
    public var connectedClientCount: Int { services.sessions.count }
}

import Logging
import NIOCore
import NIOPosix
import NameServer
import Remoting
import StoreNode

/// A node as `mqtt-node` runs it. In standalone mode (no `NAMESRV_ADDR`): the gateway on its LMQ store,
/// and the name server in the same process — listening on `namesrvListenPort`, so `mqadmin` works against
/// the node unchanged — with its data under `<storePathRootDir>/namesrv`. In cluster mode: the gateway on
/// the store nodes found through the name servers of `NAMESRV_ADDR` (docs/cluster.md). Either way a
/// ``ClusterMetadataPublisher`` keeps the name servers' registry, topics and wildcard filters current.
public final class MQTTNode: Sendable {
    public let gateway: Gateway
    /// The in-process name server of a standalone node; `nil` in cluster mode.
    public let nameServer: NameServer?
    /// Keeps the name servers' registry, first topics and wildcard lists current (the in-process name server,
    /// or those of `NAMESRV_ADDR`).
    public let metadataPublisher: ClusterMetadataPublisher?
    public let cluster: ClusterConfiguration
    /// The `/metrics` endpoint; nil when `enableExporter` is off.
    public let metricsExporter: MetricsExporter?
    /// Publishes `$SYS/broker/...`; nil when `sysInterval` is 0.
    let sysTopicPublisher: SysTopicPublisher?
    /// A standalone node's store served to server applications (`storeListenPort`); nil in cluster mode
    /// or when turned off.
    public let storeListener: StoreNodeServer?

    private init(
        gateway: Gateway, nameServer: NameServer?, metadataPublisher: ClusterMetadataPublisher?, cluster: ClusterConfiguration,
        metricsExporter: MetricsExporter? = nil, sysTopicPublisher: SysTopicPublisher? = nil, storeListener: StoreNodeServer? = nil
    ) {
        self.storeListener = storeListener
        self.gateway = gateway
        self.nameServer = nameServer
        self.metadataPublisher = metadataPublisher
        self.cluster = cluster
        self.metricsExporter = metricsExporter
        self.sysTopicPublisher = sysTopicPublisher
    }

    /// The folder of the in-process name server's database: `<storePathRootDir>/namesrv`.
    public static func nameServerDataDirectory(storePathRootDir: String) -> String {
        storePathRootDir.hasSuffix("/") ? storePathRootDir + "namesrv" : storePathRootDir + "/namesrv"
    }

    /// Starts the name server (standalone mode), then the gateway, then registers the gateway. Returns
    /// once the MQTT port (and the name server's port) accept connections.
    public static func start(
        configuration: GatewayConfiguration,
        cluster: ClusterConfiguration,
        publisherConfiguration: ClusterMetadataPublisher.Configuration? = nil,
        logger: Logger = Logger(label: "mqtt.node"),
        threads: Int = System.coreCount,
        metrics: MetricsConfiguration = MetricsConfiguration(enableExporter: false, sysIntervalSeconds: 0),
        gatewayMetrics: GatewayMetrics = GatewayMetrics()
    ) async throws -> MQTTNode {
        var publisherConfiguration = publisherConfiguration ?? ClusterMetadataPublisher.Configuration()
        publisherConfiguration.autoCreateFirstTopic = cluster.autoCreateFirstTopic
        if !cluster.isStandalone { publisherConfiguration.heartbeatInterval = .seconds(cluster.heartbeatIntervalSeconds) }
        let nameServer: NameServer?
        let publisher: ClusterMetadataPublisher?
        let storeBackend: Gateway.StoreBackend
        if cluster.isStandalone {
            let nameServerConfiguration = NameServerConfiguration(
                listenAddress: cluster.nameServerListenAddress,
                listenPort: cluster.nameServerListenPort,
                dataDir: nameServerDataDirectory(storePathRootDir: configuration.store.storePathRootDir),
                logLevel: logger.logLevel
            )
            var nameServerLogger = logger
            nameServerLogger[metadataKey: "role"] = "namesrv"
            let server = NameServer(configuration: nameServerConfiguration, logger: nameServerLogger)
            try await server.start()
            nameServer = server
            publisher = ClusterMetadataPublisher(nameServers: [server.client], configuration: publisherConfiguration, logger: logger)
            storeBackend = .local
        } else {
            nameServer = nil
            let client = try await StoreNodeDiscovery.connect(cluster: cluster, logger: logger)
            let nameServers = try cluster.nameServerClients()
            storeBackend = .remote(RemoteMessageStore(client: client, nameServers: nameServers, logger: logger), client)
            // First topics this gateway creates are routed to the store node it appends to.
            publisherConfiguration.storeAddress = "\(client.address)"
            publisher = ClusterMetadataPublisher(nameServers: nameServers, configuration: publisherConfiguration, logger: logger)
        }
        let gateway: Gateway
        do {
            gateway = try await Gateway.start(
                configuration: configuration, logger: logger, threads: threads, metadataPublisher: publisher, metrics: gatewayMetrics,
                storeBackend: storeBackend
            )
        } catch {
            await nameServer?.shutdown()
            throw error
        }
        var storeListener: StoreNodeServer?
        if let nameServer, let port = cluster.storeListenPort, let local = gateway.localStore, let nameServerPort = nameServer.port {
            // Registered with the in-process name server as a store node: server applications find the
            // node's store as they find a cluster's.
            var brokerConfiguration = BrokerConfiguration(
                listenAddress: cluster.storeListenAddress, listenPort: port, brokerName: "standalone",
                nameServerAddresses: RemotingAddress(parsing: cluster.localNameServerAddress(port: nameServerPort)).map { [$0] } ?? [],
                store: configuration.store, logLevel: logger.logLevel
            )
            brokerConfiguration.heartbeatIntervalSeconds = cluster.heartbeatIntervalSeconds
            var storeLogger = logger
            storeLogger[metadataKey: "role"] = "store"
            let server = StoreNodeServer(
                configuration: brokerConfiguration, embedding: local.store, metadata: local.metadata, dispatcher: local.dispatcher,
                logger: storeLogger
            )
            do {
                try await server.start()
            } catch {
                await gateway.shutdown()
                await nameServer.shutdown()
                throw error
            }
            storeListener = server
        }
        let exporter: MetricsExporter?
        do {
            exporter = try await startExporter(metrics, gateway: gateway, logger: logger)
        } catch {
            await storeListener?.shutdown()
            await gateway.shutdown()
            await nameServer?.shutdown()
            throw error
        }
        let sysPublisher = metrics.sysIntervalSeconds > 0
            ? SysTopicPublisher(services: gateway.services, intervalSeconds: metrics.sysIntervalSeconds) : nil
        let node = MQTTNode(
            gateway: gateway, nameServer: nameServer, metadataPublisher: publisher, cluster: cluster, metricsExporter: exporter,
            sysTopicPublisher: sysPublisher, storeListener: storeListener
        )
        if let publisher {
            publisher.start(node: .gateway(
                address: advertisedAddress(host: configuration.host, port: gateway.port), name: gateway.services.instanceIdentifier
            ))
        }
        if let port = nameServer?.port {
            logger.info("standalone node: name server in process", metadata: [
                "nameServer": "\(cluster.localNameServerAddress(port: port))",
                "dataDir": "\(nameServerDataDirectory(storePathRootDir: configuration.store.storePathRootDir))",
            ])
        }
        return node
    }

    /// The bound port of the in-process name server (the chosen one when `namesrvListenPort` is 0).
    public var nameServerPort: Int? { nameServer?.port }

    /// Stops the gateway (clients are disconnected), unregisters it, then stops the name server.
    public func shutdown() async {
        await metricsExporter?.shutdown()
        // Before the store closes: the publisher writes to it.
        await sysTopicPublisher?.stop()
        // Before the gateway closes the store it serves.
        await storeListener?.shutdown()
        await gateway.shutdown()
        await metadataPublisher?.stop()
        await nameServer?.shutdown()
    }

    /// The `host:port` other nodes and tools reach the MQTT listener on: the listen address, or for a
    /// wildcard one the first IPv4 address of a network interface that is not loopback (loopback if
    /// there is none).
    static func advertisedAddress(host: String, port: Int) -> String {
        switch host {
        case "0.0.0.0", "::", "":
            let devices = (try? System.enumerateDevices()) ?? []
            for device in devices {
                guard case .v4? = device.address, let ip = device.address?.ipAddress, !ip.hasPrefix("127.") else { continue }
                return "\(ip):\(port)"
            }
            return "127.0.0.1:\(port)"
        default:
            return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

extension MQTTNode {
    /// Starts `/metrics` when `enableExporter` is on, and logs "metrics exporter listening address=HOST:PORT"
    /// (the bound port, so a port chosen with 0 can be found, as for the MQTT listener).
    static func startExporter(_ configuration: MetricsConfiguration, gateway: Gateway, logger: Logger) async throws -> MetricsExporter? {
        guard configuration.enableExporter else { return nil }
        let services = gateway.services
        let exporter = try await MetricsExporter.start(
            host: configuration.exporterListenAddress, port: configuration.exporterPort, metrics: services.metrics,
            group: MultiThreadedEventLoopGroup.singleton
        ) {
            // Read, not counted: refreshed for each scrape.
            services.metrics.lmqQueues.set(to: Double(services.store.queueCount))
            services.metrics.sessionsConnected.set(to: Double(services.sessions.count))
            if let retained = try? await services.metadata.retainedCount() {
                services.metrics.retainedMessages.set(to: Double(retained))
            }
        }
        logger.info("metrics exporter listening", metadata: [
            "address": "\(configuration.exporterListenAddress):\(exporter.port)", "path": "/metrics",
        ])
        return exporter
    }
}

import Foundation
import LMQStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NameServer
import Remoting

/// A store node: the LMQ store and its metadata, served over the remoting protocol
/// (docs/store-protocol.md) to gateways, and registered with the name servers.
///
/// ```swift
/// let server = StoreNodeServer(configuration: configuration, logger: logger)
/// let port = try await server.start()
/// ...
/// await server.shutdown()
/// ```
public final class StoreNodeServer: Sendable {
    public let configuration: BrokerConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let heartbeatInterval: Duration
    private let retainedSweepInterval: Duration
    private let dispatchProvisionalPeriod: Duration
    private let embedded: Embedded?

    /// What a node serves when it runs inside another process that owns the store (a standalone MQTT node
    /// serving its in-process store to server applications).
    private struct Embedded: Sendable {
        var store: LMQStore
        var metadata: LMQMetadataStore
        var dispatcher: any MessageDispatching
    }

    private struct Running: Sendable {
        var store: LMQStore
        var metadata: LMQMetadataStore
        var remoting: RemotingServer
        var listenerID: UInt64
        var port: Int
        var heartbeat: Task<Void, Never>?
        var upkeep: Task<Void, Never>?
        var nameServerClient: RemotingClient?
        var gatewayMonitor: GatewayLivenessMonitor?
        /// Nil when embedded: the owner keeps the store, its metadata and the dispatch.
        var dispatch: DispatchRegistry?
    }

    private enum Phase: Sendable {
        case idle
        case starting
        case running(Running)
        case stopped
    }

    private let phase = NIOLockedValueBox(Phase.idle)

    /// - Parameters:
    ///   - heartbeatInterval: how often the node heartbeats to each name server. Default:
    ///     `heartbeatIntervalSeconds` of the configuration.
    ///   - retainedSweepInterval: how often expired retained messages are deleted. Default: 60 s.
    ///   - dispatchProvisionalPeriod: how long wildcard registrations kept from before the start are used
    ///     without a gateway registering them again. Default: ``DispatchRegistry/provisionalSeconds``.
    public init(
        configuration: BrokerConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "broker"),
        heartbeatInterval: Duration? = nil,
        retainedSweepInterval: Duration = .seconds(60),
        dispatchProvisionalPeriod: Duration = .seconds(DispatchRegistry.provisionalSeconds)
    ) {
        self.dispatchProvisionalPeriod = dispatchProvisionalPeriod
        self.embedded = nil
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        self.heartbeatInterval = heartbeatInterval ?? .seconds(configuration.heartbeatIntervalSeconds)
        self.retainedSweepInterval = retainedSweepInterval
    }

    /// A node serving `store` and `metadata`, which the caller opened and closes: appends are dispatched by
    /// `dispatcher`, and the node neither sweeps retained messages nor watches gateways (the owner does
    /// what its own process needs). It registers with the name servers of the configuration, so that server
    /// applications find it as they find a cluster's store nodes.
    public init(
        configuration: BrokerConfiguration,
        embedding store: LMQStore,
        metadata: LMQMetadataStore,
        dispatcher: any MessageDispatching,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "broker")
    ) {
        self.configuration = configuration
        self.embedded = Embedded(store: store, metadata: metadata, dispatcher: dispatcher)
        self.group = eventLoopGroup
        self.logger = logger
        self.heartbeatInterval = .seconds(configuration.heartbeatIntervalSeconds)
        self.retainedSweepInterval = .seconds(60)
        self.dispatchProvisionalPeriod = .seconds(DispatchRegistry.provisionalSeconds)
    }

    /// The address registered with the name servers, once started.
    public var advertisedAddress: String? {
        port.map { "\(RemotingAddress(host: configuration.advertisedHost, port: $0))" }
    }

    /// The bound port while the node runs.
    public var port: Int? {
        phase.withLockedValue { phase in
            guard case .running(let running) = phase else { return nil }
            return running.port
        }
    }

    /// Opens the store (recovering it if needed) and its metadata, starts listening and registers with the
    /// name servers.
    ///
    /// - Returns: the bound port.
    @discardableResult
    public func start() async throws -> Int {
        phase.withLockedValue { phase in
            guard case .idle = phase else { preconditionFailure("StoreNodeServer.start called twice") }
            phase = .starting
        }
        let store: LMQStore
        let metadata: LMQMetadataStore
        let dispatcher: any MessageDispatching
        var registry: DispatchRegistry?
        if let embedded {
            (store, metadata, dispatcher) = (embedded.store, embedded.metadata, embedded.dispatcher)
        } else {
            do {
                store = try LMQStore(configuration: configuration.store, logger: logger)
            } catch {
                phase.withLockedValue { $0 = .stopped }
                throw error
            }
            do {
                metadata = try await LMQMetadataStore.open(storePathRootDir: configuration.store.storePathRootDir)
            } catch {
                try? store.close()
                phase.withLockedValue { $0 = .stopped }
                throw error
            }
            // Offline persistent sessions keep receiving through their wildcard filters, whichever gateways live.
            let dispatch = DispatchRegistry(metadata: metadata)
            do {
                let kept = try await metadata.dispatchRegistrations().map { DispatchRegistration(filter: $0.topicFilter, clientIdentifier: $0.clientIdentifier) }
                dispatch.load(try await metadata.allSessions(), kept: kept)
            } catch {
                try? store.close()
                try? await metadata.close()
                phase.withLockedValue { $0 = .stopped }
                throw error
            }
            registry = dispatch
            dispatcher = dispatch
        }
        let watches = StoreNodeWatchRegistry()
        let remoting = RemotingServer(
            configuration: .init(host: configuration.listenAddress, port: configuration.listenPort),
            eventLoopGroup: group, logger: logger
        )
        let ownership = SessionOwnership()
        StoreNodeRequestHandlers(
            store: store, metadata: metadata, watches: watches, dispatch: dispatcher, ownership: ownership,
            sharedGroups: SharedGroupRegistry(store: store, metadata: metadata)
        ).register(on: remoting)
        let listenerID = store.addArrivalListener { queueOffsets in watches.arrived(queueOffsets) }
        let port: Int
        do {
            port = try await remoting.start()
        } catch {
            store.removeArrivalListener(listenerID)
            if embedded == nil {
                try? store.close()
                try? await metadata.close()
            }
            phase.withLockedValue { $0 = .stopped }
            throw error
        }
        let address = "\(RemotingAddress(host: configuration.advertisedHost, port: port))"
        var nameServerClient: RemotingClient?
        var heartbeat: Task<Void, Never>?
        var gatewayMonitor: GatewayLivenessMonitor?
        if !configuration.nameServerAddresses.isEmpty {
            let client = RemotingClient(eventLoopGroup: group, logger: logger)
            let heartbeater = NodeHeartbeater(
                node: .store(name: configuration.brokerName, cluster: configuration.brokerClusterName, address: address),
                nameServers: configuration.nameServerAddresses.map { RemotingNameServerClient(address: $0, remotingClient: client) },
                interval: heartbeatInterval, logger: logger
            )
            nameServerClient = client
            heartbeat = Task { await heartbeater.run() }
            // The wills of a dead gateway's clients are the cluster's to publish (GatewayLivenessMonitor).
            if let registry { gatewayMonitor = GatewayLivenessMonitor(
                nameServers: heartbeater.nameServers, store: store, metadata: metadata, dispatch: registry, ownership: ownership,
                ownAddress: address,
                checkInterval: .seconds(configuration.gatewayCheckIntervalSeconds),
                settings: .init(minimumMissingDuration: .seconds(configuration.gatewayMissingSeconds)), logger: logger
            ) }
            gatewayMonitor?.start()
        }
        let upkeep = registry.map { dispatch in Task { [retainedSweepInterval, dispatchProvisionalPeriod, logger] in
            // Retention and checkpoints run in the store's own flusher; expired retained messages are
            // the one sweep left to the node. Registrations kept from before the start that no gateway
            // registered again are dropped once the gateways had the time to.
            let started = ContinuousClock.now
            var lastSweep = started
            var provisionalDropped = false
            while !Task.isCancelled {
                try? await Task.sleep(for: min(retainedSweepInterval, .seconds(1)))
                guard !Task.isCancelled else { return }
                let now = ContinuousClock.now
                if !provisionalDropped, now - started >= dispatchProvisionalPeriod {
                    provisionalDropped = true
                    let dropped = dispatch.dropProvisional()
                    if dropped > 0 {
                        logger.info("dropped wildcard registrations no gateway renewed since the start", metadata: ["count": "\(dropped)"])
                    }
                }
                guard now - lastSweep >= retainedSweepInterval else { continue }
                lastSweep = now
                do {
                    let deleted = try await metadata.deleteExpiredRetained(nowMillis: Date.nowMillis)
                    if deleted > 0 { logger.debug("deleted expired retained messages", metadata: ["count": "\(deleted)"]) }
                } catch {
                    logger.warning("sweeping expired retained messages failed", metadata: ["error": "\(error)"])
                }
            }
        } }
        phase.withLockedValue { phase in
            phase = .running(Running(
                store: store, metadata: metadata, remoting: remoting, listenerID: listenerID, port: port,
                heartbeat: heartbeat, upkeep: upkeep, nameServerClient: nameServerClient,
                gatewayMonitor: gatewayMonitor, dispatch: registry
            ))
        }
        logger.info("store node listening", metadata: [
            "listen": "\(configuration.listenAddress):\(port)", "address": "\(address)", "brokerName": "\(configuration.brokerName)",
            "cluster": "\(configuration.brokerClusterName)", "store": "\(configuration.store.storePathRootDir)",
            "flushDiskType": "\(configuration.store.flushDiskType.rawValue)",
            "nameServers": "\(configuration.nameServerAddresses.map(\.description).joined(separator: ";"))",
        ])
        return port
    }

    /// Unregisters from the name servers, stops serving (letting running requests finish), and closes the
    /// store after a final flush and checkpoint.
    public func shutdown() async {
        let running = phase.withLockedValue { phase -> Running? in
            defer { phase = .stopped }
            guard case .running(let running) = phase else { return nil }
            return running
        }
        guard let running else { return }
        // Before the name server client and the store close: the monitor uses both.
        await running.gatewayMonitor?.stop()
        if let heartbeat = running.heartbeat {
            // Cancelling makes the heartbeater unregister the node before it returns.
            heartbeat.cancel()
            await heartbeat.value
        }
        await running.nameServerClient?.shutdown()
        running.upkeep?.cancel()
        await running.remoting.shutdown()
        running.store.removeArrivalListener(running.listenerID)
        guard let dispatch = running.dispatch else {
            logger.info("store listener stopped")
            return
        }
        // The last registrations reach the metadata file before it closes.
        await dispatch.finishWrites()
        do {
            try running.store.close()
        } catch {
            logger.error("closing the store failed", metadata: ["error": "\(error)"])
        }
        try? await running.metadata.close()
        logger.info("store node stopped")
    }
}

extension Date {
    /// Milliseconds since 1970.
    static var nowMillis: Int64 { Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)) }
}

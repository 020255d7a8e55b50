import LMQStore
import Logging
import MQTTAuth
import NIOConcurrencyHelpers
import StoreNode

/// The parts of a node that every connection shares: the store, the authenticator and the registries.
final class GatewayServices: Sendable {
    let configuration: GatewayConfiguration
    /// The commit log and the light message queues: in this process, or a store node's.
    let store: any GatewayMessageStore
    /// Retained messages, persistent sessions and their consume offsets: SQLite in this process, or a
    /// store node's.
    let metadata: any LMQMetadataStoring
    let authManager: any AuthManager
    /// The ACL (`aclFile`); `nil` when there is none and everything is allowed.
    let authorizationManager: (any AuthorizationManager)?
    /// `maxConn` (MQTTChannelPipeline+Limits.swift).
    let connectionLimiter: ConnectionLimiter
    /// How often limits and the ACL acted (also exported as `mqtt_limit_events_total`).
    let limitCounters: LimitCounters
    /// Counters and gauges for `/metrics` and `$SYS` (Metrics/GatewayMetrics.swift).
    let metrics: GatewayMetrics
    let sessions: SessionRegistry
    let router = SubscriptionRouter()
    let wills = WillScheduler()
    let maintenance = SessionMaintenance()
    let sharedGroups: SharedSubscriptionGroups
    let logger: Logger
    /// Told of first topics and wildcard filters in use, to keep the name server current; `nil` when
    /// the node reports to no name server.
    let metadataPublisher: ClusterMetadataPublisher?
    /// The store is a store node shared with other gateways (cluster mode).
    let isClustered: Bool
    /// Cluster-wide takeover of client identifiers; nil in standalone mode.
    let ownership: ClusterSessionOwnership?
    /// The address other nodes know this gateway by, once its listener is bound (`nodeName`).
    let boundNodeName = NIOLockedValueBox<String?>(nil)
    private let liveConnections = NIOLockedValueBox<[UInt64: ConnectionHandle]>([:])
    private let lastConnectionID = NIOLockedValueBox<UInt64>(0)

    init(
        configuration: GatewayConfiguration, store: any GatewayMessageStore, metadata: any LMQMetadataStoring, authManager: any AuthManager, logger: Logger,
        metadataPublisher: ClusterMetadataPublisher? = nil, authorizationManager: (any AuthorizationManager)? = nil,
        metrics: GatewayMetrics = GatewayMetrics(), isClustered: Bool = false
    ) {
        self.isClustered = isClustered
        let sessions = SessionRegistry()
        self.sessions = sessions
        let storeNode = metadata as? StoreNodeClient
        ownership = storeNode.map { ClusterSessionOwnership(client: $0, sessions: sessions, logger: logger) }
        let routes = (store as? RemoteMessageStore)?.routes
        var groupNode: (@Sendable (String) -> StoreNodeClient)?
        if let routes {
            groupNode = { queue in routes.node(forQueue: queue) ?? routes.primary }
        }
        let sharedGroups = SharedSubscriptionGroups(remote: groupNode)
        self.sharedGroups = sharedGroups
        routes?.onEveryNode { node in node.setSharedReturnedHandler { key in sharedGroups.messagesReturned(key: key) } }
        self.metrics = metrics
        self.limitCounters = LimitCounters(metrics: metrics)
        self.configuration = configuration
        self.store = store
        self.metadata = metadata
        self.authManager = authManager
        self.authorizationManager = authorizationManager
        self.connectionLimiter = ConnectionLimiter(maximumConnections: configuration.limits.maximumConnections)
        self.logger = logger
        self.metadataPublisher = metadataPublisher
    }

    /// Names this run of the node in assigned client identifiers (`auto-<instance>-<connection>`), so that
    /// an identifier assigned before a restart is never assigned again and cannot resume someone else's
    /// stored session ([MQTT-3.2.2-16]: unique on the server).
    let instanceIdentifier = String(UInt64.random(in: 0...UInt64.max), radix: 36)

    /// A new connection identifier: unique in this process, and part of assigned client identifiers.
    func makeConnectionID() -> UInt64 {
        lastConnectionID.withLockedValue { last in
            last += 1
            return last
        }
    }

    func connectionOpened(_ handle: ConnectionHandle) {
        liveConnections.withLockedValue { $0[handle.connectionID] = handle }
    }

    func connectionClosed(_ connectionID: UInt64) {
        liveConnections.withLockedValue { $0[connectionID] = nil }
    }

    /// Open network connections, connected or not.
    var openConnections: [ConnectionHandle] {
        liveConnections.withLockedValue { Array($0.values) }
    }
}

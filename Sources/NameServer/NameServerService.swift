import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Remoting
import SQLite

/// The name server's logic, in process: the metadata (memory, backed by SQLite) and the node registry.
///
/// Reads are served from memory under a lock. Writes run on a thread of their own (SQLite blocks):
/// with the database held, a write is planned against the metadata, committed, then applied in memory,
/// so memory never shows what the disk does not have, and writes apply in commit order.
///
/// This is the in-process ``NameServerClient`` of standalone mode; ``NameServer`` serves the same object
/// over the network.
public final class NameServerService: NameServerClient {
    private let store: NameServerStore
    private let metadata: NIOLockedValueBox<NameServerMetadata>
    private let registry: NIOLockedValueBox<NodeRegistry>
    private let threadPool: NIOThreadPool
    private let limits: NameServerLimits
    private let logger: Logger
    private let clock = ContinuousClock()

    /// Opens the database in `directory` (which must exist) and loads it.
    init(directory: String, configuration: NameServerConfiguration, logger: Logger) throws(NameServerError) {
        store = try NameServerStore(directory: directory)
        limits = configuration.limits
        metadata = NIOLockedValueBox(try store.load(limits: configuration.limits))
        registry = NIOLockedValueBox(NodeRegistry(expiry: configuration.nodeExpiry, maxNodeCount: configuration.limits.maxNodeCount))
        self.logger = logger
        // One thread: the database serializes writes anyway.
        threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
    }

    /// Counts of what is stored, for the start-up log.
    var summary: (namespaces: Int, keys: Int, topics: Int) {
        metadata.withLockedValue { ($0.namespaces.count, $0.keyCount, $0.topics.count) }
    }

    /// Stops taking writes and closes the database; later calls throw ``NameServerError/notRunning``.
    func close() async {
        try? await threadPool.shutdownGracefully()
        store.close()
    }

    // MARK: Writes

    /// Plans, commits and applies one write on the database thread.
    private func write<Result: Sendable>(
        _ plan: @escaping @Sendable (NameServerMetadata) throws -> PlannedWrite<Result>
    ) async throws(NameServerError) -> Result {
        let store = self.store
        let metadata = self.metadata
        do {
            return try await threadPool.runIfActive {
                try store.database.withConnection { connection in
                    let planned = try metadata.withLockedValue { metadata in try plan(metadata) }
                    guard !planned.changes.isEmpty else { return planned.result }
                    try store.commit(planned.changes, on: connection)
                    metadata.withLockedValue { $0.apply(planned.changes) }
                    return planned.result
                }
            }
        } catch let error as NameServerError {
            throw error
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw .notRunning
        } catch {
            throw .storageFailed("\(error)")
        }
    }

    // MARK: KV

    public func getKV(namespace: String, key: String) async throws(NameServerError) -> String? {
        metadata.withLockedValue { $0.value(namespace: namespace, key: key) }
    }

    public func putKV(namespace: String, key: String, value: String) async throws(NameServerError) {
        try await write { metadata in
            PlannedWrite(changes: try metadata.planPut(namespace: namespace, key: key, value: value), result: ())
        }
    }

    @discardableResult
    public func deleteKV(namespace: String, key: String) async throws(NameServerError) -> Bool {
        try await write { metadata in
            guard let changes = try metadata.planDelete(namespace: namespace, key: key) else { return PlannedWrite(changes: [], result: false) }
            return PlannedWrite(changes: changes, result: true)
        }
    }

    public func listKV(namespace: String) async throws(NameServerError) -> [String: String] {
        metadata.withLockedValue { $0.entries(namespace: namespace) }
    }

    // MARK: Topics

    @discardableResult
    public func updateTopic(_ topic: String, target: TopicTarget) async throws(NameServerError) -> TopicRoute {
        let storeAddresses: [String]
        switch target {
        case .none:
            storeAddresses = []
        case .storeAddress(let address):
            storeAddresses = [address]
        case .cluster(let cluster):
            let now = clock.now
            storeAddresses = registry.withLockedValue { $0.storeAddresses(inCluster: cluster, now: now) }
            guard !storeAddresses.isEmpty else { throw .clusterNotFound(cluster) }
        }
        let route = try await write { metadata in
            let planned = try metadata.planUpdateTopic(topic, addingStores: storeAddresses)
            return PlannedWrite(changes: planned.changes, result: planned.route)
        }
        logger.info("topic updated", metadata: ["topic": "\(topic)", "stores": "\(route.storeAddresses.joined(separator: ","))"])
        return route
    }

    public func deleteTopic(_ topic: String) async throws(NameServerError) {
        try await write { metadata in
            PlannedWrite(changes: try metadata.planDeleteTopic(topic), result: ())
        }
        logger.info("topic deleted", metadata: ["topic": "\(topic)"])
    }

    public func topicList() async throws(NameServerError) -> [String] {
        metadata.withLockedValue { $0.topics.keys.sorted() }
    }

    public func topicRoute(_ topic: String) async throws(NameServerError) -> TopicRoute {
        guard let route = metadata.withLockedValue({ $0.topics[topic] }) else { throw .topicNotFound(topic) }
        return route
    }

    // MARK: Node registry

    public func registerNode(_ node: NodeInfo) async throws(NameServerError) {
        try validate(node)
        let now = clock.now
        let outcome = registry.withLockedValue { $0.register(node, now: now) }
        let metadata: Logger.Metadata = ["node.kind": "\(node.kind)", "node.address": "\(node.address)", "node.name": "\(node.name)", "node.cluster": "\(node.cluster)"]
        switch outcome {
        case .added:
            logger.info("node registered", metadata: metadata)
        case .refreshed:
            break
        case .replaced(let previous):
            logger.info("node re-registered with a new name or cluster", metadata: metadata.merging(["node.previous": "\(previous.name)@\(previous.cluster)"]) { $1 })
        case .full(let limit):
            throw .invalidArgument("the registry holds its maximum of \(limit) nodes")
        }
    }

    public func heartbeat(kind: NodeKind, address: String) async throws(NameServerError) {
        let now = clock.now
        guard registry.withLockedValue({ $0.heartbeat(kind: kind, address: address, now: now) }) else {
            throw .nodeNotRegistered(kind: kind, address: address)
        }
    }

    @discardableResult
    public func unregisterNode(kind: NodeKind, address: String) async throws(NameServerError) -> Bool {
        guard let node = registry.withLockedValue({ $0.unregister(kind: kind, address: address) }) else { return false }
        logger.info("node unregistered", metadata: ["node.kind": "\(node.kind)", "node.address": "\(node.address)"])
        return true
    }

    public func listNodes(kind: NodeKind) async throws(NameServerError) -> [NodeStatus] {
        let now = clock.now
        return registry.withLockedValue { $0.nodes(kind: kind, now: now) }
    }

    /// Drops the nodes that have been silent too long and logs each one. Run periodically by ``NameServer``.
    func expireNodes() {
        let now = clock.now
        let expired = registry.withLockedValue { $0.expire(now: now) }
        for (node, silence) in expired {
            logger.warning(
                "node expired: no heartbeat for \(silence.milliseconds) ms",
                metadata: ["node.kind": "\(node.kind)", "node.address": "\(node.address)", "node.name": "\(node.name)", "node.cluster": "\(node.cluster)"]
            )
        }
    }

    private func validate(_ node: NodeInfo) throws(NameServerError) {
        try NameServerMetadata.validateName(node.address, what: "node address", maxBytes: limits.maxNodeFieldBytes)
        guard RemotingAddress(parsing: node.address) != nil else {
            throw .invalidArgument("node address \"\(node.address)\" is not host:port")
        }
        switch node.kind {
        case .store:
            try NameServerMetadata.validateName(node.name, what: "store node name", maxBytes: limits.maxNodeFieldBytes)
            try NameServerMetadata.validateName(node.cluster, what: "cluster name", maxBytes: limits.maxNodeFieldBytes)
        case .gateway:
            for (field, what) in [(node.name, "gateway name"), (node.cluster, "cluster name")] where !field.isEmpty {
                try NameServerMetadata.validateName(field, what: what, maxBytes: limits.maxNodeFieldBytes)
            }
        }
    }
}

/// The changes a write makes and what it returns to its caller.
private struct PlannedWrite<Result: Sendable>: Sendable {
    var changes: [NameServerMetadata.Change]
    var result: Result
}

import Foundation
import LMQStore
import Logging
import MQTTAuth
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import NameServer

/// A node as `mqtt-node` runs it in standalone mode — gateway and name server in one process — on
/// 127.0.0.1, free ports and a fresh temporary folder.
struct StandaloneTestNode {
    let node: MQTTNode
    let directory: URL

    var port: Int { node.gateway.port }
    /// The in-process name server, called directly.
    var nameServer: any NameServerClient { node.nameServer!.client }

    static func start(autoCreateFirstTopic: Bool = true) async throws -> StandaloneTestNode {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("standalone-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configuration = GatewayConfiguration(
            host: "127.0.0.1",
            mqttPort: 0,
            store: LMQStore.Configuration(storePathRootDir: directory.path, mappedFileSizeCommitLog: 16 * 1024 * 1024, indexFileSizeBytes: 1024 * 1024),
            auth: try AuthConfiguration(allowAnonymous: true)
        )
        let cluster = ClusterConfiguration(
            autoCreateFirstTopic: autoCreateFirstTopic, nameServerListenAddress: "127.0.0.1", nameServerListenPort: 0, storeListenPort: 0
        )
        var logger = Logger(label: "mqtt.node.test")
        logger.logLevel = .warning
        let node = try await MQTTNode.start(
            configuration: configuration, cluster: cluster,
            publisherConfiguration: .init(heartbeatInterval: .milliseconds(200), retryInterval: .milliseconds(50)),
            logger: logger, threads: 2
        )
        return StandaloneTestNode(node: node, directory: directory)
    }

    func stop() async {
        await node.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The wildcard filters listed under `firstTopic` (KV `LMQ/<firstTopic>`).
    func wildcardFilters(of firstTopic: String) async throws -> [String] {
        try await nameServer.getKV(namespace: LMQMetadataKey.namespace, key: firstTopic).map(LMQMetadataKey.items(of:)) ?? []
    }
}

/// A name server of its own on 127.0.0.1 and a free port, over a fresh temporary folder.
struct TestNameServer {
    let server: NameServer
    let directory: URL

    var client: any NameServerClient { server.client }

    static func start() async throws -> TestNameServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("namesrv-test-\(UUID().uuidString)")
        var logger = Logger(label: "namesrv.test")
        logger.logLevel = .warning
        let server = NameServer(
            configuration: NameServerConfiguration(listenAddress: "127.0.0.1", listenPort: 0, dataDir: directory.path, logLevel: .warning),
            logger: logger
        )
        try await server.start()
        return TestNameServer(server: server, directory: directory)
    }

    func stop() async {
        await server.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A ``NameServerClient`` over a real one that counts the writes made through it and can be made to
/// fail every call, as an unreachable name server does.
///
/// `@unchecked Sendable`: the counters and the switch are guarded by `lock`.
final class InstrumentedNameServerClient: NameServerClient, @unchecked Sendable {
    private let base: any NameServerClient
    private let lock = NSLock()
    private var isFailing: Bool
    private var counts: [String: Int] = [:]

    init(_ base: any NameServerClient, failing: Bool = false) {
        self.base = base
        self.isFailing = failing
    }

    /// While true, every call throws ``NameServerError/storageFailed(_:)``.
    var failing: Bool {
        get { lock.withLock { isFailing } }
        set { lock.withLock { isFailing = newValue } }
    }

    /// How many calls of `operation` reached the name server.
    func count(_ operation: String) -> Int {
        lock.withLock { counts[operation, default: 0] }
    }

    private func enter(_ operation: String) throws(NameServerError) {
        let fail = lock.withLock { () -> Bool in
            guard !isFailing else { return true }
            counts[operation, default: 0] += 1
            return false
        }
        if fail { throw .storageFailed("injected failure") }
    }

    func getKV(namespace: String, key: String) async throws(NameServerError) -> String? {
        try enter("getKV")
        return try await base.getKV(namespace: namespace, key: key)
    }

    func putKV(namespace: String, key: String, value: String) async throws(NameServerError) {
        try enter("putKV")
        try await base.putKV(namespace: namespace, key: key, value: value)
    }

    func deleteKV(namespace: String, key: String) async throws(NameServerError) -> Bool {
        try enter("deleteKV")
        return try await base.deleteKV(namespace: namespace, key: key)
    }

    func listKV(namespace: String) async throws(NameServerError) -> [String: String] {
        try enter("listKV")
        return try await base.listKV(namespace: namespace)
    }

    func updateTopic(_ topic: String, target: TopicTarget) async throws(NameServerError) -> TopicRoute {
        try enter("updateTopic")
        return try await base.updateTopic(topic, target: target)
    }

    func deleteTopic(_ topic: String) async throws(NameServerError) {
        try enter("deleteTopic")
        try await base.deleteTopic(topic)
    }

    func topicList() async throws(NameServerError) -> [String] {
        try enter("topicList")
        return try await base.topicList()
    }

    func topicRoute(_ topic: String) async throws(NameServerError) -> TopicRoute {
        try enter("topicRoute")
        return try await base.topicRoute(topic)
    }

    func registerNode(_ node: NodeInfo) async throws(NameServerError) {
        try enter("registerNode")
        try await base.registerNode(node)
    }

    func heartbeat(kind: NodeKind, address: String) async throws(NameServerError) {
        try enter("heartbeat")
        try await base.heartbeat(kind: kind, address: address)
    }

    func unregisterNode(kind: NodeKind, address: String) async throws(NameServerError) -> Bool {
        try enter("unregisterNode")
        return try await base.unregisterNode(kind: kind, address: address)
    }

    func listNodes(kind: NodeKind) async throws(NameServerError) -> [NodeStatus] {
        try enter("listNodes")
        return try await base.listNodes(kind: kind)
    }
}

/// A client connected to the node on 127.0.0.1:`port`.
func connectedClient(port: Int, _ clientIdentifier: String, _ version: MQTTProtocolVersion) async throws -> MQTTClient {
    let client = MQTTClient(configuration: .init(host: "127.0.0.1", port: port, clientIdentifier: clientIdentifier, protocolVersion: version))
    _ = try await client.connect()
    return client
}

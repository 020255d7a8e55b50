import NameServer
import Remoting
import Testing

@Suite("Node registry")
struct NodeRegistryTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    @Test("a node is live until it has been silent longer than the expiry; heartbeats keep it")
    func expiry() {
        var registry = NodeRegistry(expiry: .seconds(30))
        let gateway = NodeInfo.gateway(address: "10.0.0.1:7001")
        #expect(registry.register(gateway, now: at(0)) == .added)
        #expect(registry.nodes(kind: .gateway, now: at(30_000)).map(\.node) == [gateway])
        #expect(registry.nodes(kind: .gateway, now: at(30_001)).isEmpty, "listings hide a silent node before it is swept")
        let keptAlive = registry.heartbeat(kind: .gateway, address: "10.0.0.1:7001", now: at(20_000))
        #expect(keptAlive)
        #expect(registry.nodes(kind: .gateway, now: at(45_000)).first?.lastHeartbeatAgeMilliseconds == 25_000)
        #expect(registry.nodes(kind: .gateway, now: at(45_000)).first?.registeredAgeMilliseconds == 45_000)
        #expect(registry.expire(now: at(50_000)).isEmpty)
        let expired = registry.expire(now: at(50_001))
        #expect(expired.map(\.node) == [gateway])
        #expect(expired.first?.silence == .milliseconds(30_001))
        #expect(registry.count == 0)
        let revivedAfterSweep = registry.heartbeat(kind: .gateway, address: "10.0.0.1:7001", now: at(50_002))
        #expect(!revivedAfterSweep, "an expired node must register again")
    }

    @Test("a heartbeat after the expiry but before the sweep does not revive the node")
    func lateHeartbeat() {
        var registry = NodeRegistry(expiry: .seconds(1))
        _ = registry.register(.gateway(address: "g:1"), now: at(0))
        let revivedBeforeSweep = registry.heartbeat(kind: .gateway, address: "g:1", now: at(1_001))
        #expect(!revivedBeforeSweep)
        #expect(registry.count == 0)
        #expect(registry.register(.gateway(address: "g:1"), now: at(1_002)) == .added)
    }

    @Test("registering again refreshes, or replaces the name and cluster; kinds are separate")
    func reregister() {
        var registry = NodeRegistry(expiry: .seconds(30))
        let a = NodeInfo.store(name: "broker-a", cluster: "c1", address: "10.0.0.1:10911")
        #expect(registry.register(a, now: at(0)) == .added)
        #expect(registry.register(a, now: at(10_000)) == .refreshed)
        #expect(registry.nodes(kind: .store, now: at(10_000)).first?.registeredAgeMilliseconds == 10_000)
        let renamed = NodeInfo.store(name: "broker-b", cluster: "c2", address: "10.0.0.1:10911")
        #expect(registry.register(renamed, now: at(11_000)) == .replaced(previous: a))
        #expect(registry.register(.gateway(address: "10.0.0.1:10911"), now: at(11_000)) == .added)
        #expect(registry.nodes(kind: .store, now: at(11_000)).map(\.node) == [renamed])
        #expect(registry.nodes(kind: .gateway, now: at(11_000)).count == 1)
        #expect(registry.unregister(kind: .store, address: "10.0.0.1:10911") == renamed)
        #expect(registry.unregister(kind: .store, address: "10.0.0.1:10911") == nil)
    }

    @Test("store addresses by cluster, sorted; the registry is bounded")
    func clustersAndLimit() {
        var registry = NodeRegistry(expiry: .seconds(30), maxNodeCount: 3)
        _ = registry.register(.store(name: "b", cluster: "c1", address: "10.0.0.2:1"), now: at(0))
        _ = registry.register(.store(name: "a", cluster: "c1", address: "10.0.0.1:1"), now: at(0))
        _ = registry.register(.store(name: "c", cluster: "c2", address: "10.0.0.3:1"), now: at(0))
        #expect(registry.storeAddresses(inCluster: "c1", now: at(1)) == ["10.0.0.1:1", "10.0.0.2:1"])
        #expect(registry.storeAddresses(inCluster: "c3", now: at(1)).isEmpty)
        #expect(registry.register(.gateway(address: "g:1"), now: at(0)) == .full(limit: 3))
    }

    @Test("through a running name server: a node that stops heartbeating disappears after the expiry")
    func liveExpiry() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let server = try await NameServer.started(.testing(dataDir: folder.path, nodeExpiry: .seconds(4)))
        let remoting = RemotingClient()
        let client = RemotingNameServerClient(address: server.address, remotingClient: remoting)
        try await client.registerNode(.gateway(address: "10.0.0.7:7001"))
        try await client.registerNode(.store(name: "broker-a", cluster: "c1", address: "10.0.0.8:10911"))
        // Heartbeats every 250 ms keep the gateway for 5 s, past the 4 s expiry; the store node is silent.
        // (Heartbeats far more often than the expiry, so a loaded test machine cannot make one late.)
        for _ in 0..<20 {
            try await Task.sleep(for: .milliseconds(250))
            try await client.heartbeat(kind: .gateway, address: "10.0.0.7:7001")
        }
        #expect(try await client.listNodes(kind: .gateway).map(\.node.address) == ["10.0.0.7:7001"])
        #expect(try await client.listNodes(kind: .store).isEmpty)
        await #expect(throws: NameServerError.nodeNotRegistered(kind: .store, address: "10.0.0.8:10911")) {
            try await client.heartbeat(kind: .store, address: "10.0.0.8:10911")
        }
        try await Task.sleep(for: .milliseconds(4_600))
        #expect(try await client.listNodes(kind: .gateway).isEmpty)

        // A cluster's live store nodes make a topic's route.
        try await client.registerNode(.store(name: "broker-a", cluster: "c1", address: "10.0.0.8:10911"))
        try await client.registerNode(.store(name: "broker-b", cluster: "c1", address: "10.0.0.9:10911"))
        #expect(try await client.updateTopic("t", target: .cluster("c1")).storeAddresses == ["10.0.0.8:10911", "10.0.0.9:10911"])
        #expect(try await client.unregisterNode(kind: .store, address: "10.0.0.9:10911"))
        #expect(try await !client.unregisterNode(kind: .store, address: "10.0.0.9:10911"))
        await #expect(throws: NameServerError.invalidArgument("node address \"bad\" is not host:port")) {
            try await client.registerNode(.gateway(address: "bad"))
        }
        await #expect(throws: NameServerError.invalidArgument("store node name must not be empty")) {
            try await client.registerNode(.store(name: "", cluster: "c1", address: "10.0.0.1:1"))
        }
        await remoting.shutdown()
        await server.shutdown()
    }

    @Test("a NodeHeartbeater keeps its node registered past the expiry and unregisters it when cancelled")
    func heartbeater() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let server = try await NameServer.started(.testing(dataDir: folder.path, nodeExpiry: .seconds(1)))
        let node = NodeInfo.gateway(address: "10.0.0.3:7001")
        let heartbeater = NodeHeartbeater(node: node, nameServers: [server.client], interval: .milliseconds(100))
        let task = Task { await heartbeater.run() }
        try await Task.sleep(for: .milliseconds(2_500))
        #expect(try await server.client.listNodes(kind: .gateway).map(\.node.address) == ["10.0.0.3:7001"])
        // Forgotten by the name server (as after its restart): registered again on the next beat.
        #expect(try await server.client.unregisterNode(kind: .gateway, address: "10.0.0.3:7001"))
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await server.client.listNodes(kind: .gateway).map(\.node.address) == ["10.0.0.3:7001"])
        task.cancel()
        await task.value
        #expect(try await server.client.listNodes(kind: .gateway).isEmpty)
        await server.shutdown()
    }
}

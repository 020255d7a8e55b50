import Foundation
import MQTTClient
import MQTTCore
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two store nodes: a first topic routed to the second (`mqadmin updateTopic -b`), the others on the
/// first; a wildcard filter spanning first topics gets both; the second stopped and started again.
@Suite(
    "cluster: two store nodes owning different first topics",
    .enabled(if: ClusterFixture.isAvailable, "built mqnamesrv, mqbroker and mqtt-node are needed"),
    .timeLimit(.minutes(4))
)
struct ClusterStoreNodesTests {
    private static func client(_ gateway: NodeProcess, _ clientIdentifier: String) -> MQTTClient {
        MQTTClient(configuration: .init(host: "127.0.0.1", port: gateway.port, clientIdentifier: clientIdentifier, protocolVersion: .v5))
    }

    @Test("messages of a first topic routed to the second store node reach every matching subscriber; while it is down its topics are refused, the others go on")
    func twoStoreNodes() async throws {
        try await ClusterFixture.with(gateways: 0, extraBrokers: 1) { cluster in try await Self.run(cluster) }
    }

    /// Two gateways, and first topic `beta` put on the second store node by the operator before clients
    /// use it. Returns the gateways.
    private static func twoGatewaysWithBetaOnTheSecondNode(_ cluster: ClusterFixture) async throws -> [NodeProcess] {
        try await cluster.addGateway()
        try await cluster.addGateway()
        let routed = try await cluster.gateways[0].admin([
            "updateTopic", "-t", "beta", "-b", "127.0.0.1:\(cluster.extraBrokers[0].port)", "-n", cluster.nameServerAddress,
        ])
        #expect(routed.status == 0, "updateTopic failed: \(routed.standardError)")
        return cluster.gateways
    }

    private static func run(_ cluster: ClusterFixture) async throws {
        let second = cluster.extraBrokers[0]
        let gateways = try await twoGatewaysWithBetaOnTheSecondNode(cluster)

        let betaSubscriber = Self.client(gateways[0], "beta-sub")
        let everything = Self.client(gateways[1], "all-sub")
        let alphaSubscriber = Self.client(gateways[1], "alpha-sub")
        var collectors: [MessageCollector] = []
        // A shared subscription under the routed first topic: its group's cursor is on the second node.
        let sharedMember = Self.client(gateways[1], "beta-worker")
        for (client, filter) in [(betaSubscriber, "beta/#"), (everything, "#"), (alphaSubscriber, "alpha/+"), (sharedMember, "$share/w/beta/#")] {
            _ = try await client.connect()
            collectors.append(MessageCollector(client))
            #expect(try await client.subscribe(to: filter, qos: .atLeastOnce) == .atLeastOnce)
        }
        let publisher = Self.client(gateways[1], "two-stores-pub")
        _ = try await publisher.connect()
        for sequence in 0..<3 {
            try await publisher.publish(to: "beta/\(sequence)", payload: "b\(sequence)", qos: .atLeastOnce)
            try await publisher.publish(to: "alpha/\(sequence)", payload: "a\(sequence)", qos: .atLeastOnce)
        }
        #expect(try await collectors[0].wait(for: 3).map(\.payloadString) == ["b0", "b1", "b2"])
        #expect(try await collectors[2].wait(for: 3).map(\.payloadString) == ["a0", "a1", "a2"])
        #expect(try await collectors[3].wait(for: 3).map(\.payloadString) == ["b0", "b1", "b2"])
        let all = try await collectors[1].wait(for: 6).map(\.payloadString)
        #expect(all.filter { $0.hasPrefix("b") } == ["b0", "b1", "b2"] && all.filter { $0.hasPrefix("a") } == ["a0", "a1", "a2"])
        // `beta` really is on the second node: it is refused while that node is down.
        await second.stop(signal: SIGKILL)
        do {
            try await publisher.publish(to: "beta/down", payload: "lost", qos: .atLeastOnce)
            Issue.record("a PUBLISH to a first topic whose store node is down was acknowledged")
        } catch MQTTClientError.publishRefused(let reasonCode, _) {
            #expect(reasonCode.rawValue >= 0x80, "refused with \(reasonCode)")
        }
        try await publisher.publish(to: "alpha/up", payload: "a-up", qos: .atLeastOnce)
        #expect(try await collectors[2].wait(for: 4).last?.payloadString == "a-up")

        // Back without a gateway restart: the node's topics are taken again, and delivered (the node kept
        // the `beta/#` registration, so it dispatches by it before the subscriber's gateway reconnects).
        try await second.start()
        var accepted = false
        for _ in 0..<100 where !accepted {
            do {
                try await publisher.publish(to: "beta/back", payload: "b-back", qos: .atLeastOnce)
                accepted = true
            } catch MQTTClientError.publishRefused {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(accepted, "the second store node's first topic is taken again once it is back")
        #expect(try await collectors[0].wait(for: 4).last?.payloadString == "b-back")
        try await waitUntil("the `#` subscriber gets b-back") { collectors[1].received.contains { $0.payloadString == "b-back" } }
        for client in [betaSubscriber, everything, alphaSubscriber, sharedMember, publisher] {
            try? await client.disconnect()
            await client.shutdown()
        }
    }

    @Test("the will of a dead gateway's client, on a first topic of the second store node, reaches its subscribers")
    func willOnTheSecondStoreNode() async throws {
        let liveness = ["gatewayCheckIntervalSeconds": "1", "gatewayMissingSeconds": "3"]
        try await ClusterFixture.with(gateways: 0, broker: liveness, extraBrokers: 1) { cluster in
            let gateways = try await Self.twoGatewaysWithBetaOnTheSecondNode(cluster)
            let underBeta = Self.client(gateways[1], "will-sub-beta")
            let everything = Self.client(gateways[1], "will-sub-all")
            var collectors: [MessageCollector] = []
            for (client, filter) in [(underBeta, "beta/+/gone"), (everything, "#")] {
                _ = try await client.connect()
                collectors.append(MessageCollector(client))
                #expect(try await client.subscribe(to: filter, qos: .atLeastOnce) == .atLeastOnce)
            }
            var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: gateways[0].port, clientIdentifier: "W", protocolVersion: .v5)
            configuration.will = ConnectPacket.Will(
                topicName: "beta/W/gone", payload: ByteBuffer(string: "W is gone"), qos: .atLeastOnce, retain: false, properties: []
            )
            let doomed = MQTTClient(configuration: configuration)
            _ = try await doomed.connect()
            await gateways[0].kill()
            // Published by the primary store node once the registry has lost gateway 0, on the second node.
            let beta = try await collectors[0].wait(for: 1, timeout: .seconds(40))
            #expect(beta.map(\.payloadString) == ["W is gone"])
            try await waitUntil("the `#` subscriber gets the will", timeout: .seconds(10)) {
                collectors[1].received.contains { $0.topic == "beta/W/gone" }
            }
            await doomed.shutdown()
            for client in [underBeta, everything] {
                try? await client.disconnect()
                await client.shutdown()
            }
        }
    }
}

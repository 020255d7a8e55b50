import Foundation
import MQTTClient
import MQTTCore
import Testing

/// `mqadmin` run by an operator against a live cluster (docs/cluster.md, step 5): one name server, one
/// store node and three gateways, each its own process.
@Suite(
    "mqadmin against a live cluster: clusterList, gatewayList, topicRoute",
    .enabled(if: ClusterFixture.isAvailable && NodeProcess.adminPath != nil, "built mqnamesrv, mqbroker, mqtt-node and mqadmin are needed"),
    .timeLimit(.minutes(3))
)
struct ClusterAdminTests {
    /// The rows of a table printed by `clusterList` / `gatewayList`, header first, each split on runs of spaces.
    private static func rows(_ completion: SpawnedProcess.Completion) -> [[String]] {
        completion.lines.map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
    }

    /// Runs `mqadmin` until `accept` takes its output (the gateways register and write topics in the
    /// background, shortly after they listen); returns the last output either way.
    private static func admin(
        _ cluster: ClusterFixture, _ arguments: [String], timeout: Duration = .seconds(20), until accept: (SpawnedProcess.Completion) -> Bool
    ) async throws -> SpawnedProcess.Completion {
        let deadline = ContinuousClock.now + timeout
        while true {
            let completion = try await cluster.gateways[0].admin(arguments + ["-n", cluster.nameServerAddress])
            if accept(completion) || ContinuousClock.now >= deadline { return completion }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    @Test("clusterList shows the store node, gatewayList the three gateways, topicRoute a first topic the clients used")
    func adminSeesTheCluster() async throws {
        try await ClusterFixture.with(gateways: 3) { cluster in try await Self.check(cluster) }
    }

    private static func check(_ cluster: ClusterFixture) async throws {
        let storeAddress = "127.0.0.1:\(cluster.broker.port)"

        // clusterList: cluster, store name, address, heartbeat age, registered age.
        let clusterList = try await admin(cluster, ["clusterList"]) { rows($0).count >= 2 }
        #expect(clusterList.status == 0, "clusterList failed: \(clusterList.standardError)")
        let storeRows = rows(clusterList)
        try #require(storeRows.count == 2, "one store node expected; clusterList printed:\n\(clusterList.standardOutput)")
        #expect(storeRows[0].prefix(3) == ["#Cluster", "#Store", "Name"])
        #expect(Array(storeRows[1].prefix(3)) == ["DefaultCluster", "broker-a", storeAddress])

        // gatewayList: address first; every gateway by its MQTT address, once.
        let gatewayAddresses = Set(cluster.gateways.map { "127.0.0.1:\($0.port)" })
        let gatewayList = try await admin(cluster, ["gatewayList"]) { completion in
            Set(rows(completion).dropFirst().compactMap(\.first)) == gatewayAddresses
        }
        #expect(gatewayList.status == 0, "gatewayList failed: \(gatewayList.standardError)")
        let listed = rows(gatewayList).dropFirst().compactMap(\.first)
        #expect(listed.sorted() == gatewayAddresses.sorted(), "gatewayList printed:\n\(gatewayList.standardOutput)")
        #expect(rows(gatewayList).first?.first == "#Address")

        // A first topic that exists only because clients used it (autoCreateFirstTopic, on by default).
        let firstTopic = "adm\(UInt32.random(in: 0..<1_000_000))"
        let unknown = try await cluster.gateways[0].admin(["topicRoute", "-t", firstTopic, "-n", cluster.nameServerAddress])
        #expect(unknown.status != 0, "no route before any client used \(firstTopic): \(unknown.standardOutput)")
        var configuration = MQTTClient.Configuration(
            host: "127.0.0.1", port: cluster.gateways[1].port, clientIdentifier: "admin-test-pub", protocolVersion: .v5
        )
        configuration.cleanStart = true
        let publisher = MQTTClient(configuration: configuration)
        _ = try await publisher.connect()
        try await publisher.publish(to: "\(firstTopic)/device/1", payload: "on", qos: .atLeastOnce)
        try? await publisher.disconnect()
        await publisher.shutdown()

        let route = try await admin(cluster, ["topicRoute", "-t", firstTopic]) { $0.status == 0 }
        #expect(route.status == 0, "topicRoute \(firstTopic) failed: \(route.standardError)")
        struct Route: Decodable {
            var topic: String
            var storeAddresses: [String]
        }
        let decoded = try JSONDecoder().decode(Route.self, from: Data(route.standardOutput.utf8))
        #expect(decoded.topic == firstTopic)
        // A first topic a gateway creates is routed to the store node it appends to.
        #expect(decoded.storeAddresses == ["127.0.0.1:\(cluster.broker.port)"], "topicRoute printed:\n\(route.standardOutput)")
        // And it is listed among every first topic.
        let topics = try await admin(cluster, ["topicList"]) { $0.standardOutput.contains(firstTopic) }
        #expect(topics.lines.contains(firstTopic), "topicList printed:\n\(topics.standardOutput)")
    }
}

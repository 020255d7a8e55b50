import Foundation
import MQTTClient
import MQTTCore
import Testing

/// The real `mqtt-node` in standalone mode and the real `mqadmin` against its name server, as an
/// operator runs them.
@Suite(
    "mqtt-node standalone with mqadmin, end to end",
    .enabled(if: NodeProcess.binaryPath != nil && NodeProcess.adminPath != nil, "a built mqtt-node and mqadmin are needed"),
    // Node tests share `NodeSlots`: the time limit includes the wait for a slot.
    .timeLimit(.minutes(3))
)
struct StandaloneNodeEndToEndTests {
    @Test("mqadmin lists the topics, wildcard filters and gateway of a standalone node it never configured")
    func mqadminAgainstStandaloneNode() async throws {
        try await withNode { node in
            let mqttPort = node.port
            let nameServer = try await node.nameServerAddress()
            let nameServerPort = try #require(
                nameServer.hasPrefix("127.0.0.1:") ? NodeProcess.port(of: nameServer) : nil,
                "the name server is not on the loopback address: \(nameServer)"
            )
            #expect(nameServerPort != 0 && nameServerPort != mqttPort)
            #expect(FileManager.default.fileExists(atPath: node.storeDirectory + "/namesrv/namesrv.db"))

            let subscriber = MQTTClient(configuration: .init(host: "127.0.0.1", port: mqttPort, clientIdentifier: "e2e-sub", protocolVersion: .v5))
            _ = try await subscriber.connect()
            let messages = MessageCollector(subscriber)
            #expect(try await subscriber.subscribe(to: "e2e/+/temp", qos: .atLeastOnce) == .atLeastOnce)
            #expect(try await subscriber.subscribe(to: "e2e/#", qos: .atLeastOnce) == .atLeastOnce)
            let publisher = MQTTClient(configuration: .init(host: "127.0.0.1", port: mqttPort, clientIdentifier: "e2e-pub", protocolVersion: .v3_1_1))
            _ = try await publisher.connect()
            try await publisher.publish(to: "e2e/1/temp", payload: "20.5", qos: .atLeastOnce)
            try await publisher.publish(to: "news/today", payload: "headline", qos: .atLeastOnce)
            // Delivered once per subscription it matches.
            #expect(try await messages.wait(for: 2).map(\.payloadString) == ["20.5", "20.5"])

            // The writes are made in the background: wait until topicList shows both first topics.
            var topics: [String] = []
            try await waitUntil("mqadmin topicList to list e2e and news (last: \(topics))", timeout: .seconds(15)) {
                topics = (try? await node.admin(["topicList", "-n", nameServer]))?.lines ?? []
                return topics == ["e2e", "news"]
            }

            let filters = try await node.admin(["getKvConfig", "-s", "LMQ", "-k", "e2e", "-n", nameServer])
            #expect(filters.status == 0, "stderr: \(filters.standardError)")
            #expect(filters.lines.count == 1)
            #expect(Set(filters.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",")) == ["e2e/+/temp", "e2e/#"])

            let kvList = try await node.admin(["getKvList", "-s", "LMQ", "-n", nameServer])
            #expect(kvList.status == 0, "stderr: \(kvList.standardError)")
            let allFirstTopics = kvList.lines.first { $0.hasPrefix("ALL_FIRST_TOPICS=") }
            #expect(allFirstTopics.map { Set($0.dropFirst("ALL_FIRST_TOPICS=".count).split(separator: ",")) } == ["e2e", "news"])
            #expect(kvList.lines.contains { $0.hasPrefix("e2e=") })

            let gateways = try await node.admin(["gatewayList", "-n", nameServer])
            #expect(gateways.status == 0, "stderr: \(gateways.standardError)")
            // A header line and this node, on its MQTT port.
            #expect(gateways.lines.count == 2, "\(gateways.standardOutput)")
            #expect(gateways.lines.last?.split(separator: " ").first?.hasSuffix(":\(mqttPort)") == true, "\(gateways.standardOutput)")

            for client in [subscriber, publisher] {
                try await client.disconnect()
                await client.shutdown()
            }
            let status = await node.stopGracefully()
            #expect(status == 0, "log: \(node.logTail())")
            // The gateway said goodbye to its name server before that stopped.
            #expect(node.log.contains("node unregistered"), "log: \(node.logTail())")
        }
    }
}

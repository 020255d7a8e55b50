import Foundation
import LMQClient
import MQTTClient
import MQTTCore
import NIOConcurrencyHelpers
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Server applications next to devices (docs/server-messaging.md): `LMQProducer` and `LMQConsumer` against
/// a real standalone `mqtt-node` (its store listener) and a real cluster, with MQTT clients on the other side.
@Suite(
    "server messaging: LMQClient producers and consumers with MQTT devices",
    .enabled(if: NodeProcess.binaryPath != nil, "a built mqtt-node is needed"),
    .timeLimit(.minutes(4))
)
struct ServerMessagingTests {
    static func configuration(_ nameServer: String) -> LMQClientConfiguration {
        LMQClientConfiguration(nameServerAddresses: [nameServer], storeNodeWaitSeconds: 20)
    }

    static func device(_ port: Int, _ clientIdentifier: String) -> MQTTClient {
        MQTTClient(configuration: .init(host: "127.0.0.1", port: port, clientIdentifier: clientIdentifier, protocolVersion: .v5))
    }

    @Test("device QoS 1 publishes reach a clustering group once between its two members, and each broadcasting member in full")
    func devicePublishesToConsumerGroups() async throws {
        try await withNode { node in
            let configuration = Self.configuration(try await node.nameServerAddress())
            let clusterA = try await LMQConsumer.start(configuration, group: "backend", subscription: .firstTopic("sensors"))
            let clusterB = try await LMQConsumer.start(configuration, group: "backend", subscription: .firstTopic("sensors"))
            let broadcastA = try await LMQConsumer.start(
                configuration, group: "audit", subscription: .filter("sensors/+/t"), options: .init(mode: .broadcasting, memberName: "a")
            )
            let broadcastB = try await LMQConsumer.start(
                configuration, group: "audit", subscription: .filter("sensors/+/t"), options: .init(mode: .broadcasting, memberName: "b")
            )
            let collectors = [clusterA, clusterB, broadcastA, broadcastB].map { ConsumedCollector($0) }
            let count = 200
            let device = Self.device(node.port, "sensor-1")
            _ = try await device.connect()
            for sequence in 0..<count {
                try await device.publish(to: "sensors/\(sequence % 4)/t", payload: "\(sequence)", qos: .atLeastOnce)
            }
            try await device.disconnect()
            await device.shutdown()

            // Clustering: every message once between the two members.
            try await waitUntil("the clustering members got \(count) messages") {
                collectors[0].count + collectors[1].count >= count
            }
            try await Task.sleep(for: .milliseconds(300))
            let shared = collectors[0].payloads + collectors[1].payloads
            #expect(shared.count == count, "duplicates: \(shared.count) deliveries for \(count) messages")
            #expect(Set(shared) == Set((0..<count).map(String.init)))
            // Each member's share is in publish order.
            for collector in collectors.prefix(2) {
                let numbers = collector.payloads.compactMap(Int.init)
                #expect(numbers == numbers.sorted())
            }
            // Broadcasting: both members get all of it, in order.
            for collector in collectors.suffix(2) {
                let all = try await collector.wait(for: count)
                #expect(all == (0..<count).map(String.init))
            }
            #expect(collectors[2].messages.first?.publisherClientIdentifier == "sensor-1")
            #expect(collectors[2].messages.first?.qos == .atLeastOnce)
            for consumer in [clusterA, clusterB, broadcastA, broadcastB] { await consumer.shutdown() }
        }
    }

    @Test("a producer's message reaches MQTT subscribers of its topic and of matching wildcard filters; retained ones stay")
    func producerReachesDevices() async throws {
        try await withNode { node in
            let exact = Self.device(node.port, "device-7")
            let wildcard = Self.device(node.port, "dashboard")
            _ = try await exact.connect()
            _ = try await wildcard.connect()
            let exactMessages = MessageCollector(exact)
            let wildcardMessages = MessageCollector(wildcard)
            _ = try await exact.subscribe(to: "cmd/device-7", qos: .atLeastOnce)
            _ = try await wildcard.subscribe(to: "cmd/+", qos: .atLeastOnce)

            let producer = try await LMQProducer.start(Self.configuration(try await node.nameServerAddress()))
            let receipt = try await producer.send(
                topic: "cmd/device-7", payload: "reboot", qos: .atLeastOnce, properties: [.userProperty("origin", "backend")]
            )
            #expect(receipt.queueOffsets.map(\.queue).contains("%LMQ%cmd%device-7%"))
            #expect(receipt.queueOffsets.map(\.queue).contains("%LMQ%cmd%+%"))
            let got = try await exactMessages.wait(for: 1)
            #expect(got.first?.payloadString == "reboot")
            #expect(got.first?.properties.userProperties.first?.1 == "backend")
            #expect(try await wildcardMessages.wait(for: 1).first?.topic == "cmd/device-7")

            // Peer to peer: to the recipient's own queue, which it reads without subscribing.
            let direct = try await producer.send(topic: "cmd/p2p/device-7", payload: "direct")
            #expect(direct.queueOffsets.map(\.queue) == [LMQNaming.p2pLMQName(clientId: "device-7")])
            #expect(try await exactMessages.wait(for: 2).last?.payloadString == "direct")

            // Retained: a later subscriber gets it, flagged.
            try await producer.send(topic: "cmd/status", payload: "maintenance", qos: .atLeastOnce, retain: true)
            let late = Self.device(node.port, "late")
            _ = try await late.connect()
            let lateMessages = MessageCollector(late)
            _ = try await late.subscribe(to: "cmd/status", qos: .atLeastOnce)
            let retained = try await lateMessages.wait(for: 1)
            #expect(retained.first?.payloadString == "maintenance")
            #expect(retained.first?.retain == true)

            // What the store refuses is refused before anything is written.
            await #expect(throws: LMQClientError.self) { try await producer.send(topic: "cmd/+", payload: "x") }
            await #expect(throws: LMQClientError.self) { try await producer.send(topic: "$SYS/broker/x", payload: "x") }
            await producer.shutdown()
            for client in [exact, wildcard, late] {
                try? await client.disconnect()
                await client.shutdown()
            }
        }
    }

    @Test(
        "a member killed with SIGKILL mid-stream: the other member of its group gets what it had not acknowledged",
        .enabled(if: NodeProcess.productPath("mqtt-example-server-consumer") != nil, "a built mqtt-example-server-consumer is needed")
    )
    func killedMemberRedelivered() async throws {
        try await withNode { node in
            let nameServer = try await node.nameServerAddress()
            let configuration = Self.configuration(nameServer)
            // Member A, a process of its own: slow (200 ms per message), holding up to 8 unacknowledged.
            let base = node.directory + "/member-a"
            let memberA = try SpawnedProcess(
                executable: try #require(NodeProcess.productPath("mqtt-example-server-consumer")),
                arguments: ["--namesrv", nameServer, "-g", "workers", "-t", "jobs/#", "--process-milliseconds", "200", "--max-outstanding", "8"],
                environment: NodeProcess.childEnvironment(), standardOutputPath: base + ".out", standardErrorPath: base + ".err"
            )
            try await waitUntil("member A consuming: \(memberA.standardError)") { memberA.standardError.contains("consuming ") }
            let producer = try await LMQProducer.start(configuration)
            let count = 40
            for sequence in 0..<count { try await producer.send(topic: "jobs/\(sequence % 2)", payload: "\(sequence)") }
            // A takes its first batch and works through it slowly.
            try await waitUntil("member A processed two messages") { memberA.standardOutput.split(separator: "\n").count >= 2 }
            // Member B, fast, takes the rest of the group's messages.
            let memberB = try await LMQConsumer.start(configuration, group: "workers", subscription: .filter("jobs/#"))
            let collectorB = ConsumedCollector(memberB)
            // A holds at most 8 besides those it processed: B takes the rest.
            try await waitUntil("member B took the messages A does not hold (B has \(collectorB.count))") {
                collectorB.count >= count - 8 - memberA.standardOutput.split(separator: "\n").count
            }
            memberA.signal(SIGKILL)
            _ = await memberA.waitForExit(timeout: .seconds(10))
            // What A printed, it acknowledged (or was about to); everything else reaches B, once.
            let printedByA = Set(memberA.standardOutput.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
            let expectedByB = Set((0..<count).map(String.init)).subtracting(printedByA)
            #expect(printedByA.count < count / 2, "A was killed mid-stream: \(printedByA.count) printed")
            try await waitUntil("member B got every message A did not print (has \(collectorB.count))", timeout: .seconds(20)) {
                Set(collectorB.payloads).isSuperset(of: expectedByB)
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(collectorB.payloads.count == Set(collectorB.payloads).count, "B got a message twice: \(collectorB.payloads)")
            #expect(Set(collectorB.payloads).union(printedByA) == Set((0..<count).map(String.init)))
            await memberB.shutdown()
            await producer.shutdown()
        }
    }

    @Test("a group's offsets survive its members' restart: nothing acknowledged again, nothing published meanwhile skipped")
    func offsetsSurviveConsumerRestart() async throws {
        try await withNode { node in
            let configuration = Self.configuration(try await node.nameServerAddress())
            let producer = try await LMQProducer.start(configuration)
            for mode in [LMQConsumer.Mode.clustering, .broadcasting] {
                let group = mode == .clustering ? "billing" : "mirror"
                let topic = "meters/\(group)/kwh"
                // A wildcard filter: its queue gets messages only through the group's registration.
                let subscription = LMQConsumer.Subscription.filter("meters/\(group)/+")
                let options = LMQConsumer.Options(mode: mode, startPosition: .earliest, memberName: "m1")
                let first = try await LMQConsumer.start(configuration, group: group, subscription: subscription, options: options)
                let firstCollector = ConsumedCollector(first)
                for sequence in 0..<10 { try await producer.send(topic: topic, payload: "\(sequence)") }
                #expect(try await firstCollector.wait(for: 10) == (0..<10).map(String.init), "\(mode)")
                await first.shutdown()

                // Published while no member runs: the group's registration keeps them for it.
                for sequence in 10..<20 { try await producer.send(topic: topic, payload: "\(sequence)") }
                let second = try await LMQConsumer.start(configuration, group: group, subscription: subscription, options: options)
                let secondCollector = ConsumedCollector(second)
                #expect(try await secondCollector.wait(for: 10) == (10..<20).map(String.init), "\(mode)")
                try await Task.sleep(for: .milliseconds(300))
                #expect(secondCollector.count == 10, "\(mode): acknowledged messages delivered again")
                await second.shutdown()
            }
            await producer.shutdown()
        }
    }

}

/// The same in a cluster: the clients find the store node through the cluster's name server.
@Suite(
    "server messaging in a cluster",
    .enabled(if: ClusterFixture.isAvailable, "built mqnamesrv, mqbroker and mqtt-node are needed"),
    .timeLimit(.minutes(4))
)
struct ClusterServerMessagingTests {
    @Test("a device's publish on one gateway reaches a server consumer; a producer's message reaches a device on another gateway")
    func clusterServerMessaging() async throws {
        try await ClusterFixture.with(gateways: 2) { cluster in
            let configuration = ServerMessagingTests.configuration(cluster.nameServerAddress)
            let consumer = try await LMQConsumer.start(configuration, group: "backend", subscription: .filter("telemetry/+/v"))
            let collector = ConsumedCollector(consumer)
            let subscriber = ServerMessagingTests.device(cluster.gateways[1].port, "device-9")
            _ = try await subscriber.connect()
            let commands = MessageCollector(subscriber)
            _ = try await subscriber.subscribe(to: "cmd/#", qos: .atLeastOnce)

            let device = ServerMessagingTests.device(cluster.gateways[0].port, "sensor-9")
            _ = try await device.connect()
            for sequence in 0..<50 {
                try await device.publish(to: "telemetry/\(sequence % 3)/v", payload: "\(sequence)", qos: .atLeastOnce)
            }
            #expect(try await collector.wait(for: 50) == (0..<50).map(String.init))

            let producer = try await LMQProducer.start(configuration)
            try await producer.send(topic: "cmd/device-9", payload: "calibrate", qos: .atLeastOnce)
            #expect(try await commands.wait(for: 1).first?.payloadString == "calibrate")
            await producer.shutdown()
            await consumer.shutdown()
            for client in [device, subscriber] {
                try? await client.disconnect()
                await client.shutdown()
            }
        }
    }
}

/// Reads a consumer's messages in a task, acknowledging each.
final class ConsumedCollector: Sendable {
    private let received = NIOLockedValueBox<[LMQConsumedMessage]>([])
    private let task: NIOLockedValueBox<Task<Void, Never>?> = NIOLockedValueBox(nil)

    init(_ consumer: LMQConsumer, acknowledging: Bool = true) {
        let received = self.received
        task.withLockedValue {
            $0 = Task {
                for await message in consumer.messages {
                    received.withLockedValue { $0.append(message) }
                    if acknowledging { consumer.acknowledge(message) }
                }
            }
        }
    }

    var messages: [LMQConsumedMessage] { received.withLockedValue { $0 } }
    var payloads: [String] { messages.map(\.payloadString) }
    var count: Int { received.withLockedValue { $0.count } }

    /// The payloads once at least `count` messages arrived.
    func wait(for count: Int, timeout: Duration = .seconds(20)) async throws -> [String] {
        try await waitUntil("\(count) consumed messages (have \(self.count))", timeout: timeout) { self.count >= count }
        return payloads
    }
}

@Suite("LMQConsumer subscriptions")
struct LMQConsumerSubscriptionTests {
    @Test("a first topic is its # filter; wildcards, levels and shared filters are refused where they do not belong")
    func topicFilters() throws {
        #expect(try LMQConsumer.Subscription.firstTopic("sensors").topicFilter().string == "sensors/#")
        #expect(try LMQConsumer.Subscription.filter("a/+/c").topicFilter().lmqName == "%LMQ%a%+%c%")
        for bad in [LMQConsumer.Subscription.firstTopic("a/b"), .firstTopic("+"), .firstTopic(""), .filter("a/#/b"), .filter("$share/g/a/#")] {
            #expect(throws: LMQClientError.self) { try bad.topicFilter() }
        }
    }

    @Test("a group name with % or / is refused before anything is connected")
    func groupNames() async {
        let configuration = LMQClientConfiguration(nameServerAddresses: ["127.0.0.1:1"], storeNodeWaitSeconds: 0)
        for group in ["", "a%b", "a/b"] {
            await #expect(throws: LMQClientError.invalidGroup(group)) {
                _ = try await LMQConsumer.start(configuration, group: group, subscription: .firstTopic("a"))
            }
        }
    }
}

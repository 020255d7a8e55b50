import Foundation
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import NIOCore
import NIOPosix
import Testing

@Suite("Gateway publish/subscribe", .timeLimit(.minutes(1)))
struct GatewayPublishSubscribeTests {
    @Test("QoS 0 and 1 reach exact, + and # subscribers with QoS = min(published, granted)", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func exactAndWildcardSubscribers(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let exact = try await node.client("exact-\(version.rawValue)", version)
        let plus = try await node.client("plus-\(version.rawValue)", version)
        let hash = try await node.client("hash-\(version.rawValue)", version)
        let publisher = try await node.client("publisher-\(version.rawValue)", version)
        let exactMessages = MessageCollector(exact)
        let plusMessages = MessageCollector(plus)
        let hashMessages = MessageCollector(hash)

        #expect(try await exact.subscribe(to: "sensors/7/temp", qos: .atLeastOnce) == .atLeastOnce)
        #expect(try await plus.subscribe(to: "sensors/+/temp", qos: .atMostOnce) == .atMostOnce)
        #expect(try await hash.subscribe(to: "sensors/#", qos: .atLeastOnce) == .atLeastOnce)

        try await publisher.publish(to: "sensors/7/temp", payload: "zero", qos: .atMostOnce)
        try await publisher.publish(to: "sensors/7/temp", payload: "one", qos: .atLeastOnce)
        // Matches only `sensors/#`.
        try await publisher.publish(to: "sensors/7/humidity", payload: "other", qos: .atLeastOnce)

        let exactReceived = try await exactMessages.wait(for: 2)
        #expect(exactReceived.map(\.payloadString) == ["zero", "one"])
        #expect(exactReceived.map(\.qos) == [.atMostOnce, .atLeastOnce])
        #expect(exactReceived.allSatisfy { $0.topic == "sensors/7/temp" && !$0.retain })

        let plusReceived = try await plusMessages.wait(for: 2)
        #expect(plusReceived.map(\.payloadString) == ["zero", "one"])
        // Granted QoS 0 caps the QoS 1 publish ([MQTT-3.8.4-8]).
        #expect(plusReceived.map(\.qos) == [.atMostOnce, .atMostOnce])

        let hashReceived = try await hashMessages.wait(for: 3)
        #expect(hashReceived.map(\.payloadString) == ["zero", "one", "other"])
        #expect(hashReceived.map(\.topic) == ["sensors/7/temp", "sensors/7/temp", "sensors/7/humidity"])

        // Nothing more arrives for the exact and + subscribers.
        try await Task.sleep(for: .milliseconds(200))
        #expect(exactMessages.received.count == 2)
        #expect(plusMessages.received.count == 2)

        for client in [exact, plus, hash, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("many QoS 1 messages arrive once each and in order", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func orderedQoS1Stream(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let subscriber = try await node.client("ordered-sub-\(version.rawValue)", version)
        let publisher = try await node.client("ordered-pub-\(version.rawValue)", version)
        let messages = MessageCollector(subscriber)
        _ = try await subscriber.subscribe(to: "stream/+", qos: .atLeastOnce)
        let count = 300
        for index in 0..<count {
            try await publisher.publish(to: "stream/x", payload: "\(index)", qos: .atLeastOnce)
        }
        let received = try await messages.wait(for: count, timeout: .seconds(20))
        #expect(received.map(\.payloadString) == (0..<count).map { "\($0)" })
        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("QoS 2 in and out: exactly one copy at QoS 2", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func qos2(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let subscriber = try await node.client("qos2-sub-\(version.rawValue)", version)
        let publisher = try await node.client("qos2-pub-\(version.rawValue)", version)
        let messages = MessageCollector(subscriber)
        #expect(try await subscriber.subscribe(to: "exactly/#", qos: .exactlyOnce) == .exactlyOnce)
        try await publisher.publish(to: "exactly/once", payload: "q2", qos: .exactlyOnce)
        try await publisher.publish(to: "exactly/once", payload: "q1", qos: .atLeastOnce)
        let received = try await messages.wait(for: 2)
        #expect(received.map(\.payloadString) == ["q2", "q1"])
        #expect(received.map(\.qos) == [.exactlyOnce, .atLeastOnce])
        try await Task.sleep(for: .milliseconds(200))
        #expect(messages.received.count == 2)
        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("retained messages go to later subscribers with RETAIN set; an empty payload clears them", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func retainedMessages(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let publisher = try await node.client("retain-pub-\(version.rawValue)", version)
        try await publisher.publish(to: "status/a", payload: "a-old", qos: .atLeastOnce, retain: true)
        try await publisher.publish(to: "status/a", payload: "a-new", qos: .atLeastOnce, retain: true)
        try await publisher.publish(to: "status/b", payload: "b", qos: .atMostOnce, retain: true)
        try await publisher.publish(to: "status/c", payload: "c", qos: .atLeastOnce, retain: true)
        // [MQTT-3.3.1-6]: an empty retained payload deletes the retained message of status/c.
        try await publisher.publish(to: "status/c", payload: "", qos: .atLeastOnce, retain: true)
        try await publisher.publish(to: "status/d", payload: "not retained", qos: .atLeastOnce)

        let subscriber = try await node.client("retain-sub-\(version.rawValue)", version)
        let messages = MessageCollector(subscriber)
        _ = try await subscriber.subscribe(to: "status/+", qos: .atLeastOnce)
        let received = try await messages.wait(for: 2)
        #expect(Set(received.map(\.payloadString)) == ["a-new", "b"])
        #expect(received.allSatisfy { $0.retain })  // [MQTT-3.3.1-8]
        #expect(received.first { $0.topic == "status/b" }?.qos == .atMostOnce)

        // Live messages after the subscription carry RETAIN 0 ([MQTT-3.3.1-9]).
        try await publisher.publish(to: "status/a", payload: "live", qos: .atLeastOnce, retain: true)
        let afterLive = try await messages.wait(for: 3)
        #expect(afterLive.last?.payloadString == "live")
        #expect(afterLive.last?.retain == false)
        try await Task.sleep(for: .milliseconds(200))
        #expect(messages.received.count == 3)

        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("a QoS 0 flood from one client arrives complete and in order")
    func qos0Flood() async throws {
        let node = try await TestNode.start()
        let subscriber = try await node.client("flood-sub", .v5)
        let publisher = try await node.client("flood-pub", .v5)
        let messages = MessageCollector(subscriber)
        _ = try await subscriber.subscribe(to: "flood/#", qos: .atMostOnce)
        let count = 5_000
        for index in 0..<count {
            try await publisher.publish(to: "flood/x", payload: "\(index)", qos: .atMostOnce)
        }
        let received = try await messages.wait(for: count, timeout: .seconds(30))
        #expect(received.map(\.payloadString) == (0..<count).map { "\($0)" })
        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("unsubscribed clients get nothing more", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func unsubscribe(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let subscriber = try await node.client("unsub-\(version.rawValue)", version)
        let publisher = try await node.client("unsub-pub-\(version.rawValue)", version)
        let messages = MessageCollector(subscriber)
        _ = try await subscriber.subscribe(to: "u/#", qos: .atLeastOnce)
        try await publisher.publish(to: "u/1", payload: "before", qos: .atLeastOnce)
        _ = try await messages.wait(for: 1)
        try await subscriber.unsubscribe(from: "u/#")
        try await publisher.publish(to: "u/1", payload: "after", qos: .atLeastOnce)
        try await Task.sleep(for: .milliseconds(200))
        #expect(messages.received.map(\.payloadString) == ["before"])
        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }
}

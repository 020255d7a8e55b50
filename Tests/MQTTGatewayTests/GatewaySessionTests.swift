import Foundation
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import NIOCore
import Testing

/// Persistent sessions, wills with delays, No Local, message expiry and peer-to-peer topics, against an
/// in-process gateway with our client.
@Suite("Gateway sessions", .timeLimit(.minutes(1)))
struct GatewaySessionTests {
    /// A persistent-session client: 3.1.1 CleanSession 0, or 5.0 with a Session Expiry Interval.
    static func persistent(_ node: TestNode, _ clientIdentifier: String, _ version: MQTTProtocolVersion, expirySeconds: UInt32 = 300) -> MQTTClient {
        node.makeClient(clientIdentifier, version) { configuration in
            configuration.cleanStart = false
            if version == .v5 { configuration.sessionExpiryIntervalSeconds = expirySeconds }
        }
    }

    @Test("an offline persistent session gets what was published while it was away, in order, with its subscriptions kept",
          arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func offlineMessages(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let id = "persistent-\(version.rawValue)"
        let subscriber = Self.persistent(node, id, version)
        // 3.1.1 CleanSession 0 creates the persistent session; v5 Clean Start 1 with an expiry interval too.
        let first = try await subscriber.connect(cleanStart: version == .v5)
        #expect(!first.sessionPresent)
        #expect(try await subscriber.subscribe(to: "offline/#", qos: .exactlyOnce) == .exactlyOnce)
        try await subscriber.disconnect()
        await subscriber.shutdown()

        let publisher = try await node.client("publisher-\(version.rawValue)", version)
        for index in 0..<30 {
            let qos: MQTTQoS = index % 3 == 0 ? .exactlyOnce : .atLeastOnce
            try await publisher.publish(to: "offline/\(index % 4)", payload: "m\(index)", qos: qos)
        }

        let again = Self.persistent(node, id, version)
        let messages = MessageCollector(again)
        let connAck = try await again.connect()
        #expect(connAck.sessionPresent)
        let received = try await messages.wait(for: 30)
        #expect(received.map(\.payloadString) == (0..<30).map { "m\($0)" })
        #expect(received.map(\.qos) == (0..<30).map { $0 % 3 == 0 ? MQTTQoS.exactlyOnce : .atLeastOnce })

        // The subscription is still there: a new message arrives live.
        try await publisher.publish(to: "offline/live", payload: "live", qos: .atLeastOnce)
        #expect(try await messages.wait(for: 31).last?.payloadString == "live")

        for client in [again, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("sessions, their subscriptions and queued messages survive a restart of the node", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func survivesRestart(version: MQTTProtocolVersion) async throws {
        var node = try await TestNode.start(flushDiskType: .syncFlush)
        let id = "restart-\(version.rawValue)"
        let subscriber = Self.persistent(node, id, version)
        try await subscriber.connect()
        _ = try await subscriber.subscribe(to: [
            Subscription(topicFilter: "restart/+/a", maximumQoS: .atLeastOnce), Subscription(topicFilter: "restart/x/b", maximumQoS: .exactlyOnce),
        ])
        try await subscriber.disconnect()
        await subscriber.shutdown()

        let publisher = try await node.client("restart-publisher-\(version.rawValue)", version)
        for index in 0..<10 {
            try await publisher.publish(to: index.isMultiple(of: 2) ? "restart/x/a" : "restart/x/b", payload: "\(index)", qos: .exactlyOnce)
        }
        try await publisher.disconnect()
        await publisher.shutdown()

        node = try await node.restart()
        let again = Self.persistent(node, id, version)
        let messages = MessageCollector(again)
        #expect(try await again.connect().sessionPresent)
        let received = try await messages.wait(for: 10)
        // In order per topic; each at min(published, granted).
        #expect(received.filter { $0.topic == "restart/x/a" }.map(\.payloadString) == ["0", "2", "4", "6", "8"])
        #expect(received.filter { $0.topic == "restart/x/b" }.map(\.payloadString) == ["1", "3", "5", "7", "9"])
        #expect(received.allSatisfy { $0.qos == ($0.topic == "restart/x/a" ? .atLeastOnce : .exactlyOnce) })

        // Both subscriptions (one of them a wildcard) still route new messages after the restart.
        let publisher2 = try await node.client("restart-publisher2-\(version.rawValue)", version)
        try await publisher2.publish(to: "restart/y/a", payload: "after-a", qos: .atLeastOnce)
        try await publisher2.publish(to: "restart/x/b", payload: "after-b", qos: .atLeastOnce)
        #expect(Set(try await messages.wait(for: 12).suffix(2).map(\.payloadString)) == ["after-a", "after-b"])
        for client in [again, publisher2] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("Clean Start discards the stored session [MQTT-3.1.2-4]", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func cleanStartDiscards(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let id = "discard-\(version.rawValue)"
        let subscriber = Self.persistent(node, id, version)
        try await subscriber.connect()
        _ = try await subscriber.subscribe(to: "discard/t", qos: .atLeastOnce)
        try await subscriber.disconnect()

        let publisher = try await node.client("discard-publisher-\(version.rawValue)", version)
        try await publisher.publish(to: "discard/t", payload: "queued", qos: .atLeastOnce)

        let messages = MessageCollector(subscriber)
        #expect(!(try await subscriber.connect(cleanStart: true)).sessionPresent)
        try await publisher.publish(to: "discard/t", payload: "after", qos: .atLeastOnce)
        try await Task.sleep(for: .milliseconds(300))
        #expect(messages.received.isEmpty, "the old subscription and its queued message are gone")
        // 3.1.1 CleanSession 1 ends the session with the connection; v5 needs Session Expiry 0 for that.
        try await subscriber.disconnect(properties: version == .v5 ? [.sessionExpiryInterval(0)] : [])

        // And a clean session leaves nothing behind.
        #expect(!(try await subscriber.connect(cleanStart: false)).sessionPresent)
        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("v5: a session ends when its Session Expiry Interval has passed [MQTT-3.1.2-23]")
    func sessionExpiry() async throws {
        let node = try await TestNode.start()
        let client = Self.persistent(node, "expiring", .v5, expirySeconds: 1)
        try await client.connect()
        _ = try await client.subscribe(to: "expiring/t", qos: .atLeastOnce)
        try await client.disconnect()
        try await Task.sleep(for: .milliseconds(2_500))
        #expect(!(try await client.connect()).sessionPresent)
        try await client.disconnect(reasonCode: .normalDisconnection, properties: [.sessionExpiryInterval(0)])
        await client.shutdown()
        await node.stop()
    }

    @Test("v5: resent in-flight deliveries keep their packet identifiers; nothing is lost when the client drops mid-stream")
    func inflightResumed() async throws {
        let node = try await TestNode.start()
        let publisher = try await node.client("inflight-publisher", .v5)
        let subscriber = Self.persistent(node, "inflight-sub", .v5)
        // One collector for both connections: the client's message stream lasts for its whole life.
        let messages = MessageCollector(subscriber)
        try await subscriber.connect()
        _ = try await subscriber.subscribe(to: "inflight/t", qos: .exactlyOnce)
        for index in 0..<200 {
            try await publisher.publish(to: "inflight/t", payload: "\(index)", qos: index.isMultiple(of: 2) ? .exactlyOnce : .atLeastOnce)
        }
        _ = try await messages.wait(for: 20)
        await subscriber.closeAbruptly()

        #expect(try await subscriber.connect().sessionPresent)
        try await waitUntil("the rest of the stream", timeout: .seconds(10)) {
            Set(messages.received.map(\.payloadString)).count == 200
        }
        // QoS 2 messages arrive exactly once over both connections.
        let all = messages.received.map(\.payloadString)
        let exactlyOnce = all.filter { Int($0)!.isMultiple(of: 2) }
        #expect(exactlyOnce.count == Set(exactlyOnce).count, "a QoS 2 message arrived twice")
        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("v5: a will with a delay is published after the delay, and not at all if the client returns first")
    func willDelay() async throws {
        let node = try await TestNode.start()
        let watcher = try await node.client("will-watcher", .v5)
        let wills = MessageCollector(watcher)
        _ = try await watcher.subscribe(to: "wills/#", qos: .atLeastOnce)

        func dying(_ id: String, delaySeconds: UInt32) -> MQTTClient {
            node.makeClient(id, .v5) { configuration in
                configuration.cleanStart = false
                configuration.sessionExpiryIntervalSeconds = 60
                configuration.will = ConnectPacket.Will(
                    topicName: "wills/\(id)", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce, properties: [.willDelayInterval(delaySeconds)]
                )
            }
        }
        let delayed = dying("delayed", delaySeconds: 1)
        // Long enough that only the cancellation, never the clock, decides it however slow the machine is.
        let returning = dying("returning", delaySeconds: 60)
        try await delayed.connect()
        try await returning.connect()
        await delayed.closeAbruptly()
        await returning.closeAbruptly()
        try await Task.sleep(for: .milliseconds(300))
        #expect(wills.received.isEmpty, "a delayed will went out at once")
        try await returning.connect()

        let received = try await wills.wait(for: 1)
        #expect(received.map(\.topic) == ["wills/delayed"])
        #expect(received.first?.properties.willDelayInterval == nil)
        // The returning client's will no longer waits: its reconnection cancelled it [MQTT-3.1.3-9].
        #expect(node.gateway.services.wills.count == 0, "the will of a client that came back is still scheduled")
        #expect(wills.received.count == 1, "the will of a client that came back was published")
        for client in [returning, watcher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await delayed.shutdown()
        await node.stop()
    }

    @Test("v5: No Local keeps a client's own messages from it [MQTT-3.8.3-3]")
    func noLocal() async throws {
        let node = try await TestNode.start()
        let me = try await node.client("no-local-me", .v5)
        let other = try await node.client("no-local-other", .v5)
        let mine = MessageCollector(me)
        let others = MessageCollector(other)
        _ = try await me.subscribe(to: [Subscription(topicFilter: "chat/#", maximumQoS: .atLeastOnce, noLocal: true)])
        _ = try await other.subscribe(to: [Subscription(topicFilter: "chat/#", maximumQoS: .atLeastOnce, noLocal: true)])
        try await me.publish(to: "chat/room", payload: "from me", qos: .atLeastOnce)
        try await other.publish(to: "chat/room", payload: "from other", qos: .atLeastOnce)
        #expect(try await mine.wait(for: 1).map(\.payloadString) == ["from other"])
        #expect(try await others.wait(for: 1).map(\.payloadString) == ["from me"])
        try await Task.sleep(for: .milliseconds(200))
        #expect(mine.received.count == 1 && others.received.count == 1)
        for client in [me, other] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("v5: an expired message is not delivered; the interval is lowered by the time waited [MQTT-3.3.2-5] [MQTT-3.3.2-6]")
    func messageExpiry() async throws {
        let node = try await TestNode.start()
        let subscriber = Self.persistent(node, "expiry-sub", .v5)
        try await subscriber.connect()
        _ = try await subscriber.subscribe(to: "expiry/t", qos: .atLeastOnce)
        try await subscriber.disconnect()
        let publisher = try await node.client("expiry-publisher", .v5)
        try await publisher.publish(to: "expiry/t", payload: "short", qos: .atLeastOnce, properties: [.messageExpiryInterval(1)])
        try await publisher.publish(to: "expiry/t", payload: "long", qos: .atLeastOnce, properties: [.messageExpiryInterval(100)])
        try await Task.sleep(for: .milliseconds(2_200))

        let messages = MessageCollector(subscriber)
        try await subscriber.connect()
        let received = try await messages.wait(for: 1)
        #expect(received.map(\.payloadString) == ["long"])
        let remaining = try #require(received.first?.properties.messageExpiryInterval)
        #expect(remaining < 100 && remaining >= 90)
        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("a PUBLISH to <firstTopic>/p2p/<clientId> reaches that client alone, without a subscription", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func peerToPeer(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let recipient = try await node.client("p2p-bob-\(version.rawValue)", version)
        let bystander = try await node.client("p2p-eve-\(version.rawValue)", version)
        let sender = try await node.client("p2p-alice-\(version.rawValue)", version)
        let bobs = MessageCollector(recipient)
        let eves = MessageCollector(bystander)
        _ = try await bystander.subscribe(to: "chat/#", qos: .atLeastOnce)
        try await sender.publish(to: "chat/p2p/p2p-bob-\(version.rawValue)", payload: "psst", qos: .atLeastOnce)
        let received = try await bobs.wait(for: 1)
        #expect(received.map(\.payloadString) == ["psst"])
        #expect(received.map(\.topic) == ["chat/p2p/p2p-bob-\(version.rawValue)"])
        try await Task.sleep(for: .milliseconds(200))
        #expect(eves.received.isEmpty)
        for client in [recipient, bystander, sender] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("$share/{group}/{filter}: each message to one member; a member that leaves hands its unacknowledged messages to the others",
          arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func sharedSubscription(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let v = version.rawValue
        let first = try await node.client("share-a-\(v)", version)
        let second = try await node.client("share-b-\(v)", version)
        let leaving = try await node.client("share-leaving-\(v)", version)
        let plain = try await node.client("share-plain-\(v)", version)
        let firsts = MessageCollector(first)
        let seconds = MessageCollector(second)
        let leavings = MessageCollector(leaving)
        let plains = MessageCollector(plain)
        for client in [first, second, leaving] {
            #expect(try await client.subscribe(to: "$share/workers/jobs/+", qos: .atLeastOnce) == .atLeastOnce)
        }
        _ = try await plain.subscribe(to: "jobs/+", qos: .atLeastOnce)
        let publisher = try await node.client("share-publisher-\(v)", version)
        for index in 0..<300 {
            try await publisher.publish(to: "jobs/\(index % 3)", payload: "\(index)", qos: .atLeastOnce)
            if index == 150 {
                // One member drops mid-stream: what it took and did not acknowledge goes to the others.
                await leaving.closeAbruptly()
            }
        }
        try await waitUntil("all 300 messages over the group", timeout: .seconds(15)) {
            Set((firsts.received + seconds.received + leavings.received).map(\.payloadString)).count == 300
        }
        let beforeLeaving = leavings.received.count
        let shared = (firsts.received + seconds.received).map(\.payloadString)
        #expect(shared.count == Set(shared).count, "a message went to two connected members")
        #expect(shared.count + beforeLeaving >= 300)
        #expect(!firsts.received.isEmpty && !seconds.received.isEmpty, "both members take part")
        // A non-shared subscription to the same filter still gets everything.
        #expect(try await plains.wait(for: 300, timeout: .seconds(10)).count == 300)
        for client in [first, second, plain, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await leaving.shutdown()
        await node.stop()
    }
}

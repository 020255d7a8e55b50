import Foundation
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import NIOCore
import Testing

@Suite("Gateway limits: maxConn, subscriptions, inbound rate, offline backlog", .timeLimit(.minutes(1)))
struct GatewayLimitsTests {
    @Test("maxConn: the (N+1)th connection is closed at accept; a freed slot is usable again")
    func maximumConnections() async throws {
        let node = try await AccessTestNode.start(limits: GatewayLimits(maximumConnections: 2))
        let first = try await node.node.client("first", .v5)
        let second = try await node.node.client("second", .v3_1_1)
        let third = node.node.makeClient("third", .v5) { $0.connectTimeout = .seconds(2) }
        await #expect(throws: MQTTClientError.self) { _ = try await third.connect() }
        #expect(node.counters.count(.connectionRefused) >= 1)
        #expect(await first.isConnected)
        #expect(await second.isConnected)
        await third.shutdown()

        try await second.disconnect()
        await second.shutdown()
        try await waitUntil("a free slot") { node.node.gateway.services.connectionLimiter.openConnections < 2 }
        let fourth = try await node.node.client("fourth", .v5)
        #expect(await fourth.isConnected)
        for client in [first, fourth] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("maxSubscriptionsPerClient: one filter too many gets 0x97 (v5) or 0x80 (3.1.1); replacing one is fine")
    func maximumSubscriptions() async throws {
        let node = try await AccessTestNode.start(limits: GatewayLimits(maximumSubscriptionsPerClient: 2))
        for version in [MQTTProtocolVersion.v5, .v3_1_1] {
            let client = try await node.node.client("subscriber-\(version.rawValue)", version)
            let first = try await client.subscribe(to: [
                Subscription(topicFilter: "a", maximumQoS: .atLeastOnce),
                Subscription(topicFilter: "b/+", maximumQoS: .atLeastOnce),
                Subscription(topicFilter: "c/#", maximumQoS: .atLeastOnce),
            ])
            let refused: MQTTReasonCode = version == .v5 ? .quotaExceeded : .unspecifiedError
            #expect(first.reasonCodes == [.grantedQoS1, .grantedQoS1, refused])
            // Subscribing to a filter already held replaces it: not a new subscription.
            #expect(try await client.subscribe(to: [Subscription(topicFilter: "a", maximumQoS: .exactlyOnce)]).reasonCodes == [.grantedQoS2])
            try await client.unsubscribe(from: "a")
            #expect(try await client.subscribe(to: [Subscription(topicFilter: "c/#", maximumQoS: .atMostOnce)]).reasonCodes == [.grantedQoS0])
            try await client.disconnect()
            await client.shutdown()
        }
        #expect(node.counters.count(.subscriptionQuotaExceeded) == 2)
        // ... and /metrics says so.
        let exposition = String(decoding: node.node.gateway.services.metrics.exposition(), as: UTF8.self)
        #expect(exposition.contains(#"mqtt_limit_events_total{event="subscription_quota_exceeded"} 2"#), "\(exposition)")
        await node.stop()
    }

    @Test("inbound rate: a flooding publisher is slowed, not disconnected; a normal client is unaffected")
    func inboundRate() async throws {
        let ratePerSecond = 50
        let node = try await AccessTestNode.start(limits: GatewayLimits(maximumInboundMessagesPerSecond: ratePerSecond))
        let subscriber = try await node.node.client("rate-subscriber", .v5)
        let collected = MessageCollector(subscriber)
        #expect(try await subscriber.subscribe(to: "rate/#", qos: .atLeastOnce) == .atLeastOnce)
        let flooder = try await node.node.client("flooder", .v5)
        let normal = try await node.node.client("normal", .v5)

        // 3 s worth at the limit; a burst of 1 s is allowed, so the last arrives after about 2 s.
        let floodCount = ratePerSecond * 3
        let start = ContinuousClock.now
        let flood = Task {
            for index in 0..<floodCount {
                try await flooder.publish(to: "rate/flood", payload: "\(index)", qos: .atMostOnce)
            }
        }
        try await waitUntil("the flooder to be limited", timeout: .seconds(30)) { node.counters.count(.inboundRateLimited) > 0 }
        // The other connection has a budget of its own.
        for index in 0..<5 {
            try await normal.publish(to: "rate/normal", payload: "n\(index)", qos: .atLeastOnce)
        }
        try await waitUntil("the normal client's messages") {
            collected.received.filter { $0.topic == "rate/normal" }.count == 5
        }
        // The limiter holds the flood back for about 2 s whatever the machine's load; the normal client's
        // messages are not queued behind it.
        #expect(collected.received.filter { $0.topic == "rate/flood" }.count < floodCount, "the normal client waited for the flood")

        try await waitUntil("the flood", timeout: .seconds(20)) {
            collected.received.filter { $0.topic == "rate/flood" }.count == floodCount
        }
        let elapsed = ContinuousClock.now - start
        try await flood.value
        // Loose: at the limit the flood takes about 2 s; unlimited it takes a few milliseconds.
        #expect(elapsed > .milliseconds(1_200), "the flood of \(floodCount) took \(elapsed)")
        #expect(collected.received.filter { $0.topic == "rate/flood" }.map(\.payloadString) == (0..<floodCount).map { "\($0)" })
        #expect(await flooder.isConnected)

        for client in [subscriber, flooder, normal] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test(
        "maxQueuedMessagesPerSession: a resumed session skips the oldest (or, with dropNewest, the newest) of its backlog",
        arguments: [MQTTProtocolVersion.v3_1_1, .v5], GatewayLimits.QueuedMessagesOverflow.allCases
    )
    func offlineBacklog(version: MQTTProtocolVersion, overflow: GatewayLimits.QueuedMessagesOverflow) async throws {
        var limits = GatewayLimits(maximumQueuedMessagesPerSession: 5)
        limits.queuedMessagesOverflow = overflow
        let node = try await AccessTestNode.start(limits: limits)
        func persistent() -> MQTTClient {
            node.node.makeClient("backlog-\(version.rawValue)-\(overflow.rawValue)", version) { configuration in
                configuration.cleanStart = false
                if version == .v5 { configuration.sessionExpiryIntervalSeconds = 60 }
            }
        }
        let subscriber = persistent()
        _ = try await subscriber.connect()
        #expect(try await subscriber.subscribe(to: "backlog/t", qos: .atLeastOnce) == .atLeastOnce)
        try await subscriber.disconnect()
        await subscriber.shutdown()

        let publisher = try await node.node.client("backlog-publisher-\(version.rawValue)", version)
        for index in 0..<12 {
            try await publisher.publish(to: "backlog/t", payload: "m\(index)", qos: .atLeastOnce)
        }
        let resumed = persistent()
        let collected = MessageCollector(resumed)
        let connAck = try await resumed.connect()
        #expect(connAck.sessionPresent)
        _ = try await collected.wait(for: 5)
        try await Task.sleep(for: .milliseconds(200))
        switch overflow {
        case .dropOldest:
            #expect(collected.received.map(\.payloadString) == (7..<12).map { "m\($0)" })
        case .dropNewest:
            #expect(collected.received.map(\.payloadString) == (0..<5).map { "m\($0)" })
        }
        #expect(node.counters.count(.backlogMessageDropped) == 7)
        // What is published after the session resumed arrives either way.
        try await publisher.publish(to: "backlog/t", payload: "live", qos: .atLeastOnce)
        #expect(try await collected.wait(for: 6).last?.payloadString == "live")

        for client in [resumed, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await node.stop()
    }

    @Test("connect.conf: limit keys, defaults and range errors")
    func configuration() throws {
        let defaults = try GatewayLimits(connectProperties: [:])
        #expect(defaults == GatewayLimits())
        #expect(defaults.maximumConnections == 100_000 && !defaults.limitsInboundRate)
        let parsed = try GatewayLimits(connectProperties: [
            "maxConn": "5", "maxInboundMessagesPerSecond": "10", "maxInboundBytesPerSecond": "1000",
            "maxSubscriptionsPerClient": "0", "maxQueuedMessagesPerSession": "7",
            "writeBufferLowWaterMarkInByte": "1024", "writeBufferHighWaterMarkInByte": "4096",
        ])
        #expect(parsed == GatewayLimits(
            maximumConnections: 5, maximumInboundMessagesPerSecond: 10, maximumInboundBytesPerSecond: 1000,
            maximumSubscriptionsPerClient: 0, maximumQueuedMessagesPerSession: 7,
            writeBufferLowWaterMarkBytes: 1024, writeBufferHighWaterMarkBytes: 4096
        ))
        #expect(parsed.limitsInboundRate)
        #expect(parsed.queuedMessagesOverflow == .dropOldest)
        #expect(try GatewayLimits(connectProperties: ["queuedMessagesOverflow": "dropNewest"]).queuedMessagesOverflow == .dropNewest)
        #expect(throws: GatewayConfiguration.LoadError.self) { try GatewayLimits(connectProperties: ["queuedMessagesOverflow": "newest"]) }
        #expect(throws: GatewayConfiguration.LoadError.self) { try GatewayLimits(connectProperties: ["maxConn": "0"]) }
        #expect(throws: GatewayConfiguration.LoadError.self) { try GatewayLimits(connectProperties: ["maxSubscriptionsPerClient": "x"]) }
        #expect(throws: GatewayConfiguration.LoadError.self) {
            try GatewayLimits(connectProperties: ["writeBufferLowWaterMarkInByte": "4096", "writeBufferHighWaterMarkInByte": "1024"])
        }
    }

    @Test("connect.conf: connectTimeoutSeconds reaches the connection configuration")
    func connectTimeout() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("limits-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "connectTimeoutSeconds=3\nmaxConn=9\n".write(to: directory.appendingPathComponent("connect.conf"), atomically: true, encoding: .utf8)
        try "allowAnonymous=true\n".write(to: directory.appendingPathComponent("service.conf"), atomically: true, encoding: .utf8)
        try "storePathRootDir=\(directory.path)/store\n".write(to: directory.appendingPathComponent("broker.conf"), atomically: true, encoding: .utf8)
        let configuration = try GatewayConfiguration.load(directory: directory.path)
        #expect(configuration.connection.connectTimeoutSeconds == 3)
        #expect(configuration.limits.maximumConnections == 9)
        try "connectTimeoutSeconds=0\n".write(to: directory.appendingPathComponent("connect.conf"), atomically: true, encoding: .utf8)
        #expect(throws: GatewayConfiguration.LoadError.self) { try GatewayConfiguration.load(directory: directory.path) }
    }
}

@Suite("Inbound rate limiter (token buckets)")
struct InboundRateLimiterTests {
    @Test("a second's burst passes, then each message costs 1/rate; bytes are limited the same way")
    func buckets() {
        var messages = InboundRateLimiter(messagesPerSecond: 10, bytesPerSecond: 0, nowNanos: 0)
        for _ in 0..<10 { #expect(messages.take(bytes: 1_000_000, nowNanos: 0) == nil) }
        // One over: a tenth of a second of debt.
        #expect(messages.take(bytes: 1, nowNanos: 0) == 100_000_000)
        // After the debt is paid, one more fits.
        #expect(messages.take(bytes: 1, nowNanos: 200_000_000) == nil)

        var bytes = InboundRateLimiter(messagesPerSecond: 0, bytesPerSecond: 1_000, nowNanos: 0)
        #expect(bytes.take(bytes: 1_000, nowNanos: 0) == nil)
        // A message larger than the budget still passes, then reading pauses until it is paid for.
        #expect(bytes.take(bytes: 2_000, nowNanos: 0) == 2_000_000_000)
        #expect(bytes.take(bytes: 1, nowNanos: 3_000_000_000) == nil)
    }
}

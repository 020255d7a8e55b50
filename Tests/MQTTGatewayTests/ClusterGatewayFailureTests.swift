import Foundation
import MQTTClient
import MQTTCore
import NIOCore
import Testing

/// A gateway of a real cluster dies (SIGKILL): the store node finds it missing from the name server's
/// registry, publishes the wills of its clients and releases their sessions, while clients move to
/// another gateway without losing what was acknowledged (docs/cluster.md).
@Suite(
    "cluster: a gateway dies; the cluster publishes its clients' wills",
    .enabled(if: ClusterFixture.isAvailable, "built mqnamesrv, mqbroker and mqtt-node are needed"),
    .timeLimit(.minutes(4))
)
struct ClusterGatewayFailureTests {
    /// Checks every second. The fixture's name server forgets a gateway 6 s after a heartbeat, and gateways
    /// heartbeat every 10 s, so a live gateway is missing from the registry for about 4 s of every 10:
    /// 7 s of absence tells a dead gateway from that, and keeps the wait for a will under 20 s (6 s until
    /// the registry drops the dead gateway, 7 s, one check).
    static let brokerSettings = ["gatewayCheckIntervalSeconds": "1", "gatewayMissingSeconds": "7"]

    private static func client(
        _ gateway: NodeProcess, _ clientIdentifier: String, cleanStart: Bool = true, expirySeconds: UInt32 = 0, will: ConnectPacket.Will? = nil
    ) -> MQTTClient {
        var configuration = MQTTClient.Configuration(
            host: "127.0.0.1", port: gateway.port, clientIdentifier: clientIdentifier, protocolVersion: .v5
        )
        configuration.cleanStart = cleanStart
        configuration.sessionExpiryIntervalSeconds = expirySeconds
        configuration.will = will
        return MQTTClient(configuration: configuration)
    }

    private static func will(_ topic: String, _ payload: String, retain: Bool = false, delaySeconds: UInt32? = nil) -> ConnectPacket.Will {
        ConnectPacket.Will(
            topicName: topic, payload: ByteBuffer(string: payload), qos: .atLeastOnce, retain: retain,
            properties: delaySeconds.map { [.willDelayInterval($0)] } ?? []
        )
    }

    private static func withCluster(_ body: @Sendable (ClusterFixture) async throws -> Void) async throws {
        try await ClusterFixture.with(gateways: 2, broker: brokerSettings, body)
    }

    private static func wills(_ messages: MessageCollector) -> [MQTTMessage] {
        messages.received.filter { $0.topic.hasPrefix("wills/") }
    }

    @Test("SIGKILL of a gateway: its clients' wills are published, acknowledged messages of a publisher that moves are all delivered")
    func killedGatewayWillsAndMovingPublisher() async throws {
        try await Self.withCluster { cluster in
            let gateways = cluster.gateways
            let subscriber = Self.client(gateways[1], "watcher")
            let messages = MessageCollector(subscriber)
            _ = try await subscriber.connect()
            #expect(try await subscriber.subscribe(to: "wills/#", qos: .atLeastOnce) == .atLeastOnce)
            #expect(try await subscriber.subscribe(to: "load/#", qos: .atLeastOnce) == .atLeastOnce)

            // W's session ends with its connection; P's outlives it, and its will is retained.
            let willClient = Self.client(gateways[0], "W", will: Self.will("wills/W", "W is gone"))
            _ = try await willClient.connect()
            let persistent = Self.client(gateways[0], "P", expirySeconds: 600, will: Self.will("wills/P", "P is gone", retain: true))
            _ = try await persistent.connect()

            let publishing = Task { () throws -> [Int] in
                var acknowledged: [Int] = []
                var publisher = Self.client(gateways[0], "load-pub")
                _ = try await publisher.connect()
                var moved = false
                var acknowledgedAfterMove = 0
                for sequence in 0..<5_000 where acknowledgedAfterMove < 100 {
                    do {
                        try await publisher.publish(to: "load/x", payload: "\(sequence)", qos: .atLeastOnce)
                        acknowledged.append(sequence)
                        if moved { acknowledgedAfterMove += 1 }
                    } catch {
                        // Gateway 0 died with this message unacknowledged: go on through gateway 1.
                        guard !moved else { throw error }
                        moved = true
                        await publisher.shutdown()
                        publisher = Self.client(gateways[1], "load-pub")
                        _ = try await publisher.connect()
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await publisher.disconnect()
                await publisher.shutdown()
                guard acknowledgedAfterMove == 100 else { throw TestFailure("the publisher did not finish: \(acknowledged.count) acknowledged") }
                return acknowledged
            }

            // Long enough for the registry to have dropped the live gateways between heartbeats at least
            // once: no will may come of that.
            try await Task.sleep(for: .seconds(12))
            #expect(Self.wills(messages).isEmpty, "wills published while their gateway lived: \(Self.wills(messages).map(\.topic))")

            await gateways[0].kill()
            let killedAt = ContinuousClock.now
            try await waitUntil("the wills of W and P", timeout: .seconds(30)) { Set(Self.wills(messages).map(\.topic)) == ["wills/W", "wills/P"] }
            let elapsed = ContinuousClock.now - killedAt
            #expect(elapsed < .seconds(20), "the wills came \(elapsed) after the gateway died")
            let wills = Self.wills(messages)
            #expect(wills.first { $0.topic == "wills/W" }?.payloadString == "W is gone")
            #expect(wills.first { $0.topic == "wills/P" }?.payloadString == "P is gone")
            #expect(wills.allSatisfy { $0.properties.willDelayInterval == nil })

            let acknowledged = try await publishing.value
            let received = { Set(messages.received.filter { $0.topic == "load/x" }.compactMap { Int($0.payloadString) }) }
            try await waitUntil("every acknowledged message (\(acknowledged.count))", timeout: .seconds(30)) {
                received().isSuperset(of: acknowledged)
            }
            #expect(acknowledged.count > 100, "some messages were acknowledged before the gateway died")

            // Each will once (the connection is released once).
            try await Task.sleep(for: .seconds(2))
            #expect(Self.wills(messages).count == 2)
            // P's will is retained, and its session was kept (disconnected, not ended): it resumes on gateway 1.
            let late = Self.client(gateways[1], "late")
            let lateMessages = MessageCollector(late)
            _ = try await late.connect()
            _ = try await late.subscribe(to: "wills/P", qos: .atLeastOnce)
            let retained = try await lateMessages.wait(for: 1)
            #expect(retained.first?.payloadString == "P is gone")
            #expect(retained.first?.retain == true)
            let resumed = Self.client(gateways[1], "P", cleanStart: false, expirySeconds: 600)
            #expect(try await resumed.connect().sessionPresent, "P's session outlives its dead gateway")
            #expect(cluster.broker.logTail(400).contains("published the will of a dead gateway's client"))

            for client in [subscriber, late, resumed] {
                try? await client.disconnect()
                await client.shutdown()
            }
            await willClient.shutdown()
            await persistent.shutdown()
        }
    }

    @Test("a delayed will is cancelled by a reconnect to another gateway within its delay, and published otherwise")
    func delayedWillCancelledByReconnect() async throws {
        try await Self.withCluster { cluster in
            let gateways = cluster.gateways
            let subscriber = Self.client(gateways[1], "watcher")
            let messages = MessageCollector(subscriber)
            _ = try await subscriber.connect()
            _ = try await subscriber.subscribe(to: "wills/#", qos: .atLeastOnce)

            // D comes back within its 10 s delay; E, with 2 s, does not.
            let comesBack = Self.client(gateways[0], "D", expirySeconds: 600, will: Self.will("wills/D", "D is gone", delaySeconds: 10))
            _ = try await comesBack.connect()
            let staysAway = Self.client(gateways[0], "E", expirySeconds: 600, will: Self.will("wills/E", "E is gone", delaySeconds: 2))
            _ = try await staysAway.connect()

            await gateways[0].kill()
            // Both sessions are released in the same check, so E's will comes 2 s after D's delay started.
            try await waitUntil("the will of E", timeout: .seconds(30)) { !Self.wills(messages).isEmpty }
            #expect(Self.wills(messages).map(\.topic) == ["wills/E"])
            #expect(Self.wills(messages).first?.properties.willDelayInterval == nil, "the Will Delay Interval is not forwarded")

            // D reconnects to gateway 1 about 8 s before its will is due.
            let back = Self.client(gateways[1], "D", cleanStart: false, expirySeconds: 600)
            #expect(try await back.connect().sessionPresent)
            // Past D's delay, with a margin: still only E's will.
            try await Task.sleep(for: .seconds(11))
            #expect(Self.wills(messages).map(\.topic) == ["wills/E"])
            #expect(cluster.broker.logTail(400).contains("connected again: its will is not published"))

            for client in [subscriber, back] {
                try? await client.disconnect()
                await client.shutdown()
            }
            await comesBack.shutdown()
            await staysAway.shutdown()
        }
    }
}

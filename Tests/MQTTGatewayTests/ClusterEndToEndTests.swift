import Foundation
import MQTTClient
import MQTTCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real cluster on loopback — `mqnamesrv`, `mqbroker` and several `mqtt-node` gateways, each a process
/// of its own — driven by MQTT clients connected to different gateways (docs/cluster.md).
@Suite(
    "cluster: name server, store node and gateways as separate processes",
    .enabled(if: ClusterFixture.isAvailable, "built mqnamesrv, mqbroker and mqtt-node are needed"),
    .timeLimit(.minutes(4))
)
struct ClusterEndToEndTests {
    private static func client(_ gateway: NodeProcess, _ clientIdentifier: String, cleanStart: Bool = true, expirySeconds: UInt32 = 0) -> MQTTClient {
        var configuration = MQTTClient.Configuration(
            host: "127.0.0.1", port: gateway.port, clientIdentifier: clientIdentifier, protocolVersion: .v5
        )
        configuration.cleanStart = cleanStart
        configuration.sessionExpiryIntervalSeconds = expirySeconds
        return MQTTClient(configuration: configuration)
    }

    private static func withCluster(
        gateways: Int, broker: [String: String] = [:], _ body: @Sendable (ClusterFixture) async throws -> Void
    ) async throws {
        try await ClusterFixture.with(gateways: gateways, broker: broker, body)
    }

    @Test("publishers and subscribers on three gateways: every subscriber gets every message once, in each publisher's order")
    func threeGatewaysPublishSubscribe() async throws {
        try await Self.withCluster(gateways: 3) { cluster in
            let gateways = cluster.gateways
            // Two subscribers per gateway: a multi-level and a single-level wildcard.
            var subscribers: [(name: String, client: MQTTClient, messages: MessageCollector)] = []
            for (index, gateway) in gateways.enumerated() {
                for filter in ["c/#", "c/+/data"] {
                    let client = Self.client(gateway, "sub-\(index)-\(filter == "c/#" ? "all" : "one")")
                    _ = try await client.connect()
                    let messages = MessageCollector(client)
                    #expect(try await client.subscribe(to: filter, qos: .atLeastOnce) == .atLeastOnce)
                    subscribers.append(("gateway \(index) \(filter)", client, messages))
                }
            }
            // One publisher per gateway, each on its own topic, concurrently.
            let perPublisher = 60
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, gateway) in gateways.enumerated() {
                    group.addTask {
                        let publisher = Self.client(gateway, "pub-\(index)")
                        _ = try await publisher.connect()
                        for sequence in 0..<perPublisher {
                            try await publisher.publish(to: "c/room\(index)/data", payload: "\(index):\(sequence)", qos: .atLeastOnce)
                        }
                        try await publisher.disconnect()
                        await publisher.shutdown()
                    }
                }
                try await group.waitForAll()
            }
            let total = perPublisher * gateways.count
            for subscriber in subscribers {
                let received = try await subscriber.messages.wait(for: total, timeout: .seconds(30))
                // Nothing more comes (no duplicate): give stragglers a moment.
                try await Task.sleep(for: .milliseconds(200))
                let all = subscriber.messages.received
                #expect(all.count == total, "\(subscriber.name): \(all.count) messages, expected \(total)")
                var sequences: [String: [Int]] = [:]
                for message in received {
                    let parts = message.payloadString.split(separator: ":")
                    sequences[String(parts[0]), default: []].append(Int(parts[1]) ?? -1)
                    #expect(message.topic == "c/room\(parts[0])/data")
                }
                for index in gateways.indices {
                    #expect(sequences["\(index)"] == Array(0..<perPublisher), "\(subscriber.name): publisher \(index) out of order or incomplete")
                }
            }
            // Retained messages are the cluster's: set through one gateway, read through another.
            let retainer = Self.client(gateways[0], "retainer")
            _ = try await retainer.connect()
            try await retainer.publish(to: "c/status", payload: "up", qos: .atLeastOnce, retain: true)
            let late = Self.client(gateways[2], "late")
            _ = try await late.connect()
            let lateMessages = MessageCollector(late)
            _ = try await late.subscribe(to: "c/status", qos: .atLeastOnce)
            let retained = try await lateMessages.wait(for: 1)
            #expect(retained.first?.payloadString == "up")
            #expect(retained.first?.retain == true)
            for client in subscribers.map(\.client) + [retainer, late] {
                try? await client.disconnect()
                await client.shutdown()
            }
        }
    }

    @Test("a persistent session made on one gateway resumes on another with what was published meanwhile")
    func persistentSessionMovesBetweenGateways() async throws {
        try await Self.withCluster(gateways: 3) { cluster in
            let gateways = cluster.gateways
            let first = Self.client(gateways[0], "roamer", cleanStart: true, expirySeconds: 600)
            _ = try await first.connect()
            _ = try await first.subscribe(to: "roam/+/x", qos: .atLeastOnce)
            try await first.disconnect()
            await first.shutdown()

            let publisher = Self.client(gateways[1], "roam-pub")
            _ = try await publisher.connect()
            for sequence in 0..<20 {
                try await publisher.publish(to: "roam/\(sequence % 3)/x", payload: "\(sequence)", qos: .atLeastOnce)
            }

            let resumed = Self.client(gateways[2], "roamer", cleanStart: false, expirySeconds: 600)
            let messages = MessageCollector(resumed)
            let connack = try await resumed.connect()
            #expect(connack.sessionPresent, "the session made on gateway 0 is present on gateway 2")
            let received = try await messages.wait(for: 20)
            #expect(received.map(\.payloadString) == (0..<20).map { "\($0)" })
            // And the resumed subscription is live: a new message through gateway 1 arrives.
            try await publisher.publish(to: "roam/9/x", payload: "live", qos: .atLeastOnce)
            let live = try await messages.wait(for: 21)
            #expect(live.last?.payloadString == "live")
            for client in [publisher, resumed] {
                try? await client.disconnect()
                await client.shutdown()
            }
        }
    }

    @Test("a client connecting to another gateway takes its session over: the first gateway disconnects it with 0x8E")
    func takeoverAcrossGateways() async throws {
        try await Self.withCluster(gateways: 2) { cluster in
            let gateways = cluster.gateways
            let first = Self.client(gateways[0], "wanderer", cleanStart: true, expirySeconds: 600)
            _ = try await first.connect()
            _ = try await first.subscribe(to: "takeover/#", qos: .atLeastOnce)

            let second = Self.client(gateways[1], "wanderer", cleanStart: false, expirySeconds: 600)
            let messages = MessageCollector(second)
            let connack = try await second.connect()
            #expect(connack.sessionPresent, "the session of the connection on gateway 0 moves to gateway 1")
            // [MQTT-3.1.4-3]: the existing connection is closed, in v5 with Session taken over.
            let closed = await first.waitUntilClosed()
            guard case .serverDisconnected(let reasonCode, _)? = closed else {
                Issue.record("the connection on gateway 0 ended with \(String(describing: closed)), not a DISCONNECT")
                return
            }
            #expect(reasonCode == .sessionTakenOver)

            // The session's subscription lives on gateway 1: a message through gateway 0 arrives there once.
            let publisher = Self.client(gateways[0], "takeover-pub")
            _ = try await publisher.connect()
            try await publisher.publish(to: "takeover/1", payload: "after", qos: .atLeastOnce)
            let received = try await messages.wait(for: 1)
            #expect(received.map(\.payloadString) == ["after"])

            // And back again: gateway 1 gives it up to a third connection on gateway 0.
            let third = Self.client(gateways[0], "wanderer", cleanStart: false, expirySeconds: 600)
            #expect(try await third.connect().sessionPresent)
            guard case .serverDisconnected(.sessionTakenOver, _)? = await second.waitUntilClosed() else {
                Issue.record("the connection on gateway 1 was not taken over")
                return
            }
            for client in [first, second, third, publisher] {
                try? await client.disconnect()
                await client.shutdown()
            }
        }
    }

    @Test("a shared subscription with members on two gateways: each message goes to one member, none is lost")
    func sharedSubscriptionAcrossGateways() async throws {
        try await Self.withCluster(gateways: 2) { cluster in
            let gateways = cluster.gateways
            var members: [(client: MQTTClient, messages: MessageCollector)] = []
            for (index, gateway) in gateways.enumerated() {
                let member = Self.client(gateway, "member-\(index)")
                _ = try await member.connect()
                let messages = MessageCollector(member)
                #expect(try await member.subscribe(to: "$share/workers/jobs/#", qos: .atLeastOnce) == .atLeastOnce)
                members.append((member, messages))
            }
            let publisher = Self.client(gateways[1], "job-pub")
            _ = try await publisher.connect()
            let total = 300
            for sequence in 0..<total {
                try await publisher.publish(to: "jobs/\(sequence % 5)", payload: "\(sequence)", qos: .atLeastOnce)
            }
            try await waitUntil("every job delivered (have \(members.map(\.messages.received.count)))") {
                members.map(\.messages.received.count).reduce(0, +) >= total
            }
            try await Task.sleep(for: .milliseconds(300))
            let all = members.flatMap { $0.messages.received.map(\.payloadString) }
            #expect(all.count == total, "each job once across the members: \(all.count) deliveries")
            #expect(Set(all) == Set((0..<total).map { "\($0)" }))
            for client in members.map(\.client) + [publisher] {
                try? await client.disconnect()
                await client.shutdown()
            }
        }
    }
}

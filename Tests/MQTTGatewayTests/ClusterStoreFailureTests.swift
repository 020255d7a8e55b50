import Foundation
import MQTTClient
import MQTTCore
import NIOConcurrencyHelpers
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The store node of a cluster dies (SIGKILL) while a publisher on one gateway sends QoS 1 messages
/// that a persistent subscriber on another gateway reads. With SYNC_FLUSH a PUBACK means the message is on
/// the disk, so every acknowledged message must reach the subscriber once the store node is back — with
/// no gateway restarted.
@Suite(
    "cluster: the store node killed under QoS 1 load",
    .enabled(if: ClusterFixture.isAvailable, "built mqnamesrv, mqbroker and mqtt-node are needed"),
    .timeLimit(.minutes(4))
)
struct ClusterStoreFailureTests {
    /// What the publisher saw: the acknowledged sequence numbers and why attempts failed.
    final class Ledger: Sendable {
        private struct State {
            var acknowledged: Set<Int> = []
            var failures: [String: Int] = [:]
        }

        private let state = NIOLockedValueBox(State())

        func acknowledged(_ sequence: Int) { state.withLockedValue { _ = $0.acknowledged.insert(sequence) } }
        func failed(_ reason: String) { state.withLockedValue { $0.failures[reason, default: 0] += 1 } }
        var acknowledgedSequences: Set<Int> { state.withLockedValue { $0.acknowledged } }
        var failures: [String: Int] { state.withLockedValue { $0.failures } }
    }

    /// How one publish attempt ended.
    private enum Attempt: Sendable {
        case acknowledged
        case failed(String)
        /// No answer within the attempt timeout: the gateway neither acknowledged, refused nor closed.
        case hung
    }

    static let messageCount = 600
    static let window = 20
    static let killAfterAcknowledged = 150
    static let storeDowntime: Duration = .seconds(2)
    /// No single publish may wait longer than this for the gateway's answer, store down or not.
    static let attemptTimeout: Duration = .seconds(15)

    private static func client(
        _ gateway: NodeProcess, _ clientIdentifier: String, protocolVersion: MQTTProtocolVersion = .v5, cleanStart: Bool, expirySeconds: UInt32
    ) -> MQTTClient {
        var configuration = MQTTClient.Configuration(
            host: "127.0.0.1", port: gateway.port, clientIdentifier: clientIdentifier, protocolVersion: protocolVersion
        )
        configuration.cleanStart = cleanStart
        configuration.sessionExpiryIntervalSeconds = expirySeconds
        configuration.maxInflightPublishes = window
        return MQTTClient(configuration: configuration)
    }

    /// A short name for why a publish or connect failed, to count them.
    private static func reason(_ error: any Error) -> String {
        guard let error = error as? MQTTClientError else { return "\(type(of: error))" }
        switch error {
        case .publishRefused(let reasonCode, let reasonString): return "PUBACK \(reasonCode) \(reasonString ?? "without a reason string")"
        case .connectionRefused(let reasonCode, _): return "CONNACK \(reasonCode)"
        case .serverDisconnected(let reasonCode, _): return "DISCONNECT \(reasonCode)"
        default: return "\(error)"
        }
    }

    /// MQTT 5 publishers get a refusing PUBACK (0x80 with a Reason String) while the store node is down; 3.1.1 cannot say so,
    /// and the gateway closes the connection instead ([MQTT-3.3.5-2] of 3.1.1).
    @Test(
        "SIGKILL of the store node mid-stream and a restart: every acknowledged message reaches the subscriber, no gateway restarted",
        arguments: [MQTTProtocolVersion.v5, .v3_1_1]
    )
    func storeNodeKilledUnderLoad(publisherVersion: MQTTProtocolVersion) async throws {
        try await ClusterFixture.with(gateways: 2, broker: ["flushDiskType": "SYNC_FLUSH"]) { cluster in
            try await Self.run(cluster, publisherVersion: publisherVersion)
        }
    }

    private static func run(_ cluster: ClusterFixture, publisherVersion: MQTTProtocolVersion) async throws {
        let gatewayPids = cluster.gateways.map(\.pid)

        // The persistent subscriber on gateway 1.
        let subscriber = Self.client(cluster.gateways[1], "store-failure-sub", cleanStart: false, expirySeconds: 600)
        let messages = MessageCollector(subscriber)
        _ = try await subscriber.connect()
        #expect(try await subscriber.subscribe(to: "s/#", qos: .atLeastOnce) == .atLeastOnce)
        // The gateway may close the subscriber's connection while the store is down: it comes back, resuming the session.
        let subscriberKeeper = Task {
            var reconnects = 0
            while !Task.isCancelled, reconnects < 200 {
                if !(await subscriber.isConnected) {
                    reconnects += 1
                    if let connack = try? await subscriber.connect(cleanStart: false), !connack.sessionPresent {
                        Issue.record("the subscriber's session was lost (session present 0 on reconnect)")
                    }
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return reconnects
        }

        let ledger = Ledger()
        let publisher = Self.client(cluster.gateways[0], "store-failure-pub", protocolVersion: publisherVersion, cleanStart: true, expirySeconds: 0)
        // Kills the store node once enough is acknowledged, and starts it again after a pause.
        let killer = Task {
            let deadline = ContinuousClock.now + .seconds(60)
            while ledger.acknowledgedSequences.count < killAfterAcknowledged {
                guard ContinuousClock.now < deadline else { throw TestFailure("only \(ledger.acknowledgedSequences.count) acknowledged in 60 s") }
                try await Task.sleep(for: .milliseconds(5))
            }
            await cluster.broker.stop(signal: SIGKILL)
            let acknowledgedAtKill = ledger.acknowledgedSequences.count
            try await Task.sleep(for: storeDowntime)
            try await cluster.broker.start()
            return acknowledgedAtKill
        }

        // Publishes every sequence number until each is acknowledged, `window` at a time; what fails is retried.
        var remaining = Array(0..<messageCount)
        var hung = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while !remaining.isEmpty, ContinuousClock.now < deadline {
            if !(await publisher.isConnected) {
                do {
                    _ = try await publisher.connect()
                } catch {
                    ledger.failed("connect: " + Self.reason(error))
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
            }
            let batch = Array(remaining.prefix(window))
            let outcomes = await withTaskGroup(of: (Int, Attempt).self) { group in
                for sequence in batch {
                    group.addTask {
                        await withTaskGroup(of: Attempt?.self) { race in
                            race.addTask {
                                do {
                                    try await publisher.publish(to: "s/\(sequence % 4)/data", payload: "\(sequence)", qos: .atLeastOnce)
                                    return .acknowledged
                                } catch {
                                    return .failed(Self.reason(error))
                                }
                            }
                            race.addTask {
                                try? await Task.sleep(for: attemptTimeout)
                                return Task.isCancelled ? nil : .hung
                            }
                            let first = await race.next() ?? nil
                            race.cancelAll()
                            return (sequence, first ?? .hung)
                        }
                    }
                }
                var outcomes: [Int: Attempt] = [:]
                for await (sequence, attempt) in group { outcomes[sequence] = attempt }
                return outcomes
            }
            var retry: [Int] = []
            for sequence in batch {
                switch outcomes[sequence] ?? .hung {
                case .acknowledged:
                    ledger.acknowledged(sequence)
                case .failed(let reason):
                    ledger.failed(reason)
                    retry.append(sequence)
                case .hung:
                    hung += 1
                    retry.append(sequence)
                }
            }
            remaining = retry + remaining.dropFirst(batch.count)
            if hung > 0 {
                // Whatever it waits for, this connection is of no use: start a new one.
                await publisher.closeAbruptly()
            }
            if !retry.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        let acknowledgedAtKill = try await killer.value
        let acknowledged = ledger.acknowledgedSequences
        #expect(hung == 0, "\(hung) PUBLISHes got no answer within \(attemptTimeout); failures: \(ledger.failures)")
        #expect(remaining.isEmpty, "\(remaining.count) of \(messageCount) never acknowledged in 120 s; failures: \(ledger.failures)")
        #expect(acknowledgedAtKill < messageCount, "the store node was killed mid-stream")
        #expect(!ledger.failures.isEmpty, "some PUBLISH or CONNECT failed while the store node was down")
        switch publisherVersion {
        case .v5:
            #expect(
                ledger.failures.keys.contains { $0.hasPrefix("PUBACK 0x80") && $0.hasSuffix("the message could not be stored; retry later") },
                "refused with PUBACK 0x80 and a reason string: \(ledger.failures)"
            )
        case .v3_1, .v3_1_1:
            // No reason codes: the refusal is the closed connection.
            #expect(!ledger.failures.keys.contains { $0.hasPrefix("PUBACK") }, "3.1.1 has no refusing PUBACK: \(ledger.failures)")
        }

        // Every acknowledged sequence number reaches the subscriber (duplicates allowed at QoS 1).
        let expected = acknowledged
        var missing: Set<Int> = expected
        let receiveDeadline = ContinuousClock.now + .seconds(60)
        while !missing.isEmpty, ContinuousClock.now < receiveDeadline {
            try await Task.sleep(for: .milliseconds(100))
            missing = expected.subtracting(messages.received.compactMap { Int($0.payloadString) })
        }
        subscriberKeeper.cancel()
        let reconnects = await subscriberKeeper.value
        #expect(
            missing.isEmpty,
            "\(missing.count) of \(expected.count) acknowledged messages never reached the subscriber (\(reconnects) reconnects), e.g. \(missing.sorted().prefix(20))"
        )

        // Both gateways are the processes started at first.
        #expect(cluster.gateways.map(\.pid) == gatewayPids, "no gateway restarted")
        let publisherGatewayLog = cluster.gateways[0].log
        #expect(publisherGatewayLog.contains("storing a PUBLISH to s/"), "the gateway says why it refused PUBLISHes")

        for client in [publisher, subscriber] {
            try? await client.disconnect()
            await client.shutdown()
        }
    }
}

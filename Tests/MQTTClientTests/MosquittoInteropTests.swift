import Foundation
import MQTTClient
import MQTTCore
import NIOCore
import Testing

/// `MQTTClient` against a real `mosquitto`, for MQTT 3.1.1 and 5.0. Each test starts its own broker
/// on a free port and stops it at the end; every wait is bounded.
@Suite(
    "MQTTClient with mosquitto",
    .enabled(if: MosquittoBroker.isAvailable, "mosquitto is not on PATH: install it (apt-get install mosquitto mosquitto-clients) to run these tests; CI does"),
    .timeLimit(.minutes(1))
)
struct MosquittoInteropTests {
    static let versions: [MQTTProtocolVersion] = [.v3_1_1, .v5]
    /// Generous: the machine running the tests is small and shared, and nothing waits this long when
    /// things work (every wait ends as soon as its condition holds).
    static let timeout: Duration = .seconds(30)

    // MARK: - Publish and subscribe

    @Test("our publisher → our subscriber", arguments: versions, MQTTQoS.allCases)
    func publishToOurSubscriber(version: MQTTProtocolVersion, qos: MQTTQoS) async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await Self.connectedClient(broker, version)
            let messages = MessageCollector(subscriber)
            #expect(try await subscriber.subscribe(to: "test/qos", qos: .exactlyOnce) == .exactlyOnce)

            let publisher = try await Self.connectedClient(broker, version)
            for index in 0..<3 {
                try await publisher.publish(to: "test/qos", payload: "message \(index)", qos: qos)
            }
            let received = try await messages.wait(for: 3)
            #expect(received.map(\.payloadString) == ["message 0", "message 1", "message 2"])
            #expect(received.allSatisfy { $0.topic == "test/qos" && $0.qos == qos && !$0.retain })

            try await publisher.disconnect()
            try await subscriber.disconnect()
            await publisher.shutdown()
            await subscriber.shutdown()
        }
    }

    @Test(
        "mosquitto_pub → our subscriber, our publisher → mosquitto_sub",
        .enabled(if: MosquittoBroker.clientsAreAvailable, "mosquitto_pub / mosquitto_sub are not installed"),
        arguments: versions, MQTTQoS.allCases
    )
    func interoperateWithMosquittoClients(version: MQTTProtocolVersion, qos: MQTTQoS) async throws {
        let versionArgument = version == .v5 ? "mqttv5" : "mqttv311"
        try await MosquittoBroker.with { broker in
            // mosquitto_pub → us
            let client = try await Self.connectedClient(broker, version)
            let messages = MessageCollector(client)
            try await client.subscribe(to: "from/mosquitto/#", qos: .exactlyOnce)
            let pub = try ExternalProcess.launch(MosquittoBroker.mosquittoPubPath!, [
                "-h", "127.0.0.1", "-p", "\(broker.port)", "-V", versionArgument,
                "-t", "from/mosquitto/\(qos.rawValue)", "-q", "\(qos.rawValue)", "-m", "hello from mosquitto_pub",
            ])
            #expect(try await pub.waitForExit(timeout: Self.timeout) == 0, "\(pub.outputText)")
            let received = try await messages.wait(for: 1)
            #expect(received.first?.topic == "from/mosquitto/\(qos.rawValue)")
            #expect(received.first?.payloadString == "hello from mosquitto_pub")
            #expect(received.first?.qos == qos)

            // us → mosquitto_sub. Its stdout is a pipe, flushed after each message only, so a retained
            // probe (published by us too) is what tells us it is subscribed.
            try await client.publish(to: "to/mosquitto/probe", payload: "probe", qos: .atLeastOnce, retain: true)
            let sub = try ExternalProcess.launch(MosquittoBroker.mosquittoSubPath!, [
                "-h", "127.0.0.1", "-p", "\(broker.port)", "-V", versionArgument,
                "-t", "to/mosquitto/#", "-q", "2", "-C", "2", "-W", "30", "-F", "MSG|%t|%q|%r|%p",
            ])
            let probeLine = "MSG|to/mosquitto/probe|1|1|probe"
            try await waitUntil("mosquitto_sub subscribed") { sub.outputLines.contains(probeLine) }
            try await client.publish(to: "to/mosquitto/live", payload: "hello from MQTTClient", qos: qos)
            #expect(try await sub.waitForExit(timeout: Self.timeout) == 0, "\(sub.outputText)")
            #expect(sub.outputLines == [probeLine, "MSG|to/mosquitto/live|\(qos.rawValue)|0|hello from MQTTClient"])

            try await client.disconnect()
            await client.shutdown()
        }
    }

    @Test("a retained message reaches a later subscriber with RETAIN set", arguments: versions)
    func retainedMessage(version: MQTTProtocolVersion) async throws {
        try await MosquittoBroker.with { broker in
            let publisher = try await Self.connectedClient(broker, version)
            try await publisher.publish(to: "status/door", payload: "open", qos: .atLeastOnce, retain: true)

            let subscriber = try await Self.connectedClient(broker, version)
            let messages = MessageCollector(subscriber)
            try await subscriber.subscribe(to: "status/+", qos: .atLeastOnce)
            let received = try await messages.wait(for: 1)
            #expect(received.first?.topic == "status/door")
            #expect(received.first?.payloadString == "open")
            #expect(received.first?.retain == true)

            // A message published while subscribed is not flagged as retained ([MQTT-3.3.1-9]).
            try await publisher.publish(to: "status/door", payload: "closed", qos: .atLeastOnce, retain: true)
            let live = try await messages.wait(for: 2)
            #expect(live.last?.payloadString == "closed")
            #expect(live.last?.retain == false)

            await publisher.shutdown()
            await subscriber.shutdown()
        }
    }

    // MARK: - Will

    @Test("the will is published when the connection closes without DISCONNECT", arguments: versions)
    func willOnAbruptClose(version: MQTTProtocolVersion) async throws {
        try await MosquittoBroker.with { broker in
            let watcher = try await Self.connectedClient(broker, version)
            let messages = MessageCollector(watcher)
            try await watcher.subscribe(to: "clients/+/status", qos: .atLeastOnce)

            var configuration = Self.configuration(broker, version)
            configuration.will = ConnectPacket.Will(topicName: "clients/dying/status", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce)
            let dying = MQTTClient(configuration: configuration)
            try await dying.connect()
            await dying.closeAbruptly()
            #expect(await dying.isConnected == false)

            let received = try await messages.wait(for: 1)
            #expect(received.first?.topic == "clients/dying/status")
            #expect(received.first?.payloadString == "gone")

            await dying.shutdown()
            await watcher.shutdown()
        }
    }

    @Test("the will is not published after a clean DISCONNECT", arguments: versions)
    func noWillOnCleanDisconnect(version: MQTTProtocolVersion) async throws {
        try await MosquittoBroker.with { broker in
            let watcher = try await Self.connectedClient(broker, version)
            let messages = MessageCollector(watcher)
            try await watcher.subscribe(to: "clients/+/status", qos: .atLeastOnce)

            var configuration = Self.configuration(broker, version)
            configuration.will = ConnectPacket.Will(topicName: "clients/leaving/status", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce)
            let leaving = MQTTClient(configuration: configuration)
            try await leaving.connect()
            try await leaving.disconnect()
            #expect(await leaving.isConnected == false)

            // Give the broker time to act on the close, then send a marker on the same topic: once the
            // marker is here, a will would have been too.
            try await Task.sleep(for: .milliseconds(300))
            try await watcher.publish(to: "clients/marker/status", payload: "marker", qos: .atLeastOnce)
            let received = try await messages.wait(for: 1)
            #expect(received.map(\.payloadString) == ["marker"])

            await leaving.shutdown()
            await watcher.shutdown()
        }
    }

    // MARK: - Sessions

    @Test("a persistent session is resumed with the messages queued while away", arguments: versions)
    func persistentSession(version: MQTTProtocolVersion) async throws {
        try await MosquittoBroker.with { broker in
            var configuration = Self.configuration(broker, version)
            configuration.clientIdentifier = "persistent-\(version.rawValue)"
            configuration.cleanStart = false
            configuration.sessionExpiryIntervalSeconds = 300  // 5.0: keep the session after the connection
            let client = MQTTClient(configuration: configuration)
            let messages = MessageCollector(client)
            #expect(try await client.connect().sessionPresent == false)
            try await client.subscribe(to: "queued/+", qos: .atLeastOnce)
            try await client.disconnect()

            let publisher = try await Self.connectedClient(broker, version)
            for index in 0..<3 {
                try await publisher.publish(to: "queued/\(index)", payload: "while away \(index)", qos: .atLeastOnce)
            }

            let connAck = try await client.connect()
            #expect(connAck.sessionPresent == true)
            let received = try await messages.wait(for: 3)
            #expect(received.map(\.payloadString) == ["while away 0", "while away 1", "while away 2"])
            #expect(received.allSatisfy { $0.qos == .atLeastOnce })

            await publisher.shutdown()
            await client.shutdown()
        }
    }

    @Test("unsubscribe stops delivery", arguments: versions)
    func unsubscribeStopsDelivery(version: MQTTProtocolVersion) async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await Self.connectedClient(broker, version)
            let messages = MessageCollector(subscriber)
            try await subscriber.subscribe(to: [
                Subscription(topicFilter: "news/sport", maximumQoS: .atLeastOnce),
                Subscription(topicFilter: "news/marker", maximumQoS: .atLeastOnce),
            ])
            let publisher = try await Self.connectedClient(broker, version)
            try await publisher.publish(to: "news/sport", payload: "before", qos: .atLeastOnce)
            _ = try await messages.wait(for: 1)

            try await subscriber.unsubscribe(from: "news/sport")
            try await publisher.publish(to: "news/sport", payload: "after", qos: .atLeastOnce)
            // Delivery is in order per publisher: once the marker arrives, "after" would have too.
            try await publisher.publish(to: "news/marker", payload: "marker", qos: .atLeastOnce)
            let received = try await messages.wait(for: 2)
            #expect(received.map(\.payloadString) == ["before", "marker"])

            await publisher.shutdown()
            await subscriber.shutdown()
        }
    }

    // MARK: - Connection

    @Test("PINGREQ keeps an idle connection with a 1-second keep alive open", arguments: versions)
    func keepAlive(version: MQTTProtocolVersion) async throws {
        try await MosquittoBroker.with { broker in
            var configuration = Self.configuration(broker, version)
            configuration.keepAliveSeconds = 1
            let client = MQTTClient(configuration: configuration)
            try await client.connect()
            // mosquitto closes a connection silent for 1.5 × keep alive; only PINGREQs are sent here.
            try await Task.sleep(for: .seconds(3))
            #expect(await client.isConnected)
            try await client.publish(to: "still/here", payload: "yes", qos: .atLeastOnce)
            try await client.disconnect()
            #expect(await client.waitUntilClosed() == nil)
            await client.shutdown()
        }
    }

    @Test("a refused connection throws with the reason code", arguments: versions)
    func refusedConnection(version: MQTTProtocolVersion) async throws {
        // No anonymous access and no password file: every CONNECT is refused.
        try await MosquittoBroker.with(allowAnonymous: false) { broker in
            let client = MQTTClient(configuration: Self.configuration(broker, version))
            do {
                try await client.connect()
                Issue.record("connect was expected to be refused")
            } catch MQTTClientError.connectionRefused(let reasonCode, _) {
                #expect(reasonCode == .notAuthorized)
            }
            #expect(await client.isConnected == false)
            await client.shutdown()
        }
    }

    @Test("connect again after the connection dropped", arguments: versions)
    func reconnect(version: MQTTProtocolVersion) async throws {
        try await MosquittoBroker.with { broker in
            let client = try await Self.connectedClient(broker, version)
            let messages = MessageCollector(client)
            await client.closeAbruptly()
            await #expect(throws: MQTTClientError.notConnected) {
                try await client.publish(to: "a", payload: "x", qos: .atLeastOnce)
            }
            try await client.connect()
            try await client.subscribe(to: "again", qos: .atLeastOnce)
            try await client.publish(to: "again", payload: "x", qos: .atLeastOnce)
            #expect(try await messages.wait(for: 1).first?.payloadString == "x")
            await client.shutdown()
        }
    }

    // MARK: - Helpers

    static func configuration(_ broker: MosquittoBroker, _ version: MQTTProtocolVersion) -> MQTTClient.Configuration {
        var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: broker.port, protocolVersion: version)
        configuration.connectTimeout = .seconds(5)
        return configuration
    }

    static func connectedClient(_ broker: MosquittoBroker, _ version: MQTTProtocolVersion) async throws -> MQTTClient {
        let client = MQTTClient(configuration: configuration(broker, version))
        try await client.connect()
        return client
    }
}

/// Reads a client's `messages` in a task of its own and keeps them, so tests can wait for a number of
/// messages with a timeout without cancelling the reader (cancelling it would end the stream).
///
/// `@unchecked Sendable`: `messages` is guarded by `lock`.
final class MessageCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [MQTTMessage] = []

    init(_ client: MQTTClient) {
        let stream = client.messages
        Task { [weak self] in
            for await message in stream {
                guard let self else { return }
                self.append(message)
            }
        }
    }

    private func append(_ message: MQTTMessage) {
        lock.withLock { messages.append(message) }
    }

    var received: [MQTTMessage] {
        lock.withLock { messages }
    }

    /// Waits until at least `count` messages arrived, then returns all received so far.
    func wait(for count: Int, timeout: Duration = .seconds(20)) async throws -> [MQTTMessage] {
        try await waitUntil("\(count) messages (have \(received.count))", timeout: timeout) { self.received.count >= count }
        return received
    }
}

/// Polls `condition` until it holds; throws after `timeout`.
func waitUntil(_ what: @autoclosure () -> String, timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out after \(timeout) waiting for \(what())") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

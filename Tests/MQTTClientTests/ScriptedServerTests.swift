import MQTTClient
import MQTTCore
import NIOCore
import Testing

/// `MQTTClient` end to end (NIO handler, event-loop core, async facade) against `ScriptedServer`, for
/// what a real broker does not do on demand.
@Suite("MQTTClient with a scripted server", .timeLimit(.minutes(1)))
struct ScriptedServerTests {
    static func client(_ server: ScriptedServer, _ version: MQTTProtocolVersion = .v3_1_1, cleanStart: Bool = true) -> MQTTClient {
        var configuration = MQTTClient.Configuration(
            host: "127.0.0.1", port: server.port, clientIdentifier: "scripted", protocolVersion: version, cleanStart: cleanStart
        )
        configuration.connectTimeout = .seconds(5)
        return MQTTClient(configuration: configuration)
    }

    /// Connects `client`, answering its CONNECT on the server's `index`th connection with `connAck`.
    static func connect(_ client: MQTTClient, _ server: ScriptedServer, connection index: Int, connAck: ConnAckPacket = ConnAckPacket()) async throws -> ScriptedConnection {
        async let result = client.connect()
        let connection = try await server.connection(index)
        guard case .connect = try await connection.packet(0) else { throw TestFailure("expected CONNECT") }
        try await connection.send(.connAck(connAck))
        #expect(try await result == connAck)
        return connection
    }

    static func withServer(_ version: MQTTProtocolVersion = .v3_1_1, _ body: (ScriptedServer) async throws -> Void) async throws {
        let server = try await ScriptedServer.start(version: version)
        do {
            try await body(server)
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    /// [MQTT-4.4.0-1]: the QoS 1 PUBLISH left unacknowledged by a dropped connection is resent with DUP
    /// on the resumed session, and the original `publish` call completes with its PUBACK.
    @Test func pendingPublishCompletesOnTheResumedSession() async throws {
        try await Self.withServer { server in
            let client = Self.client(server, cleanStart: false)
            let first = try await Self.connect(client, server, connection: 0)
            let publish = Task { try await client.publish(to: "t", payload: "x", qos: .atLeastOnce) }
            guard case .publish(let original) = try await first.packet(1) else { throw TestFailure("expected PUBLISH") }
            #expect(original.dup == false)

            first.close()  // no PUBACK
            #expect(await client.waitUntilClosed() == .connectionClosed)

            let second = try await Self.connect(client, server, connection: 1, connAck: ConnAckPacket(sessionPresent: true))
            guard case .publish(let resent) = try await second.packet(1) else { throw TestFailure("expected the PUBLISH again") }
            #expect(resent.dup == true)
            #expect(resent.packetIdentifier == original.packetIdentifier)
            #expect(resent.payload == original.payload)
            try await second.send(.pubAck(PubAckPacket(packetIdentifier: resent.packetIdentifier!)))
            try await publish.value
            await client.shutdown()
        }
    }

    @Test func pendingPublishFailsWhenTheSessionIsNotResumed() async throws {
        try await Self.withServer { server in
            let client = Self.client(server, cleanStart: false)
            let first = try await Self.connect(client, server, connection: 0)
            let publish = Task { try await client.publish(to: "t", payload: "x", qos: .exactlyOnce) }
            _ = try await first.packet(1)
            first.close()
            _ = await client.waitUntilClosed()
            _ = try await Self.connect(client, server, connection: 1, connAck: ConnAckPacket(sessionPresent: false))
            await #expect(throws: MQTTClientError.sessionNotResumed) { try await publish.value }
            await client.shutdown()
        }
    }

    @Test func everyPendingCallEndsWhenTheConnectionCloses() async throws {
        try await Self.withServer { server in
            let client = Self.client(server, cleanStart: true)
            let connection = try await Self.connect(client, server, connection: 0)
            let subscribe = Task { try await client.subscribe(to: "a", qos: .atLeastOnce) }
            let publish = Task { try await client.publish(to: "t", payload: "x", qos: .atLeastOnce) }
            _ = try await connection.packet(2)
            connection.close()
            await #expect(throws: MQTTClientError.connectionClosed) { try await subscribe.value }
            await #expect(throws: MQTTClientError.connectionClosed) { try await publish.value }
            await client.shutdown()
        }
    }

    @Test func shutdownFailsPublishesKeptForTheSession() async throws {
        try await Self.withServer { server in
            let client = Self.client(server, cleanStart: false)
            let connection = try await Self.connect(client, server, connection: 0)
            let publish = Task { try await client.publish(to: "t", payload: "x", qos: .atLeastOnce) }
            _ = try await connection.packet(1)
            connection.close()
            _ = await client.waitUntilClosed()
            await client.shutdown()
            await #expect(throws: MQTTClientError.shutdown) { try await publish.value }
            await #expect(throws: MQTTClientError.shutdown) { try await client.connect() }
        }
    }

    @Test func garbageFromTheServerClosesWithADecodeError() async throws {
        try await Self.withServer { server in
            let client = Self.client(server)
            let connection = try await Self.connect(client, server, connection: 0)
            let subscribe = Task { try await client.subscribe(to: "a") }
            _ = try await connection.packet(1)
            try await connection.sendRaw([0x00, 0x00])  // packet type 0 is reserved
            let expected = MQTTClientError.decodeFailed(MQTTDecodeError(.reservedPacketType(0), packetType: nil, byteOffset: 0))
            await #expect(throws: expected) { try await subscribe.value }
            #expect(await client.waitUntilClosed() == expected)
            #expect(await client.isConnected == false)
            await client.shutdown()
        }
    }

    @Test func v5TopicAliasesFromTheServerAreResolved() async throws {
        try await Self.withServer(.v5) { server in
            let client = Self.client(server, .v5)
            let connection = try await Self.connect(client, server, connection: 0)
            guard case .connect(let connect) = try await connection.packet(0) else { throw TestFailure("expected CONNECT") }
            #expect(connect.properties.topicAliasMaximum == 16)

            try await connection.send(.publish(PublishPacket(topicName: "sensors/1", payload: ByteBuffer(string: "a"), properties: [.topicAlias(1)])))
            try await connection.send(.publish(PublishPacket(topicName: "", payload: ByteBuffer(string: "b"), properties: [.topicAlias(1)])))
            var iterator = client.messages.makeAsyncIterator()
            let first = await iterator.next()
            let second = await iterator.next()
            #expect(first?.topic == "sensors/1")
            #expect(second?.topic == "sensors/1")
            #expect(second?.payloadString == "b")
            await client.shutdown()
        }
    }

    @Test func v5ReceiveMaximumOfTheServerIsRespected() async throws {
        try await Self.withServer(.v5) { server in
            let client = Self.client(server, .v5)
            let connection = try await Self.connect(client, server, connection: 0, connAck: ConnAckPacket(properties: [.receiveMaximum(1)]))
            let first = Task { try await client.publish(to: "t", payload: "1", qos: .atLeastOnce) }
            _ = try await connection.packet(1)
            let second = Task { try await client.publish(to: "t", payload: "2", qos: .atLeastOnce) }
            try await Task.sleep(for: .milliseconds(200))
            #expect(connection.packets.count == 2, "the second PUBLISH must wait for a free slot")
            try await connection.send(.pubAck(PubAckPacket(packetIdentifier: 1)))
            try await first.value
            guard case .publish(let next) = try await connection.packet(2) else { throw TestFailure("expected the second PUBLISH") }
            #expect(next.payload == ByteBuffer(string: "2"))
            try await connection.send(.pubAck(PubAckPacket(packetIdentifier: next.packetIdentifier!, reasonCode: .quotaExceeded, properties: [.reasonString("slow down")])))
            await #expect(throws: MQTTClientError.publishRefused(reasonCode: .quotaExceeded, reasonString: "slow down")) { try await second.value }
            await client.shutdown()
        }
    }

    @Test func v5ServerDisconnectIsReported() async throws {
        try await Self.withServer(.v5) { server in
            let client = Self.client(server, .v5)
            let connection = try await Self.connect(client, server, connection: 0)
            try await connection.send(.disconnect(DisconnectPacket(reasonCode: .serverShuttingDown, properties: [.reasonString("maintenance")])))
            #expect(await client.waitUntilClosed() == .serverDisconnected(reasonCode: .serverShuttingDown, reasonString: "maintenance"))
            await client.shutdown()
        }
    }

    @Test func unansweredPingClosesTheConnection() async throws {
        try await Self.withServer { server in
            var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: server.port, keepAliveSeconds: 1)
            configuration.pingResponseTimeout = .milliseconds(300)
            let client = MQTTClient(configuration: configuration)
            let connection = try await Self.connect(client, server, connection: 0)
            #expect(await client.waitUntilClosed() == .keepAliveTimeout)
            #expect(try await connection.packet(1) == .pingReq)
            await client.shutdown()
        }
    }

    @Test func refusedConnectCarriesTheReasonCode() async throws {
        try await Self.withServer(.v5) { server in
            let client = Self.client(server, .v5)
            let result = Task { try await client.connect() }
            let connection = try await server.connection(0)
            _ = try await connection.packet(0)
            try await connection.send(.connAck(ConnAckPacket(reasonCode: .badUserNameOrPassword, properties: [.reasonString("who are you")])))
            await #expect(throws: MQTTClientError.connectionRefused(reasonCode: .badUserNameOrPassword, reasonString: "who are you")) { try await result.value }
            await client.shutdown()
        }
    }
}

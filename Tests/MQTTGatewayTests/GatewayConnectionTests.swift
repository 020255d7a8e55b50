import Foundation
import MQTTAuth
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import NIOCore
import NIOPosix
import Testing

@Suite("Gateway connections", .timeLimit(.minutes(1)))
struct GatewayConnectionTests {
    @Test("a malformed packet closes only its own connection", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func malformedPacketClosesOnlyThatConnection(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let subscriber = try await node.client("healthy-sub-\(version.rawValue)", version)
        let messages = MessageCollector(subscriber)
        _ = try await subscriber.subscribe(to: "health/#", qos: .atLeastOnce)

        // A raw connection: a valid CONNECT, then a PUBLISH whose remaining length has five bytes
        // ([MQTT-1.5.5-1] allows at most four).
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let raw = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: node.port).get()
        var bytes = ByteBufferAllocator().buffer(capacity: 64)
        let connect = ConnectPacket(protocolVersion: version, clientIdentifier: "malformed-\(version.rawValue)", cleanStart: true, keepAliveSeconds: 30)
        try MQTTPacketEncoder(protocolVersion: version).encode(.connect(connect), into: &bytes)
        bytes.writeBytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        try await raw.writeAndFlush(bytes)
        try await waitUntil("the malformed connection to close", timeout: .seconds(5)) { !raw.isActive }

        let publisher = try await node.client("healthy-pub-\(version.rawValue)", version)
        try await publisher.publish(to: "health/check", payload: "still working", qos: .atLeastOnce)
        let received = try await messages.wait(for: 1)
        #expect(received.map(\.payloadString) == ["still working"])
        #expect(await subscriber.isConnected)

        for client in [subscriber, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        try await group.shutdownGracefully()
        await node.stop()
    }

    @Test("CONNECT is checked by the HMAC-SHA1 authenticator of service.conf", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func authentication(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start(auth: try AuthConfiguration(username: "device", secretKey: "s3cret", allowAnonymous: false))
        func client(_ password: String?) -> MQTTClient {
            var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: node.port, clientIdentifier: "auth-\(version.rawValue)", protocolVersion: version)
            configuration.username = "device"
            configuration.password = password.map { ByteBuffer(string: $0) }
            return MQTTClient(configuration: configuration)
        }
        let refused = client("wrong")
        await #expect {
            _ = try await refused.connect()
        } throws: { error in
            // v5: 0x86 Bad User Name or Password; 3.1.1: return code 4, the same meaning ([MQTT-3.1.4-2]).
            guard case MQTTClientError.connectionRefused(let reasonCode, _) = error else { return false }
            return version == .v5 ? reasonCode == .badUserNameOrPassword : reasonCode.rawValue == 0x86 || reasonCode.rawValue == 0x04
        }
        await refused.shutdown()

        let accepted = client(HmacSHA1AuthManager.password(clientIdentifier: "auth-\(version.rawValue)", secretKey: "s3cret"))
        _ = try await accepted.connect()
        #expect(await accepted.isConnected)
        try await accepted.disconnect()
        await accepted.shutdown()
        await node.stop()
    }

    @Test("the will is published on an abnormal close, never after DISCONNECT", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func will(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let watcher = try await node.client("will-watcher-\(version.rawValue)", version)
        let messages = MessageCollector(watcher)
        _ = try await watcher.subscribe(to: "wills/#", qos: .atLeastOnce)
        func clientWithWill(_ name: String) -> MQTTClient {
            var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: node.port, clientIdentifier: "\(name)-\(version.rawValue)", protocolVersion: version)
            configuration.will = ConnectPacket.Will(topicName: "wills/\(name)", payload: ByteBuffer(string: "\(name) is gone"), qos: .atLeastOnce)
            return MQTTClient(configuration: configuration)
        }
        let polite = clientWithWill("polite")
        _ = try await polite.connect()
        try await polite.disconnect()  // [MQTT-3.14.4-3]: the will is discarded
        let crashing = clientWithWill("crashing")
        _ = try await crashing.connect()
        await crashing.closeAbruptly()  // [MQTT-3.1.2-8]: the will is published

        let received = try await messages.wait(for: 1)
        #expect(received.map(\.topic) == ["wills/crashing"])
        #expect(received.first?.payloadString == "crashing is gone")
        try await Task.sleep(for: .milliseconds(200))
        #expect(messages.received.count == 1)
        await polite.shutdown()
        await crashing.shutdown()
        try await watcher.disconnect()
        await watcher.shutdown()
        await node.stop()
    }

    @Test("a silent client is closed after 1.5 x its keep alive", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func keepAliveTimeout(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let raw = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: node.port).get()
        var bytes = ByteBufferAllocator().buffer(capacity: 64)
        let connect = ConnectPacket(protocolVersion: version, clientIdentifier: "silent-\(version.rawValue)", cleanStart: true, keepAliveSeconds: 1)
        try MQTTPacketEncoder(protocolVersion: version).encode(.connect(connect), into: &bytes)
        let started = ContinuousClock.now
        try await raw.writeAndFlush(bytes)
        try await waitUntil("the silent connection to close", timeout: .seconds(5)) { !raw.isActive }
        let elapsed = ContinuousClock.now - started
        // [MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]): not before 1.5 s, and not much later.
        #expect(elapsed >= .milliseconds(1_400) && elapsed < .seconds(4), "closed after \(elapsed)")
        try await group.shutdownGracefully()
        await node.stop()
    }

    @Test("a second connection with the same client id takes the session over", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func sessionTakeover(version: MQTTProtocolVersion) async throws {
        let node = try await TestNode.start()
        let first = try await node.client("same-id", version)
        _ = try await first.subscribe(to: "takeover/+", qos: .atLeastOnce)
        let firstMessages = MessageCollector(first)

        let second = try await node.client("same-id", version)
        let closeReason = await first.waitUntilClosed()
        #expect(closeReason != nil, "the server, not the client, closed the first connection")
        if version == .v5 {
            // [MQTT-3.1.4-3]: v5 clients are told why: DISCONNECT 0x8E Session taken over.
            guard case .serverDisconnected(let reasonCode, _) = closeReason else {
                Issue.record("expected DISCONNECT from the server, got \(String(describing: closeReason))")
                return
            }
            #expect(reasonCode == .sessionTakenOver)
        }
        #expect(await second.isConnected)
        try await waitUntil("one session", timeout: .seconds(5)) { node.gateway.connectedClientCount == 1 }

        // The new connection works; the old one's subscription went with it.
        let secondMessages = MessageCollector(second)
        _ = try await second.subscribe(to: "takeover/#", qos: .atLeastOnce)
        let publisher = try await node.client("takeover-pub", version)
        try await publisher.publish(to: "takeover/x", payload: "for the new connection", qos: .atLeastOnce)
        #expect(try await secondMessages.wait(for: 1).map(\.payloadString) == ["for the new connection"])
        try await Task.sleep(for: .milliseconds(100))
        #expect(firstMessages.received.isEmpty)

        for client in [second, publisher] {
            try await client.disconnect()
            await client.shutdown()
        }
        await first.shutdown()
        await node.stop()
    }
}

@Suite("Gateway configuration")
struct GatewayConfigurationTests {
    @Test("reads mqttPort, maxPacketSizeInByte, the store path and the auth settings from a conf folder")
    func loadsConfFolder() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "# MQTT\nmqttPort = 11883\nmaxPacketSizeInByte=65536\n".write(to: directory.appendingPathComponent("connect.conf"), atomically: true, encoding: .utf8)
        try "username=admin\nsecretKey=s3cret\nallowAnonymous=false\n".write(to: directory.appendingPathComponent("service.conf"), atomically: true, encoding: .utf8)
        try "storePathRootDir=~/store-x\nflushDiskType=SYNC_FLUSH\n".write(to: directory.appendingPathComponent("broker.conf"), atomically: true, encoding: .utf8)

        let configuration = try GatewayConfiguration.load(directory: directory.path)
        #expect(configuration.mqttPort == 11883)
        #expect(configuration.connection.maximumPacketSizeBytes == 65536)
        #expect(configuration.store.flushDiskType == .syncFlush)
        #expect(configuration.store.storePathRootDir.hasSuffix("/store-x"))
        #expect(!configuration.store.storePathRootDir.hasPrefix("~"))
        #expect(configuration.auth.username == "admin")
        #expect(configuration.auth.allowAnonymous == false)
    }

    @Test("refuses a bad flushDiskType with the file and key in the message")
    func refusesBadValue() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "mqttPort=1883\n".write(to: directory.appendingPathComponent("connect.conf"), atomically: true, encoding: .utf8)
        try "allowAnonymous=true\n".write(to: directory.appendingPathComponent("service.conf"), atomically: true, encoding: .utf8)
        try "storePathRootDir=/tmp/x\nflushDiskType=SOMETIMES\n".write(to: directory.appendingPathComponent("broker.conf"), atomically: true, encoding: .utf8)
        #expect {
            _ = try GatewayConfiguration.load(directory: directory.path)
        } throws: { error in
            "\(error)".contains("broker.conf: flushDiskType=SOMETIMES")
        }
    }
}

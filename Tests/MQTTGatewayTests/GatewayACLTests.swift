import Foundation
import MQTTClient
import MQTTCore
@testable import MQTTGateway
import NIOCore
import Testing

@Suite("Gateway ACL: publish and subscribe allowed or denied", .timeLimit(.minutes(1)))
struct GatewayACLTests {
    static let rules = """
        # the watcher sees everything, to show what was (not) stored
        allow subscribe client:watcher #
        allow both all devices/%c/#
        allow both all public/#
        deny subscribe all secret/#
        """

    @Test("v5: a denied PUBLISH gets PUBACK/PUBREC 0x87 and is not delivered; SUBACK 0x87 for a denied filter only")
    func version5() async throws {
        let node = try await AccessTestNode.start(aclRules: Self.rules)
        let watcher = try await node.node.client("watcher", .v5)
        let watched = MessageCollector(watcher)
        #expect(try await watcher.subscribe(to: "#", qos: .atLeastOnce) == .atLeastOnce)
        let client = try await node.node.client("dev1", .v5)

        for qos in [MQTTQoS.atLeastOnce, .exactlyOnce] {
            await #expect {
                try await client.publish(to: "forbidden/x", payload: "no", qos: qos)
            } throws: { error in
                guard case .publishRefused(let code, _)? = error as? MQTTClientError else { return false }
                return code == .notAuthorized
            }
        }
        try await client.publish(to: "forbidden/x", payload: "no", qos: .atMostOnce)
        try await client.publish(to: "devices/dev1/temp", payload: "own", qos: .atLeastOnce)
        try await client.publish(to: "public/a", payload: "public", qos: .exactlyOnce)
        let received = try await watched.wait(for: 2)
        try await Task.sleep(for: .milliseconds(200))
        #expect(watched.received.map(\.payloadString) == ["own", "public"])
        #expect(received.allSatisfy { $0.topic != "forbidden/x" })
        #expect(await client.isConnected)
        #expect(node.counters.count(.publishDenied) == 3)

        let subAck = try await client.subscribe(to: [
            Subscription(topicFilter: "public/#", maximumQoS: .atLeastOnce),
            Subscription(topicFilter: "secret/#", maximumQoS: .atLeastOnce),
            Subscription(topicFilter: "devices/dev2/#", maximumQoS: .atMostOnce),
            Subscription(topicFilter: "devices/dev1/+", maximumQoS: .atMostOnce),
        ])
        #expect(subAck.reasonCodes == [.grantedQoS1, .notAuthorized, .notAuthorized, .grantedQoS0])
        #expect(node.counters.count(.subscribeDenied) == 2)

        for connected in [watcher, client] {
            try await connected.disconnect()
            await connected.shutdown()
        }
        await node.stop()
    }

    @Test("3.1.1: a denied PUBLISH is acknowledged but dropped; SUBACK 0x80 for a denied filter only")
    func version311() async throws {
        let node = try await AccessTestNode.start(aclRules: Self.rules)
        let watcher = try await node.node.client("watcher", .v3_1_1)
        let watched = MessageCollector(watcher)
        #expect(try await watcher.subscribe(to: "#", qos: .atLeastOnce) == .atLeastOnce)
        let client = try await node.node.client("dev1", .v3_1_1)

        // Acknowledged normally (PUBACK, PUBREC/PUBCOMP): these calls return without an error.
        for qos in [MQTTQoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            try await client.publish(to: "forbidden/x", payload: "no", qos: qos)
        }
        try await client.publish(to: "devices/dev1/temp", payload: "own", qos: .atLeastOnce)
        _ = try await watched.wait(for: 1)
        try await Task.sleep(for: .milliseconds(200))
        #expect(watched.received.map(\.payloadString) == ["own"])
        #expect(await client.isConnected)
        #expect(node.counters.count(.publishDenied) == 3)

        let subAck = try await client.subscribe(to: [
            Subscription(topicFilter: "secret/#", maximumQoS: .atLeastOnce),
            Subscription(topicFilter: "public/#", maximumQoS: .exactlyOnce),
            Subscription(topicFilter: "#", maximumQoS: .atMostOnce),
        ])
        #expect(subAck.reasonCodes == [.unspecifiedError, .grantedQoS2, .unspecifiedError])
        #expect(subAck.reasonCodes[0].rawValue == 0x80)

        for connected in [watcher, client] {
            try await connected.disconnect()
            await connected.shutdown()
        }
        await node.stop()
    }

    @Test("a will the client may not publish is dropped; an allowed one is published", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func wills(version: MQTTProtocolVersion) async throws {
        let node = try await AccessTestNode.start(aclRules: Self.rules)
        let watcher = try await node.node.client("watcher", version)
        let watched = MessageCollector(watcher)
        #expect(try await watcher.subscribe(to: "#", qos: .atLeastOnce) == .atLeastOnce)
        for (name, topic) in [("dev-denied", "forbidden/will"), ("dev-allowed", "devices/dev-allowed/will")] {
            let client = node.node.makeClient(name, version) { configuration in
                configuration.will = ConnectPacket.Will(topicName: topic, payload: ByteBuffer(string: name), qos: .atLeastOnce)
            }
            _ = try await client.connect()
            await client.closeAbruptly()
        }
        _ = try await watched.wait(for: 1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(watched.received.map(\.payloadString) == ["dev-allowed"])
        #expect(node.counters.count(.willDenied) == 1)
        try await watcher.disconnect()
        await watcher.shutdown()
        await node.stop()
    }

    @Test("without an aclFile everything is allowed")
    func noACL() async throws {
        let node = try await AccessTestNode.start()
        #expect(node.node.gateway.services.authorizationManager == nil)
        let client = try await node.node.client("anyone", .v5)
        try await client.publish(to: "forbidden/x", payload: "yes", qos: .atLeastOnce)
        #expect(try await client.subscribe(to: "secret/#", qos: .atLeastOnce) == .atLeastOnce)
        try await client.disconnect()
        await client.shutdown()
        await node.stop()
    }
}

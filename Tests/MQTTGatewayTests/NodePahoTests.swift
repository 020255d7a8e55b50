import Foundation
import Testing

/// The real `mqtt-node` driven by Python `paho-mqtt` (2.x) and by raw MQTT bytes from Python sockets:
/// the scenarios in `paho/`, one per rule of MQTT 3.1.1 / 5.0 the node must follow, each run against a
/// node of its own on a free loopback port. The scripts report what they saw as JSON; the assertions
/// are here.
@Suite(
    "mqtt-node with paho-mqtt",
    .enabled(if: PahoScenario.isAvailable, "python3 with paho-mqtt 2.x, and a built mqtt-node, are needed"),
    .timeLimit(.minutes(3))
)
struct NodePahoTests {
    static let versions = ["3.1.1", "5"]

    // MARK: CONNECT

    @Test("an unsupported protocol level is refused with CONNACK 0x01 (or 5.0's 0x84) and the connection closed", arguments: [0, 2, 6, 255])
    func unsupportedProtocolLevel(level: Int) async throws {
        try await withNode { node in
            // [MQTT-3.1.2-2] in 3.1.1: 0x01; 5.0 allows 0x84 in the 5.0 form instead.
            let result = try await PahoScenario.run("connect_raw.py", node: node, version: "3.1.1", ["--level", "\(level)"])
            #expect(result["closed"] == true)
            let packets = result["packets"].array
            #expect(packets.count == 1, "\(packets)")
            let body = packets.first?["body"].string
            #expect(body == "0001" || body == "008400", "CONNACK body \(body ?? "none")")
        }
    }

    @Test("a CONNECT with a protocol name other than MQTT is not accepted and the connection is closed")
    func wrongProtocolName() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("connect_raw.py", node: node, version: "3.1.1", ["--protocol-name", "MQTX"])
            // [MQTT-3.1.2-1]: the server MAY answer (5.0: 0x84) and closes; it must not accept.
            #expect(result["closed"] == true)
            #expect(result["connack"]["code"].int != 0)
        }
    }

    @Test("empty client identifier: 3.1.1 needs Clean Session (else 0x02); 5.0 assigns an identifier", arguments: versions)
    func emptyClientIdentifier(version: String) async throws {
        try await withNode { node in
            let clean = try await PahoScenario.run("connect_raw.py", node: node, version: version, ["--client-id", "", "--clean", "1"])
            #expect(clean["connack"]["code"] == 0)
            #expect(clean["alive"] == true)
            let unclean = try await PahoScenario.run("connect_raw.py", node: node, version: version, ["--client-id", "", "--clean", "0"])
            if version == "5" {
                // [MQTT-3.1.3-6], [MQTT-3.2.2-16]: accepted with an Assigned Client Identifier.
                for result in [clean, unclean] {
                    #expect(result["connack"]["code"] == 0)
                    let assigned = result["connack"]["properties"]["AssignedClientIdentifier"].string ?? ""
                    #expect(!assigned.isEmpty, "\(result)")
                }
                #expect(clean["connack"]["properties"]["AssignedClientIdentifier"] != unclean["connack"]["properties"]["AssignedClientIdentifier"])
                #expect(unclean["alive"] == true)
            } else {
                // 3.1.1 [MQTT-3.1.3-8]: CONNACK 0x02 Identifier rejected, then close.
                #expect(unclean["connack"]["code"] == 2)
                #expect(unclean["closed"] == true)
            }
        }
    }

    @Test("authentication: HMAC-SHA1 password accepted; wrong or missing credentials refused with the version's code", arguments: versions)
    func authentication(version: String) async throws {
        try await withNode(.authenticated(username: "devices", secretKey: "secret")) { node in
            // The example of docs/auth.md: client identifier "clientId", secretKey "secret".
            let right = try await PahoScenario.run(
                "connect_raw.py", node: node, version: version,
                ["--client-id", "clientId", "--username", "devices", "--password", "bRzy/Ltu4auwF5Okbs4pi8ArMWY="]
            )
            #expect(right["connack"]["code"] == 0)
            #expect(right["alive"] == true)

            let refusals: [(arguments: [String], v311: Int, v5: Int)] = [
                (["--client-id", "clientId", "--username", "devices", "--password", "wrong"], 0x04, 0x86),
                (["--client-id", "clientId", "--username", "someone", "--password", "bRzy/Ltu4auwF5Okbs4pi8ArMWY="], 0x04, 0x86),
                // The password of another client identifier.
                (["--client-id", "otherId", "--username", "devices", "--password", "bRzy/Ltu4auwF5Okbs4pi8ArMWY="], 0x04, 0x86),
                // No credentials while anonymous access is off.
                (["--client-id", "clientId"], 0x05, 0x87),
            ]
            for refusal in refusals {
                let result = try await PahoScenario.run("connect_raw.py", node: node, version: version, refusal.arguments)
                #expect(result["connack"]["code"].int == (version == "5" ? refusal.v5 : refusal.v311), "\(refusal.arguments): \(result)")
                #expect(result["closed"] == true, "\(refusal.arguments)")
            }
        }
    }

    @Test("MQTT 5.0 CONNACK properties: assigned identifier, receive maximum, maximum packet size, topic alias maximum, availability flags")
    func connAckPropertiesV5() async throws {
        try await withNode(NodeProcess.Options(connect: ["maxPacketSizeInByte": "200000"])) { node in
            let result = try await PahoScenario.run("connack_properties.py", node: node, version: "5")
            let properties = result["connack"]["properties"]
            #expect(result["connack"]["code"] == 0)
            #expect(!(properties["AssignedClientIdentifier"].string ?? "").isEmpty)
            // maxPacketSizeInByte of connect.conf.
            #expect(properties["MaximumPacketSize"] == 200_000)
            let receiveMaximum = try #require(properties["ReceiveMaximum"].int, "\(properties)")
            #expect((1...65_535).contains(receiveMaximum))
            #expect((properties["TopicAliasMaximum"].int ?? 0) > 0, "client-to-server aliases are supported")
            // Absent means available (§3.2.2.3); the node supports all of these.
            for flag in ["RetainAvailable", "WildcardSubscriptionAvailable", "SubscriptionIdentifierAvailable", "SharedSubscriptionAvailable"] {
                #expect(properties[flag] == .null || properties[flag] == 1, "\(flag): \(properties)")
            }
            #expect(properties["MaximumQoS"] == .null, "QoS 2 is supported")
            // The client asked for 30 s and the node has no reason to override it [MQTT-3.2.2-21].
            #expect(properties["ServerKeepAlive"] == .null || properties["ServerKeepAlive"] == 30)
        }
    }

    // MARK: Keep alive and takeover

    @Test("keep alive: a silent client is disconnected after 1.5 x keep alive and its will published; a pinging one stays", arguments: versions)
    func keepAliveExpiry(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("keep_alive.py", node: node, version: version, ["--keep-alive", "2"])
            let closedAfter = try #require(result["closed_after_seconds"].double)
            // [MQTT-3.1.2-24]: not before one and a half times the keep alive (3 s; a little slack for
            // the clocks), and not much later either.
            #expect(closedAfter >= 2.9, "closed after \(closedAfter) s")
            #expect(closedAfter <= 13, "closed after \(closedAfter) s")
            if version == "5" {
                // A DISCONNECT before the close, if any, says 0x8D Keep Alive timeout.
                for packet in result["packets"].array where packet["type"] == "DISCONNECT" {
                    #expect(packet["body"].string?.hasPrefix("8d") == true, "\(packet)")
                }
            } else {
                #expect(result["packets"].array.isEmpty, "3.1.1 has no server DISCONNECT")
            }
            #expect(result["pinging_alive"] == true)
            let will = result["will"].array
            #expect(will.count == 1)
            #expect(will.first?["payload"] == "gone")
        }
    }

    @Test("session takeover: a second connection with the same client identifier disconnects the first (5.0: 0x8E)", arguments: versions)
    func sessionTakeover(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("takeover.py", node: node, version: version)
            let disconnects = result["first_disconnects"].array
            #expect(disconnects.count == 1)
            if version == "5" {
                #expect(disconnects.first?["code"] == 0x8E, "\(disconnects)")
            }
            #expect(result["second_connected"] == true)
            #expect(result["second_disconnects"].array.isEmpty)
            #expect(result["second_messages"].array.map { $0["payload"] } == ["after takeover"])
        }
    }

    // MARK: Publish and deliver

    @Test("QoS 0/1/2 in and out: delivered at min(published QoS, granted QoS); overlapping subscriptions at their maximum", arguments: versions)
    func qosMatrix(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("qos_matrix.py", node: node, version: version)
            for granted in 0...2 {
                #expect(result["subacks"]["\(granted)"] == .array([.number(Double(granted))]))
            }
            let messages = result["messages"].array
            #expect(messages.count == 9, "\(messages)")
            for granted in 0...2 {
                for published in 0...2 {
                    let payload = "g\(granted)-p\(published)"
                    let received = messages.filter { $0["payload"].string == payload }
                    #expect(received.count == 1, "\(payload): \(received)")
                    // [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0).
                    #expect(received.first?["qos"].int == min(granted, published), "\(payload)")
                    #expect(received.first?["retain"] == false)
                    if published > 0 {
                        #expect(result["acknowledged"][payload] == 0, "\(payload) acknowledged with \(result["acknowledged"][payload])")
                    }
                }
            }
            // [MQTT-3.3.5-1] (3.1.1), [MQTT-3.3.4-2] (5.0): at least one copy at the highest granted QoS.
            let overlapping = result["overlapping"].array
            #expect(!overlapping.isEmpty)
            #expect(overlapping.compactMap { $0["qos"].int }.max() == 2, "\(overlapping)")
        }
    }

    @Test("ordering: 1,000 QoS 1 messages to one topic arrive in the order published", arguments: versions)
    func ordering(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("ordering.py", node: node, version: version, ["--count", "1000", "--qos", "1"], timeout: .seconds(120))
            #expect(result["acknowledged"] == 1000)
            let received = result["received"].array.compactMap(\.int)
            #expect(received.count == 1000)
            #expect(received == Array(0..<1000), "first out of order at \(received.indices.first { received[$0] != $0 } ?? -1)")
            #expect(result["qos"] == .array([1]))
        }
    }

    // MARK: Retained

    @Test("retained messages: sent on subscribe with RETAIN set, live with RETAIN clear, replaced, cleared by an empty payload", arguments: versions)
    func retained(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("retained.py", node: node, version: version)
            let early = result["early"].array.map { Delivery($0) }
            #expect(early == [
                Delivery(payload: "first", retain: true), Delivery(payload: "second", retain: false), Delivery(payload: "", retain: false),
            ])
            #expect(result["late"].array.map { Delivery($0) } == [Delivery(payload: "second", retain: true)])
            let wildcard = result["wildcard"].array.map { Delivery($0) }
            #expect(Set(wildcard.map(\.payload)) == ["second", "other"])
            #expect(wildcard.allSatisfy { $0.retain })
            #expect(result["after_clear"].array.isEmpty, "an empty retained payload deletes the retained message [MQTT-3.3.1-10]")
        }
    }

    @Test("MQTT 5.0 retain handling 0/1/2 and retain as published")
    func retainHandlingV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("retain_handling.py", node: node, version: "5")
            let handling = result["handling"]
            // [MQTT-3.3.1-9]: 0 sends on every subscribe.
            #expect(handling["0"]["first"].array.map { Delivery($0) } == [Delivery(payload: "kept", retain: true)])
            #expect(handling["0"]["again"].array.map { Delivery($0) } == [Delivery(payload: "kept", retain: true)])
            // [MQTT-3.3.1-10]: 1 only when the subscription did not exist.
            #expect(handling["1"]["first"].array.map { Delivery($0) } == [Delivery(payload: "kept", retain: true)])
            #expect(handling["1"]["again"].array.isEmpty)
            // [MQTT-3.3.1-11]: 2 never.
            #expect(handling["2"]["first"].array.isEmpty)
            #expect(handling["2"]["again"].array.isEmpty)
            // [MQTT-3.3.1-12], [MQTT-3.3.1-13].
            #expect(result["retain_as_published"].array.map { Delivery($0) } == [
                Delivery(payload: "live retained", retain: true), Delivery(payload: "live plain", retain: false),
            ])
            #expect(result["retain_cleared"].array.map { Delivery($0) } == [
                Delivery(payload: "live retained", retain: false), Delivery(payload: "live plain", retain: false),
            ])
        }
    }

    // MARK: Wills

    @Test("will: published when the connection ends without DISCONNECT", arguments: versions)
    func willOnAbnormalClose(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("will.py", node: node, version: version, ["--case", "abnormal"])
            let will = result["will"].array
            #expect(will.count == 1)
            #expect(will.first?["payload"] == "last words")
            #expect(will.first?["qos"] == 1)
        }
    }

    @Test("will: not published after a normal DISCONNECT", arguments: versions)
    func noWillAfterDisconnect(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("will.py", node: node, version: version, ["--case", "clean"])
            // [MQTT-3.1.2-10] (3.1.1), [MQTT-3.1.2-8] (5.0).
            #expect(result["will"].array.isEmpty)
        }
    }

    @Test("MQTT 5.0 DISCONNECT with reason 0x04 publishes the will")
    func willOnDisconnectWithWillMessageV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("will.py", node: node, version: "5", ["--case", "disconnect-with-will"])
            #expect(result["will"].array.map { $0["payload"] } == ["last words"])
        }
    }

    // MARK: MQTT 5.0 properties

    @Test("MQTT 5.0 topic aliases from the client: set, used, remapped")
    func topicAliasesInboundV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("topic_alias.py", node: node, version: "5", ["--case", "inbound"])
            let prefix = try #require(result["_prefix"].string)
            #expect(result["messages"].array.map { "\($0["topic"].string ?? "") \($0["payload"].string ?? "")" } == [
                "\(prefix)/alias/x a1", "\(prefix)/alias/x a2", "\(prefix)/alias/y a3", "\(prefix)/alias/y a4",
            ])
            #expect(result["publisher_disconnects"].array.isEmpty)
        }
    }

    @Test("MQTT 5.0 topic aliases to the client: within its Topic Alias Maximum, resolving to the published topics")
    func topicAliasesOutboundV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("topic_alias.py", node: node, version: "5", ["--case", "outbound"])
            let prefix = try #require(result["_prefix"].string)
            let publishes = result["publishes"].array
            #expect(publishes.map { $0["payload"] } == ["o0", "o1", "o2", "o3"])
            var aliases: [Int: String] = [:]
            var resolved: [String] = []
            for publish in publishes {
                var topic = publish["topic"].string ?? ""
                if let alias = publish["properties"]["TopicAlias"].int {
                    #expect((1...5).contains(alias), "alias \(alias) above the client's maximum [MQTT-3.3.2-10]")
                    if topic.isEmpty { topic = aliases[alias] ?? "<unknown alias \(alias)>" } else { aliases[alias] = topic }
                }
                resolved.append(topic)
            }
            #expect(resolved == ["\(prefix)/out/a", "\(prefix)/out/b", "\(prefix)/out/a", "\(prefix)/out/b"])
        }
    }

    @Test("MQTT 5.0 topic alias errors close the connection: above the maximum 0x94, 0 refused, unknown alias 0x82",
          arguments: ["invalid-above-maximum", "invalid-zero", "unknown"])
    func topicAliasErrorsV5(errorCase: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("topic_alias.py", node: node, version: "5", ["--case", errorCase])
            #expect(result["closed"] == true)
            let codes = result["disconnects"].array.compactMap { $0["code"].int }
            switch errorCase {
            case "invalid-above-maximum": #expect(codes == [0x94])
            // §3.3.2.3.4: 0 is not a Topic Alias; Protocol Error and Topic Alias invalid both name it.
            case "invalid-zero": #expect(codes == [0x82] || codes == [0x94], "\(codes)")
            default: #expect(codes == [0x82])
            }
        }
    }

    @Test("MQTT 5.0 subscription identifiers: each delivery carries those of the subscriptions it matched")
    func subscriptionIdentifiersV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("subscription_identifiers.py", node: node, version: "5")
            #expect(result["connack"]["properties"]["SubscriptionIdentifierAvailable"] != 0)
            let messages = result["messages"].array
            func identifiers(_ payload: String) -> [[Int]] {
                messages.filter { $0["payload"].string == payload }.map { $0["properties"]["SubscriptionIdentifier"].array.compactMap(\.int) }
            }
            // [MQTT-3.3.4-3], [MQTT-3.3.4-4], [MQTT-3.3.4-5]: one copy with both, or one copy per subscription with its own.
            let both = identifiers("both")
            #expect(!both.isEmpty)
            #expect(Set(both.flatMap { $0 }) == [7, 300], "\(both)")
            #expect(both.count == 1 ? both[0].sorted() == [7, 300] : both.allSatisfy { $0.count == 1 }, "\(both)")
            #expect(identifiers("hash only") == [[300]])
            #expect(identifiers("none") == [[]])
        }
    }

    @Test("MQTT 5.0 user properties, response topic, correlation data, content type, payload format pass through unchanged")
    func propertiesPassThroughV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("properties_passthrough.py", node: node, version: "5")
            let prefix = try #require(result["_prefix"].string)
            let request = result["request"]["properties"]
            // [MQTT-3.3.2-17], [MQTT-3.3.2-18]: every user property, in order.
            #expect(request["UserProperty"] == .array([["a", "1"], ["b", "2"], ["a", "3"]].map { .array($0.map(JSONValue.string)) }))
            #expect(request["ResponseTopic"].string == "\(prefix)/client/response")
            #expect(request["CorrelationData"] == "0001636f7272ff")
            #expect(request["ContentType"] == "text/plain")
            #expect(request["PayloadFormatIndicator"] == 1)
            #expect(result["request"]["payload"] == "question")
            #expect(result["response"]["payload"] == "answer")
            #expect(result["response"]["properties"]["CorrelationData"] == "0001636f7272ff")
        }
    }

    // MARK: Subscriptions

    @Test("SUBACK failure codes: too many filters in one SUBSCRIBE are each refused (3.1.1 0x80, 5.0 0x97); the connection works on", arguments: versions)
    func subAckQuotaFailure(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("suback_failures.py", node: node, version: version, ["--case", "too-many"])
            let refused = result["subacks"][0]["codes"].array.compactMap(\.int)
            #expect(refused == Array(repeating: version == "5" ? 0x97 : 0x80, count: 101))
            #expect(result["subacks"][1]["codes"] == .array([1]))
            #expect(result["delivered"]["payload"] == "still works")
        }
    }

    // A filter that breaks the wildcard rules is not "a Topic Filter the server does not accept" (0x8F) but
    // a Malformed Packet [MQTT-4.7.1-1]; mosquitto and EMQX close the connection too (docs/protocol.md).
    @Test(
        "a SUBSCRIBE with a malformed topic filter closes that connection (5.0: DISCONNECT 0x81), no SUBACK; the node serves the others",
        arguments: versions
    )
    func subscribeMalformedFilter(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("suback_failures.py", node: node, version: version, ["--case", "invalid"])
            if version == "5" {
                #expect(result["subacks"][0]["error"] == "DISCONNECT", "\(result["subacks"])")
                #expect(result["subacks"][0]["code"] == .number(0x81), "\(result["subacks"])")
            } else {
                #expect(result["subacks"][0]["error"] == "Closed", "\(result["subacks"])")
            }
            #expect(result["delivered"] == .null)
        }
    }

    @Test("UNSUBSCRIBE: the filter stops delivering, others go on; an unknown filter is answered (5.0: 0x11)", arguments: versions)
    func unsubscribe(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("unsubscribe.py", node: node, version: version)
            let prefix = try #require(result["_prefix"].string)
            // Before: u/a matches two subscriptions and u/b two; at least one copy each.
            #expect(Set(result["before"].array.compactMap { $0["payload"].string }) == ["before-a", "before-b"])
            if version == "5" {
                #expect(result["unsubacks"]["exact"] == .array([0]))
                #expect(result["unsubacks"]["wildcard"] == .array([0]))
                #expect(result["unsubacks"]["never"] == .array([0x11]))
            }
            let after = result["after"].array
            #expect(after.allSatisfy { $0["topic"].string == "\(prefix)/u/b" }, "\(after)")
            #expect(after.map { $0["payload"] } == ["after-b"])
            #expect(result["disconnects"].array.isEmpty)
        }
    }

    // MARK: Protocol violations and flow control

    @Test("a malformed packet closes only that connection (5.0: DISCONNECT 0x81 first); other clients keep working",
          arguments: versions, ["reserved-type", "qos-3", "endless-length", "subscribe-flags"])
    func malformedPacket(version: String, garbage: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("malformed.py", node: node, version: version, ["--garbage", garbage])
            #expect(result["offender_closed"] == true)
            let disconnects = result["offender_disconnects"].array
            if version == "5" {
                #expect(disconnects.compactMap { $0["code"].int }.allSatisfy { $0 == 0x81 }, "\(disconnects)")
            } else {
                #expect(result["offender_packets"].array.isEmpty, "3.1.1 has no server DISCONNECT")
            }
            // Garbage instead of CONNECT: closed, no CONNACK [MQTT-3.1.0-1].
            #expect(result["stranger_closed"] == true)
            #expect(!result["stranger_packets"].array.contains("CONNACK"))
            #expect(result["bystander_connected"] == true)
            #expect(result["bystander_messages"].array.map { $0["payload"] } == ["unaffected"])
            #expect(node.log.contains("closing"), "the node logs why it closed the connection")
        }
    }

    @Test("MQTT 5.0 flow control: more QoS 2 PUBLISHes in flight than Receive Maximum → DISCONNECT 0x93")
    func receiveMaximumExceededV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("receive_maximum.py", node: node, version: "5")
            #expect(result["skipped"] == .null)
            #expect(result["closed"] == true)
            #expect(result["disconnects"].array.compactMap { $0["code"].int } == [0x93])
            // [MQTT-3.3.4-9]: the ones within the quota may have been answered, the one beyond it not.
            #expect((result["pubrecs"].int ?? 0) <= (result["receive_maximum"].int ?? 0))
        }
    }

    @Test("a packet above maxPacketSizeInByte closes that connection (5.0: DISCONNECT 0x95 first); others are unaffected", arguments: versions)
    func maximumPacketSizeOfTheNode(version: String) async throws {
        try await withNode(NodeProcess.Options(connect: ["maxPacketSizeInByte": "10000"])) { node in
            let result = try await PahoScenario.run("maximum_packet_size.py", node: node, version: version, ["--case", "server", "--limit", "10000"])
            #expect(result["closed"] == true)
            if version == "5" {
                #expect(result["disconnects"].array.compactMap { $0["code"].int } == [0x95])
            } else {
                #expect(result["packets"].array.isEmpty, "3.1.1 has no server DISCONNECT")
            }
            #expect(result["bystander"] == ["small"])
        }
    }

    @Test("MQTT 5.0 Maximum Packet Size of the client: a message that does not fit is not sent to it, the others are")
    func maximumPacketSizeOfTheClientV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("maximum_packet_size.py", node: node, version: "5", ["--case", "client"])
            // [MQTT-3.1.2-24], [MQTT-3.1.2-25]: discarded as if delivered; the connection stays.
            #expect(result["received"] == ["before", "after"])
            #expect(result["closed"] == false)
        }
    }

    // MARK: Sessions

    @Test("Clean Session / Clean Start 1 discards the stored session: nothing queued, no subscription kept", arguments: versions)
    func cleanSessionDiscards(version: String) async throws {
        try await withNode { node in
            let prefix = PahoScenario.makePrefix()
            _ = try await PahoScenario.run("persistent_session.py", node: node, version: version, prefix: prefix, ["--phase", "subscribe"])
            _ = try await PahoScenario.run("persistent_session.py", node: node, version: version, prefix: prefix, ["--phase", "publish", "--count", "3"])
            let resumed = try await PahoScenario.run(
                "persistent_session.py", node: node, version: version, prefix: prefix, ["--phase", "resume", "--count", "3", "--clean"]
            )
            // [MQTT-3.2.2-1] (3.1.1), [MQTT-3.2.2-2] (5.0).
            #expect(resumed["connack"]["session_present"] == false)
            #expect(resumed["queued"].array.isEmpty)
            #expect(resumed["after"].array.isEmpty)
        }
    }

    /// Where the node is between the session going away and coming back.
    enum Interruption: String, Sendable {
        case none, gracefulRestart, sigkill
    }

    /// The QoS of the queued messages and what happens to the node while the session is away.
    struct SessionCase: Sendable, CustomTestStringConvertible {
        var qos: Int
        var interruption: Interruption
        var testDescription: String { "QoS \(qos), \(interruption.rawValue)" }
    }

    @Test(
        "persistent session: Session Present, queued messages in order (QoS 2 once, QoS 1 at least once), subscription kept",
        arguments: versions, [
            SessionCase(qos: 1, interruption: .none), SessionCase(qos: 2, interruption: .none),
            SessionCase(qos: 2, interruption: .gracefulRestart), SessionCase(qos: 1, interruption: .sigkill),
            SessionCase(qos: 2, interruption: .sigkill),
        ]
    )
    func persistentSession(version: String, delivery: SessionCase) async throws {
        // SYNC_FLUSH: a SIGKILL must not lose what was acknowledged.
        try await withNode(.syncFlush) { node in
            let prefix = PahoScenario.makePrefix()
            let count = 20
            let subscribed = try await PahoScenario.run(
                "persistent_session.py", node: node, version: version, prefix: prefix, ["--phase", "subscribe", "--qos", "\(delivery.qos)"]
            )
            #expect(subscribed["connack"]["session_present"] == false)
            #expect(subscribed["suback"] == .array([.number(Double(delivery.qos))]))
            let published = try await PahoScenario.run(
                "persistent_session.py", node: node, version: version, prefix: prefix,
                ["--phase", "publish", "--qos", "\(delivery.qos)", "--count", "\(count)"]
            )
            #expect(published["acknowledged"].int == count)
            switch delivery.interruption {
            case .none: break
            case .gracefulRestart:
                #expect(await node.stopGracefully() == 0)
                try await node.restart()
            case .sigkill:
                await node.kill()
                try await node.restart()
            }
            let resumed = try await PahoScenario.run(
                "persistent_session.py", node: node, version: version, prefix: prefix,
                ["--phase", "resume", "--qos", "\(delivery.qos)", "--count", "\(count)"]
            )
            #expect(resumed["connack"]["session_present"] == true)
            let queued = resumed["queued"].array
            let payloads = queued.compactMap { $0["payload"].string }.compactMap { Int($0) }
            if delivery.qos == 2 {
                #expect(payloads == Array(0..<count), "QoS 2: every message exactly once, in order")
            } else {
                // At least once, in order: dropping repeats of what came before leaves 0..<count.
                var firstSeen: [Int] = []
                for payload in payloads where !firstSeen.contains(payload) { firstSeen.append(payload) }
                #expect(firstSeen == Array(0..<count), "QoS 1: every message at least once, in order: \(payloads)")
            }
            #expect(queued.allSatisfy { $0["qos"].int == delivery.qos })
            #expect(resumed["after"].array.map { $0["payload"] } == ["after"], "the subscription was kept")
        }
    }

    @Test("MQTT 5.0 session expiry: an absent or elapsed interval, or DISCONNECT setting 0, ends the session",
          arguments: ["absent", "elapsed", "disconnect-sets-zero"])
    func sessionEndsV5(expiryCase: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("session_expiry.py", node: node, version: "5", ["--case", expiryCase])
            #expect(result["first"]["session_present"] == false)
            #expect(result["connack"]["session_present"] == false)
            #expect(result["messages"].array.isEmpty)
        }
    }

    @Test("MQTT 5.0 session expiry: within the interval the session is resumed with what was queued")
    func sessionKeptV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("session_expiry.py", node: node, version: "5", ["--case", "kept"])
            #expect(result["connack"]["session_present"] == true)
            #expect(result["messages"].array.map { $0["payload"] } == ["while away"])
        }
    }

    @Test("MQTT 5.0 assigned client identifiers are not handed out again after a restart [MQTT-3.2.2-16]")
    func assignedIdentifiersUniqueAcrossRestartV5() async throws {
        try await withNode { node in
            let prefix = PahoScenario.makePrefix()
            let before = try await PahoScenario.run("assigned_identifier.py", node: node, version: "5", prefix: prefix, ["--count", "3"])
            #expect(await node.stopGracefully() == 0)
            try await node.restart()
            let after = try await PahoScenario.run("assigned_identifier.py", node: node, version: "5", prefix: prefix, ["--count", "3"])
            let identifiers = (before["connections"].array + after["connections"].array).compactMap { $0["assigned"].string }
            #expect(identifiers.count == 6)
            // [MQTT-3.2.2-16]: a new identifier, not one of a stored session.
            #expect(Set(identifiers).count == 6, "\(identifiers)")
            #expect(after["connections"].array.allSatisfy { $0["session_present"] == false })
        }
    }

    // MARK: Will delay, message expiry, no local, shared subscriptions, point to point

    @Test("MQTT 5.0 will delay interval: the will waits for the delay")
    func willDelayV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("will_delay.py", node: node, version: "5", ["--case", "delayed"])
            #expect(result["will"].array.map { $0["payload"] } == ["delayed words"])
            let arrivedAfter = try #require(result["arrived_after_seconds"].double)
            // [MQTT-3.1.3-9]: not before the delay (3 s; slack for the clocks).
            #expect(arrivedAfter >= 2.8, "published after \(arrivedAfter) s")
        }
    }

    @Test("MQTT 5.0 will delay interval: reconnecting within the delay cancels the will")
    func willDelayCancelledByReconnectV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("will_delay.py", node: node, version: "5", ["--case", "reconnect-cancels"])
            #expect(result["connack"]["session_present"] == true)
            #expect(result["will"].array.isEmpty)
        }
    }

    @Test("MQTT 5.0 message expiry: an expired message is not delivered; a delivered one carries the remaining interval")
    func messageExpiryV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("message_expiry.py", node: node, version: "5")
            let queued = result["queued"].array
            // [MQTT-3.3.2-5], [MQTT-3.3.2-6].
            #expect(queued.map { $0["payload"] } == ["long"])
            let remaining = try #require(queued.first?["properties"]["MessageExpiryInterval"].int)
            #expect(remaining < 120 && remaining >= 100, "remaining \(remaining) s")
            #expect(result["retained"].array.isEmpty, "an expired retained message is not sent")
        }
    }

    @Test("MQTT 5.0 no local: a subscription with No Local gets nothing its own connection publishes")
    func noLocalV5() async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("no_local.py", node: node, version: "5")
            // [MQTT-3.8.3-3].
            #expect(Set(result["messages"].array.compactMap { $0["payload"].string }) == ["own echo", "from other"])
            #expect(result["messages"].array.count == 2)
        }
    }

    @Test("shared subscriptions: each message to one member of the group; a plain subscriber gets all", arguments: versions)
    func sharedSubscriptionDistributes(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("shared_subscription.py", node: node, version: version, ["--case", "distribute"])
            #expect(result["subacks"] == .array([.array([1]), .array([1])]))
            let members = result["members"].array.map { $0.array.compactMap(\.string) }
            let all = members.flatMap { $0 }
            #expect(all.count == 20, "each message to exactly one member: \(members)")
            #expect(Set(all) == Set((0..<20).map(String.init)))
            #expect(result["plain"].array.compactMap(\.string) == (0..<20).map(String.init))
        }
    }

    @Test("shared subscriptions: a member that leaves hands its unacknowledged messages to the others", arguments: versions)
    func sharedSubscriptionHandoff(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("shared_subscription.py", node: node, version: version, ["--case", "handoff"])
            #expect(result["member_suback"] == .array([1]))
            let member = Set(result["member"].array.compactMap(\.string))
            #expect(member == Set((0..<20).map(String.init)), "silent member had \(result["silent"]), member has \(member.sorted())")
        }
    }

    @Test("point to point: a PUBLISH to <firstTopic>/p2p/<clientId> reaches that client, without a subscription, and nobody else", arguments: versions)
    func pointToPoint(version: String) async throws {
        try await withNode { node in
            let result = try await PahoScenario.run("p2p.py", node: node, version: version)
            let prefix = try #require(result["_prefix"].string)
            #expect(result["acknowledged"] == 0)
            #expect(result["target"].array.map { $0["payload"] } == ["for B only"])
            #expect(result["target"].array.first?["topic"].string == "\(prefix)/p2p/\(prefix)-B")
            #expect(result["bystander"].array.isEmpty)
        }
    }
}

/// A delivery reduced to what retained-message tests compare.
private struct Delivery: Equatable, CustomStringConvertible {
    var payload: String
    var retain: Bool

    init(payload: String, retain: Bool) {
        self.payload = payload
        self.retain = retain
    }

    init(_ message: JSONValue) {
        payload = message["payload"].string ?? "<none>"
        retain = message["retain"].bool ?? false
    }

    var description: String { "\(payload)(retain: \(retain))" }
}

/// Starts a node (once one of `NodeSlots` is free), runs `body`, and always kills the node and removes
/// its folder; a failure carries the tail of the node's log.
func withNode(
    _ options: NodeProcess.Options = NodeProcess.Options(), _ body: @Sendable (NodeProcess) async throws -> Void
) async throws {
    try await NodeSlots.shared.withSlot {
        let node = try await NodeProcess.start(options)
        do {
            try await body(node)
        } catch {
            let tail = node.logTail()
            await node.shutdown()
            throw NodeProcess.Failure("\(error)\n--- node log (tail) ---\n\(tail)")
        }
        await node.shutdown()
    }
}

/// Runs a scenario script of `paho/` with python3 and returns the JSON it printed.
enum PahoScenario {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("paho").path
    static let python = NodeProcess.executableOnPath("python3")

    /// python3 with paho-mqtt 2.x importable, and a built mqtt-node.
    static let isAvailable: Bool = {
        guard NodeProcess.binaryPath != nil else { return false }
        return pythonSucceeds("import sys, paho.mqtt; sys.exit(0 if int(paho.mqtt.__version__.split('.')[0]) >= 2 else 1)")
    }()

    /// Whether `python3 -c code` exits 0 (within 30 s).
    static func pythonSucceeds(_ code: String) -> Bool {
        guard let python, let child = try? SpawnedProcess(
            executable: python, arguments: ["-c", code], environment: NodeProcess.childEnvironment(),
            standardOutputPath: "/dev/null", standardErrorPath: "/dev/null"
        ) else { return false }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let status = child.exitStatus() { return status == 0 }
            usleep(10_000)
        }
        child.signal(SIGKILL)
        return false
    }

    /// A prefix for client identifiers and the first topic level, unique per run.
    static func makePrefix() -> String {
        "e" + UUID().uuidString.prefix(8).lowercased()
    }

    /// Runs `script` against `node`; the result also holds `_prefix`, the prefix the script was given.
    static func run(
        _ script: String, node: NodeProcess, version: String, prefix: String = makePrefix(), _ arguments: [String] = [],
        timeout: Duration = .seconds(60)
    ) async throws -> JSONValue {
        let python = try #require(python)
        let outputPath = node.directory + "/\(script)-\(UUID().uuidString).out"
        let errorPath = outputPath.replacingOccurrences(of: ".out", with: ".err")
        let child = try SpawnedProcess(
            executable: python,
            arguments: [directory + "/" + script, "--port", "\(node.port)", "--version", version, "--prefix", prefix] + arguments,
            // No __pycache__ in the source tree.
            environment: NodeProcess.childEnvironment(["PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"]),
            standardOutputPath: outputPath, standardErrorPath: errorPath
        )
        guard let status = await child.waitForExit(timeout: timeout) else {
            await child.forceKill()
            throw NodeProcess.Failure("\(script) \(arguments) did not finish within \(timeout); stderr:\n\(child.standardError)")
        }
        guard status == 0 else {
            throw NodeProcess.Failure("\(script) \(arguments) exited with \(status); stderr:\n\(child.standardError)")
        }
        let output = child.standardOutput
        guard let line = output.split(separator: "\n").last,
              case .object(var object) = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)) else {
            throw NodeProcess.Failure("\(script) printed no JSON object: \(output)")
        }
        object["_prefix"] = .string(prefix)
        return .object(object)
    }
}

/// A JSON document as a value: what the scenario scripts print. Missing keys and indexes read as `.null`.
enum JSONValue: Sendable, Hashable, Decodable, CustomStringConvertible, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .number(Double(value)) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: JSONValue...) { self = .array(elements) }

    subscript(key: String) -> JSONValue {
        if case .object(let object) = self { return object[key] ?? .null }
        return .null
    }

    subscript(index: Int) -> JSONValue {
        if case .array(let array) = self, array.indices.contains(index) { return array[index] }
        return .null
    }

    /// The elements of an array; empty for anything else.
    var array: [JSONValue] {
        if case .array(let array) = self { return array }
        return []
    }

    var string: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    var bool: Bool? {
        if case .bool(let bool) = self { return bool }
        return nil
    }

    var double: Double? {
        if case .number(let number) = self { return number }
        return nil
    }

    /// The number, if it is a whole one.
    var int: Int? {
        if case .number(let number) = self, number.rounded() == number { return Int(number) }
        return nil
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let bool): return "\(bool)"
        case .number(let number): return number.rounded() == number ? "\(Int(number))" : "\(number)"
        case .string(let string): return "\"\(string)\""
        case .array(let array): return "[" + array.map(\.description).joined(separator: ", ") + "]"
        case .object(let object):
            return "{" + object.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

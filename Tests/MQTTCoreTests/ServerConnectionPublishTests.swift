import MQTTCore
import NIOCore
import Testing

/// PUBLISH from the client: QoS flows, exactly-once, ordering, topic aliases, flow control.
@Suite("Server connection: inbound PUBLISH")
struct ServerConnectionPublishTests {
    typealias H = ServerHarness
    typealias Machine = ServerConnectionStateMachine

    static let versions: [MQTTProtocolVersion] = [.v3_1_1, .v5]

    // MARK: - QoS flows

    @Test("QoS 0 is stored and not acknowledged", arguments: versions)
    func qos0(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version))
        let publish = H.publish(qos: .atMostOnce)
        #expect(machine.packetReceived(.publish(publish), nowMillis: H.t0) == [.storePublish(publish)])
    }

    @Test("QoS 1: PUBACK only after the store made the message durable [MQTT-4.3.2-4]", arguments: versions)
    func qos1(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version))
        let publish = H.publish(qos: .atLeastOnce, id: 10)
        #expect(machine.packetReceived(.publish(publish), nowMillis: H.t0) == [.storePublish(publish)])
        #expect(machine.publishStored(packetIdentifier: 10) == [.send(.pubAck(PubAckPacket(packetIdentifier: 10)))])
        #expect(machine.publishStored(packetIdentifier: 10) == [], "a second answer for the same message is ignored")
    }

    @Test("QoS 2: PUBREC after the store, PUBCOMP after PUBREL, the identifier released first [MQTT-4.3.3-8] [MQTT-4.3.3-11]", arguments: versions)
    func qos2(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version))
        let publish = H.publish(qos: .exactlyOnce, id: 11)
        #expect(machine.packetReceived(.publish(publish), nowMillis: H.t0) == [.storePublish(publish)])
        #expect(machine.publishStored(packetIdentifier: 11) == [.send(.pubRec(PubAckPacket(packetIdentifier: 11)))])
        #expect(machine.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 11)), nowMillis: H.t0) == [
            .releaseInboundPacketIdentifier(11),
            .send(.pubComp(PubAckPacket(packetIdentifier: 11))),
        ])
    }

    @Test("acknowledgements leave in the order the PUBLISHes arrived, whatever order the store answers in (§4.6)")
    func acknowledgementOrder() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 1)), nowMillis: H.t0)
        _ = machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 2)), nowMillis: H.t0)
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 3)), nowMillis: H.t0)
        #expect(machine.publishStored(packetIdentifier: 3) == [])
        #expect(machine.publishStored(packetIdentifier: 2) == [])
        #expect(machine.publishStored(packetIdentifier: 1) == [
            .send(.pubAck(PubAckPacket(packetIdentifier: 1))),
            .send(.pubRec(PubAckPacket(packetIdentifier: 2))),
            .send(.pubAck(PubAckPacket(packetIdentifier: 3))),
        ])
    }

    @Test("the stored message never carries the client's DUP flag [MQTT-3.3.1-3]")
    func dupNotForwarded() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1))
        let actions = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 4, dup: true)), nowMillis: H.t0)
        #expect(H.stored(actions).map(\.dup) == [false])
    }

    // MARK: - Exactly once

    @Test("a QoS 2 resend while the store works is not stored again; one PUBREC follows [MQTT-4.3.3-10]", arguments: versions)
    func qos2ResendWhilePending(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version))
        #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 5)), nowMillis: H.t0)).count == 1)
        #expect(machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 5, dup: true)), nowMillis: H.t0) == [])
        #expect(machine.publishStored(packetIdentifier: 5) == [.send(.pubRec(PubAckPacket(packetIdentifier: 5)))])
    }

    @Test("a QoS 2 resend after PUBREC is acknowledged again and not stored again [MQTT-4.3.3-10]", arguments: versions)
    func qos2ResendAfterPubRec(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version))
        _ = machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 6)), nowMillis: H.t0)
        _ = machine.publishStored(packetIdentifier: 6)
        #expect(machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 6, dup: true)), nowMillis: H.t0) == [
            .send(.pubRec(PubAckPacket(packetIdentifier: 6))),
        ])
    }

    @Test("exactly once across a reconnect: a resumed identifier awaiting PUBREL is not stored again", arguments: versions)
    func qos2ResendAfterReconnect(version: MQTTProtocolVersion) {
        let resumption = Machine.SessionResumption(awaitingPubRelPacketIdentifiers: [42])
        var (machine, attachActions) = H.connected(.init(), H.connect(version, cleanStart: false), sessionPresent: true, resumption: resumption)
        #expect(H.sent(attachActions).count == 1, "nothing is resent for inbound flows: the client resends")
        #expect(machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 42, dup: true)), nowMillis: H.t0) == [
            .send(.pubRec(PubAckPacket(packetIdentifier: 42))),
        ])
        #expect(machine.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 42)), nowMillis: H.t0) == [
            .releaseInboundPacketIdentifier(42),
            .send(.pubComp(PubAckPacket(packetIdentifier: 42))),
        ])
        // After PUBCOMP the identifier names a new message ([MQTT-4.3.3-12]).
        #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 42)), nowMillis: H.t0)).count == 1)
    }

    @Test("QoS 1: a DUP resend while the store works is dropped; after PUBACK the identifier is a new message [MQTT-4.3.2-5]")
    func qos1Resends() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1))
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 7)), nowMillis: H.t0)
        #expect(machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 7, dup: true)), nowMillis: H.t0) == [])
        #expect(H.sent(machine.publishStored(packetIdentifier: 7)).count == 1)
        #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 7, dup: true)), nowMillis: H.t0)).count == 1)
    }

    @Test("reusing an unacknowledged packet identifier for a new message is a protocol error [MQTT-2.2.1-3]", arguments: versions)
    func identifierReuse(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version))
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 8)), nowMillis: H.t0)
        H.expectViolation(machine.packetReceived(.publish(H.publish("other", qos: .atLeastOnce, id: 8)), nowMillis: H.t0), .protocolError, version: version, rule: "MQTT-2.2.1-3")

        (machine, _) = H.connected(.init(), H.connect(version))
        _ = machine.packetReceived(.subscribe(SubscribePacket(packetIdentifier: 9, subscriptions: [Subscription(topicFilter: "a")])), nowMillis: H.t0)
        H.expectViolation(machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 9)), nowMillis: H.t0), .protocolError, version: version, rule: "MQTT-2.2.1-3")

        (machine, _) = H.connected(.init(), H.connect(version))
        _ = machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 3)), nowMillis: H.t0)
        _ = machine.publishStored(packetIdentifier: 3)
        H.expectViolation(machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 3)), nowMillis: H.t0), .protocolError, version: version)
    }

    // MARK: - Refusals

    @Test("v5: a refused message is answered with the reason code; a refused QoS 2 frees its identifier [MQTT-4.3.3-9]")
    func refusedV5() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 1)), nowMillis: H.t0)
        _ = machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 2)), nowMillis: H.t0)
        #expect(machine.publishRefused(packetIdentifier: 1, reasonCode: .notAuthorized) == [
            .send(.pubAck(PubAckPacket(packetIdentifier: 1, reasonCode: .notAuthorized))),
        ])
        #expect(machine.publishRefused(packetIdentifier: 2, reasonCode: .quotaExceeded) == [
            .send(.pubRec(PubAckPacket(packetIdentifier: 2, reasonCode: .quotaExceeded))),
        ])
        #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 2)), nowMillis: H.t0)).count == 1)
        #expect(machine.publishStored(packetIdentifier: 2) == [.send(.pubRec(PubAckPacket(packetIdentifier: 2)))])
        // A code PUBACK cannot carry becomes Unspecified error.
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 4)), nowMillis: H.t0)
        #expect(machine.publishRefused(packetIdentifier: 4, reasonCode: .keepAliveTimeout) == [
            .send(.pubAck(PubAckPacket(packetIdentifier: 4, reasonCode: .unspecifiedError))),
        ])
    }

    @Test("a refusal's Reason String goes out unless the client asked for no problem information or it would not fit [MQTT-3.1.2-29] [MQTT-3.4.2-2]")
    func refusalReasonString() {
        let reason = "the message could not be stored; retry later"
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 1)), nowMillis: H.t0)
        #expect(machine.publishRefused(packetIdentifier: 1, reasonCode: .unspecifiedError, reasonString: reason) == [
            .send(.pubAck(PubAckPacket(packetIdentifier: 1, reasonCode: .unspecifiedError, properties: [.reasonString(reason)]))),
        ])
        // Request Problem Information 0: the code alone.
        var (quiet, _) = H.connected(.init(), H.connect(.v5, properties: [.requestProblemInformation(0)]))
        _ = quiet.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 2)), nowMillis: H.t0)
        #expect(quiet.publishRefused(packetIdentifier: 2, reasonCode: .unspecifiedError, reasonString: reason) == [
            .send(.pubRec(PubAckPacket(packetIdentifier: 2, reasonCode: .unspecifiedError))),
        ])
        // A Maximum Packet Size the reason would exceed: the code alone.
        var (small, _) = H.connected(.init(), H.connect(.v5, properties: [.maximumPacketSize(32)]))
        _ = small.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 3)), nowMillis: H.t0)
        #expect(small.publishRefused(packetIdentifier: 3, reasonCode: .unspecifiedError, reasonString: reason) == [
            .send(.pubAck(PubAckPacket(packetIdentifier: 3, reasonCode: .unspecifiedError))),
        ])
    }

    @Test("3.1.1: a refused message closes the connection, which publishes the will (3.1.1 [MQTT-3.3.5-2])")
    func refusedV311() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1, will: H.will()))
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 1)), nowMillis: H.t0)
        let actions = machine.publishRefused(packetIdentifier: 1, reasonCode: .notAuthorized)
        #expect(H.sent(actions).isEmpty)
        #expect(H.closeReason(actions)?.kind == .serverError)
        #expect(H.detachment(actions)?.willToPublish == H.will())
    }

    // MARK: - Rules on the packet

    @Test("a client PUBLISH with a Subscription Identifier is a protocol error [MQTT-3.3.4-6]")
    func subscriptionIdentifierFromClient() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        let actions = machine.packetReceived(.publish(H.publish(properties: [.subscriptionIdentifier(3)])), nowMillis: H.t0)
        H.expectViolation(actions, .protocolError, version: .v5, rule: "MQTT-3.3.4-6")
        #expect(H.stored(actions).isEmpty)
    }

    @Test("QoS above the server's maximum: v5 DISCONNECT 0x9B [MQTT-3.2.2-11]; 3.1.1 closes", arguments: versions)
    func qosAboveMaximum(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(maximumQoS: .atLeastOnce), H.connect(version))
        #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 1)), nowMillis: H.t0)).count == 1)
        let actions = machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 2)), nowMillis: H.t0)
        H.expectViolation(actions, .qosNotSupported, version: version, rule: "MQTT-3.2.2-11")
    }

    @Test("RETAIN while retain is unavailable: v5 DISCONNECT 0x9A [MQTT-3.2.2-14]", arguments: versions)
    func retainUnavailable(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(retainAvailable: false), H.connect(version))
        H.expectViolation(machine.packetReceived(.publish(H.publish(retain: true)), nowMillis: H.t0), .retainNotSupported, version: version, rule: "MQTT-3.2.2-14")
    }

    // MARK: - Topic aliases

    @Test("a Topic Alias with a topic sets the mapping; with an empty topic it resolves it; the alias is not stored")
    func topicAliasMapping() {
        var (machine, _) = H.connected(.init(topicAliasMaximum: 5), H.connect(.v5))
        let first = H.publish("sensors/1", properties: [.topicAlias(2), .userProperty("k", "v")])
        #expect(H.stored(machine.packetReceived(.publish(first), nowMillis: H.t0)) == [H.publish("sensors/1", properties: [.userProperty("k", "v")])])
        let second = H.publish("", payload: "again", properties: [.topicAlias(2)])
        #expect(H.stored(machine.packetReceived(.publish(second), nowMillis: H.t0)) == [H.publish("sensors/1", payload: "again")])
        let remapped = H.publish("sensors/2", properties: [.topicAlias(2)])
        _ = machine.packetReceived(.publish(remapped), nowMillis: H.t0)
        #expect(H.stored(machine.packetReceived(.publish(second), nowMillis: H.t0)).map(\.topicName) == ["sensors/2"])
    }

    @Test("Topic Alias 0 or above the maximum: DISCONNECT 0x94 [MQTT-3.3.2-8] [MQTT-3.2.2-17] [MQTT-3.2.2-18]")
    func topicAliasOutOfRange() {
        for (maximum, alias, rule) in [(UInt16(5), UInt16(0), "MQTT-3.3.2-8"), (5, 6, "MQTT-3.2.2-17"), (0, 1, "MQTT-3.2.2-18")] {
            var (machine, _) = H.connected(.init(topicAliasMaximum: maximum), H.connect(.v5))
            let actions = machine.packetReceived(.publish(H.publish(properties: [.topicAlias(alias)])), nowMillis: H.t0)
            H.expectViolation(actions, .topicAliasInvalid, version: .v5, rule: rule)
        }
    }

    @Test("an empty topic with an alias that has no mapping is a protocol error (§3.3.2.3.4)")
    func unknownTopicAlias() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        H.expectViolation(machine.packetReceived(.publish(H.publish("", properties: [.topicAlias(1)])), nowMillis: H.t0), .protocolError, version: .v5)
    }

    @Test("topic alias mappings do not outlive the network connection [MQTT-3.3.2-7]")
    func topicAliasesPerConnection() {
        var (machine, _) = H.connected(.init(), H.connect(.v5, cleanStart: false))
        _ = machine.packetReceived(.publish(H.publish("a/b", properties: [.topicAlias(1)])), nowMillis: H.t0)
        var (next, _) = H.connected(.init(), H.connect(.v5, cleanStart: false), sessionPresent: true)
        H.expectViolation(next.packetReceived(.publish(H.publish("", properties: [.topicAlias(1)])), nowMillis: H.t0), .protocolError, version: .v5)
    }

    // MARK: - Flow control

    @Test("one more QoS 1/2 PUBLISH than Receive Maximum unacknowledged: DISCONNECT 0x93 [MQTT-3.3.4-7]")
    func receiveMaximumExceeded() {
        var (machine, _) = H.connected(.init(receiveMaximum: 2), H.connect(.v5, will: H.will()))
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 1)), nowMillis: H.t0)
        _ = machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 2)), nowMillis: H.t0)
        // QoS 0 does not count.
        #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .atMostOnce)), nowMillis: H.t0)).count == 1)
        // PUBACK frees a slot; a QoS 2 awaiting PUBREL still holds one.
        _ = machine.publishStored(packetIdentifier: 1)
        _ = machine.publishStored(packetIdentifier: 2)
        #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 3)), nowMillis: H.t0)).count == 1)
        let actions = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 4)), nowMillis: H.t0)
        H.expectViolation(actions, .receiveMaximumExceeded, version: .v5, rule: "MQTT-3.3.4-7")
        #expect(H.detachment(actions)?.willToPublish == H.will())
    }

    @Test("PUBCOMP frees the Receive Maximum slot of a QoS 2 message")
    func pubCompFreesSlot() {
        var (machine, _) = H.connected(.init(receiveMaximum: 1), H.connect(.v5))
        _ = machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 1)), nowMillis: H.t0)
        _ = machine.publishStored(packetIdentifier: 1)
        _ = machine.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0)
        #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 2)), nowMillis: H.t0)).count == 1)
    }

    @Test("3.1.1 clients were announced no Receive Maximum and are not held to it")
    func receiveMaximumNotForV311() {
        var (machine, _) = H.connected(.init(receiveMaximum: 1), H.connect(.v3_1_1))
        for id in UInt16(1)...5 {
            #expect(H.stored(machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: id)), nowMillis: H.t0)).count == 1)
        }
    }

    // MARK: - PUBREL

    @Test("PUBREL for an unknown identifier: PUBCOMP 0x92 in v5, PUBCOMP in 3.1.1 [MQTT-4.3.3-11]")
    func pubRelUnknown() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        #expect(machine.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 77)), nowMillis: H.t0) == [
            .send(.pubComp(PubAckPacket(packetIdentifier: 77, reasonCode: .packetIdentifierNotFound))),
        ])
        var (old, _) = H.connected(.init(), H.connect(.v3_1_1))
        #expect(old.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 77)), nowMillis: H.t0) == [
            .send(.pubComp(PubAckPacket(packetIdentifier: 77))),
        ])
    }

    @Test("PUBREL before the server sent PUBREC is a protocol error")
    func pubRelBeforePubRec() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.packetReceived(.publish(H.publish(qos: .exactlyOnce, id: 1)), nowMillis: H.t0)
        H.expectViolation(machine.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0), .protocolError, version: .v5)
    }
}

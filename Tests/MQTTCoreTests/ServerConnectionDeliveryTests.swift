import MQTTCore
import NIOCore
import Testing

/// Deliveries to the client: packet identifiers, the receive window, acknowledgements, resends, sizes, aliases.
@Suite("Server connection: deliveries")
struct ServerConnectionDeliveryTests {
    typealias H = ServerHarness
    typealias Machine = ServerConnectionStateMachine

    static func delivery(_ tag: UInt64, _ topic: String = "t/1", qos: MQTTQoS, payload: String = "m", properties: MQTTProperties = []) -> Machine.Delivery {
        Machine.Delivery(tag: Machine.DeliveryTag(tag), publish: H.publish(topic, qos: qos, payload: payload, properties: properties))
    }

    static func expectedPublish(_ topic: String = "t/1", qos: MQTTQoS, id: UInt16?, payload: String = "m", dup: Bool = false, properties: MQTTProperties = []) -> MQTTPacket {
        .publish(PublishPacket(topicName: topic, payload: ByteBuffer(string: payload), qos: qos, dup: dup, packetIdentifier: id, properties: properties))
    }

    // MARK: - QoS flows

    @Test("QoS 0 is written and acknowledged at once")
    func qos0() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1))
        #expect(machine.deliveryRequested(Self.delivery(1, qos: .atMostOnce)) == [
            .send(Self.expectedPublish(qos: .atMostOnce, id: nil)),
            .acknowledgeDelivery(1),
        ])
        #expect(machine.inflightDeliveryCount == 0)
    }

    @Test("QoS 1: a fresh packet identifier, DUP 0; PUBACK acknowledges [MQTT-4.3.2-2]")
    func qos1() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1))
        #expect(machine.deliveryRequested(Self.delivery(5, qos: .atLeastOnce)) == [.send(Self.expectedPublish(qos: .atLeastOnce, id: 1))])
        #expect(machine.inflightDeliveryCount == 1)
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0) == [.acknowledgeDelivery(5)])
        #expect(machine.inflightDeliveryCount == 0)
    }

    @Test("QoS 2: recorded before the PUBLISH; PUBREC → record the release, PUBREL [MQTT-4.3.3-4]; PUBCOMP acknowledges")
    func qos2() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        #expect(machine.deliveryRequested(Self.delivery(6, qos: .exactlyOnce)) == [
            .recordDeliverySent(6, packetIdentifier: 1),
            .send(Self.expectedPublish(qos: .exactlyOnce, id: 1)),
        ])
        #expect(machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0) == [
            .recordDeliveryReleased(6, packetIdentifier: 1),
            .send(.pubRel(PubAckPacket(packetIdentifier: 1))),
        ])
        // A repeated PUBREC is answered again, nothing recorded twice.
        #expect(machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0) == [.send(.pubRel(PubAckPacket(packetIdentifier: 1)))])
        #expect(machine.packetReceived(.pubComp(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0) == [.acknowledgeDelivery(6)])
    }

    @Test("a refusing PUBACK or PUBREC ends the delivery: acknowledged, never resent [MQTT-4.4.0-2]")
    func refusingAcknowledgements() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.deliveryRequested(Self.delivery(1, qos: .atLeastOnce))
        _ = machine.deliveryRequested(Self.delivery(2, qos: .exactlyOnce))
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1, reasonCode: .unspecifiedError)), nowMillis: H.t0) == [.acknowledgeDelivery(1)])
        #expect(machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 2, reasonCode: .quotaExceeded)), nowMillis: H.t0) == [.acknowledgeDelivery(2)])
        #expect(machine.inflightDeliveryCount == 0)
    }

    @Test("the delivery's packet identifier, DUP flag and topic alias are the machine's to set")
    func callerFieldsIgnored() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        var delivery = Self.delivery(1, qos: .atLeastOnce, properties: [.topicAlias(9), .subscriptionIdentifier(4)])
        delivery.publish.packetIdentifier = 999
        delivery.publish.dup = true
        #expect(H.publishes(machine.deliveryRequested(delivery)) == [
            PublishPacket(topicName: "t/1", payload: ByteBuffer(string: "m"), qos: .atLeastOnce, dup: false, packetIdentifier: 1, properties: [.subscriptionIdentifier(4)]),
        ])
    }

    @Test("3.1.1 deliveries carry no properties")
    func v311NoProperties() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1))
        let actions = machine.deliveryRequested(Self.delivery(1, qos: .atMostOnce, properties: [.userProperty("a", "b"), .messageExpiryInterval(5)]))
        #expect(H.publishes(actions).map(\.properties) == [[]])
    }

    @Test("no delivery before the connection is accepted or after it closed")
    func notConnected() {
        var machine = H.authenticating(.init(), H.connect(.v5))
        #expect(machine.deliveryRequested(Self.delivery(1, qos: .atMostOnce)) == [.retryDeliveryLater(1)])
        #expect(machine.availableDeliverySlots == 0)
        var (connected, _) = H.connected(.init(), H.connect(.v5))
        _ = connected.serverShuttingDown()
        #expect(connected.deliveryRequested(Self.delivery(2, qos: .atLeastOnce)) == [.retryDeliveryLater(2)])
    }

    // MARK: - Receive window and packet identifiers

    @Test("no more QoS 1/2 deliveries in flight than the client's Receive Maximum [MQTT-3.3.4-9]; QoS 0 is never held")
    func receiveWindow() {
        var (machine, _) = H.connected(.init(), H.connect(.v5, properties: [.receiveMaximum(2)]))
        #expect(machine.availableDeliverySlots == 2)
        _ = machine.deliveryRequested(Self.delivery(1, qos: .atLeastOnce))
        _ = machine.deliveryRequested(Self.delivery(2, qos: .exactlyOnce))
        #expect(machine.availableDeliverySlots == 0)
        #expect(machine.deliveryRequested(Self.delivery(3, qos: .atLeastOnce)) == [.retryDeliveryLater(3)])
        #expect(H.publishes(machine.deliveryRequested(Self.delivery(4, qos: .atMostOnce))).count == 1, "[MQTT-3.3.4-10]")
        _ = machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 2)), nowMillis: H.t0)
        #expect(machine.availableDeliverySlots == 0, "a released QoS 2 still counts until PUBCOMP")
        _ = machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0)
        #expect(machine.deliveryRequested(Self.delivery(3, qos: .atLeastOnce)) == [.send(Self.expectedPublish(qos: .atLeastOnce, id: 3))])
    }

    @Test("the configured in-flight maximum bounds clients that announce no Receive Maximum")
    func configuredWindow() {
        var (machine, _) = H.connected(.init(maximumInflightDeliveries: 3), H.connect(.v3_1_1))
        for tag in UInt64(1)...3 {
            #expect(H.publishes(machine.deliveryRequested(Self.delivery(tag, qos: .atLeastOnce))).count == 1)
        }
        #expect(machine.deliveryRequested(Self.delivery(4, qos: .atLeastOnce)) == [.retryDeliveryLater(4)])
    }

    @Test("packet identifiers are non-zero and never one still in flight, also after wrapping [MQTT-2.2.1-4]")
    func identifierWrap() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1))
        #expect(H.publishes(machine.deliveryRequested(Self.delivery(0, qos: .atLeastOnce))).first?.packetIdentifier == 1)
        for identifier in UInt16(2)...UInt16.max {
            let sent = H.publishes(machine.deliveryRequested(Self.delivery(UInt64(identifier), qos: .atLeastOnce)))
            guard sent.first?.packetIdentifier == identifier else {
                Issue.record("expected identifier \(identifier), got \(sent)")
                return
            }
            _ = machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: identifier)), nowMillis: H.t0)
        }
        // 1 is still in flight: the next identifier after 65535 skips it.
        #expect(H.publishes(machine.deliveryRequested(Self.delivery(1, qos: .atLeastOnce))).first?.packetIdentifier == 2)
    }

    // MARK: - Acknowledgements that do not match

    @Test("PUBACK or PUBCOMP for nothing in flight is ignored; PUBREC is answered with PUBREL 0x92 (v5)")
    func unknownAcknowledgements() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 3)), nowMillis: H.t0) == [])
        #expect(machine.packetReceived(.pubComp(PubAckPacket(packetIdentifier: 3)), nowMillis: H.t0) == [])
        #expect(machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 3)), nowMillis: H.t0) == [
            .send(.pubRel(PubAckPacket(packetIdentifier: 3, reasonCode: .packetIdentifierNotFound))),
        ])
        #expect(machine.state == .connected)
    }

    @Test("an acknowledgement of the wrong kind is a protocol error")
    func wrongAcknowledgementKind() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.deliveryRequested(Self.delivery(1, qos: .exactlyOnce))
        H.expectViolation(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0), .protocolError, version: .v5)

        (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.deliveryRequested(Self.delivery(1, qos: .exactlyOnce))
        H.expectViolation(machine.packetReceived(.pubComp(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0), .protocolError, version: .v5)

        (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.deliveryRequested(Self.delivery(1, qos: .atLeastOnce))
        H.expectViolation(machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0), .protocolError, version: .v5)
    }

    // MARK: - Resumed sessions

    @Test("a resumed session resends unfinished deliveries with their identifiers, DUP set and PUBREL for released ones [MQTT-4.4.0-1]")
    func resendOnResume() {
        let resumption = Machine.SessionResumption(inflightDeliveries: [
            Machine.InflightDelivery(tag: 10, packetIdentifier: 5, publish: H.publish("r/a", qos: .atLeastOnce, payload: "A")),
            Machine.InflightDelivery(tag: 11, packetIdentifier: 9, publish: H.publish("r/b", qos: .exactlyOnce, payload: "B"), released: true),
            Machine.InflightDelivery(tag: 12, packetIdentifier: 7, publish: H.publish("r/c", qos: .exactlyOnce, payload: "C")),
        ])
        var (machine, actions) = H.connected(.init(), H.connect(.v5, cleanStart: false, properties: [.receiveMaximum(2)]), sessionPresent: true, resumption: resumption)
        #expect(H.connAck(actions)?.sessionPresent == true)
        #expect(Array(actions.dropFirst().dropLast()) == [
            .send(Self.expectedPublish("r/a", qos: .atLeastOnce, id: 5, payload: "A", dup: true)),
            .send(.pubRel(PubAckPacket(packetIdentifier: 9))),
        ])
        #expect(machine.inflightDeliveryCount == 2)
        // The third waits for room; new deliveries wait behind it (§4.6).
        #expect(machine.deliveryRequested(Self.delivery(20, qos: .atLeastOnce)) == [.retryDeliveryLater(20)])
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 5)), nowMillis: H.t0) == [
            .acknowledgeDelivery(10),
            .send(Self.expectedPublish("r/c", qos: .exactlyOnce, id: 7, payload: "C", dup: true)),
        ])
        #expect(machine.packetReceived(.pubComp(PubAckPacket(packetIdentifier: 9)), nowMillis: H.t0) == [.acknowledgeDelivery(11)])
        #expect(machine.inflightDeliveryCount == 1)
    }

    @Test("the session detachment lists the unfinished deliveries in the order they were sent, released ones marked")
    func detachmentListsUnfinishedDeliveries() {
        var (machine, _) = H.connected(.init(), H.connect(.v5, cleanStart: false, properties: [.sessionExpiryInterval(60)]))
        _ = machine.deliveryRequested(Self.delivery(1, qos: .exactlyOnce))
        _ = machine.deliveryRequested(Self.delivery(2, qos: .atLeastOnce))
        _ = machine.deliveryRequested(Self.delivery(3, qos: .atLeastOnce))
        _ = machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0)
        _ = machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 2)), nowMillis: H.t0)
        let actions = machine.connectionClosed()
        guard case .detachSession(let detachment)? = actions.first else {
            Issue.record("no detachSession in \(actions)")
            return
        }
        #expect(detachment.unfinishedDeliveries.map(\.tag) == [1, 3])
        #expect(detachment.unfinishedDeliveries.map(\.packetIdentifier) == [1, 3])
        #expect(detachment.unfinishedDeliveries.map(\.released) == [true, false])
    }

    @Test("new packet identifiers skip those of resumed deliveries [MQTT-2.2.1-4]")
    func newIdentifiersSkipResumed() {
        let resumption = Machine.SessionResumption(inflightDeliveries: [
            Machine.InflightDelivery(tag: 1, packetIdentifier: 1, publish: H.publish(qos: .atLeastOnce)),
            Machine.InflightDelivery(tag: 2, packetIdentifier: 2, publish: H.publish(qos: .exactlyOnce), released: true),
        ])
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1, cleanStart: false), sessionPresent: true, resumption: resumption)
        #expect(H.publishes(machine.deliveryRequested(Self.delivery(3, qos: .atLeastOnce))).map(\.packetIdentifier) == [3])
    }

    @Test("resent deliveries are acknowledged only from this connection's resends")
    func ackBeforeResendIgnored() {
        let resumption = Machine.SessionResumption(inflightDeliveries: [
            Machine.InflightDelivery(tag: 1, packetIdentifier: 1, publish: H.publish(qos: .atLeastOnce)),
            Machine.InflightDelivery(tag: 2, packetIdentifier: 2, publish: H.publish(qos: .atLeastOnce)),
        ])
        var (machine, _) = H.connected(.init(), H.connect(.v5, cleanStart: false, properties: [.receiveMaximum(1)]), sessionPresent: true, resumption: resumption)
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 2)), nowMillis: H.t0) == [])
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1)), nowMillis: H.t0).count == 2)
    }

    // MARK: - Maximum Packet Size

    @Test("a delivery larger than the client's Maximum Packet Size is dropped, not sent [MQTT-3.1.2-24] [MQTT-3.1.2-25]")
    func tooLargeDropped() {
        var (machine, _) = H.connected(.init(), H.connect(.v5, properties: [.maximumPacketSize(40), .receiveMaximum(1)]))
        let big = String(repeating: "x", count: 64)
        let actions = machine.deliveryRequested(Self.delivery(1, qos: .atLeastOnce, payload: big))
        #expect(actions == [.dropDelivery(1, .packetTooLarge(sizeBytes: 1 + 1 + 5 + 2 + 1 + 64, limitBytes: 40))])
        #expect(machine.inflightDeliveryCount == 0, "a dropped delivery takes no slot")
        #expect(H.publishes(machine.deliveryRequested(Self.delivery(2, qos: .atLeastOnce))).first?.packetIdentifier == 1)
        #expect(machine.deliveryRequested(Self.delivery(3, qos: .atMostOnce, payload: big)).count == 1)
    }

    // MARK: - Topic aliases

    @Test("outbound topic aliases: set once, then an empty topic; never above the client's maximum [MQTT-3.3.2-11]")
    func outboundAliases() {
        var (machine, _) = H.connected(.init(), H.connect(.v5, properties: [.topicAliasMaximum(2)]))
        let sent = ["a", "a", "b", "c", "a", "b"].enumerated().flatMap { index, topic in
            H.publishes(machine.deliveryRequested(Self.delivery(UInt64(index), topic, qos: .atMostOnce)))
        }
        #expect(sent.map(\.topicName) == ["a", "", "b", "c", "", ""])
        #expect(sent.map(\.properties.topicAlias) == [1, 1, 2, nil, 1, 2])
    }

    @Test("no outbound topic aliases without a client Topic Alias Maximum [MQTT-3.1.2-27] or when turned off")
    func noOutboundAliases() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        #expect(H.publishes(machine.deliveryRequested(Self.delivery(1, qos: .atMostOnce))).map(\.properties.topicAlias) == [nil])
        (machine, _) = H.connected(.init(outboundTopicAliasesEnabled: false), H.connect(.v5, properties: [.topicAliasMaximum(4)]))
        #expect(H.publishes(machine.deliveryRequested(Self.delivery(1, qos: .atMostOnce))).map(\.properties.topicAlias) == [nil])
    }

    @Test("an alias is only taken for a PUBLISH that was actually sent")
    func aliasNotTakenByDroppedDelivery() {
        var (machine, _) = H.connected(.init(), H.connect(.v5, properties: [.topicAliasMaximum(2), .maximumPacketSize(40)]))
        _ = machine.deliveryRequested(Self.delivery(1, "big", qos: .atMostOnce, payload: String(repeating: "x", count: 64)))
        let sent = H.publishes(machine.deliveryRequested(Self.delivery(2, "big", qos: .atMostOnce)))
        #expect(sent.map(\.topicName) == ["big"], "the client never saw the topic, so no empty-topic alias")
        #expect(sent.map(\.properties.topicAlias) == [1])
    }
}

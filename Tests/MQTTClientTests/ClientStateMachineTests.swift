import MQTTCore
import NIOCore
import Testing

@testable import MQTTClient

/// Drives `ClientStateMachine` with events and checks the actions, without any I/O or clock.
@Suite("Client state machine")
struct ClientStateMachineTests {
    typealias Action = ClientStateMachine.Action

    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func configuration(
        _ version: MQTTProtocolVersion = .v3_1_1,
        cleanStart: Bool = true,
        keepAliveSeconds: UInt16 = 60
    ) -> MQTTClient.Configuration {
        MQTTClient.Configuration(
            host: "127.0.0.1", port: 1883, clientIdentifier: "client-1", protocolVersion: version,
            cleanStart: cleanStart, keepAliveSeconds: keepAliveSeconds
        )
    }

    /// A machine that has gone through connect → TCP → CONNECT → CONNACK, with request 1 as the connect.
    static func connectedMachine(
        _ configuration: MQTTClient.Configuration = configuration(),
        connAck: ConnAckPacket = ConnAckPacket()
    ) -> ClientStateMachine {
        var machine = ClientStateMachine(configuration: configuration)
        _ = machine.connectRequested(1)
        _ = machine.connectionEstablished(now: t0)
        let actions = machine.packetReceived(.connAck(connAck))
        precondition(actions.contains(.succeedConnect(1, connAck)))
        return machine
    }

    static func sent(_ actions: [Action]) -> [MQTTPacket] {
        actions.compactMap { if case .send(let packet) = $0 { packet } else { nil } }
    }

    static func publish(_ topic: String, _ text: String, qos: MQTTQoS, id: UInt16? = nil, dup: Bool = false, properties: MQTTProperties = []) -> PublishPacket {
        PublishPacket(topicName: topic, payload: ByteBuffer(string: text), qos: qos, dup: dup, packetIdentifier: id, properties: properties)
    }

    // MARK: - Connect

    @Test func connectOpensTCPThenSendsConnectAndStartsTheTimer() {
        var machine = ClientStateMachine(configuration: Self.configuration(keepAliveSeconds: 30))
        #expect(machine.connectRequested(1) == [.openConnection])
        let actions = machine.connectionEstablished(now: Self.t0)
        let expected = ConnectPacket(protocolVersion: .v3_1_1, clientIdentifier: "client-1", cleanStart: true, keepAliveSeconds: 30)
        #expect(actions == [.send(.connect(expected)), .startConnAckTimer])
        #expect(!machine.isConnected)

        let connAck = ConnAckPacket(sessionPresent: false, reasonCode: .success)
        #expect(machine.packetReceived(.connAck(connAck)) == [.succeedConnect(1, connAck), .scheduleKeepAlive(at: Self.t0 + .seconds(30))])
        #expect(machine.isConnected)
    }

    @Test func v5ConnectCarriesPropertiesAndWill() {
        var configuration = Self.configuration(.v5, cleanStart: false)
        configuration.sessionExpiryIntervalSeconds = 300
        configuration.receiveMaximum = 10
        configuration.maxPacketSizeBytes = 4096
        configuration.topicAliasMaximum = 5
        configuration.userProperties = [(name: "region", value: "eu")]
        configuration.username = "user"
        configuration.password = ByteBuffer(string: "secret")
        configuration.will = ConnectPacket.Will(
            topicName: "status/client-1", payload: ByteBuffer(string: "offline"), qos: .atLeastOnce, retain: true,
            properties: [.willDelayInterval(5)]
        )
        let connect = ClientStateMachine(configuration: configuration).connectPacket(cleanStart: false)
        #expect(connect.protocolVersion == .v5)
        #expect(connect.cleanStart == false)
        #expect(connect.username == "user")
        #expect(connect.password == ByteBuffer(string: "secret"))
        #expect(connect.properties == [
            .sessionExpiryInterval(300), .receiveMaximum(10), .maximumPacketSize(4096), .topicAliasMaximum(5),
            .userProperty("region", "eu"),
        ])
        #expect(connect.will?.properties == [.willDelayInterval(5)])
        #expect(connect.will?.retain == true)
    }

    @Test func v3ConnectHasNoPropertiesEvenWhenConfigured() {
        var configuration = Self.configuration(.v3_1_1)
        configuration.sessionExpiryIntervalSeconds = 300
        configuration.will = ConnectPacket.Will(topicName: "w", payload: ByteBuffer(), properties: [.willDelayInterval(5)])
        let connect = ClientStateMachine(configuration: configuration).connectPacket(cleanStart: true)
        #expect(connect.properties.isEmpty)
        #expect(connect.will?.properties.isEmpty == true)
    }

    @Test func refusedConnectionFailsWithTheReasonCodeAndCloses() {
        var machine = ClientStateMachine(configuration: Self.configuration(.v5))
        _ = machine.connectRequested(1)
        _ = machine.connectionEstablished(now: Self.t0)
        let connAck = ConnAckPacket(reasonCode: .notAuthorized, properties: [.reasonString("go away")])
        #expect(machine.packetReceived(.connAck(connAck)) == [
            .fail(1, .connectionRefused(reasonCode: .notAuthorized, reasonString: "go away")), .close,
        ])
        #expect(machine.connectionClosed() == [.reportClosed(nil)])
        // The client can try again.
        #expect(machine.connectRequested(2) == [.openConnection])
    }

    @Test func unencodableConnectFailsAtOnce() {
        var configuration = Self.configuration(.v5)
        configuration.will = ConnectPacket.Will(topicName: "w", payload: ByteBuffer(), properties: [.topicAlias(1)])
        var machine = ClientStateMachine(configuration: configuration)
        #expect(machine.connectRequested(1) == [.fail(1, .encodeFailed(.propertyNotAllowed(.topicAlias, in: .will)))])
        #expect(!machine.isConnected)
    }

    @Test func connectWhileConnectedOrConnectingFails() {
        var machine = ClientStateMachine(configuration: Self.configuration())
        _ = machine.connectRequested(1)
        #expect(machine.connectRequested(2) == [.fail(2, .alreadyConnected)])
        var connected = Self.connectedMachine()
        #expect(connected.connectRequested(3) == [.fail(3, .alreadyConnected)])
    }

    @Test func tcpFailureFailsTheConnect() {
        var machine = ClientStateMachine(configuration: Self.configuration())
        _ = machine.connectRequested(1)
        #expect(machine.connectionFailed(.connectionError("refused")) == [.fail(1, .connectionError("refused"))])
        #expect(machine.connectRequested(2) == [.openConnection])
    }

    @Test func connAckTimeoutFailsTheConnectAndCloses() {
        var machine = ClientStateMachine(configuration: Self.configuration())
        _ = machine.connectRequested(1)
        _ = machine.connectionEstablished(now: Self.t0)
        #expect(machine.connAckTimeoutFired() == [.fail(1, .connectTimeout), .close])
        #expect(machine.connectionClosed() == [.reportClosed(.connectTimeout)])
    }

    @Test func packetBeforeConnAckIsAProtocolViolation() {
        var machine = ClientStateMachine(configuration: Self.configuration(.v5))
        _ = machine.connectRequested(1)
        _ = machine.connectionEstablished(now: Self.t0)
        let actions = machine.packetReceived(.pingResp)
        #expect(actions.first == .send(.disconnect(DisconnectPacket(reasonCode: .protocolError))))
        #expect(actions.last == .close)
        guard case .fail(1, .protocolViolation(let code, _)) = actions[1] else {
            Issue.record("expected the connect to fail, got \(actions)")
            return
        }
        #expect(code == .protocolError)
    }

    @Test func sessionPresentAnsweringCleanStartIsAProtocolViolation() {
        var machine = ClientStateMachine(configuration: Self.configuration(.v3_1_1, cleanStart: true))
        _ = machine.connectRequested(1)
        _ = machine.connectionEstablished(now: Self.t0)
        let actions = machine.packetReceived(.connAck(ConnAckPacket(sessionPresent: true)))
        #expect(actions.count == 2)
        #expect(actions.last == .close)
        if case .fail(1, .protocolViolation) = actions[0] {} else { Issue.record("got \(actions)") }
    }

    @Test func disconnectWhileTCPIsConnectingClosesOnceEstablished() {
        var machine = ClientStateMachine(configuration: Self.configuration())
        _ = machine.connectRequested(1)
        #expect(machine.disconnectRequested(2) == [])
        #expect(machine.connectionEstablished(now: Self.t0) == [.fail(1, .connectionClosed), .close])
        #expect(machine.connectionClosed() == [.succeedClose(2), .reportClosed(nil)])
    }

    @Test func assignedClientIdentifierIsKeptAndReused() {
        var configuration = Self.configuration(.v5)
        configuration.clientIdentifier = ""
        var machine = Self.connectedMachine(configuration, connAck: ConnAckPacket(properties: [.assignedClientIdentifier("auto-42")]))
        #expect(machine.assignedClientIdentifier == "auto-42")
        _ = machine.closeAbruptlyRequested(2)
        _ = machine.connectionClosed()
        _ = machine.connectRequested(3)
        let actions = machine.connectionEstablished(now: Self.t0)
        guard case .connect(let connect) = Self.sent(actions).first else {
            Issue.record("expected CONNECT, got \(actions)")
            return
        }
        #expect(connect.clientIdentifier == "auto-42")
    }

    // MARK: - Outbound publish

    @Test func qos0PublishCompletesWithTheWrite() {
        var machine = Self.connectedMachine()
        let publish = Self.publish("a/b", "x", qos: .atMostOnce)
        #expect(machine.publishRequested(7, publish) == [.sendPublish(publish, completing: 7)])
    }

    @Test func qos1PublishSucceedsOnPubAck() {
        var machine = Self.connectedMachine()
        #expect(machine.publishRequested(7, Self.publish("a/b", "x", qos: .atLeastOnce)) == [.send(.publish(Self.publish("a/b", "x", qos: .atLeastOnce, id: 1)))])
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1))) == [.succeedPublish(7)])
        #expect(machine.session.inflight.isEmpty)
        #expect(!machine.session.packetIdentifiers.isInUse(1))
    }

    @Test func qos2PublishRunsPubRecPubRelPubComp() {
        var machine = Self.connectedMachine()
        #expect(Self.sent(machine.publishRequested(7, Self.publish("a/b", "x", qos: .exactlyOnce))) == [.publish(Self.publish("a/b", "x", qos: .exactlyOnce, id: 1))])
        #expect(machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 1))) == [.send(.pubRel(PubAckPacket(packetIdentifier: 1)))])
        #expect(machine.session.stage(of: 1) == .awaitingPubComp)
        #expect(machine.packetReceived(.pubComp(PubAckPacket(packetIdentifier: 1))) == [.succeedPublish(7)])
        #expect(machine.session.inflight.isEmpty)
    }

    @Test func v5FailureReasonCodesFailThePublish() {
        var machine = Self.connectedMachine(Self.configuration(.v5))
        _ = machine.publishRequested(7, Self.publish("a", "x", qos: .atLeastOnce))
        _ = machine.publishRequested(8, Self.publish("a", "x", qos: .exactlyOnce))
        let pubAck = PubAckPacket(packetIdentifier: 1, reasonCode: .notAuthorized, properties: [.reasonString("acl")])
        #expect(machine.packetReceived(.pubAck(pubAck)) == [.fail(7, .publishRefused(reasonCode: .notAuthorized, reasonString: "acl"))])
        // A refusing PUBREC ends the QoS 2 flow: no PUBREL.
        let pubRec = PubAckPacket(packetIdentifier: 2, reasonCode: .quotaExceeded)
        #expect(machine.packetReceived(.pubRec(pubRec)) == [.fail(8, .publishRefused(reasonCode: .quotaExceeded, reasonString: nil))])
        #expect(machine.session.inflight.isEmpty)
    }

    @Test func noMatchingSubscribersIsNotAFailure() {
        var machine = Self.connectedMachine(Self.configuration(.v5))
        _ = machine.publishRequested(7, Self.publish("a", "x", qos: .atLeastOnce))
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1, reasonCode: .noMatchingSubscribers))) == [.succeedPublish(7)])
    }

    @Test func inflightWindowFollowsReceiveMaximum() {
        var machine = Self.connectedMachine(Self.configuration(.v5), connAck: ConnAckPacket(properties: [.receiveMaximum(2)]))
        #expect(Self.sent(machine.publishRequested(1, Self.publish("a", "1", qos: .atLeastOnce))).count == 1)
        #expect(Self.sent(machine.publishRequested(2, Self.publish("a", "2", qos: .exactlyOnce))).count == 1)
        // [MQTT-3.3.4-7]: the third waits.
        #expect(machine.publishRequested(3, Self.publish("a", "3", qos: .atLeastOnce)) == [])
        #expect(machine.session.queued.count == 1)
        // A PUBREC does not free the slot: QoS 2 counts until PUBCOMP.
        #expect(Self.sent(machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 2)))) == [.pubRel(PubAckPacket(packetIdentifier: 2))])
        #expect(machine.session.queued.count == 1)
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1))) == [
            .succeedPublish(1), .send(.publish(Self.publish("a", "3", qos: .atLeastOnce, id: 3))),
        ])
    }

    @Test func configuredInflightLimitAppliesToo() {
        var configuration = Self.configuration()
        configuration.maxInflightPublishes = 1
        configuration.maxQueuedPublishes = 1
        var machine = Self.connectedMachine(configuration)
        #expect(Self.sent(machine.publishRequested(1, Self.publish("a", "1", qos: .atLeastOnce))).count == 1)
        #expect(machine.publishRequested(2, Self.publish("a", "2", qos: .atLeastOnce)) == [])
        #expect(machine.publishRequested(3, Self.publish("a", "3", qos: .atLeastOnce)) == [.fail(3, .publishQueueFull(limit: 1))])
    }

    @Test func packetIdentifiersSkipThoseInUse() {
        var machine = Self.connectedMachine()
        _ = machine.publishRequested(1, Self.publish("a", "1", qos: .atLeastOnce))  // id 1
        _ = machine.subscribeRequested(2, [Subscription(topicFilter: "x")])  // id 2
        _ = machine.publishRequested(3, Self.publish("a", "3", qos: .atLeastOnce))  // id 3
        _ = machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1)))
        // 1 is free again but the allocator moves on rather than reusing it at once.
        #expect(Self.sent(machine.publishRequested(4, Self.publish("a", "4", qos: .atLeastOnce))) == [.publish(Self.publish("a", "4", qos: .atLeastOnce, id: 4))])
    }

    @Test func allocatorNeverHandsOutAnIdentifierInUseAndWraps() {
        var allocator = PacketIdentifierAllocator()
        var seen = Set<UInt16>()
        for _ in 0..<65_535 {
            let identifier = allocator.allocate()
            #expect(identifier != nil && identifier != 0)
            if let identifier { seen.insert(identifier) }
        }
        #expect(seen.count == 65_535)
        #expect(allocator.allocate() == nil)
        allocator.release(40_000)
        allocator.release(7)
        // After 65535 it wraps to 1 and finds the first free one.
        #expect(allocator.allocate() == 7)
        #expect(allocator.allocate() == 40_000)
        #expect(allocator.allocate() == nil)
    }

    @Test func publishIsCheckedAgainstWhatTheServerAllows() {
        let connAck = ConnAckPacket(properties: [.maximumQoS(1), .retainAvailable(0), .maximumPacketSize(64)])
        var machine = Self.connectedMachine(Self.configuration(.v5), connAck: connAck)
        #expect(machine.publishRequested(1, Self.publish("a", "x", qos: .exactlyOnce)) == [.fail(1, .qosNotSupported(requested: .exactlyOnce, maximum: .atLeastOnce))])
        var retained = Self.publish("a", "x", qos: .atMostOnce)
        retained.retain = true
        #expect(machine.publishRequested(2, retained) == [.fail(2, .retainNotSupported)])
        let big = Self.publish("a", String(repeating: "x", count: 100), qos: .atLeastOnce)
        guard case .fail(3, .encodeFailed(.packetTooLarge(_, let limit))) = machine.publishRequested(3, big).first else {
            Issue.record("expected packetTooLarge")
            return
        }
        #expect(limit == 64)
        #expect(machine.session.inflight.isEmpty)
        #expect(machine.publishRequested(4, Self.publish("a+", "x", qos: .atMostOnce)) == [.fail(4, .invalidTopicName("a+", .wildcardInTopicName))])
    }

    @Test func packetsTheEncoderWouldRefuseFailBeforeSending() {
        var machine = Self.connectedMachine(Self.configuration(.v5))
        let publish = Self.publish("a", "x", qos: .atLeastOnce, properties: [.sessionExpiryInterval(5)])
        #expect(machine.publishRequested(1, publish) == [.fail(1, .encodeFailed(.propertyNotAllowed(.sessionExpiryInterval, in: .publish)))])
        #expect(machine.session.inflight.isEmpty)
        #expect(machine.subscribeRequested(2, [Subscription(topicFilter: "a")], properties: [.topicAlias(1)]) == [
            .fail(2, .encodeFailed(.propertyNotAllowed(.topicAlias, in: .subscribe))),
        ])
        #expect(machine.unsubscribeRequested(3, ["a"], properties: [.subscriptionIdentifier(1)]) == [
            .fail(3, .encodeFailed(.propertyNotAllowed(.subscriptionIdentifier, in: .unsubscribe))),
        ])
        #expect(machine.session.packetIdentifiers.inUse.isEmpty)
    }

    @Test func serverMaximumPacketSizeConfiguresTheEncoder() {
        var machine = ClientStateMachine(configuration: Self.configuration(.v5))
        _ = machine.connectRequested(1)
        _ = machine.connectionEstablished(now: Self.t0)
        let connAck = ConnAckPacket(properties: [.maximumPacketSize(1000)])
        #expect(machine.packetReceived(.connAck(connAck)).first == .setMaximumOutboundPacketSize(1000))
    }

    @Test func unexpectedAcknowledgementsAreProtocolViolations() {
        for packet: MQTTPacket in [
            .pubAck(PubAckPacket(packetIdentifier: 9)), .pubRec(PubAckPacket(packetIdentifier: 9)),
            .pubComp(PubAckPacket(packetIdentifier: 9)), .subAck(SubAckPacket(packetIdentifier: 9, reasonCodes: [.success])),
            .unsubAck(UnsubAckPacket(packetIdentifier: 9)), .connAck(ConnAckPacket()), .subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [Subscription(topicFilter: "a")])),
        ] {
            var machine = Self.connectedMachine()
            let actions = machine.packetReceived(packet)
            #expect(actions.last == .close, "\(packet.type)")
            // 3.1.1 has no DISCONNECT from the client for errors.
            #expect(Self.sent(actions).isEmpty, "\(packet.type)")
            #expect(machine.connectionClosed().count == 1)
        }
        // A PUBACK for a QoS 2 message is as wrong as one for no message.
        var machine = Self.connectedMachine(Self.configuration(.v5))
        _ = machine.publishRequested(1, Self.publish("a", "x", qos: .exactlyOnce))
        let actions = machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1)))
        #expect(Self.sent(actions) == [.disconnect(DisconnectPacket(reasonCode: .protocolError))])
    }

    // MARK: - Inbound publish

    @Test func inboundQoS0And1AreDeliveredQoS1Acknowledged() {
        var machine = Self.connectedMachine()
        let message0 = MQTTMessage(topic: "t", payload: ByteBuffer(string: "a"), qos: .atMostOnce)
        #expect(machine.packetReceived(.publish(Self.publish("t", "a", qos: .atMostOnce))) == [.deliver(message0, acknowledgement: nil)])
        let message1 = MQTTMessage(topic: "t", payload: ByteBuffer(string: "b"), qos: .atLeastOnce)
        #expect(machine.packetReceived(.publish(Self.publish("t", "b", qos: .atLeastOnce, id: 5))) == [
            .deliver(message1, acknowledgement: .pubAck(PubAckPacket(packetIdentifier: 5))),
        ])
    }

    @Test func inboundQoS2IsDeliveredOnceUntilPubRel() {
        var machine = Self.connectedMachine()
        let message = MQTTMessage(topic: "t", payload: ByteBuffer(string: "x"), qos: .exactlyOnce)
        let pubRec = MQTTPacket.pubRec(PubAckPacket(packetIdentifier: 9))
        #expect(machine.packetReceived(.publish(Self.publish("t", "x", qos: .exactlyOnce, id: 9))) == [.deliver(message, acknowledgement: pubRec)])
        // [MQTT-4.3.3-9]: a resend before PUBREL is acknowledged, not delivered.
        #expect(machine.packetReceived(.publish(Self.publish("t", "x", qos: .exactlyOnce, id: 9, dup: true))) == [.send(pubRec)])
        #expect(machine.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 9))) == [.send(.pubComp(PubAckPacket(packetIdentifier: 9)))])
        // After PUBREL the identifier names a new message.
        let next = MQTTMessage(topic: "t", payload: ByteBuffer(string: "y"), qos: .exactlyOnce)
        #expect(machine.packetReceived(.publish(Self.publish("t", "y", qos: .exactlyOnce, id: 9))) == [.deliver(next, acknowledgement: pubRec)])
    }

    @Test func pubRelForAnUnknownIdentifierIsAnsweredWithNotFoundInV5() {
        var v5 = Self.connectedMachine(Self.configuration(.v5))
        #expect(v5.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 3))) == [.send(.pubComp(PubAckPacket(packetIdentifier: 3, reasonCode: .packetIdentifierNotFound)))])
        var v3 = Self.connectedMachine()
        #expect(v3.packetReceived(.pubRel(PubAckPacket(packetIdentifier: 3))) == [.send(.pubComp(PubAckPacket(packetIdentifier: 3)))])
    }

    @Test func inboundQoS2BeyondReceiveMaximumIsAViolation() {
        var configuration = Self.configuration(.v5)
        configuration.receiveMaximum = 1
        var machine = Self.connectedMachine(configuration)
        _ = machine.packetReceived(.publish(Self.publish("t", "x", qos: .exactlyOnce, id: 1)))
        let actions = machine.packetReceived(.publish(Self.publish("t", "x", qos: .exactlyOnce, id: 2)))
        #expect(Self.sent(actions) == [.disconnect(DisconnectPacket(reasonCode: .receiveMaximumExceeded))])
        #expect(actions.last == .close)
    }

    @Test func topicAliasesFromTheServerAreResolved() {
        var machine = Self.connectedMachine(Self.configuration(.v5))
        let first = machine.packetReceived(.publish(Self.publish("sensors/7/temp", "1", qos: .atMostOnce, properties: [.topicAlias(3)])))
        let second = machine.packetReceived(.publish(Self.publish("", "2", qos: .atMostOnce, properties: [.topicAlias(3)])))
        guard case .deliver(let m1, _) = first.first, case .deliver(let m2, _) = second.first else {
            Issue.record("expected deliveries, got \(first) \(second)")
            return
        }
        #expect(m1.topic == "sensors/7/temp")
        #expect(m2.topic == "sensors/7/temp")
        #expect(m2.payloadString == "2")

        let unknown = machine.packetReceived(.publish(Self.publish("", "3", qos: .atMostOnce, properties: [.topicAlias(4)])))
        #expect(Self.sent(unknown) == [.disconnect(DisconnectPacket(reasonCode: .protocolError))])
    }

    @Test func topicAliasAboveOurMaximumIsInvalid() {
        var configuration = Self.configuration(.v5)
        configuration.topicAliasMaximum = 2
        var machine = Self.connectedMachine(configuration)
        let actions = machine.packetReceived(.publish(Self.publish("a", "1", qos: .atMostOnce, properties: [.topicAlias(3)])))
        #expect(Self.sent(actions) == [.disconnect(DisconnectPacket(reasonCode: .topicAliasInvalid))])
    }

    @Test func topicAliasesDoNotOutliveTheConnection() {
        var machine = Self.connectedMachine(Self.configuration(.v5))
        _ = machine.packetReceived(.publish(Self.publish("a", "1", qos: .atMostOnce, properties: [.topicAlias(1)])))
        _ = machine.closeAbruptlyRequested(2)
        _ = machine.connectionClosed()
        _ = machine.connectRequested(3)
        _ = machine.connectionEstablished(now: Self.t0)
        _ = machine.packetReceived(.connAck(ConnAckPacket()))
        // [MQTT-3.3.2-7]
        let actions = machine.packetReceived(.publish(Self.publish("", "2", qos: .atMostOnce, properties: [.topicAlias(1)])))
        #expect(actions.last == .close)
    }

    @Test func refusedDeliveryClosesAndForgetsTheQoS2Identifier() {
        var machine = Self.connectedMachine()
        let actions = machine.packetReceived(.publish(Self.publish("t", "x", qos: .exactlyOnce, id: 4)))
        guard case .deliver(let message, let acknowledgement) = actions.first else {
            Issue.record("expected delivery")
            return
        }
        #expect(machine.deliveryRefused(message, acknowledgement: acknowledgement) == [.close])
        #expect(machine.session.inboundQoS2Identifiers.isEmpty)
        #expect(machine.connectionClosed() == [.reportClosed(.messageBufferFull(limit: 65_536))])
    }

    // MARK: - Subscribe

    @Test func subscribeAndUnsubscribe() {
        var machine = Self.connectedMachine()
        let subscriptions = [Subscription(topicFilter: "a/+", maximumQoS: .atLeastOnce), Subscription(topicFilter: "b/#")]
        #expect(machine.subscribeRequested(1, subscriptions) == [.send(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: subscriptions)))])
        let subAck = SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS1, .unspecifiedError])
        #expect(machine.packetReceived(.subAck(subAck)) == [.succeedSubscribe(1, subAck)])
        #expect(machine.unsubscribeRequested(2, ["a/+"]) == [.send(.unsubscribe(UnsubscribePacket(packetIdentifier: 2, topicFilters: ["a/+"])))])
        #expect(machine.packetReceived(.unsubAck(UnsubAckPacket(packetIdentifier: 2))) == [.succeedUnsubscribe(2, UnsubAckPacket(packetIdentifier: 2))])
        #expect(machine.session.packetIdentifiers.inUse.isEmpty)
    }

    @Test func subscribeValidatesFilters() {
        var machine = Self.connectedMachine()
        #expect(machine.subscribeRequested(1, [Subscription(topicFilter: "sport+")]) == [.fail(1, .invalidTopicFilter("sport+", .wildcardNotWholeLevel))])
        #expect(machine.subscribeRequested(2, []) == [.fail(2, .noTopicFilters)])
        #expect(machine.unsubscribeRequested(3, ["a/#/b"]) == [.fail(3, .invalidTopicFilter("a/#/b", .multiLevelWildcardNotLast))])
    }

    @Test func subAckWithTheWrongNumberOfCodesIsAViolation() {
        var machine = Self.connectedMachine(Self.configuration(.v5))
        _ = machine.subscribeRequested(1, [Subscription(topicFilter: "a"), Subscription(topicFilter: "b")])
        let actions = machine.packetReceived(.subAck(SubAckPacket(packetIdentifier: 1, reasonCodes: [.success])))
        #expect(Self.sent(actions) == [.disconnect(DisconnectPacket(reasonCode: .protocolError))])
        guard case .fail(1, .protocolViolation) = actions.first else {
            Issue.record("expected the subscribe to fail first, got \(actions)")
            return
        }
    }

    @Test func requestsWhileDisconnectedFail() {
        var machine = ClientStateMachine(configuration: Self.configuration())
        #expect(machine.publishRequested(1, Self.publish("a", "x", qos: .atLeastOnce)) == [.fail(1, .notConnected)])
        #expect(machine.subscribeRequested(2, [Subscription(topicFilter: "a")]) == [.fail(2, .notConnected)])
        #expect(machine.unsubscribeRequested(3, ["a"]) == [.fail(3, .notConnected)])
        #expect(machine.disconnectRequested(4) == [.succeedClose(4)])
    }

    // MARK: - Keep alive

    @Test func pingWhenIdleAndCloseWithoutPingResp() {
        var machine = Self.connectedMachine(Self.configuration(keepAliveSeconds: 10))
        machine.packetsSent(now: Self.t0 + .seconds(3))
        // Not idle for long enough yet: check again when it will be.
        #expect(machine.keepAliveTimerFired(now: Self.t0 + .seconds(10)) == [.scheduleKeepAlive(at: Self.t0 + .seconds(13))])
        #expect(machine.keepAliveTimerFired(now: Self.t0 + .seconds(13)) == [.send(.pingReq), .scheduleKeepAlive(at: Self.t0 + .seconds(23))])
        #expect(machine.packetReceived(.pingResp) == [])
        #expect(machine.keepAliveTimerFired(now: Self.t0 + .seconds(23)) == [.send(.pingReq), .scheduleKeepAlive(at: Self.t0 + .seconds(33))])
        // No PINGRESP this time.
        #expect(machine.keepAliveTimerFired(now: Self.t0 + .seconds(33)) == [.close])
        #expect(machine.connectionClosed() == [.reportClosed(.keepAliveTimeout)])
    }

    @Test func pingResponseTimeoutCanBeShorter() {
        var configuration = Self.configuration(keepAliveSeconds: 10)
        configuration.pingResponseTimeout = .seconds(2)
        var machine = Self.connectedMachine(configuration)
        #expect(machine.keepAliveTimerFired(now: Self.t0 + .seconds(10)) == [.send(.pingReq), .scheduleKeepAlive(at: Self.t0 + .seconds(12))])
        // A second PINGREQ is never sent while one is unanswered.
        #expect(machine.keepAliveTimerFired(now: Self.t0 + .seconds(11)) == [.scheduleKeepAlive(at: Self.t0 + .seconds(12))])
        _ = machine.publishRequested(1, Self.publish("a", "x", qos: .atLeastOnce))
        let actions = machine.keepAliveTimerFired(now: Self.t0 + .seconds(12))
        // The QoS 1 publish of a clean session fails with the connection.
        #expect(actions == [.fail(1, .keepAliveTimeout), .close])
    }

    @Test func serverKeepAliveOverridesOurs() {
        var machine = ClientStateMachine(configuration: Self.configuration(.v5, keepAliveSeconds: 60))
        _ = machine.connectRequested(1)
        _ = machine.connectionEstablished(now: Self.t0)
        let connAck = ConnAckPacket(properties: [.serverKeepAlive(5)])
        #expect(machine.packetReceived(.connAck(connAck)) == [.succeedConnect(1, connAck), .scheduleKeepAlive(at: Self.t0 + .seconds(5))])
    }

    @Test func keepAliveZeroSchedulesNothing() {
        var machine = ClientStateMachine(configuration: Self.configuration(keepAliveSeconds: 0))
        _ = machine.connectRequested(1)
        _ = machine.connectionEstablished(now: Self.t0)
        #expect(machine.packetReceived(.connAck(ConnAckPacket())) == [.succeedConnect(1, ConnAckPacket())])
        #expect(machine.keepAliveTimerFired(now: Self.t0 + .hours(1)) == [])
    }

    // MARK: - Closing and reconnecting

    @Test func disconnectSendsDisconnectThenCloses() {
        var machine = Self.connectedMachine(Self.configuration(.v5))
        _ = machine.subscribeRequested(2, [Subscription(topicFilter: "a")])
        #expect(machine.disconnectRequested(3, reasonCode: .disconnectWithWillMessage) == [
            .fail(2, .connectionClosed), .send(.disconnect(DisconnectPacket(reasonCode: .disconnectWithWillMessage))), .close,
        ])
        #expect(machine.connectionClosed() == [.succeedClose(3), .reportClosed(nil)])
    }

    @Test func closeAbruptlySendsNoDisconnect() {
        var machine = Self.connectedMachine()
        #expect(machine.closeAbruptlyRequested(2) == [.close])
        #expect(machine.connectionClosed() == [.succeedClose(2), .reportClosed(nil)])
    }

    @Test func serverDisconnectFailsPendingRequestsWithItsReason() {
        var machine = Self.connectedMachine(Self.configuration(.v5))
        _ = machine.subscribeRequested(2, [Subscription(topicFilter: "a")])
        let disconnect = DisconnectPacket(reasonCode: .sessionTakenOver, properties: [.reasonString("bye")])
        let error = MQTTClientError.serverDisconnected(reasonCode: .sessionTakenOver, reasonString: "bye")
        #expect(machine.packetReceived(.disconnect(disconnect)) == [.fail(2, error), .close])
        #expect(machine.connectionClosed() == [.reportClosed(error)])
    }

    @Test func droppedCleanSessionFailsEveryPendingRequest() {
        var configuration = Self.configuration()
        configuration.maxInflightPublishes = 1
        var machine = Self.connectedMachine(configuration)
        _ = machine.publishRequested(2, Self.publish("a", "1", qos: .atLeastOnce))
        _ = machine.publishRequested(3, Self.publish("a", "2", qos: .atLeastOnce))  // queued
        _ = machine.subscribeRequested(4, [Subscription(topicFilter: "a")])
        #expect(machine.connectionClosed() == [
            .fail(4, .connectionClosed), .fail(2, .connectionClosed), .fail(3, .connectionClosed), .reportClosed(.connectionClosed),
        ])
        #expect(machine.session.packetIdentifiers.inUse.isEmpty)
    }

    @Test func decodeErrorClosesWithTheSpecReasonCode() {
        let decodeError = MQTTDecodeError(.invalidQoS, packetType: .publish, byteOffset: 0)
        var v5 = Self.connectedMachine(Self.configuration(.v5))
        #expect(v5.errorCaught(.decodeFailed(decodeError)) == [.send(.disconnect(DisconnectPacket(reasonCode: .malformedPacket))), .close])
        #expect(v5.connectionClosed() == [.reportClosed(.decodeFailed(decodeError))])
        var v3 = Self.connectedMachine()
        #expect(v3.errorCaught(.decodeFailed(decodeError)) == [.close])
    }

    /// [MQTT-4.4.0-1]: a resumed session resends unacknowledged PUBLISH (DUP) and PUBREL in original order,
    /// and the pending publishes complete on the new connection.
    @Test func resumedSessionResendsInOriginalOrder() {
        var machine = Self.connectedMachine(Self.configuration(.v3_1_1, cleanStart: false), connAck: ConnAckPacket(sessionPresent: false))
        _ = machine.publishRequested(10, Self.publish("a", "1", qos: .atLeastOnce))  // id 1
        _ = machine.publishRequested(11, Self.publish("a", "2", qos: .exactlyOnce))  // id 2
        _ = machine.publishRequested(12, Self.publish("a", "3", qos: .exactlyOnce))  // id 3
        _ = machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 2)))  // 2 awaits PUBCOMP
        _ = machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1)))  // 1 done
        _ = machine.publishRequested(13, Self.publish("a", "4", qos: .atLeastOnce))  // id 4

        // The session outlives the connection: nothing fails.
        #expect(machine.connectionClosed() == [.reportClosed(.connectionClosed)])

        _ = machine.connectRequested(20)
        _ = machine.connectionEstablished(now: Self.t0)
        let connAck = ConnAckPacket(sessionPresent: true)
        let actions = machine.packetReceived(.connAck(connAck))
        #expect(actions.first == .succeedConnect(20, connAck))
        #expect(Self.sent(actions) == [
            .pubRel(PubAckPacket(packetIdentifier: 2)),
            .publish(Self.publish("a", "3", qos: .exactlyOnce, id: 3, dup: true)),
            .publish(Self.publish("a", "4", qos: .atLeastOnce, id: 4, dup: true)),
        ])
        #expect(machine.packetReceived(.pubComp(PubAckPacket(packetIdentifier: 2))) == [.succeedPublish(11)])
        #expect(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 4))) == [.succeedPublish(13)])
        _ = machine.packetReceived(.pubRec(PubAckPacket(packetIdentifier: 3)))
        #expect(machine.packetReceived(.pubComp(PubAckPacket(packetIdentifier: 3))) == [.succeedPublish(12)])
    }

    @Test func resumedSessionResendsWithinTheNewWindow() {
        var configuration = Self.configuration(.v5, cleanStart: false)
        configuration.sessionExpiryIntervalSeconds = 60
        var machine = Self.connectedMachine(configuration)
        for request in UInt64(1)...3 {
            _ = machine.publishRequested(request, Self.publish("a", "\(request)", qos: .atLeastOnce))
        }
        _ = machine.connectionClosed()
        _ = machine.connectRequested(9)
        _ = machine.connectionEstablished(now: Self.t0)
        let actions = machine.packetReceived(.connAck(ConnAckPacket(sessionPresent: true, properties: [.receiveMaximum(2)])))
        #expect(Self.sent(actions).count == 2)
        #expect(Self.sent(machine.packetReceived(.pubAck(PubAckPacket(packetIdentifier: 1)))) == [.publish(Self.publish("a", "3", qos: .atLeastOnce, id: 3, dup: true))])
    }

    @Test func sessionNotResumedFailsInflightButSendsQueued() {
        var configuration = Self.configuration(.v3_1_1, cleanStart: false)
        configuration.maxInflightPublishes = 1
        var machine = Self.connectedMachine(configuration)
        _ = machine.publishRequested(1, Self.publish("a", "1", qos: .atLeastOnce))
        _ = machine.publishRequested(2, Self.publish("a", "2", qos: .atLeastOnce))  // queued, never sent
        _ = machine.packetReceived(.publish(Self.publish("t", "x", qos: .exactlyOnce, id: 7)))
        _ = machine.connectionClosed()
        #expect(machine.session.inboundQoS2Identifiers == [7])

        _ = machine.connectRequested(3)
        _ = machine.connectionEstablished(now: Self.t0)
        let actions = machine.packetReceived(.connAck(ConnAckPacket(sessionPresent: false)))
        #expect(actions.contains(.fail(1, .sessionNotResumed)))
        #expect(Self.sent(actions) == [.publish(Self.publish("a", "2", qos: .atLeastOnce, id: 2))])
        #expect(machine.session.inboundQoS2Identifiers.isEmpty)
    }

    @Test func shutdownFailsEverythingAndRefusesMore() {
        var machine = Self.connectedMachine(Self.configuration(.v3_1_1, cleanStart: false))
        _ = machine.publishRequested(2, Self.publish("a", "1", qos: .atLeastOnce))
        _ = machine.subscribeRequested(3, [Subscription(topicFilter: "a")])
        #expect(machine.shutdownRequested() == [.fail(3, .shutdown), .reportClosed(.shutdown), .fail(2, .shutdown), .close])
        #expect(machine.connectionClosed() == [])
        #expect(machine.connectRequested(4) == [.fail(4, .shutdown)])
        #expect(machine.publishRequested(5, Self.publish("a", "1", qos: .atMostOnce)) == [.fail(5, .shutdown)])
    }

    @Test func shutdownDuringTCPConnectClosesTheLateConnection() {
        var machine = ClientStateMachine(configuration: Self.configuration())
        _ = machine.connectRequested(1)
        #expect(machine.shutdownRequested() == [.fail(1, .shutdown)])
        #expect(machine.connectionEstablished(now: Self.t0) == [.close])
    }
}

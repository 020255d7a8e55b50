import MQTTCore
import NIOCore
import Testing

/// Whole connections, CONNECT to DISCONNECT, with every packet the server sends encoded and decoded again
/// as the client would read it.
@Suite("Server connection: happy paths")
struct ServerConnectionHappyPathTests {
    typealias H = ServerHarness
    typealias Machine = ServerConnectionStateMachine
    typealias Action = Machine.Action

    /// Runs the machine like a channel handler would, recording everything, and checks each written
    /// packet survives the wire for the connection's version.
    struct Driver {
        var machine: Machine
        var now: Int64 = H.t0
        var written: [MQTTPacket] = []
        var version: MQTTProtocolVersion = .v3_1_1

        init(_ configuration: Machine.Configuration = .init()) {
            machine = Machine(configuration: configuration, connectionIdentifier: "happy")
        }

        mutating func run(_ actions: [Action], sourceLocation: SourceLocation = #_sourceLocation) -> [Action] {
            for action in actions {
                switch action {
                case .configureEncoder(let protocolVersion, _):
                    version = protocolVersion
                case .send(let packet):
                    written.append(packet)
                    do {
                        let bytes = try Codec.encode(packet, version)
                        var decoder = MQTTPacketDecoder(protocolVersion: version)
                        var buffer = bytes
                        let decoded = try decoder.decode(&buffer)
                        #expect(decoded != nil && buffer.readableBytes == 0, "\(packet) did not round-trip", sourceLocation: sourceLocation)
                    } catch {
                        Issue.record("\(packet) cannot be written as \(version): \(error)", sourceLocation: sourceLocation)
                    }
                case .close, .scheduleTimer, .authenticate, .attachSession, .storePublish, .releaseInboundPacketIdentifier,
                     .subscribe, .unsubscribe, .acknowledgeDelivery, .recordDeliverySent, .recordDeliveryReleased, .retryDeliveryLater,
                     .dropDelivery, .detachSession:
                    break
                }
            }
            return actions
        }

        mutating func receive(_ packet: MQTTPacket, sourceLocation: SourceLocation = #_sourceLocation) -> [Action] {
            now += 10
            return run(machine.packetReceived(packet, nowMillis: now), sourceLocation: sourceLocation)
        }
    }

    static func message(_ topic: String, _ text: String, qos: MQTTQoS, id: UInt16? = nil, properties: MQTTProperties = []) -> PublishPacket {
        H.publish(topic, qos: qos, id: id, payload: text, properties: properties)
    }

    @Test("3.1.1: connect, subscribe, publish QoS 0/1/2 in and out, disconnect")
    func v311() {
        var driver = Driver()
        _ = driver.run(driver.machine.connectionOpened(nowMillis: driver.now))
        let connect = H.connect(.v3_1_1, clientIdentifier: "sensor-1", cleanStart: false, keepAliveSeconds: 30, will: H.will(qos: .atLeastOnce))
        #expect(driver.receive(.connect(connect)).last == .authenticate(connect))
        #expect(driver.run(driver.machine.authenticationCompleted(.allowed)).count == 1)
        _ = driver.run(driver.machine.sessionAttached(sessionPresent: false, nowMillis: driver.now))
        #expect(driver.written == [.connAck(ConnAckPacket(sessionPresent: false))])

        // Subscribe.
        let subscribe = SubscribePacket(packetIdentifier: 1, subscriptions: [Subscription(topicFilter: "sensors/#", maximumQoS: .exactlyOnce)])
        #expect(driver.receive(.subscribe(subscribe)) == [.subscribe(subscribe)])
        _ = driver.run(driver.machine.subscribeCompleted(packetIdentifier: 1, reasonCodes: [.grantedQoS2]))
        #expect(driver.written.last == .subAck(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS2])))

        // Publish in: QoS 0, 1, 2.
        #expect(H.stored(driver.receive(.publish(Self.message("sensors/1", "a", qos: .atMostOnce)))).count == 1)
        #expect(H.stored(driver.receive(.publish(Self.message("sensors/1", "b", qos: .atLeastOnce, id: 1)))).count == 1)
        #expect(H.stored(driver.receive(.publish(Self.message("sensors/1", "c", qos: .exactlyOnce, id: 2)))).count == 1)
        _ = driver.run(driver.machine.publishStored(packetIdentifier: 1))
        _ = driver.run(driver.machine.publishStored(packetIdentifier: 2))
        #expect(driver.receive(.pubRel(PubAckPacket(packetIdentifier: 2))).first == .releaseInboundPacketIdentifier(2))
        #expect(Array(driver.written.suffix(3)) == [
            .pubAck(PubAckPacket(packetIdentifier: 1)), .pubRec(PubAckPacket(packetIdentifier: 2)), .pubComp(PubAckPacket(packetIdentifier: 2)),
        ])

        // Deliveries out: QoS 0, 1, 2.
        #expect(driver.run(driver.machine.deliveryRequested(Machine.Delivery(tag: 1, publish: Self.message("sensors/1", "a", qos: .atMostOnce)))).last == .acknowledgeDelivery(1))
        _ = driver.run(driver.machine.deliveryRequested(Machine.Delivery(tag: 2, publish: Self.message("sensors/1", "b", qos: .atLeastOnce))))
        _ = driver.run(driver.machine.deliveryRequested(Machine.Delivery(tag: 3, publish: Self.message("sensors/1", "c", qos: .exactlyOnce))))
        #expect(H.publishes(driver.written.map { .send($0) }).map(\.packetIdentifier) == [nil, 1, 2])
        #expect(driver.receive(.pubAck(PubAckPacket(packetIdentifier: 1))) == [.acknowledgeDelivery(2)])
        #expect(driver.receive(.pubRec(PubAckPacket(packetIdentifier: 2))) == [.recordDeliveryReleased(3, packetIdentifier: 2), .send(.pubRel(PubAckPacket(packetIdentifier: 2)))])
        #expect(driver.receive(.pubComp(PubAckPacket(packetIdentifier: 2))) == [.acknowledgeDelivery(3)])

        // Keep alive, then a clean disconnect.
        #expect(driver.receive(.pingReq) == [.send(.pingResp)])
        let closing = driver.receive(.disconnect(DisconnectPacket()))
        #expect(H.detachment(closing) == Machine.SessionDetachment(
            clientIdentifier: "sensor-1", sessionExpiryIntervalSeconds: UInt32.max, willToPublish: nil, sessionTakenOver: false,
            reason: Machine.CloseReason(kind: .clientDisconnected, reasonCode: .normalDisconnection, detail: "client sent DISCONNECT")
        ))
        #expect(driver.machine.state == .closing)
        #expect(driver.machine.connectionClosed() == [])
        #expect(driver.machine.state == .closed)
    }

    @Test("5.0: connect, subscribe, publish QoS 0/1/2 in and out with aliases and properties, disconnect")
    func v5() {
        var driver = Driver(.init(receiveMaximum: 10, topicAliasMaximum: 4))
        _ = driver.run(driver.machine.connectionOpened(nowMillis: driver.now))
        let connect = H.connect(.v5, clientIdentifier: "", cleanStart: true, keepAliveSeconds: 20, will: H.will(), properties: [
            .sessionExpiryInterval(120), .receiveMaximum(5), .topicAliasMaximum(3), .maximumPacketSize(4_096),
        ])
        #expect(driver.receive(.connect(connect)).first == .configureEncoder(protocolVersion: .v5, maximumPacketSizeBytes: 4_096))
        let attach = driver.run(driver.machine.authenticationCompleted(.allowed))
        #expect(attach == [.attachSession(Machine.SessionAttachment(
            clientIdentifier: "auto-happy", protocolVersion: .v5, cleanStart: true, sessionExpiryIntervalSeconds: 120, will: H.will()
        ))])
        let attached = driver.run(driver.machine.sessionAttached(sessionPresent: false, nowMillis: driver.now))
        #expect(driver.written == [.connAck(ConnAckPacket(sessionPresent: false, reasonCode: .success, properties: [
            .assignedClientIdentifier("auto-happy"), .receiveMaximum(10), .maximumPacketSize(1_048_576), .topicAliasMaximum(4),
        ]))])
        #expect(attached.last == .scheduleTimer(atMillis: driver.now + 30_000))

        // Subscribe with a Subscription Identifier.
        let subscribe = SubscribePacket(packetIdentifier: 1, subscriptions: [
            Subscription(topicFilter: "home/+/temp", maximumQoS: .exactlyOnce, noLocal: true, retainAsPublished: true),
            Subscription(topicFilter: "$share/g/jobs", maximumQoS: .atLeastOnce),
        ], properties: [.subscriptionIdentifier(7)])
        #expect(driver.receive(.subscribe(subscribe)) == [.subscribe(subscribe)])
        _ = driver.run(driver.machine.subscribeCompleted(packetIdentifier: 1, reasonCodes: [.grantedQoS2, .grantedQoS1]))
        #expect(driver.written.last == .subAck(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS2, .grantedQoS1])))

        // Publish in with a topic alias, QoS 0, 1, 2.
        let withAlias = Self.message("home/kitchen/temp", "21", qos: .atMostOnce, properties: [.topicAlias(1), .contentType("text/plain")])
        #expect(H.stored(driver.receive(.publish(withAlias))) == [Self.message("home/kitchen/temp", "21", qos: .atMostOnce, properties: [.contentType("text/plain")])])
        let viaAlias = Self.message("", "22", qos: .atLeastOnce, id: 1, properties: [.topicAlias(1)])
        #expect(H.stored(driver.receive(.publish(viaAlias))).map(\.topicName) == ["home/kitchen/temp"])
        _ = driver.receive(.publish(Self.message("home/hall/temp", "19", qos: .exactlyOnce, id: 2, properties: [.responseTopic("r"), .correlationData(ByteBuffer(string: "c"))])))
        _ = driver.run(driver.machine.publishStored(packetIdentifier: 2))
        _ = driver.run(driver.machine.publishStored(packetIdentifier: 1))
        _ = driver.receive(.pubRel(PubAckPacket(packetIdentifier: 2)))
        #expect(Array(driver.written.suffix(3)) == [
            .pubAck(PubAckPacket(packetIdentifier: 1)), .pubRec(PubAckPacket(packetIdentifier: 2)), .pubComp(PubAckPacket(packetIdentifier: 2)),
        ])

        // Deliveries out: QoS 0, 1, 2, topic aliases, subscription identifiers passed through.
        let topic = "home/kitchen/temp"
        _ = driver.run(driver.machine.deliveryRequested(Machine.Delivery(tag: 1, publish: Self.message(topic, "21", qos: .atMostOnce, properties: [.subscriptionIdentifier(7)]))))
        _ = driver.run(driver.machine.deliveryRequested(Machine.Delivery(tag: 2, publish: Self.message(topic, "22", qos: .atLeastOnce, properties: [.subscriptionIdentifier(7)]))))
        _ = driver.run(driver.machine.deliveryRequested(Machine.Delivery(tag: 3, publish: Self.message("home/hall/temp", "19", qos: .exactlyOnce))))
        let out = Array(H.publishes(driver.written.map { .send($0) }).suffix(3))
        #expect(out.map(\.topicName) == [topic, "", "home/hall/temp"])
        #expect(out.map(\.properties.topicAlias) == [1, 1, 2])
        #expect(out.map(\.properties.subscriptionIdentifiers) == [[7], [7], []])
        #expect(out.map(\.packetIdentifier) == [nil, 1, 2])
        #expect(driver.receive(.pubAck(PubAckPacket(packetIdentifier: 1))) == [.acknowledgeDelivery(2)])
        _ = driver.receive(.pubRec(PubAckPacket(packetIdentifier: 2)))
        #expect(driver.receive(.pubComp(PubAckPacket(packetIdentifier: 2))) == [.acknowledgeDelivery(3)])

        // Unsubscribe, then DISCONNECT with a new Session Expiry Interval and Normal disconnection.
        let unsubscribe = UnsubscribePacket(packetIdentifier: 3, topicFilters: ["home/+/temp"])
        #expect(driver.receive(.unsubscribe(unsubscribe)) == [.unsubscribe(unsubscribe)])
        _ = driver.run(driver.machine.unsubscribeCompleted(packetIdentifier: 3, reasonCodes: [.success]))
        #expect(driver.written.last == .unsubAck(UnsubAckPacket(packetIdentifier: 3, reasonCodes: [.success])))
        let closing = driver.receive(.disconnect(DisconnectPacket(reasonCode: .normalDisconnection, properties: [.sessionExpiryInterval(30)])))
        #expect(H.detachment(closing)?.sessionExpiryIntervalSeconds == 30)
        #expect(H.detachment(closing)?.willToPublish == nil)
        #expect(H.sent(closing).isEmpty)
        #expect(driver.machine.connectionClosed() == [])
        #expect(driver.machine.state == .closed)
    }
}

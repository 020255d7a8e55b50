import MQTTCore
import NIOCore
import Testing

/// Keep alive, closing and wills, packets a client may not send, SUBSCRIBE and UNSUBSCRIBE.
@Suite("Server connection: lifecycle, subscriptions, closing")
struct ServerConnectionLifecycleTests {
    typealias H = ServerHarness
    typealias Machine = ServerConnectionStateMachine

    static let versions: [MQTTProtocolVersion] = [.v3_1_1, .v5]

    // MARK: - Keep alive

    @Test("keep alive: closed exactly at 1.5 × keep alive after the last packet, not a millisecond before [MQTT-3.1.2-22]", arguments: versions)
    func keepAliveEdges(version: MQTTProtocolVersion) {
        var (machine, actions) = H.connected(.init(), H.connect(version, keepAliveSeconds: 10, will: H.will()))
        #expect(actions.last == .scheduleTimer(atMillis: H.t0 + 15_000))
        #expect(machine.packetReceived(.pingReq, nowMillis: H.t0 + 5_000) == [.send(.pingResp)])  // [MQTT-3.12.4-1]
        #expect(machine.timerFired(nowMillis: H.t0 + 15_000) == [.scheduleTimer(atMillis: H.t0 + 20_000)])
        #expect(machine.timerFired(nowMillis: H.t0 + 19_999) == [.scheduleTimer(atMillis: H.t0 + 20_000)])
        #expect(machine.state == .connected)
        actions = machine.timerFired(nowMillis: H.t0 + 20_000)
        H.expectViolation(actions, .keepAliveTimeout, kind: .keepAliveTimeout, version: version, rule: "MQTT-3.1.2-22")
        #expect(H.detachment(actions)?.willToPublish == H.will(), "closed as if the network failed: the will is published")
    }

    @Test("keep alive grace rounds up and follows the configured multiplier")
    func keepAliveGrace() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1, keepAliveSeconds: 1))
        #expect(machine.timerFired(nowMillis: H.t0 + 1_499) == [.scheduleTimer(atMillis: H.t0 + 1_500)])
        (machine, _) = H.connected(.init(keepAliveMultiplier: 2), H.connect(.v3_1_1, keepAliveSeconds: 7))
        #expect(machine.timerFired(nowMillis: H.t0) == [.scheduleTimer(atMillis: H.t0 + 14_000)])
        #expect(H.closeReason(machine.timerFired(nowMillis: H.t0 + 14_000))?.kind == .keepAliveTimeout)
    }

    @Test("any packet, not only PINGREQ, keeps the connection alive")
    func anyPacketKeepsAlive() {
        var (machine, _) = H.connected(.init(), H.connect(.v5, keepAliveSeconds: 2))
        _ = machine.packetReceived(.publish(H.publish()), nowMillis: H.t0 + 2_900)
        #expect(machine.timerFired(nowMillis: H.t0 + 3_000) == [.scheduleTimer(atMillis: H.t0 + 5_900)])
    }

    // MARK: - Packets a client may not send

    @Test("a second CONNECT is a protocol error [MQTT-3.1.0-2]", arguments: versions)
    func secondConnect(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version))
        H.expectViolation(machine.packetReceived(.connect(H.connect(version)), nowMillis: H.t0), .protocolError, version: version, rule: "MQTT-3.1.0-2")
        #expect(machine.state == .closing)
    }

    @Test("server-to-client packets from a client are protocol errors", arguments: [
        MQTTPacket.connAck(ConnAckPacket()), .subAck(SubAckPacket(packetIdentifier: 1, reasonCodes: [.success])),
        .unsubAck(UnsubAckPacket(packetIdentifier: 1)), .pingResp,
    ])
    func serverOnlyPackets(packet: MQTTPacket) {
        for version in Self.versions {
            var (machine, _) = H.connected(.init(), H.connect(version))
            H.expectViolation(machine.packetReceived(packet, nowMillis: H.t0), .protocolError, version: version)
        }
    }

    @Test("AUTH from a client that sent no Authentication Method is a protocol error [MQTT-4.12.0-7]")
    func authWithoutMethod() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        H.expectViolation(machine.packetReceived(.auth(AuthPacket(reasonCode: .reAuthenticate)), nowMillis: H.t0), .protocolError, version: .v5, rule: "MQTT-4.12.0-7")
    }

    @Test("a decode error after CONNACK: v5 DISCONNECT with its reason code, 3.1.1 closes; the will is published", arguments: versions)
    func decodeErrorConnected(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version, will: H.will()))
        let actions = machine.decodeFailed(MQTTDecodeError(.invalidUTF8, packetType: .publish, byteOffset: 4))
        H.expectViolation(actions, .malformedPacket, version: version)
        #expect(H.detachment(actions)?.willToPublish == H.will())
    }

    @Test("server DISCONNECTs carry a Reason String with the detail")
    func disconnectReasonString() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        let actions = machine.packetReceived(.pingResp, nowMillis: H.t0)
        #expect(H.disconnect(actions)?.properties.reasonString?.contains("PINGRESP") == true)
        var (quiet, _) = H.connected(.init(reasonStringsEnabled: false), H.connect(.v5))
        #expect(H.disconnect(quiet.packetReceived(.pingResp, nowMillis: H.t0)) == DisconnectPacket(reasonCode: .protocolError))
    }

    // MARK: - DISCONNECT and wills

    @Test("3.1.1 DISCONNECT discards the will [MQTT-3.14.4-3]")
    func v311DisconnectDiscardsWill() {
        var (machine, _) = H.connected(.init(), H.connect(.v3_1_1, will: H.will()))
        let actions = machine.packetReceived(.disconnect(DisconnectPacket()), nowMillis: H.t0)
        #expect(H.sent(actions).isEmpty, "no DISCONNECT answers a DISCONNECT")
        #expect(H.detachment(actions)?.willToPublish == nil)
        #expect(H.detachment(actions)?.sessionExpiryIntervalSeconds == 0)
        #expect(H.closeReason(actions)?.kind == .clientDisconnected)
        #expect(actions.count == 2)
    }

    @Test("v5 DISCONNECT: 0x00 discards the will, 0x04 and error codes publish it [MQTT-3.14.4-3] [MQTT-3.1.2-8]", arguments: [
        (MQTTReasonCode.normalDisconnection, false), (.disconnectWithWillMessage, true), (.unspecifiedError, true), (.messageRateTooHigh, true),
    ])
    func v5DisconnectWill(code: MQTTReasonCode, publishes: Bool) {
        var (machine, _) = H.connected(.init(), H.connect(.v5, will: H.will()))
        let actions = machine.packetReceived(.disconnect(DisconnectPacket(reasonCode: code)), nowMillis: H.t0)
        #expect(H.sent(actions).isEmpty)
        #expect(H.detachment(actions)?.willToPublish == (publishes ? H.will() : nil))
        #expect(H.closeReason(actions)?.reasonCode == code)
    }

    @Test("v5 DISCONNECT may change a non-zero Session Expiry Interval, within the server's maximum")
    func disconnectChangesSessionExpiry() {
        var (machine, _) = H.connected(.init(maximumSessionExpiryIntervalSeconds: 600), H.connect(.v5, properties: [.sessionExpiryInterval(60)]))
        var actions = machine.packetReceived(.disconnect(DisconnectPacket(properties: [.sessionExpiryInterval(86_400)])), nowMillis: H.t0)
        #expect(H.detachment(actions)?.sessionExpiryIntervalSeconds == 600)

        (machine, _) = H.connected(.init(), H.connect(.v5, properties: [.sessionExpiryInterval(60)]))
        actions = machine.packetReceived(.disconnect(DisconnectPacket(properties: [.sessionExpiryInterval(0)])), nowMillis: H.t0)
        #expect(H.detachment(actions)?.sessionExpiryIntervalSeconds == 0)
    }

    @Test("DISCONNECT setting a Session Expiry Interval after CONNECT set 0 is a protocol error (§3.14.2.2.2)")
    func disconnectSessionExpiryAfterZero() {
        var (machine, _) = H.connected(.init(), H.connect(.v5, will: H.will()))
        let actions = machine.packetReceived(.disconnect(DisconnectPacket(properties: [.sessionExpiryInterval(30)])), nowMillis: H.t0)
        H.expectViolation(actions, .protocolError, version: .v5)
        #expect(H.detachment(actions)?.sessionExpiryIntervalSeconds == 0)
        #expect(H.detachment(actions)?.willToPublish == H.will(), "not a valid DISCONNECT: the will is published")
        // The server's DISCONNECT never carries a Session Expiry Interval [MQTT-3.14.2-2].
        #expect(H.disconnect(actions)?.properties.sessionExpiryInterval == nil)
    }

    @Test("the network closing without DISCONNECT publishes the will; the machine is final afterwards", arguments: versions)
    func connectionLost(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version, cleanStart: false, will: H.will(qos: .atLeastOnce)))
        _ = machine.packetReceived(.publish(H.publish(qos: .atLeastOnce, id: 1)), nowMillis: H.t0)
        let actions = machine.connectionClosed()
        #expect(actions.count == 1, "no close: the channel is closed already")
        #expect(H.detachment(actions)?.willToPublish == H.will(qos: .atLeastOnce))
        #expect(H.detachment(actions)?.reason.kind == .connectionLost)
        #expect(machine.state == .closed)
        #expect(machine.publishStored(packetIdentifier: 1) == [])
        #expect(machine.packetReceived(.pingReq, nowMillis: H.t0) == [])
        #expect(machine.timerFired(nowMillis: H.t0 + 1_000_000) == [])
        #expect(machine.connectionClosed() == [])
        #expect(machine.sessionTakenOver() == [])
        #expect(machine.state == .closed)
    }

    @Test("session taken over: v5 DISCONNECT 0x8E, the will published, the session left to its new owner [MQTT-3.1.4-3]", arguments: versions)
    func takenOver(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version, cleanStart: false, will: H.will()))
        let actions = machine.sessionTakenOver()
        H.expectViolation(actions, .sessionTakenOver, kind: .sessionTakenOver, version: version, rule: "MQTT-3.1.4-3")
        #expect(H.detachment(actions)?.sessionTakenOver == true)
        #expect(H.detachment(actions)?.willToPublish == H.will())
        #expect(machine.state == .closing)
        #expect(machine.connectionClosed() == [], "detached once only")
        #expect(machine.state == .closed)
    }

    @Test("server shutting down: v5 DISCONNECT 0x8B")
    func shuttingDown() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        H.expectViolation(machine.serverShuttingDown(), .serverShuttingDown, kind: .serverShuttingDown, version: .v5)
        var waiting = Machine(connectionIdentifier: "c")
        _ = waiting.connectionOpened(nowMillis: H.t0)
        let actions = waiting.serverShuttingDown()
        #expect(H.sent(actions).isEmpty)
        #expect(H.closeReason(actions)?.kind == .serverShuttingDown)
    }

    // MARK: - SUBSCRIBE

    static func subscribe(_ id: UInt16, _ subscriptions: [Subscription], properties: MQTTProperties = []) -> MQTTPacket {
        .subscribe(SubscribePacket(packetIdentifier: id, subscriptions: subscriptions, properties: properties))
    }

    @Test("SUBSCRIBE goes to the store; SUBACK has its codes in order, granted QoS capped [MQTT-3.8.4-6] [MQTT-3.9.3-1]")
    func subscribe() {
        var (machine, _) = H.connected(.init(maximumQoS: .atLeastOnce), H.connect(.v5))
        let actions = machine.packetReceived(Self.subscribe(3, [
            Subscription(topicFilter: "a/+", maximumQoS: .exactlyOnce),
            Subscription(topicFilter: "b", maximumQoS: .atMostOnce),
        ], properties: [.subscriptionIdentifier(9)]), nowMillis: H.t0)
        // [MQTT-3.2.2-10]: QoS 2 is accepted and passed on as the most the server grants.
        #expect(actions == [.subscribe(SubscribePacket(packetIdentifier: 3, subscriptions: [
            Subscription(topicFilter: "a/+", maximumQoS: .atLeastOnce),
            Subscription(topicFilter: "b", maximumQoS: .atMostOnce),
        ], properties: [.subscriptionIdentifier(9)]))])
        #expect(machine.subscribeCompleted(packetIdentifier: 3, reasonCodes: [.grantedQoS2, .grantedQoS1]) == [
            .send(.subAck(SubAckPacket(packetIdentifier: 3, reasonCodes: [.grantedQoS1, .grantedQoS0]))),
        ])
        #expect(machine.subscribeCompleted(packetIdentifier: 3, reasonCodes: [.success, .success]) == [], "answered once")
    }

    @Test("unavailable wildcard and shared subscriptions fail per filter (0xA2, 0x9E; 3.1.1 0x80); the rest go to the store")
    func unavailableFeatures() {
        let configuration = Machine.Configuration(wildcardSubscriptionAvailable: false, sharedSubscriptionAvailable: false)
        for version in Self.versions {
            var (machine, _) = H.connected(configuration, H.connect(version))
            let actions = machine.packetReceived(Self.subscribe(4, [
                Subscription(topicFilter: "a/#", maximumQoS: .atLeastOnce),
                Subscription(topicFilter: "plain", maximumQoS: .atLeastOnce),
                Subscription(topicFilter: "$share/g/x", maximumQoS: .atLeastOnce),
            ]), nowMillis: H.t0)
            #expect(actions == [.subscribe(SubscribePacket(packetIdentifier: 4, subscriptions: [Subscription(topicFilter: "plain", maximumQoS: .atLeastOnce)]))])
            let subAck = machine.subscribeCompleted(packetIdentifier: 4, reasonCodes: [.grantedQoS1])
            let expected: [MQTTReasonCode] = version == .v5
                ? [.wildcardSubscriptionsNotSupported, .grantedQoS1, .sharedSubscriptionsNotSupported]
                : [.unspecifiedError, .grantedQoS1, .unspecifiedError]
            #expect(subAck == [.send(.subAck(SubAckPacket(packetIdentifier: 4, reasonCodes: expected)))])
        }
    }

    @Test("a SUBSCRIBE the machine refuses entirely is answered at once, without the store")
    func allRefused() {
        var (machine, _) = H.connected(.init(wildcardSubscriptionAvailable: false), H.connect(.v5))
        #expect(machine.packetReceived(Self.subscribe(5, [Subscription(topicFilter: "#")]), nowMillis: H.t0) == [
            .send(.subAck(SubAckPacket(packetIdentifier: 5, reasonCodes: [.wildcardSubscriptionsNotSupported]))),
        ])
    }

    @Test("store failures pass through to v5 clients and become 0x80 for 3.1.1")
    func storeFailureCodes() {
        for version in Self.versions {
            var (machine, _) = H.connected(.init(), H.connect(version))
            _ = machine.packetReceived(Self.subscribe(6, [Subscription(topicFilter: "a"), Subscription(topicFilter: "b")]), nowMillis: H.t0)
            let actions = machine.subscribeCompleted(packetIdentifier: 6, reasonCodes: [.notAuthorized, .unspecifiedError])
            let expected: [MQTTReasonCode] = version == .v5 ? [.notAuthorized, .unspecifiedError] : [.unspecifiedError, .unspecifiedError]
            #expect(actions == [.send(.subAck(SubAckPacket(packetIdentifier: 6, reasonCodes: expected)))])
        }
    }

    @Test("more topic filters than the limit: every filter fails (v5 0x97, 3.1.1 0x80)")
    func tooManyFilters() {
        for version in Self.versions {
            var (machine, _) = H.connected(.init(maximumTopicFiltersPerPacket: 2), H.connect(version))
            let filters = ["a", "b", "c"].map { Subscription(topicFilter: $0) }
            let code: MQTTReasonCode = version == .v5 ? .quotaExceeded : .unspecifiedError
            #expect(machine.packetReceived(Self.subscribe(7, filters), nowMillis: H.t0) == [
                .send(.subAck(SubAckPacket(packetIdentifier: 7, reasonCodes: [code, code, code]))),
            ])
        }
    }

    @Test("a Subscription Identifier while they are unavailable: DISCONNECT 0xA1")
    func subscriptionIdentifiersUnavailable() {
        var (machine, _) = H.connected(.init(subscriptionIdentifiersAvailable: false), H.connect(.v5))
        let actions = machine.packetReceived(Self.subscribe(8, [Subscription(topicFilter: "a")], properties: [.subscriptionIdentifier(1)]), nowMillis: H.t0)
        H.expectViolation(actions, .subscriptionIdentifiersNotSupported, version: .v5)
    }

    @Test("a SUBSCRIBE reusing the identifier of an unanswered one is a protocol error [MQTT-2.2.1-3]")
    func subscribeIdentifierInUse() {
        var (machine, _) = H.connected(.init(), H.connect(.v5))
        _ = machine.packetReceived(Self.subscribe(9, [Subscription(topicFilter: "a")]), nowMillis: H.t0)
        H.expectViolation(machine.packetReceived(Self.subscribe(9, [Subscription(topicFilter: "b")]), nowMillis: H.t0), .protocolError, version: .v5, rule: "MQTT-2.2.1-3")
    }

    // MARK: - UNSUBSCRIBE

    @Test("UNSUBSCRIBE goes to the store; UNSUBACK carries codes in v5 only [MQTT-3.10.4-4] [MQTT-3.11.3-1]", arguments: versions)
    func unsubscribe(version: MQTTProtocolVersion) {
        var (machine, _) = H.connected(.init(), H.connect(version))
        let packet = UnsubscribePacket(packetIdentifier: 11, topicFilters: ["a", "b/#"])
        #expect(machine.packetReceived(.unsubscribe(packet), nowMillis: H.t0) == [.unsubscribe(packet)])
        let actions = machine.unsubscribeCompleted(packetIdentifier: 11, reasonCodes: [.success, .noSubscriptionExisted])
        let expected = UnsubAckPacket(packetIdentifier: 11, reasonCodes: version == .v5 ? [.success, .noSubscriptionExisted] : [])
        #expect(actions == [.send(.unsubAck(expected))])
    }

    @Test("UNSUBSCRIBE with more filters than the limit: v5 UNSUBACK 0x83 per filter, 3.1.1 closes")
    func unsubscribeTooManyFilters() {
        var (machine, _) = H.connected(.init(maximumTopicFiltersPerPacket: 1), H.connect(.v5))
        #expect(machine.packetReceived(.unsubscribe(UnsubscribePacket(packetIdentifier: 1, topicFilters: ["a", "b"])), nowMillis: H.t0) == [
            .send(.unsubAck(UnsubAckPacket(packetIdentifier: 1, reasonCodes: [.implementationSpecificError, .implementationSpecificError]))),
        ])
        var (old, _) = H.connected(.init(maximumTopicFiltersPerPacket: 1), H.connect(.v3_1_1))
        let actions = old.packetReceived(.unsubscribe(UnsubscribePacket(packetIdentifier: 1, topicFilters: ["a", "b"])), nowMillis: H.t0)
        #expect(H.closeReason(actions)?.kind == .limitExceeded)
        #expect(H.sent(actions).isEmpty)
    }
}

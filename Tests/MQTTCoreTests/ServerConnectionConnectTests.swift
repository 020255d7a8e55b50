import MQTTCore
import NIOCore
import Testing

/// CONNECT, authentication, session attach and CONNACK: one test per rule.
@Suite("Server connection: CONNECT and CONNACK")
struct ServerConnectionConnectTests {
    typealias H = ServerHarness
    typealias Machine = ServerConnectionStateMachine
    typealias Action = Machine.Action

    // MARK: - Opening and the first packet

    @Test("opening the connection starts the connect timeout")
    func openingSchedulesConnectTimeout() {
        var machine = Machine(configuration: .init(connectTimeoutSeconds: 7), connectionIdentifier: "c")
        #expect(machine.state == .awaitingConnect)
        #expect(machine.connectionOpened(nowMillis: H.t0) == [.scheduleTimer(atMillis: H.t0 + 7_000)])
    }

    @Test("the first packet must be CONNECT [MQTT-3.1.0-1]")
    func firstPacketMustBeConnect() {
        for packet: MQTTPacket in [.pingReq, .publish(H.publish()), .subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [Subscription(topicFilter: "a")]))] {
            var machine = Machine(connectionIdentifier: "c")
            _ = machine.connectionOpened(nowMillis: H.t0)
            let actions = machine.packetReceived(packet, nowMillis: H.t0)
            #expect(H.sent(actions).isEmpty, "no CONNACK answers a packet that is not CONNECT")
            #expect(H.closeReason(actions)?.specRule == "MQTT-3.1.0-1")
            #expect(machine.state == .closing)
        }
    }

    @Test("no CONNECT within the connect timeout closes; an early timer only reschedules")
    func connectTimeout() {
        var machine = Machine(configuration: .init(connectTimeoutSeconds: 5), connectionIdentifier: "c")
        _ = machine.connectionOpened(nowMillis: H.t0)
        #expect(machine.timerFired(nowMillis: H.t0 + 4_999) == [.scheduleTimer(atMillis: H.t0 + 5_000)])
        let actions = machine.timerFired(nowMillis: H.t0 + 5_000)
        #expect(H.closeReason(actions)?.kind == .connectTimeout)
        #expect(H.sent(actions).isEmpty)
        #expect(machine.state == .closing)
    }

    @Test("authentication or attach not finished within the connect timeout: CONNACK Server unavailable", arguments: [MQTTProtocolVersion.v3_1_1, .v5])
    func handshakeTimeout(version: MQTTProtocolVersion) {
        var machine = H.authenticating(.init(connectTimeoutSeconds: 5), H.connect(version))
        var actions = machine.timerFired(nowMillis: H.t0 + 5_000)
        #expect(H.connAck(actions)?.reasonCode == .serverUnavailable)
        #expect(H.detachment(actions) == nil, "nothing was attached")
        #expect(H.closeReason(actions)?.kind == .connectTimeout)

        machine = H.authenticating(.init(connectTimeoutSeconds: 5), H.connect(version))
        _ = machine.authenticationCompleted(.allowed)
        actions = machine.timerFired(nowMillis: H.t0 + 6_000)
        #expect(H.connAck(actions)?.reasonCode == .serverUnavailable)
        #expect(H.detachment(actions)?.willToPublish == nil, "the attach was asked for: it is undone, with no will")
        #expect(machine.state == .closing)
    }

    // MARK: - The accepted path

    @Test("3.1.1 CONNECT → authenticate → attach → CONNACK and the keep-alive timer")
    func acceptedV311() throws {
        let will = H.will(qos: .atLeastOnce, retain: true)
        let connect = H.connect(.v3_1_1, clientIdentifier: "dev-9", cleanStart: false, keepAliveSeconds: 30, will: will)
        var machine = Machine(connectionIdentifier: "c")
        _ = machine.connectionOpened(nowMillis: H.t0)
        #expect(machine.packetReceived(.connect(connect), nowMillis: H.t0) == [
            .configureEncoder(protocolVersion: .v3_1_1, maximumPacketSizeBytes: nil),
            .authenticate(connect),
        ])
        #expect(machine.state == .authenticating)
        #expect(machine.clientIdentifier == "dev-9")
        #expect(machine.authenticationCompleted(.allowed) == [
            .attachSession(Machine.SessionAttachment(
                clientIdentifier: "dev-9", protocolVersion: .v3_1_1, cleanStart: false,
                sessionExpiryIntervalSeconds: UInt32.max, will: will
            )),
        ])
        #expect(machine.state == .attachingSession)
        let actions = machine.sessionAttached(sessionPresent: true, nowMillis: H.t0 + 20)
        #expect(actions == [
            .send(.connAck(ConnAckPacket(sessionPresent: true, reasonCode: .success))),
            .scheduleTimer(atMillis: H.t0 + 20 + 45_000),
        ])
        #expect(machine.state == .connected)
        let bytes = try Codec.encode(.connAck(ConnAckPacket(sessionPresent: true)), .v3_1_1)
        #expect(bytes.hexString == "20020100")
    }

    @Test("Clean Start 1 answers Session Present 0 whatever the store found [MQTT-3.2.2-2]")
    func cleanStartNeverSessionPresent() {
        let (_, actions) = H.connected(.init(), H.connect(.v5, cleanStart: true), sessionPresent: true)
        #expect(H.connAck(actions)?.sessionPresent == false)
        let (_, resumed) = H.connected(.init(), H.connect(.v5, cleanStart: false), sessionPresent: true)
        #expect(H.connAck(resumed)?.sessionPresent == true)  // [MQTT-3.2.2-3]
    }

    @Test("MQTT 3.1 CONNACK has no Session Present flag")
    func v31HasNoSessionPresent() {
        let (_, actions) = H.connected(.init(), H.connect(.v3_1, clientIdentifier: "old", cleanStart: false), sessionPresent: true)
        #expect(H.connAck(actions) == ConnAckPacket(sessionPresent: false, reasonCode: .success))
    }

    @Test("keep alive 0 turns the keep-alive timer off")
    func keepAliveZero() {
        var (machine, actions) = H.connected(.init(), H.connect(.v3_1_1, keepAliveSeconds: 0))
        #expect(!actions.contains { if case .scheduleTimer = $0 { true } else { false } })
        #expect(machine.timerFired(nowMillis: H.t0 + 1_000_000_000) == [])
        #expect(machine.state == .connected)
    }

    // MARK: - Client identifiers

    @Test("v5 empty client identifier: assigned and returned as Assigned Client Identifier [MQTT-3.1.3-6] [MQTT-3.2.2-16]", arguments: [true, false])
    func v5AssignsClientIdentifier(cleanStart: Bool) {
        var machine = H.authenticating(.init(assignedClientIdentifierPrefix: "gw1-"), H.connect(.v5, clientIdentifier: "", cleanStart: cleanStart))
        #expect(machine.clientIdentifier == "gw1-conn-7")
        let attach = machine.authenticationCompleted(.allowed)
        guard case .attachSession(let attachment) = attach.first else { Issue.record("no attach: \(attach)"); return }
        #expect(attachment.clientIdentifier == "gw1-conn-7")  // [MQTT-3.1.3-7]
        let actions = machine.sessionAttached(sessionPresent: false, nowMillis: H.t0)
        #expect(H.connAck(actions)?.properties.assignedClientIdentifier == "gw1-conn-7")
    }

    @Test("3.1.1 empty client identifier with a clean session is assigned [MQTT-3.1.3-6]")
    func v311AssignsWithCleanSession() {
        let (machine, actions) = H.connected(.init(), H.connect(.v3_1_1, clientIdentifier: "", cleanStart: true))
        #expect(machine.clientIdentifier == "auto-conn-7")
        #expect(H.connAck(actions) == ConnAckPacket(sessionPresent: false, reasonCode: .success), "3.1.1 CONNACK carries no properties")
    }

    @Test("3.1.1 empty client identifier without a clean session: CONNACK 0x02 [MQTT-3.1.3-8]")
    func v311RejectsEmptyIdentifierWithoutCleanSession() throws {
        var machine = Machine(connectionIdentifier: "c")
        _ = machine.connectionOpened(nowMillis: H.t0)
        let actions = machine.packetReceived(.connect(H.connect(.v3_1_1, clientIdentifier: "", cleanStart: false)), nowMillis: H.t0)
        #expect(actions.count == 3)
        #expect(!actions.contains { if case .authenticate = $0 { true } else { false } })
        let connAck = try #require(H.connAck(actions))
        #expect(try Codec.encode(.connAck(connAck), .v3_1_1).hexString == "20020002")
        #expect(H.closeReason(actions)?.specRule == "MQTT-3.1.3-8 (3.1.1)")
        #expect(machine.state == .closing)
    }

    @Test("MQTT 3.1 client identifiers are 1 to 23 bytes; others get return code 2")
    func v31IdentifierLength() throws {
        _ = H.authenticating(.init(), H.connect(.v3_1, clientIdentifier: String(repeating: "x", count: 23)))
        for identifier in ["", String(repeating: "x", count: 24)] {
            var machine = Machine(connectionIdentifier: "c")
            _ = machine.connectionOpened(nowMillis: H.t0)
            let actions = machine.packetReceived(.connect(H.connect(.v3_1, clientIdentifier: identifier)), nowMillis: H.t0)
            let connAck = try #require(H.connAck(actions))
            #expect(try Codec.encode(.connAck(connAck), .v3_1).hexString == "20020002")
            #expect(H.closeReason(actions)?.kind == .connectionRefused)
        }
    }

    @Test("client identifiers above the configured length are refused with 0x85")
    func identifierLengthLimit() {
        var machine = Machine(configuration: .init(maximumClientIdentifierLengthBytes: 30), connectionIdentifier: "c")
        _ = machine.connectionOpened(nowMillis: H.t0)
        let actions = machine.packetReceived(.connect(H.connect(.v5, clientIdentifier: String(repeating: "é", count: 16))), nowMillis: H.t0)
        #expect(H.connAck(actions)?.reasonCode == .clientIdentifierNotValid)
        #expect(H.connAck(actions)?.sessionPresent == false)  // [MQTT-3.2.2-6]
    }

    // MARK: - Wills and authentication methods

    @Test("will QoS above the maximum: v5 CONNACK 0x9B [MQTT-3.2.2-12]; 3.1.1 closes without CONNACK")
    func willQoSAboveMaximum() {
        for version in [MQTTProtocolVersion.v5, .v3_1_1] {
            var machine = Machine(configuration: .init(maximumQoS: .atLeastOnce), connectionIdentifier: "c")
            _ = machine.connectionOpened(nowMillis: H.t0)
            let actions = machine.packetReceived(.connect(H.connect(version, will: H.will(qos: .exactlyOnce))), nowMillis: H.t0)
            #expect(H.closeReason(actions)?.reasonCode == .qosNotSupported)
            #expect(H.closeReason(actions)?.specRule == "MQTT-3.2.2-12")
            #expect(H.withoutReasonString(H.connAck(actions)) == (version == .v5 ? ConnAckPacket(reasonCode: .qosNotSupported) : nil))
        }
    }

    @Test("retained will while retain is unavailable: v5 CONNACK 0x9A [MQTT-3.2.2-13]; 3.1.1 closes without CONNACK")
    func willRetainUnavailable() {
        for version in [MQTTProtocolVersion.v5, .v3_1_1] {
            var machine = Machine(configuration: .init(retainAvailable: false), connectionIdentifier: "c")
            _ = machine.connectionOpened(nowMillis: H.t0)
            let actions = machine.packetReceived(.connect(H.connect(version, will: H.will(retain: true))), nowMillis: H.t0)
            #expect(H.closeReason(actions)?.reasonCode == .retainNotSupported)
            #expect(H.withoutReasonString(H.connAck(actions)) == (version == .v5 ? ConnAckPacket(reasonCode: .retainNotSupported) : nil))
        }
        // A will without RETAIN is fine.
        _ = H.authenticating(.init(retainAvailable: false), H.connect(.v5, will: H.will(retain: false)))
    }

    @Test("v5 CONNECT with an Authentication Method: CONNACK 0x8C [MQTT-4.12.0-1]")
    func authenticationMethodRefused() {
        var machine = Machine(connectionIdentifier: "c")
        _ = machine.connectionOpened(nowMillis: H.t0)
        let actions = machine.packetReceived(.connect(H.connect(.v5, properties: [.authenticationMethod("SCRAM-SHA-1")])), nowMillis: H.t0)
        #expect(H.connAck(actions)?.reasonCode == .badAuthenticationMethod)
        #expect(H.connAck(actions)?.properties.reasonString?.contains("SCRAM-SHA-1") == true)
        #expect(H.closeReason(actions)?.specRule == "MQTT-4.12.0-1")
    }

    // MARK: - Authentication results

    @Test("denied authentication: 3.1.1 return codes 0x04 / 0x05, no session is touched")
    func deniedV311() throws {
        for (code, returnCode) in [(MQTTReasonCode.badUserNameOrPassword, "04"), (.notAuthorized, "05"), (.serverUnavailable, "03")] {
            var machine = H.authenticating(.init(), H.connect(.v3_1_1))
            let actions = machine.authenticationCompleted(.denied(code, detail: "wrong password"))
            #expect(actions.count == 2)
            let connAck = try #require(H.connAck(actions))
            #expect(try Codec.encode(.connAck(connAck), .v3_1_1).hexString == "200200" + returnCode)
            #expect(H.closeReason(actions)?.kind == .connectionRefused)
            #expect(H.closeReason(actions)?.detail.contains("wrong password") == true, "the detail is logged")
            #expect(H.detachment(actions) == nil)
        }
    }

    @Test("denied authentication: v5 CONNACK 0x86 / 0x87 with a Reason String [MQTT-3.1.4-2]")
    func deniedV5() {
        for code in [MQTTReasonCode.badUserNameOrPassword, .notAuthorized, .banned] {
            var machine = H.authenticating(.init(), H.connect(.v5))
            let actions = machine.authenticationCompleted(.denied(code, detail: "no such user"))
            #expect(H.connAck(actions)?.reasonCode == code)
            #expect(H.connAck(actions)?.sessionPresent == false)
            #expect(H.connAck(actions)?.properties.reasonString != nil)
            #expect(H.closeReason(actions)?.specRule == "MQTT-3.1.4-2")
            #expect(machine.state == .closing)
        }
        // A code CONNACK cannot carry becomes Not authorized.
        var machine = H.authenticating(.init(), H.connect(.v5))
        #expect(H.connAck(machine.authenticationCompleted(.denied(.success, detail: "")))?.reasonCode == .notAuthorized)
    }

    @Test("the Reason String is left out when it would exceed the client's Maximum Packet Size [MQTT-3.2.2-19]")
    func reasonStringRespectsMaximumPacketSize() {
        var machine = H.authenticating(.init(), H.connect(.v5, properties: [.maximumPacketSize(8)]))
        let actions = machine.authenticationCompleted(.denied(.notAuthorized, detail: "a detail far longer than eight bytes"))
        #expect(actions.first == .send(.connAck(ConnAckPacket(reasonCode: .notAuthorized))))
    }

    @Test("the encoder is configured with the client's version and Maximum Packet Size before anything is sent")
    func encoderConfiguredFirst() {
        var machine = Machine(connectionIdentifier: "c")
        _ = machine.connectionOpened(nowMillis: H.t0)
        let actions = machine.packetReceived(.connect(H.connect(.v5, properties: [.maximumPacketSize(512)])), nowMillis: H.t0)
        #expect(actions.first == .configureEncoder(protocolVersion: .v5, maximumPacketSizeBytes: 512))
    }

    // MARK: - CONNACK properties

    @Test("v5 CONNACK announces the server's limits that differ from the protocol defaults")
    func connAckPropertiesDefault() {
        let (_, actions) = H.connected(.init(), H.connect(.v5))
        #expect(H.connAck(actions)?.properties == [.receiveMaximum(128), .maximumPacketSize(1_048_576), .topicAliasMaximum(64)])
    }

    @Test("v5 CONNACK announces Maximum QoS, unavailable features, Server Keep Alive and a capped Session Expiry")
    func connAckPropertiesRestricted() {
        let configuration = Machine.Configuration(
            maximumPacketSizeBytes: MQTTPacketDecoder.Limits.protocolMaximumPacketSizeBytes, receiveMaximum: 65_535, topicAliasMaximum: 0,
            maximumQoS: .atLeastOnce, retainAvailable: false, wildcardSubscriptionAvailable: false, sharedSubscriptionAvailable: false,
            subscriptionIdentifiersAvailable: false, serverKeepAliveSeconds: 20, maximumSessionExpiryIntervalSeconds: 3_600
        )
        let (machine, actions) = H.connected(configuration, H.connect(.v5, keepAliveSeconds: 600, properties: [.sessionExpiryInterval(86_400)]))
        #expect(H.connAck(actions)?.properties == [
            .sessionExpiryInterval(3_600), .serverKeepAlive(20), .maximumQoS(1), .retainAvailable(0),
            .wildcardSubscriptionAvailable(0), .subscriptionIdentifierAvailable(0), .sharedSubscriptionAvailable(0),
        ])
        // [MQTT-3.2.2-21]: the server's keep alive is the one in force.
        #expect(actions.last == .scheduleTimer(atMillis: H.t0 + 30_000))
        _ = machine
    }

    @Test("Server Keep Alive is not sent when it equals the client's [MQTT-3.2.2-22]; 3.1.1 keeps its own keep alive")
    func serverKeepAliveOnlyWhenDifferent() {
        let (_, same) = H.connected(.init(serverKeepAliveSeconds: 60), H.connect(.v5, keepAliveSeconds: 60))
        #expect(H.connAck(same)?.properties.serverKeepAlive == nil)
        let (_, v311) = H.connected(.init(serverKeepAliveSeconds: 20), H.connect(.v3_1_1, keepAliveSeconds: 60))
        #expect(v311.last == .scheduleTimer(atMillis: H.t0 + 90_000))
    }

    @Test("3.1.1 sessions: Clean Session 1 expires at once, Clean Session 0 never")
    func v311SessionExpiry() {
        for (cleanStart, expiry) in [(true, UInt32(0)), (false, UInt32.max)] {
            var machine = H.authenticating(.init(), H.connect(.v3_1_1, cleanStart: cleanStart))
            guard case .attachSession(let attachment) = machine.authenticationCompleted(.allowed).first else {
                Issue.record("no attach"); continue
            }
            #expect(attachment.sessionExpiryIntervalSeconds == expiry)
        }
    }

    // MARK: - Packets before CONNACK

    @Test("packets after CONNECT are held until CONNACK, then processed in order [MQTT-3.1.4-6]")
    func earlyPacketsHeld() {
        var machine = H.authenticating(.init(), H.connect(.v5))
        let publish = H.publish(qos: .atLeastOnce, id: 3)
        #expect(machine.packetReceived(.publish(publish), nowMillis: H.t0 + 1) == [])
        #expect(machine.packetReceived(.pingReq, nowMillis: H.t0 + 2) == [])
        _ = machine.authenticationCompleted(.allowed)
        let actions = machine.sessionAttached(sessionPresent: false, nowMillis: H.t0 + 5)
        guard actions.count == 4 else { Issue.record("\(actions)"); return }
        if case .send(.connAck) = actions[0] {} else { Issue.record("CONNACK first [MQTT-3.2.0-1]: \(actions)") }
        #expect(actions[1] == .storePublish(publish))
        #expect(actions[2] == .send(.pingResp))
        #expect(actions[3] == .scheduleTimer(atMillis: H.t0 + 5 + 90_000))
    }

    @Test("a refused CONNECT never processes the held packets [MQTT-3.1.4-6]")
    func refusedConnectDropsHeldPackets() {
        var machine = H.authenticating(.init(), H.connect(.v5))
        _ = machine.packetReceived(.publish(H.publish()), nowMillis: H.t0)
        let actions = machine.authenticationCompleted(.denied(.notAuthorized, detail: "x"))
        #expect(H.stored(actions).isEmpty)
        #expect(machine.sessionAttached(sessionPresent: false, nowMillis: H.t0) == [], "events after the close are ignored")
    }

    @Test("a held packet that breaks a rule closes the connection right after CONNACK")
    func heldViolationAfterConnAck() {
        var machine = H.authenticating(.init(), H.connect(.v5))
        _ = machine.packetReceived(.connect(H.connect(.v5)), nowMillis: H.t0)
        _ = machine.authenticationCompleted(.allowed)
        let actions = machine.sessionAttached(sessionPresent: false, nowMillis: H.t0)
        #expect(H.connAck(actions)?.reasonCode == .success)
        H.expectViolation(actions, .protocolError, version: .v5, rule: "MQTT-3.1.0-2")
        #expect(H.detachment(actions) != nil)
    }

    @Test("more packets before CONNACK than the limit close the connection")
    func earlyPacketLimit() {
        for version in [MQTTProtocolVersion.v5, .v3_1_1] {
            var machine = H.authenticating(.init(maximumPacketsBeforeConnAck: 2), H.connect(version))
            #expect(machine.packetReceived(.pingReq, nowMillis: H.t0) == [])
            #expect(machine.packetReceived(.pingReq, nowMillis: H.t0) == [])
            let actions = machine.packetReceived(.pingReq, nowMillis: H.t0)
            #expect(H.closeReason(actions)?.kind == .limitExceeded)
            #expect(H.withoutReasonString(H.connAck(actions)) == (version == .v5 ? ConnAckPacket(reasonCode: .quotaExceeded) : nil))
        }
    }

    // MARK: - Failures before CONNACK

    @Test("an unsupported protocol level: CONNACK 0x01 in the 3.1.1 form [MQTT-3.1.2-2]")
    func unsupportedProtocolVersion() throws {
        var machine = Machine(connectionIdentifier: "c")
        _ = machine.connectionOpened(nowMillis: H.t0)
        let actions = machine.decodeFailed(MQTTDecodeError(.unsupportedProtocolVersion(6), packetType: .connect, byteOffset: 8))
        #expect(actions.first == .configureEncoder(protocolVersion: .v3_1_1, maximumPacketSizeBytes: nil))
        let connAck = try #require(H.connAck(actions))
        #expect(try Codec.encode(.connAck(connAck), .v3_1_1).hexString == "20020001")
        #expect(H.closeReason(actions)?.reasonCode == .unsupportedProtocolVersion)
    }

    @Test("an undecodable first packet closes without CONNACK [MQTT-3.1.4-1]")
    func malformedFirstPacket() {
        var machine = Machine(connectionIdentifier: "c")
        _ = machine.connectionOpened(nowMillis: H.t0)
        let actions = machine.decodeFailed(MQTTDecodeError(.connectReservedFlagSet, packetType: .connect, byteOffset: 9))
        #expect(H.sent(actions).isEmpty)
        #expect(H.closeReason(actions)?.specRule == "MQTT-3.1.4-1")
        #expect(H.closeReason(actions)?.reasonCode == .malformedPacket)
    }

    @Test("a decode error after CONNECT and before CONNACK: v5 CONNACK with its reason code, 3.1.1 closes (§4.13)")
    func decodeErrorBeforeConnAck() {
        let error = MQTTDecodeError(.packetTooLarge(sizeBytes: 2_000_000, limitBytes: 1_048_576), packetType: .publish, byteOffset: 1)
        var machine = H.authenticating(.init(), H.connect(.v5))
        var actions = machine.decodeFailed(error)
        #expect(H.connAck(actions)?.reasonCode == .packetTooLarge)
        #expect(H.closeReason(actions)?.kind == .protocolViolation)

        machine = H.authenticating(.init(), H.connect(.v3_1_1))
        actions = machine.decodeFailed(error)
        #expect(H.sent(actions).isEmpty)
        #expect(H.closeReason(actions)?.reasonCode == .packetTooLarge)
    }

    @Test("a failed session attach: CONNACK Server unavailable and no detach")
    func sessionAttachFailed() {
        var machine = H.authenticating(.init(), H.connect(.v5))
        _ = machine.authenticationCompleted(.allowed)
        let actions = machine.sessionAttachFailed(detail: "store offline")
        #expect(H.connAck(actions)?.reasonCode == .serverUnavailable)
        #expect(H.detachment(actions) == nil)
        #expect(H.closeReason(actions)?.kind == .serverError)
    }

    @Test("takeover or shutdown before CONNACK refuses the connection; no DISCONNECT before CONNACK [MQTT-3.14.0-1]")
    func takeoverBeforeConnAck() {
        var machine = H.authenticating(.init(), H.connect(.v5))
        _ = machine.authenticationCompleted(.allowed)
        var actions = machine.sessionTakenOver()
        #expect(H.disconnect(actions) == nil)
        #expect(H.connAck(actions)?.reasonCode == .serverUnavailable)
        #expect(H.closeReason(actions)?.kind == .sessionTakenOver)
        #expect(H.detachment(actions)?.willToPublish == nil)

        machine = H.authenticating(.init(), H.connect(.v5))
        actions = machine.serverShuttingDown()
        #expect(H.disconnect(actions) == nil)
        #expect(H.connAck(actions)?.reasonCode == .serverUnavailable)
    }

    @Test("the connection closing during the attach detaches the session without publishing the will")
    func closedWhileAttaching() {
        var machine = H.authenticating(.init(), H.connect(.v5, will: H.will()))
        _ = machine.authenticationCompleted(.allowed)
        let actions = machine.connectionClosed()
        #expect(actions.count == 1)
        #expect(H.detachment(actions)?.willToPublish == nil)
        #expect(machine.state == .closed)
        #expect(machine.sessionAttached(sessionPresent: false, nowMillis: H.t0) == [], "a late attach answer is ignored")
    }

    @Test("a CONNACK larger than the client's Maximum Packet Size is never sent: refused with 0x95, or closed without one [MQTT-3.1.2-24]")
    func connAckLargerThanClientMaximum() {
        // The server's properties (Maximum Packet Size, Topic Alias Maximum, ...) make the CONNACK longer than
        // 6 bytes; a refusal without properties takes 5.
        var machine = H.authenticating(.init(), H.connect(.v5, properties: [.maximumPacketSize(6)]))
        _ = machine.authenticationCompleted(.allowed)
        let actions = machine.sessionAttached(sessionPresent: false, nowMillis: H.t0)
        #expect(H.connAck(actions)?.reasonCode == .packetTooLarge)
        #expect(H.connAck(actions)?.properties.isEmpty == true, "the refusal carries no Reason String it has no room for")
        #expect(H.detachment(actions) != nil)
        #expect(machine.state == .closing)

        // Under 5 bytes not even that fits: the connection closes without a CONNACK.
        var tiny = H.authenticating(.init(), H.connect(.v5, properties: [.maximumPacketSize(4)]))
        _ = tiny.authenticationCompleted(.allowed)
        let closing = tiny.sessionAttached(sessionPresent: false, nowMillis: H.t0)
        #expect(H.connAck(closing) == nil)
        guard case .close(let reason)? = closing.last else {
            Issue.record("no close in \(closing)")
            return
        }
        #expect(reason.reasonCode == .packetTooLarge)
    }
}

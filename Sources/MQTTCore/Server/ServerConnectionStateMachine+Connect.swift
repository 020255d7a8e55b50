import NIOCore

extension ServerConnectionStateMachine {
    /// The longest client identifier MQTT 3.1 allows (3.1 §3.1, "Client Identifier").
    static let maximumClientIdentifierLengthV3_1 = 23

    // MARK: - CONNECT

    /// The protocol checks of CONNECT (§3.1.4): what the server can decide before asking anyone.
    mutating func connectReceived(_ connect: ConnectPacket, connectDeadlineMillis: Int64?) -> [Action] {
        let version = connect.protocolVersion
        let properties = connect.properties
        let clientMaximumPacketSize = version.hasProperties ? properties.maximumPacketSize.map { Int($0) } : nil
        // Every packet from here on, a refusing CONNACK included, is encoded for the client's version and size.
        var actions: [Action] = [.configureEncoder(protocolVersion: version, maximumPacketSizeBytes: clientMaximumPacketSize)]

        var parameters = ConnectionParameters(
            protocolVersion: version,
            clientIdentifier: connect.clientIdentifier,
            clientIdentifierAssigned: false,
            cleanStart: connect.cleanStart,
            keepAliveSeconds: connect.keepAliveSeconds,
            announceServerKeepAlive: false,
            requestedSessionExpiryIntervalSeconds: 0,
            sessionExpiryIntervalSeconds: 0,
            will: connect.will,
            clientReceiveMaximum: Int(UInt16.max),
            clientMaximumPacketSizeBytes: clientMaximumPacketSize,
            clientTopicAliasMaximum: 0,
            requestProblemInformation: properties.requestProblemInformation != 0
        )
        phase = .authenticating(Handshake(parameters: parameters, connectDeadlineMillis: connectDeadlineMillis))

        func refuse(_ code: MQTTReasonCode, _ detail: String, _ rule: String?, sendConnAckInV3: Bool = true) -> [Action] {
            actions + refuseConnection(code, kind: .connectionRefused, detail: detail, specRule: rule, sendConnAckInV3: sendConnAckInV3)
        }

        // Client identifier.
        let identifierBytes = connect.clientIdentifier.utf8.count
        switch version {
        case .v3_1:
            // MQTT 3.1: 1 to 23 characters, else return code 2 (Identifier Rejected).
            if identifierBytes == 0 || identifierBytes > Self.maximumClientIdentifierLengthV3_1 {
                return refuse(.clientIdentifierNotValid, "MQTT 3.1 client identifier of \(identifierBytes) bytes, not 1 ... 23", "MQTT 3.1 §3.1")
            }
        case .v3_1_1:
            if identifierBytes == 0 && !connect.cleanStart {
                return refuse(.clientIdentifierNotValid, "empty client identifier with CleanSession 0", "MQTT-3.1.3-8 (3.1.1)")
            }
        case .v5:
            break
        }
        if identifierBytes > configuration.maximumClientIdentifierLengthBytes {
            // [MQTT-3.1.3-5] requires 1 ... 23 bytes only; longer is the server's choice. [MQTT-3.1.3-8]
            return refuse(.clientIdentifierNotValid, "client identifier of \(identifierBytes) bytes, limit \(configuration.maximumClientIdentifierLengthBytes)", "MQTT-3.1.3-8")
        }
        if identifierBytes == 0 {
            // [MQTT-3.1.3-6], [MQTT-3.1.3-7]: assign a unique identifier and proceed as if the client had sent it;
            // v5 clients are told it in CONNACK ([MQTT-3.2.2-16]).
            parameters.clientIdentifier = configuration.assignedClientIdentifierPrefix + connectionIdentifier
            parameters.clientIdentifierAssigned = true
        }

        if version.hasProperties {
            if let method = properties.authenticationMethod {
                // [MQTT-4.12.0-1]: enhanced authentication is not offered.
                return refuse(.badAuthenticationMethod, "authentication method \"\(method)\" is not supported", "MQTT-4.12.0-1")
            }
            parameters.clientReceiveMaximum = Int(properties.receiveMaximum ?? UInt16.max)
            parameters.clientTopicAliasMaximum = properties.topicAliasMaximum ?? 0
            parameters.requestedSessionExpiryIntervalSeconds = properties.sessionExpiryInterval ?? 0
            if let serverKeepAlive = configuration.serverKeepAliveSeconds, serverKeepAlive != connect.keepAliveSeconds {
                parameters.keepAliveSeconds = serverKeepAlive
                parameters.announceServerKeepAlive = true
            }
        } else {
            // 3.1.1 §3.1.2.4: a clean session ends with the connection; any other lasts until a clean one.
            parameters.requestedSessionExpiryIntervalSeconds = connect.cleanStart ? 0 : UInt32.max
        }
        parameters.sessionExpiryIntervalSeconds = cappedSessionExpiry(parameters.requestedSessionExpiryIntervalSeconds)

        if let will = connect.will {
            // 3.1.1 has no return code for these: close without CONNACK (3.1.1 [MQTT-3.2.2-6]).
            if will.qos > configuration.maximumQoS {
                return refuse(.qosNotSupported, "will QoS \(will.qos.rawValue) above the maximum QoS \(configuration.maximumQoS.rawValue)", "MQTT-3.2.2-12", sendConnAckInV3: false)
            }
            if will.retain && !configuration.retainAvailable {
                return refuse(.retainNotSupported, "retained will while retain is not available", "MQTT-3.2.2-13", sendConnAckInV3: false)
            }
        }

        phase = .authenticating(Handshake(parameters: parameters, connectDeadlineMillis: connectDeadlineMillis))
        actions.append(.authenticate(connect))
        return actions
    }

    func cappedSessionExpiry(_ requested: UInt32) -> UInt32 {
        guard let maximum = configuration.maximumSessionExpiryIntervalSeconds else { return requested }
        return min(requested, maximum)
    }

    // MARK: - Authentication and session

    /// The answer to `authenticate`.
    public mutating func authenticationCompleted(_ result: AuthenticationResult) -> [Action] {
        switch phase {
        case .authenticating(let handshake):
            switch result {
            case .allowed:
                phase = .attachingSession(handshake)
                let parameters = handshake.parameters
                return [.attachSession(SessionAttachment(
                    clientIdentifier: parameters.clientIdentifier,
                    protocolVersion: parameters.protocolVersion,
                    cleanStart: parameters.cleanStart,
                    sessionExpiryIntervalSeconds: parameters.sessionExpiryIntervalSeconds,
                    will: parameters.will
                ))]
            case .denied(let code, let detail):
                // [MQTT-3.1.4-2]: failed authentication closes the connection, after a CONNACK saying why.
                let reasonCode = code.isFailure && code.isValid(in: .connAck) ? code : .notAuthorized
                return refuseConnection(reasonCode, kind: .connectionRefused, detail: "authentication failed: \(detail)", specRule: "MQTT-3.1.4-2", sendConnAckInV3: true)
            }
        case .closing, .closed:
            return []
        case .awaitingConnect, .attachingSession, .connected, .modifying:
            preconditionFailure("authenticationCompleted in \(state)")
        }
    }

    /// The store attached the session. `sessionPresent` says a session existed (never with Clean Start,
    /// [MQTT-3.2.2-2]); `resumption` carries its unfinished message flows, which are resumed after CONNACK
    /// ([MQTT-4.4.0-1]). Sends CONNACK, then the resends, then processes the packets that came early.
    public mutating func sessionAttached(sessionPresent: Bool, resumption: SessionResumption = SessionResumption(), nowMillis: Int64) -> [Action] {
        switch phase {
        case .attachingSession(let handshake):
            let parameters = handshake.parameters
            // [MQTT-3.2.2-2]: Clean Start means Session Present 0, whatever the store says.
            let resumed = sessionPresent && !parameters.cleanStart
            precondition(resumed || resumption.isEmpty, "a new session has nothing to resume")
            // [MQTT-3.2.2-3]; MQTT 3.1 has no Session Present flag (the byte is reserved).
            let connAck = ConnAckPacket(
                sessionPresent: resumed && parameters.protocolVersion != .v3_1,
                reasonCode: .success,
                properties: connAckProperties(parameters)
            )
            guard fits(.connAck(connAck), parameters) else {
                // [MQTT-3.1.2-24]: the CONNACK may not exceed the client's Maximum Packet Size, and only a
                // Reason String or User Property could be left out of it ([MQTT-3.2.2-19], [MQTT-3.2.2-20]);
                // the server's limits cannot: the connection cannot be accepted.
                let limit = parameters.clientMaximumPacketSizeBytes ?? 0
                return refuseConnection(
                    .packetTooLarge, kind: .connectionRefused,
                    detail: "the CONNACK does not fit the client's Maximum Packet Size of \(limit) bytes", specRule: "MQTT-3.1.2-24",
                    sendConnAckInV3: false
                )
            }
            var connected = Connected(parameters: parameters, configuration: configuration, nowMillis: nowMillis)
            phase = .modifying

            var actions: [Action] = [.send(.connAck(connAck))]  // [MQTT-3.2.0-1]: CONNACK is the first packet

            if resumed {
                for identifier in resumption.awaitingPubRelPacketIdentifiers {
                    connected.awaitingPubRel.insert(identifier)
                }
                connected.resume(resumption.inflightDeliveries)
                fillDeliveryWindow(&connected, &actions)
            }

            // The packets the client sent before CONNACK, in order ([MQTT-3.1.4-6]: only now).
            for packet in handshake.earlyPackets {
                if let termination = handle(packet, &connected, &actions) {
                    return actions + terminate(&connected, termination)
                }
            }
            if parameters.keepAliveSeconds > 0 {
                actions.append(.scheduleTimer(atMillis: nowMillis + configuration.keepAliveGraceMillis(parameters.keepAliveSeconds)))
            }
            phase = .connected(connected)
            return actions
        case .closing, .closed:
            return []
        case .awaitingConnect, .authenticating, .connected, .modifying:
            preconditionFailure("sessionAttached in \(state)")
        }
    }

    /// The store could not attach the session: CONNACK with `reasonCode` (default 0x88 Server unavailable;
    /// 3.1.1: 0x03), then close.
    public mutating func sessionAttachFailed(reasonCode: MQTTReasonCode = .serverUnavailable, detail: String) -> [Action] {
        switch phase {
        case .attachingSession:
            let code = reasonCode.isFailure && reasonCode.isValid(in: .connAck) ? reasonCode : .serverUnavailable
            // Nothing was attached, so nothing is detached.
            return refuseConnection(
                code, kind: .serverError, detail: "session attach failed: \(detail)", specRule: nil, sendConnAckInV3: true,
                sessionAttached: false
            )
        case .closing, .closed:
            return []
        case .awaitingConnect, .authenticating, .connected, .modifying:
            preconditionFailure("sessionAttachFailed in \(state)")
        }
    }

    /// The v5 CONNACK properties: every server limit that differs from the protocol's default (§3.2.2.3).
    func connAckProperties(_ parameters: ConnectionParameters) -> MQTTProperties {
        guard parameters.protocolVersion.hasProperties else { return [] }
        var properties = MQTTProperties()
        if parameters.clientIdentifierAssigned {
            properties.append(.assignedClientIdentifier(parameters.clientIdentifier))  // [MQTT-3.2.2-16]
        }
        if parameters.sessionExpiryIntervalSeconds != parameters.requestedSessionExpiryIntervalSeconds {
            properties.append(.sessionExpiryInterval(parameters.sessionExpiryIntervalSeconds))  // §3.2.2.3.2
        }
        if parameters.announceServerKeepAlive {
            properties.append(.serverKeepAlive(parameters.keepAliveSeconds))  // [MQTT-3.2.2-21]
        }
        if configuration.receiveMaximum != UInt16.max {
            properties.append(.receiveMaximum(configuration.receiveMaximum))
        }
        if configuration.maximumQoS < .exactlyOnce {
            properties.append(.maximumQoS(configuration.maximumQoS.rawValue))  // [MQTT-3.2.2-9]
        }
        if !configuration.retainAvailable {
            properties.append(.retainAvailable(0))
        }
        if configuration.maximumPacketSizeBytes < MQTTPacketDecoder.Limits.protocolMaximumPacketSizeBytes {
            properties.append(.maximumPacketSize(UInt32(configuration.maximumPacketSizeBytes)))
        }
        if configuration.topicAliasMaximum > 0 {
            properties.append(.topicAliasMaximum(configuration.topicAliasMaximum))
        }
        if !configuration.wildcardSubscriptionAvailable {
            properties.append(.wildcardSubscriptionAvailable(0))
        }
        if !configuration.subscriptionIdentifiersAvailable {
            properties.append(.subscriptionIdentifierAvailable(0))
        }
        if !configuration.sharedSubscriptionAvailable {
            properties.append(.sharedSubscriptionAvailable(0))
        }
        return properties
    }
}

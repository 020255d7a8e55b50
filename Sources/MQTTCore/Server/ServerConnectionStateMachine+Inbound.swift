import NIOCore

extension ServerConnectionStateMachine {
    /// The state of an accepted connection.
    struct Connected: Sendable {
        var parameters: ConnectionParameters
        var lastPacketReceivedAtMillis: Int64

        // Inbound (client → server)

        /// Topic Alias → topic name; lives and dies with this network connection ([MQTT-3.3.2-7]).
        var inboundTopicAliases: [UInt16: String] = [:]
        /// QoS 1/2 PUBLISHes handed to the store and not yet acknowledged, by packet identifier.
        var inboundPending: [UInt16: InboundPublish] = [:]
        /// Their packet identifiers in arrival order: acknowledgements leave in this order (§4.6).
        var inboundOrder = CircularBuffer<UInt16>()
        /// QoS 2 identifiers answered with PUBREC and awaiting PUBREL.
        var awaitingPubRel: Set<UInt16> = []
        var pendingSubscribes: [UInt16: PendingSubscribe] = [:]
        /// UNSUBSCRIBE packet identifier → number of topic filters.
        var pendingUnsubscribes: [UInt16: Int] = [:]

        // Outbound (server → client)

        /// Deliveries with a packet identifier and no final acknowledgement, those awaiting a resend included.
        var inflight: [UInt16: InflightEntry] = [:]
        /// Resumed deliveries not resent yet, in their original order (§4.6).
        var pendingResends = CircularBuffer<UInt16>()
        var nextPacketIdentifier: UInt16 = 1
        var nextInflightSequence: UInt64 = 0
        /// Topic name → outbound Topic Alias.
        var outboundTopicAliases: [String: UInt16] = [:]
        /// min(the client's Receive Maximum, the configured maximum): the send quota ([MQTT-4.9.0-1]).
        let deliveryWindow: Int

        init(parameters: ConnectionParameters, configuration: Configuration, nowMillis: Int64) {
            self.parameters = parameters
            self.lastPacketReceivedAtMillis = nowMillis
            self.deliveryWindow = max(1, min(parameters.clientReceiveMaximum, configuration.maximumInflightDeliveries))
        }

        /// Deliveries sent on this connection and not finished: what counts against the window
        /// ([MQTT-3.3.4-9]). Resumed ones count from their resend on.
        var sentInflightCount: Int { inflight.count - pendingResends.count }

        /// QoS 1/2 PUBLISHes from the client without PUBACK or PUBCOMP yet: what counts against our
        /// Receive Maximum ([MQTT-3.3.4-7]).
        var inboundUnacknowledgedCount: Int { inboundPending.count + awaitingPubRel.count }

        /// Whether the client's packet identifier is taken by an unfinished flow (§2.2.1).
        func clientPacketIdentifierInUse(_ identifier: UInt16) -> Bool {
            inboundPending[identifier] != nil || awaitingPubRel.contains(identifier)
                || pendingSubscribes[identifier] != nil || pendingUnsubscribes[identifier] != nil
        }
    }

    struct InboundPublish: Sendable {
        var qos: MQTTQoS
        /// nil while the store has not answered.
        var outcome: Outcome?

        enum Outcome: Sendable {
            case stored
            case refused(MQTTReasonCode, reasonString: String?)
        }
    }

    struct PendingSubscribe: Sendable {
        /// One per topic filter of the SUBSCRIBE: set when the machine refused the filter itself, nil for
        /// those handed to the store.
        var reasonCodes: [MQTTReasonCode?]
        /// The highest QoS that may be granted to each filter handed to the store, in order.
        var grantCeilings: [MQTTQoS]
    }

    // MARK: - Dispatch

    /// Processes one packet of a connected client; returns how the connection ends if it must.
    func handle(_ packet: MQTTPacket, _ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        switch packet {
        case .connect:
            return .violation(.protocolError, "second CONNECT", specRule: "MQTT-3.1.0-2")
        case .connAck, .subAck, .unsubAck, .pingResp:
            // §2.1.2: these flow from server to client only.
            return .violation(.protocolError, "\(packet.type) is a server-to-client packet", specRule: nil)
        case .publish(let publish):
            return publishReceived(publish, &connected, &actions)
        case .pubAck(let ack):
            return pubAckReceived(ack, &connected, &actions)
        case .pubRec(let ack):
            return pubRecReceived(ack, &connected, &actions)
        case .pubComp(let ack):
            return pubCompReceived(ack, &connected, &actions)
        case .pubRel(let ack):
            return pubRelReceived(ack, &connected, &actions)
        case .subscribe(let subscribe):
            return subscribeReceived(subscribe, &connected, &actions)
        case .unsubscribe(let unsubscribe):
            return unsubscribeReceived(unsubscribe, &connected, &actions)
        case .pingReq:
            actions.append(.send(.pingResp))  // [MQTT-3.12.4-1]
            return nil
        case .disconnect(let disconnect):
            return disconnectReceived(disconnect, connected)
        case .auth:
            // Enhanced authentication is refused at CONNECT, so no CONNECT had an Authentication Method.
            return .violation(.protocolError, "AUTH without an Authentication Method in CONNECT", specRule: "MQTT-4.12.0-7")
        }
    }

    // MARK: - PUBLISH in

    private func publishReceived(_ received: PublishPacket, _ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        var publish = received
        let version = connected.parameters.protocolVersion
        if version.hasProperties {
            if !publish.properties.subscriptionIdentifiers.isEmpty {
                return .violation(.protocolError, "PUBLISH from a client with a Subscription Identifier", specRule: "MQTT-3.3.4-6")
            }
            if let alias = publish.properties.topicAlias {
                // [MQTT-3.3.2-8], [MQTT-3.2.2-17]; §3.3.2.3.4 names 0x94.
                guard alias != 0, alias <= configuration.topicAliasMaximum else {
                    return .violation(
                        .topicAliasInvalid, "Topic Alias \(alias) outside 1 ... \(configuration.topicAliasMaximum)",
                        specRule: alias == 0 ? "MQTT-3.3.2-8" : configuration.topicAliasMaximum == 0 ? "MQTT-3.2.2-18" : "MQTT-3.2.2-17"
                    )
                }
                if publish.topicName.isEmpty {
                    guard let topic = connected.inboundTopicAliases[alias] else {
                        // §3.3.2.3.4: an alias with no mapping and no topic name is a Protocol Error.
                        return .violation(.protocolError, "Topic Alias \(alias) used before a topic was set for it", specRule: nil)
                    }
                    publish.topicName = topic
                } else {
                    connected.inboundTopicAliases[alias] = publish.topicName
                }
                // The alias belongs to this connection ([MQTT-3.3.2-7]); subscribers never see it.
                publish.properties = MQTTProperties(publish.properties.filter { $0.identifier != .topicAlias })
            }
        }
        // 3.1.1 has no codes for these; its clients are disconnected (3.1.1 [MQTT-3.3.5-2]).
        if publish.qos > configuration.maximumQoS {
            return .violation(.qosNotSupported, "PUBLISH at QoS \(publish.qos.rawValue) above the maximum QoS \(configuration.maximumQoS.rawValue)", specRule: "MQTT-3.2.2-11")
        }
        if publish.retain && !configuration.retainAvailable {
            return .violation(.retainNotSupported, "retained PUBLISH while retain is not available", specRule: "MQTT-3.2.2-14")
        }
        // [MQTT-3.3.1-3]: onward DUP is decided per outgoing packet, never copied.
        publish.dup = false

        guard publish.qos != .atMostOnce else {
            actions.append(.storePublish(publish))
            return nil
        }
        guard let identifier = publish.packetIdentifier, identifier != 0 else {
            return .violation(.protocolError, "QoS \(publish.qos.rawValue) PUBLISH without a packet identifier", specRule: "MQTT-2.2.1-3")
        }
        if let pending = connected.inboundPending[identifier] {
            // A resend of a PUBLISH the store has not answered yet: its acknowledgement is on the way, and the
            // message must not be stored twice ([MQTT-4.3.3-10]). A non-DUP QoS 1 reuse is a new message on an
            // identifier still in use.
            if pending.qos == publish.qos && (received.dup || publish.qos == .exactlyOnce) {
                return nil
            }
            return .violation(.protocolError, "packet identifier \(identifier) reused while its PUBLISH is unacknowledged", specRule: "MQTT-2.2.1-3")
        }
        if connected.awaitingPubRel.contains(identifier) {
            guard publish.qos == .exactlyOnce else {
                return .violation(.protocolError, "QoS 1 PUBLISH reuses packet identifier \(identifier) of a QoS 2 flow awaiting PUBREL", specRule: "MQTT-2.2.1-3")
            }
            // [MQTT-4.3.3-10]: already stored; acknowledge again, do not store again.
            actions.append(.send(.pubRec(PubAckPacket(packetIdentifier: identifier))))
            return nil
        }
        if connected.clientPacketIdentifierInUse(identifier) {
            return .violation(.protocolError, "PUBLISH reuses packet identifier \(identifier) of an unanswered SUBSCRIBE or UNSUBSCRIBE", specRule: "MQTT-2.2.1-3")
        }
        // [MQTT-3.3.4-7]: one more than Receive Maximum unacknowledged is DISCONNECT 0x93 (§3.3.4). 3.1/3.1.1
        // clients were told no limit; their packet identifiers bound them.
        if version.hasProperties && connected.inboundUnacknowledgedCount >= Int(configuration.receiveMaximum) {
            return .violation(.receiveMaximumExceeded, "more than Receive Maximum (\(configuration.receiveMaximum)) QoS 1/2 PUBLISHes unacknowledged", specRule: "MQTT-3.3.4-7")
        }
        connected.inboundPending[identifier] = InboundPublish(qos: publish.qos, outcome: nil)
        connected.inboundOrder.append(identifier)
        actions.append(.storePublish(publish))
        return nil
    }

    /// The store made an inbound QoS 1/2 message durable: PUBACK (QoS 1) or PUBREC (QoS 2), in the order
    /// the PUBLISHes arrived.
    public mutating func publishStored(packetIdentifier: UInt16) -> [Action] {
        inboundPublishAnswered(packetIdentifier, .stored)
    }

    /// The store refused an inbound QoS 1/2 message: v5 clients get `reasonCode` (a PUBACK/PUBREC failure
    /// code such as 0x87 Not authorized or 0x97 Quota exceeded) in the PUBACK or PUBREC; 3.1/3.1.1 clients
    /// cannot be told and are disconnected (3.1.1 [MQTT-3.3.5-2]).
    public mutating func publishRefused(packetIdentifier: UInt16, reasonCode: MQTTReasonCode, reasonString: String? = nil) -> [Action] {
        let code = reasonCode.isFailure && reasonCode.isValid(in: .pubAck) ? reasonCode : .unspecifiedError
        return inboundPublishAnswered(packetIdentifier, .refused(code, reasonString: reasonString))
    }

    private mutating func inboundPublishAnswered(_ identifier: UInt16, _ outcome: InboundPublish.Outcome) -> [Action] {
        guard case .connected(var connected) = phase else { return [] }
        // An identifier not pending belongs to an earlier connection: its flow ended with that connection.
        guard var pending = connected.inboundPending[identifier], pending.outcome == nil else { return [] }
        phase = .modifying
        pending.outcome = outcome
        connected.inboundPending[identifier] = pending
        var actions: [Action] = []
        if let termination = sendInboundAcknowledgements(&connected, &actions) {
            return actions + terminate(&connected, termination)
        }
        phase = .connected(connected)
        return actions
    }

    /// Sends the acknowledgements of the answered prefix of inbound PUBLISHes, so they leave in arrival
    /// order (the ordering of §4.6 that [MQTT-4.6.0-2] and [MQTT-4.6.0-3] ask of clients).
    private func sendInboundAcknowledgements(_ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        let hasReasonCodes = connected.parameters.protocolVersion.hasProperties
        while let identifier = connected.inboundOrder.first, let pending = connected.inboundPending[identifier], let outcome = pending.outcome {
            connected.inboundOrder.removeFirst()
            connected.inboundPending[identifier] = nil
            switch (pending.qos, outcome) {
            case (.atLeastOnce, .stored):
                actions.append(.send(.pubAck(PubAckPacket(packetIdentifier: identifier))))  // [MQTT-4.3.2-4]
            case (.exactlyOnce, .stored):
                connected.awaitingPubRel.insert(identifier)
                actions.append(.send(.pubRec(PubAckPacket(packetIdentifier: identifier))))  // [MQTT-4.3.3-8]
            case (.atLeastOnce, .refused(let code, let reasonString)), (.exactlyOnce, .refused(let code, let reasonString)):
                guard hasReasonCodes else {
                    return Termination(
                        reason: CloseReason(kind: .serverError, reasonCode: code, detail: "the store refused the message with packet identifier \(identifier)", specRule: "MQTT-3.3.5-2 (3.1.1)"),
                        sendDisconnect: false, publishWill: true
                    )
                }
                // A refusing PUBREC ends the QoS 2 flow: the identifier is free again ([MQTT-4.3.3-9]).
                var ack = PubAckPacket(packetIdentifier: identifier, reasonCode: code)
                // Only when the client asked for problem information ([MQTT-3.1.2-29]) and the packet still
                // fits its Maximum Packet Size ([MQTT-3.4.2-2], [MQTT-3.5.2-2]).
                if let reasonString, connected.parameters.requestProblemInformation {
                    var withReason = ack
                    withReason.properties = [.reasonString(reasonString)]
                    if fits(pending.qos == .atLeastOnce ? .pubAck(withReason) : .pubRec(withReason), connected.parameters) { ack = withReason }
                }
                actions.append(.send(pending.qos == .atLeastOnce ? .pubAck(ack) : .pubRec(ack)))
            case (.atMostOnce, _):
                preconditionFailure("QoS 0 PUBLISHes are never pending")
            }
        }
        return nil
    }

    private func pubRelReceived(_ pubRel: PubAckPacket, _ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        let identifier = pubRel.packetIdentifier
        if connected.awaitingPubRel.remove(identifier) != nil {
            // [MQTT-4.3.3-11]; the identifier leaves the stored session before PUBCOMP frees it for reuse
            // ([MQTT-4.3.3-12]), so a new message on it is never mistaken for a resend after a crash.
            actions.append(.releaseInboundPacketIdentifier(identifier))
            actions.append(.send(.pubComp(PubAckPacket(packetIdentifier: identifier))))
            return nil
        }
        if connected.inboundPending[identifier] != nil {
            return .violation(.protocolError, "PUBREL for packet identifier \(identifier) before its PUBREC", specRule: nil)
        }
        // A PUBREL resent after its PUBCOMP was lost: answer it, 0x92 in v5 (§3.7.2.1), [MQTT-4.3.3-11].
        let code: MQTTReasonCode = connected.parameters.protocolVersion.hasProperties ? .packetIdentifierNotFound : .success
        actions.append(.send(.pubComp(PubAckPacket(packetIdentifier: identifier, reasonCode: code))))
        return nil
    }

    // MARK: - SUBSCRIBE, UNSUBSCRIBE, DISCONNECT

    private func subscribeReceived(_ subscribe: SubscribePacket, _ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        let identifier = subscribe.packetIdentifier
        let version = connected.parameters.protocolVersion
        if connected.clientPacketIdentifierInUse(identifier) {
            return .violation(.protocolError, "SUBSCRIBE reuses packet identifier \(identifier) of an unfinished flow", specRule: "MQTT-2.2.1-3")
        }
        if !subscribe.properties.subscriptionIdentifiers.isEmpty && !configuration.subscriptionIdentifiersAvailable {
            // §3.2.2.3.12: DISCONNECT 0xA1.
            return .violation(.subscriptionIdentifiersNotSupported, "Subscription Identifier while they are not available", specRule: nil)
        }
        func failure(_ code: MQTTReasonCode) -> MQTTReasonCode { version.hasProperties ? code : .unspecifiedError }
        guard subscribe.subscriptions.count <= configuration.maximumTopicFiltersPerPacket else {
            // [MQTT-3.8.4-1], [MQTT-3.8.4-6]: answered all the same, one failure per filter.
            let codes = Array(repeating: failure(.quotaExceeded), count: subscribe.subscriptions.count)
            actions.append(.send(.subAck(SubAckPacket(packetIdentifier: identifier, reasonCodes: codes))))
            return nil
        }
        var reasonCodes: [MQTTReasonCode?] = []
        var accepted: [Subscription] = []
        for var subscription in subscribe.subscriptions {
            let filter: TopicFilter
            do throws(TopicError) {
                filter = try TopicFilter(subscription.topicFilter)
            } catch {
                reasonCodes.append(failure(.topicFilterInvalid))
                continue
            }
            if filter.isShared && !configuration.sharedSubscriptionAvailable {
                reasonCodes.append(failure(.sharedSubscriptionsNotSupported))
            } else if filter.hasWildcards && !configuration.wildcardSubscriptionAvailable {
                reasonCodes.append(failure(.wildcardSubscriptionsNotSupported))
            } else {
                // [MQTT-3.2.2-10]: any requested QoS is accepted and granted at most the server's maximum.
                subscription.maximumQoS = min(subscription.maximumQoS, configuration.maximumQoS)
                accepted.append(subscription)
                reasonCodes.append(nil)
            }
        }
        let pending = PendingSubscribe(reasonCodes: reasonCodes, grantCeilings: accepted.map(\.maximumQoS))
        if accepted.isEmpty {
            actions.append(.send(.subAck(subAck(identifier, pending, storeCodes: [], version))))
            return nil
        }
        connected.pendingSubscribes[identifier] = pending
        actions.append(.subscribe(SubscribePacket(packetIdentifier: identifier, subscriptions: accepted, properties: subscribe.properties)))
        return nil
    }

    /// The store answered a `subscribe`: one reason code per subscription it was given, in order.
    /// Sends the SUBACK with a code for every topic filter of the client's SUBSCRIBE ([MQTT-3.8.4-6],
    /// [MQTT-3.9.3-1]); granted QoS is capped at what was asked and the server's maximum.
    public mutating func subscribeCompleted(packetIdentifier: UInt16, reasonCodes: [MQTTReasonCode]) -> [Action] {
        guard case .connected(var connected) = phase else { return [] }
        guard let pending = connected.pendingSubscribes[packetIdentifier] else { return [] }
        precondition(reasonCodes.count == pending.grantCeilings.count, "one reason code per subscription handed to the store")
        phase = .modifying
        connected.pendingSubscribes[packetIdentifier] = nil
        let packet = subAck(packetIdentifier, pending, storeCodes: reasonCodes, connected.parameters.protocolVersion)
        phase = .connected(connected)
        return [.send(.subAck(packet))]
    }

    private func subAck(_ identifier: UInt16, _ pending: PendingSubscribe, storeCodes: [MQTTReasonCode], _ version: MQTTProtocolVersion) -> SubAckPacket {
        var storeIndex = 0
        let codes = pending.reasonCodes.map { preset -> MQTTReasonCode in
            if let preset { return preset }
            let code = storeCodes[storeIndex]
            let ceiling = pending.grantCeilings[storeIndex]
            storeIndex += 1
            // Reason codes 0x00 ... 0x02 are the granted QoS ([MQTT-3.8.4-7]), never above what was asked
            // or the server's maximum.
            if let granted = MQTTQoS(rawValue: code.rawValue) {
                return .granted(min(granted, ceiling))
            }
            guard code.isFailure, version.hasProperties, code.isValid(in: .subAck) else { return .unspecifiedError }
            return code
        }
        return SubAckPacket(packetIdentifier: identifier, reasonCodes: codes)
    }

    private func unsubscribeReceived(_ unsubscribe: UnsubscribePacket, _ connected: inout Connected, _ actions: inout [Action]) -> Termination? {
        let identifier = unsubscribe.packetIdentifier
        if connected.clientPacketIdentifierInUse(identifier) {
            return .violation(.protocolError, "UNSUBSCRIBE reuses packet identifier \(identifier) of an unfinished flow", specRule: "MQTT-2.2.1-3")
        }
        guard unsubscribe.topicFilters.count <= configuration.maximumTopicFiltersPerPacket else {
            // 3.1.1's UNSUBACK has no failure code; v5's has no "quota" one.
            guard connected.parameters.protocolVersion.hasProperties else {
                return Termination(
                    reason: CloseReason(kind: .limitExceeded, reasonCode: .quotaExceeded, detail: "UNSUBSCRIBE with \(unsubscribe.topicFilters.count) topic filters, limit \(configuration.maximumTopicFiltersPerPacket)"),
                    sendDisconnect: false, publishWill: true
                )
            }
            let codes = Array(repeating: MQTTReasonCode.implementationSpecificError, count: unsubscribe.topicFilters.count)
            actions.append(.send(.unsubAck(UnsubAckPacket(packetIdentifier: identifier, reasonCodes: codes))))
            return nil
        }
        connected.pendingUnsubscribes[identifier] = unsubscribe.topicFilters.count
        actions.append(.unsubscribe(unsubscribe))
        return nil
    }

    /// The store answered an `unsubscribe`: one reason code per topic filter (0x00 Success, 0x11 No
    /// subscription existed, or a failure). Sends the UNSUBACK ([MQTT-3.10.4-4], [MQTT-3.11.3-1]); 3.1.1
    /// UNSUBACKs carry no codes.
    public mutating func unsubscribeCompleted(packetIdentifier: UInt16, reasonCodes: [MQTTReasonCode]) -> [Action] {
        guard case .connected(var connected) = phase else { return [] }
        guard let filterCount = connected.pendingUnsubscribes[packetIdentifier] else { return [] }
        precondition(reasonCodes.count == filterCount, "one reason code per topic filter")
        phase = .modifying
        connected.pendingUnsubscribes[packetIdentifier] = nil
        var packet = UnsubAckPacket(packetIdentifier: packetIdentifier)
        if connected.parameters.protocolVersion.hasProperties {
            packet.reasonCodes = reasonCodes.map { $0.isValid(in: .unsubAck) ? $0 : .unspecifiedError }
        }
        phase = .connected(connected)
        return [.send(.unsubAck(packet))]
    }

    private func disconnectReceived(_ disconnect: DisconnectPacket, _ connected: Connected) -> Termination {
        let parameters = connected.parameters
        guard parameters.protocolVersion.hasProperties else {
            // 3.1.1 [MQTT-3.14.4-3]: the will is discarded.
            return Termination(
                reason: CloseReason(kind: .clientDisconnected, reasonCode: .normalDisconnection, detail: "client sent DISCONNECT"),
                sendDisconnect: false, publishWill: false
            )
        }
        var newExpiry: UInt32?
        if let expiry = disconnect.properties.sessionExpiryInterval {
            if parameters.requestedSessionExpiryIntervalSeconds == 0 && expiry != 0 {
                // §3.14.2.2.2: not a valid DISCONNECT; the server answers with DISCONNECT 0x82.
                return .violation(.protocolError, "DISCONNECT sets Session Expiry Interval \(expiry) after CONNECT set 0", specRule: "§3.14.2.2.2")
            }
            newExpiry = cappedSessionExpiry(expiry)
        }
        // [MQTT-3.14.4-3]: only Normal disconnection discards the will; 0x04 and error codes publish it ([MQTT-3.1.2-8]).
        return Termination(
            reason: CloseReason(kind: .clientDisconnected, reasonCode: disconnect.reasonCode, detail: "client sent DISCONNECT \(disconnect.reasonCode)"),
            sendDisconnect: false,
            publishWill: disconnect.reasonCode != .normalDisconnection,
            sessionExpiryIntervalSeconds: newExpiry
        )
    }
}

import MQTTCore
import NIOCore

/// The MQTT client protocol as a pure state machine: methods named after events take what happened and
/// return the actions to run. No channel, clock or logger inside: time comes in as `NIODeadline`
/// parameters, so tests drive it without I/O.
///
/// It owns the connection's state (connecting, connected, closing, ...) and the session state
/// (`ClientSession`), which outlives connections so a resumed session can finish its QoS 1 and 2 flows.
/// Every request (connect, publish, subscribe, unsubscribe, close) is named by a `RequestID` chosen by the
/// caller; each one ends with exactly one `succeed...` or `fail` action.
struct ClientStateMachine {
    typealias RequestID = UInt64

    /// What the machine asks its runner to do, in order.
    enum Action: Equatable {
        /// Open a TCP connection to the configured server; report `connectionEstablished` or `connectionFailed`.
        case openConnection
        /// Start the CONNACK timer (`Configuration.connectTimeout`); report `connAckTimeoutFired` when it fires.
        case startConnAckTimer
        /// Replace the keep-alive timer: call `keepAliveTimerFired` at this time.
        case scheduleKeepAlive(at: NIODeadline)
        /// Set the encoder's limit to the server's Maximum Packet Size ([MQTT-3.2.2-15]).
        case setMaximumOutboundPacketSize(Int?)
        /// Write a packet.
        case send(MQTTPacket)
        /// Write a QoS 0 PUBLISH and complete the request when the write completes.
        case sendPublish(PublishPacket, completing: RequestID)
        /// Hand a received message to the application, then write `acknowledgement` (PUBACK or PUBREC).
        /// If the application cannot take it, report `deliveryRefused` instead of writing the acknowledgement.
        case deliver(MQTTMessage, acknowledgement: MQTTPacket?)
        /// Close the network connection (after flushing what was written); report `connectionClosed`.
        case close
        /// The connection's close is final; tell whoever waits for it why (nil: the application asked).
        case reportClosed(MQTTClientError?)
        case succeedConnect(RequestID, ConnAckPacket)
        case succeedPublish(RequestID)
        case succeedSubscribe(RequestID, SubAckPacket)
        case succeedUnsubscribe(RequestID, UnsubAckPacket)
        /// A `disconnect` or `closeAbruptly` request is done: the connection is closed.
        case succeedClose(RequestID)
        case fail(RequestID, MQTTClientError)
    }

    enum State {
        case disconnected
        /// TCP connection being opened.
        case connecting(Connecting)
        /// CONNECT sent.
        case awaitingConnAck(Connecting)
        case connected(Connected)
        /// `close` asked for; waiting for `connectionClosed`.
        case closing(Closing)
        /// Final: every request fails with `.shutdown`.
        case shutdown
    }

    struct Connecting {
        var requestID: RequestID
        var cleanStart: Bool
        /// `disconnect`/`closeAbruptly` requests that arrived while the TCP connection was being opened.
        var closeRequests: [RequestID] = []
        /// When CONNECT was sent: the keep-alive interval starts there.
        var connectSentAt: NIODeadline = .uptimeNanoseconds(0)
    }

    struct Connected {
        var protocolVersion: MQTTProtocolVersion
        /// nil when keep-alive is off.
        var keepAlive: TimeAmount?
        var pingResponseTimeout: TimeAmount
        var lastPacketSentAt: NIODeadline
        var pingRequestSentAt: NIODeadline?
        /// min(our `maxInflightPublishes`, the server's Receive Maximum).
        var sendWindow: Int
        var serverMaximumPacketSizeBytes: Int?
        var serverMaximumQoS: MQTTQoS
        var serverRetainAvailable: Bool
        /// Whether the server keeps the session after this connection closes.
        var sessionContinuesAfterClose: Bool
        /// Inbound Topic Alias → topic name; exists only within one connection ([MQTT-3.3.2-7]).
        var topicAliases: [UInt16: String] = [:]
        var pendingSubscribes: [UInt16: PendingRequest] = [:]
        var pendingUnsubscribes: [UInt16: PendingRequest] = [:]
    }

    struct PendingRequest {
        var requestID: RequestID
        var topicFilters: [String]
    }

    struct Closing {
        /// Why the connection is closing; nil when the application asked.
        var reason: MQTTClientError?
        var closeRequests: [RequestID]
    }

    let configuration: MQTTClient.Configuration
    private(set) var state: State = .disconnected
    private(set) var session = ClientSession()
    /// The identifier a 5.0 server assigned (§3.2.2.3.7); used for later connects when ours is empty.
    private(set) var assignedClientIdentifier: String?

    init(configuration: MQTTClient.Configuration) {
        self.configuration = configuration
    }

    var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    // MARK: - Connecting

    mutating func connectRequested(_ requestID: RequestID, cleanStart: Bool? = nil) -> [Action] {
        switch state {
        case .disconnected:
            let cleanStart = cleanStart ?? configuration.cleanStart
            // A CONNECT the encoder refuses (a will property not allowed, an oversized field) fails now,
            // not as a CONNACK timeout.
            do throws(MQTTEncodeError) {
                _ = try MQTTPacketEncoder(protocolVersion: configuration.protocolVersion).encodedSize(of: .connect(connectPacket(cleanStart: cleanStart)))
            } catch {
                return [.fail(requestID, .encodeFailed(error))]
            }
            state = .connecting(Connecting(requestID: requestID, cleanStart: cleanStart))
            return [.openConnection]
        case .connecting, .awaitingConnAck, .connected, .closing:
            return [.fail(requestID, .alreadyConnected)]
        case .shutdown:
            return [.fail(requestID, .shutdown)]
        }
    }

    /// The TCP connection is open: send CONNECT.
    mutating func connectionEstablished(now: NIODeadline) -> [Action] {
        switch state {
        case .connecting(var connecting):
            guard connecting.closeRequests.isEmpty else {
                state = .closing(Closing(reason: nil, closeRequests: connecting.closeRequests))
                return [.fail(connecting.requestID, .connectionClosed), .close]
            }
            connecting.connectSentAt = now
            state = .awaitingConnAck(connecting)
            return [.send(.connect(connectPacket(cleanStart: connecting.cleanStart))), .startConnAckTimer]
        case .shutdown:
            return [.close]
        case .disconnected, .awaitingConnAck, .connected, .closing:
            preconditionFailure("connectionEstablished in \(state)")
        }
    }

    /// The TCP connection could not be opened.
    mutating func connectionFailed(_ error: MQTTClientError) -> [Action] {
        switch state {
        case .connecting(let connecting):
            state = .disconnected
            return [.fail(connecting.requestID, error)] + connecting.closeRequests.map { .succeedClose($0) }
        case .shutdown:
            return []
        case .disconnected, .awaitingConnAck, .connected, .closing:
            preconditionFailure("connectionFailed in \(state)")
        }
    }

    mutating func connAckTimeoutFired() -> [Action] {
        guard case .awaitingConnAck(let connecting) = state else { return [] }
        state = .closing(Closing(reason: .connectTimeout, closeRequests: []))
        return [.fail(connecting.requestID, .connectTimeout), .close]
    }

    func connectPacket(cleanStart: Bool) -> ConnectPacket {
        var clientIdentifier = configuration.clientIdentifier
        if clientIdentifier.isEmpty, let assignedClientIdentifier {
            clientIdentifier = assignedClientIdentifier
        }
        var will = configuration.will
        if !configuration.protocolVersion.hasProperties { will?.properties = [] }
        return ConnectPacket(
            protocolVersion: configuration.protocolVersion,
            clientIdentifier: clientIdentifier,
            cleanStart: cleanStart,
            keepAliveSeconds: configuration.keepAliveSeconds,
            username: configuration.username,
            password: configuration.password,
            will: will,
            properties: configuration.connectProperties
        )
    }

    private mutating func connAckReceived(_ connAck: ConnAckPacket, _ connecting: Connecting) -> [Action] {
        let version = configuration.protocolVersion
        if connAck.reasonCode.isFailure {
            state = .closing(Closing(reason: nil, closeRequests: connecting.closeRequests))
            let error = MQTTClientError.connectionRefused(reasonCode: connAck.reasonCode, reasonString: connAck.properties.reasonString)
            return [.fail(connecting.requestID, error), .close]
        }
        // [MQTT-3.2.2-2]: a server accepting Clean Start 1 must answer Session Present 0.
        if connecting.cleanStart && connAck.sessionPresent {
            let error = MQTTClientError.protocolViolation(reasonCode: .protocolError, detail: "CONNACK with Session Present 1 in answer to Clean Start 1 [MQTT-3.2.2-2]")
            state = .closing(Closing(reason: error, closeRequests: connecting.closeRequests))
            return disconnectPacket(.protocolError, version: version) + [.fail(connecting.requestID, error), .close]
        }
        let properties = connAck.properties
        if let assigned = properties.assignedClientIdentifier {
            assignedClientIdentifier = assigned
        }
        // [MQTT-3.2.2-21]: the Server Keep Alive replaces ours.
        let keepAliveSeconds = properties.serverKeepAlive ?? configuration.keepAliveSeconds
        let keepAlive: TimeAmount? = keepAliveSeconds == 0 ? nil : .seconds(Int64(keepAliveSeconds))
        let sessionContinues: Bool
        if version.hasProperties {
            let expiry = properties.sessionExpiryInterval ?? configuration.sessionExpiryIntervalSeconds
            sessionContinues = expiry > 0
        } else {
            sessionContinues = !connecting.cleanStart  // [MQTT-3.1.2-6] (3.1.1): a clean session ends with the connection
        }
        let connected = Connected(
            protocolVersion: version,
            keepAlive: keepAlive,
            pingResponseTimeout: configuration.pingResponseTimeout ?? keepAlive ?? .zero,
            lastPacketSentAt: connecting.connectSentAt,
            pingRequestSentAt: nil,
            sendWindow: max(1, min(configuration.maxInflightPublishes, Int(properties.receiveMaximum ?? 65_535))),
            serverMaximumPacketSizeBytes: properties.maximumPacketSize.map { Int($0) },
            serverMaximumQoS: properties.maximumQoS.flatMap { MQTTQoS(rawValue: $0) } ?? .exactlyOnce,
            serverRetainAvailable: properties.retainAvailable.map { $0 != 0 } ?? true,
            sessionContinuesAfterClose: sessionContinues
        )

        var actions: [Action] = []
        if let maximum = connected.serverMaximumPacketSizeBytes {
            actions.append(.setMaximumOutboundPacketSize(maximum))
        }
        actions.append(.succeedConnect(connecting.requestID, connAck))
        // Without the session the server knows none of the inflight messages: their outcome is unknown.
        for requestID in session.connectionAccepted(sessionPresent: connAck.sessionPresent) {
            actions.append(.fail(requestID, .sessionNotResumed))
        }
        // [MQTT-4.4.0-1]: resend unacknowledged PUBLISH and PUBREL, in order, then send what was queued.
        fillWindow(connected, into: &actions)
        if let keepAlive {
            actions.append(.scheduleKeepAlive(at: connected.lastPacketSentAt + keepAlive))
        }
        // Close requests made while awaiting CONNACK moved the machine to `.closing` already.
        precondition(connecting.closeRequests.isEmpty)
        state = .connected(connected)
        return actions
    }

    // MARK: - Inbound packets

    mutating func packetReceived(_ packet: MQTTPacket) -> [Action] {
        switch state {
        case .awaitingConnAck(let connecting):
            guard case .connAck(let connAck) = packet else {
                // [MQTT-3.2.0-1]: CONNACK is the server's first packet.
                return protocolViolation(.protocolError, "\(packet.type) before CONNACK [MQTT-3.2.0-1]")
            }
            return connAckReceived(connAck, connecting)
        case .connected(var connected):
            return connectedPacketReceived(packet, &connected)
        case .disconnected, .connecting, .closing, .shutdown:
            // Packets after we decided to close are not acted on.
            return []
        }
    }

    private mutating func connectedPacketReceived(_ packet: MQTTPacket, _ connected: inout Connected) -> [Action] {
        switch packet {
        case .publish(let publish):
            return publishReceived(publish, &connected)
        case .pubAck(let ack):
            guard session.stage(of: ack.packetIdentifier) == .awaitingPubAck else {
                return protocolViolation(.protocolError, "PUBACK for packet identifier \(ack.packetIdentifier), which awaits no PUBACK")
            }
            let requestID = session.complete(ack.packetIdentifier)!
            var actions: [Action] = []
            if ack.reasonCode.isFailure {
                actions.append(.fail(requestID, .publishRefused(reasonCode: ack.reasonCode, reasonString: ack.properties.reasonString)))
            } else {
                actions.append(.succeedPublish(requestID))
            }
            fillWindow(connected, into: &actions)
            return actions
        case .pubRec(let ack):
            switch session.stage(of: ack.packetIdentifier) {
            case .awaitingPubRec:
                if ack.reasonCode.isFailure {
                    // A refusing PUBREC ends the flow: no PUBREL (§4.3.3), and the slot is free again.
                    let requestID = session.complete(ack.packetIdentifier)!
                    var actions: [Action] = [.fail(requestID, .publishRefused(reasonCode: ack.reasonCode, reasonString: ack.properties.reasonString))]
                    fillWindow(connected, into: &actions)
                    return actions
                }
                session.released(ack.packetIdentifier)
                return [.send(.pubRel(PubAckPacket(packetIdentifier: ack.packetIdentifier)))]  // [MQTT-4.3.3-4]
            case .awaitingPubComp:
                // A repeated PUBREC: answer it again, PUBREL is idempotent.
                return [.send(.pubRel(PubAckPacket(packetIdentifier: ack.packetIdentifier)))]
            case .awaitingPubAck, nil:
                return protocolViolation(.protocolError, "PUBREC for packet identifier \(ack.packetIdentifier), which awaits no PUBREC")
            }
        case .pubComp(let ack):
            guard session.stage(of: ack.packetIdentifier) == .awaitingPubComp else {
                return protocolViolation(.protocolError, "PUBCOMP for packet identifier \(ack.packetIdentifier), which awaits no PUBCOMP")
            }
            // PUBCOMP can only say Success or Packet Identifier not found; either way the server took the
            // message at PUBREC, so the publish succeeded.
            let requestID = session.complete(ack.packetIdentifier)!
            var actions: [Action] = [.succeedPublish(requestID)]
            fillWindow(connected, into: &actions)
            return actions
        case .pubRel(let ack):
            // [MQTT-4.3.3-11]: always answer PUBREL with PUBCOMP; an unknown identifier is a resend of
            // a flow already completed.
            let known = session.inboundQoS2Released(ack.packetIdentifier)
            let reasonCode: MQTTReasonCode = known || !connected.protocolVersion.hasProperties ? .success : .packetIdentifierNotFound
            return [.send(.pubComp(PubAckPacket(packetIdentifier: ack.packetIdentifier, reasonCode: reasonCode)))]
        case .subAck(let subAck):
            guard let pending = connected.pendingSubscribes.removeValue(forKey: subAck.packetIdentifier) else {
                return protocolViolation(.protocolError, "SUBACK for packet identifier \(subAck.packetIdentifier), which awaits no SUBACK")
            }
            // [MQTT-3.9.3-1]: one reason code per topic filter.
            guard subAck.reasonCodes.count == pending.topicFilters.count else {
                return protocolViolation(.protocolError, "SUBACK with \(subAck.reasonCodes.count) reason codes for \(pending.topicFilters.count) topic filters [MQTT-3.9.3-1]")
            }
            session.packetIdentifiers.release(subAck.packetIdentifier)
            state = .connected(connected)
            return [.succeedSubscribe(pending.requestID, subAck)]
        case .unsubAck(let unsubAck):
            guard let pending = connected.pendingUnsubscribes.removeValue(forKey: unsubAck.packetIdentifier) else {
                return protocolViolation(.protocolError, "UNSUBACK for packet identifier \(unsubAck.packetIdentifier), which awaits no UNSUBACK")
            }
            // [MQTT-3.11.3-1]: in 5.0, one reason code per topic filter.
            if connected.protocolVersion.hasProperties && unsubAck.reasonCodes.count != pending.topicFilters.count {
                return protocolViolation(.protocolError, "UNSUBACK with \(unsubAck.reasonCodes.count) reason codes for \(pending.topicFilters.count) topic filters [MQTT-3.11.3-1]")
            }
            session.packetIdentifiers.release(unsubAck.packetIdentifier)
            state = .connected(connected)
            return [.succeedUnsubscribe(pending.requestID, unsubAck)]
        case .pingResp:
            connected.pingRequestSentAt = nil
            state = .connected(connected)
            return []
        case .disconnect(let disconnect):
            // The server is closing the connection; no DISCONNECT goes back ([MQTT-3.14.4-1] is the sender's).
            let error = MQTTClientError.serverDisconnected(reasonCode: disconnect.reasonCode, reasonString: disconnect.properties.reasonString)
            return closeConnection(reason: error, disconnect: nil, closeRequests: [])
        case .connAck:
            return protocolViolation(.protocolError, "a second CONNACK")
        case .connect, .subscribe, .unsubscribe, .pingReq:
            return protocolViolation(.protocolError, "\(packet.type) is a client-to-server packet")
        case .auth:
            // §4.12: without an Authentication Method in CONNECT the server must not send AUTH.
            return protocolViolation(.protocolError, "AUTH without enhanced authentication [MQTT-4.12.0-6]")
        }
    }

    private mutating func publishReceived(_ received: PublishPacket, _ connected: inout Connected) -> [Action] {
        var topic = received.topicName
        if let alias = received.properties.topicAlias {
            // §3.3.2.3.4: 0 and values above our Topic Alias Maximum are Protocol Errors ([MQTT-3.3.2-8], [MQTT-3.3.2-10]).
            guard alias != 0, alias <= configuration.topicAliasMaximum else {
                return protocolViolation(.topicAliasInvalid, "Topic Alias \(alias) outside 1...\(configuration.topicAliasMaximum)")
            }
            if topic.isEmpty {
                guard let mapped = connected.topicAliases[alias] else {
                    return protocolViolation(.protocolError, "Topic Alias \(alias) used before it was set")
                }
                topic = mapped
            } else {
                connected.topicAliases[alias] = topic
            }
        }
        let message = MQTTMessage(
            topic: topic, payload: received.payload, qos: received.qos, retain: received.retain, dup: received.dup,
            properties: received.properties
        )
        switch received.qos {
        case .atMostOnce:
            state = .connected(connected)
            return [.deliver(message, acknowledgement: nil)]
        case .atLeastOnce:
            state = .connected(connected)
            // [MQTT-4.3.2-4]
            return [.deliver(message, acknowledgement: .pubAck(PubAckPacket(packetIdentifier: received.packetIdentifier!)))]
        case .exactlyOnce:
            let identifier = received.packetIdentifier!
            let pubRec = MQTTPacket.pubRec(PubAckPacket(packetIdentifier: identifier))
            if session.inboundQoS2Identifiers.contains(identifier) {
                // [MQTT-4.3.3-9]: acknowledge again, do not deliver again.
                state = .connected(connected)
                return [.send(pubRec)]
            }
            // [MQTT-3.3.4-9]: the server may have at most our Receive Maximum QoS 1/2 messages unacknowledged;
            // QoS 1 is acknowledged at once, so only QoS 2 awaiting PUBREL can pile up.
            if connected.protocolVersion.hasProperties && session.inboundQoS2Identifiers.count >= Int(configuration.receiveMaximum) {
                return protocolViolation(.receiveMaximumExceeded, "more than Receive Maximum (\(configuration.receiveMaximum)) QoS 2 messages awaiting PUBREL [MQTT-3.3.4-9]")
            }
            _ = session.inboundQoS2Received(identifier)
            state = .connected(connected)
            return [.deliver(message, acknowledgement: pubRec)]
        }
    }

    /// The application could not take a message (its buffer is full): close without acknowledging it, so
    /// the server keeps it, and forget a QoS 2 identifier so a resend is delivered.
    mutating func deliveryRefused(_ message: MQTTMessage, acknowledgement: MQTTPacket?) -> [Action] {
        if case .pubRec(let pubRec) = acknowledgement {
            session.inboundQoS2Released(pubRec.packetIdentifier)
        }
        guard case .connected = state else { return [] }
        let error = MQTTClientError.messageBufferFull(limit: configuration.maxBufferedMessages)
        return closeConnection(reason: error, disconnect: nil, closeRequests: [])
    }

    // MARK: - Requests

    mutating func publishRequested(_ requestID: RequestID, _ publish: PublishPacket) -> [Action] {
        guard case .connected(let connected) = state else {
            return [.fail(requestID, notConnectedError)]
        }
        do throws(TopicError) {
            try TopicName.validate(publish.topicName)
        } catch {
            return [.fail(requestID, .invalidTopicName(publish.topicName, error))]
        }
        // [MQTT-3.2.2-11]
        guard publish.qos <= connected.serverMaximumQoS else {
            return [.fail(requestID, .qosNotSupported(requested: publish.qos, maximum: connected.serverMaximumQoS))]
        }
        // [MQTT-3.2.2-14]
        guard !publish.retain || connected.serverRetainAvailable else {
            return [.fail(requestID, .retainNotSupported)]
        }
        // A packet the encoder refuses would fail at the write with no one to tell; refuse it here, and
        // before it takes an inflight slot. Only packets that can fail are checked: with properties,
        // against a server's Maximum Packet Size ([MQTT-3.2.2-15]), or near the protocol's size limit.
        if connected.serverMaximumPacketSizeBytes != nil || !publish.properties.isEmpty
            || publish.payload.readableBytes > Self.largePayloadBytes
        {
            var checked = publish
            if checked.qos != .atMostOnce { checked.packetIdentifier = 1 }
            if let error = encodeError(.publish(checked), connected) {
                return [.fail(requestID, .encodeFailed(error))]
            }
        }
        switch publish.qos {
        case .atMostOnce:
            var packet = publish
            packet.packetIdentifier = nil
            packet.dup = false
            return [.sendPublish(packet, completing: requestID)]
        case .atLeastOnce, .exactlyOnce:
            guard session.queued.count < configuration.maxQueuedPublishes || session.sentCount < connected.sendWindow else {
                return [.fail(requestID, .publishQueueFull(limit: configuration.maxQueuedPublishes))]
            }
            session.enqueue(publish, requestID: requestID)
            var actions: [Action] = []
            fillWindow(connected, into: &actions)
            return actions
        }
    }

    mutating func subscribeRequested(_ requestID: RequestID, _ subscriptions: [Subscription], properties: MQTTProperties = []) -> [Action] {
        guard case .connected(var connected) = state else {
            return [.fail(requestID, notConnectedError)]
        }
        guard !subscriptions.isEmpty else { return [.fail(requestID, .noTopicFilters)] }  // [MQTT-3.8.3-2]
        for subscription in subscriptions {
            do throws(TopicError) {
                try TopicFilter.validate(subscription.topicFilter)
            } catch {
                return [.fail(requestID, .invalidTopicFilter(subscription.topicFilter, error))]
            }
        }
        if let error = encodeError(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: subscriptions, properties: properties)), connected) {
            return [.fail(requestID, .encodeFailed(error))]
        }
        guard let identifier = session.packetIdentifiers.allocate() else {
            return [.fail(requestID, .noPacketIdentifierAvailable)]
        }
        connected.pendingSubscribes[identifier] = PendingRequest(requestID: requestID, topicFilters: subscriptions.map(\.topicFilter))
        state = .connected(connected)
        let packet = SubscribePacket(packetIdentifier: identifier, subscriptions: subscriptions, properties: properties)
        return [.send(.subscribe(packet))]
    }

    mutating func unsubscribeRequested(_ requestID: RequestID, _ topicFilters: [String], properties: MQTTProperties = []) -> [Action] {
        guard case .connected(var connected) = state else {
            return [.fail(requestID, notConnectedError)]
        }
        guard !topicFilters.isEmpty else { return [.fail(requestID, .noTopicFilters)] }  // [MQTT-3.10.3-2]
        for filter in topicFilters {
            do throws(TopicError) {
                try TopicFilter.validate(filter)
            } catch {
                return [.fail(requestID, .invalidTopicFilter(filter, error))]
            }
        }
        if let error = encodeError(.unsubscribe(UnsubscribePacket(packetIdentifier: 1, topicFilters: topicFilters, properties: properties)), connected) {
            return [.fail(requestID, .encodeFailed(error))]
        }
        guard let identifier = session.packetIdentifiers.allocate() else {
            return [.fail(requestID, .noPacketIdentifierAvailable)]
        }
        connected.pendingUnsubscribes[identifier] = PendingRequest(requestID: requestID, topicFilters: topicFilters)
        state = .connected(connected)
        let packet = UnsubscribePacket(packetIdentifier: identifier, topicFilters: topicFilters, properties: properties)
        return [.send(.unsubscribe(packet))]
    }

    /// A clean close: DISCONNECT, then close. The server discards the will ([MQTT-3.1.2-10]) unless
    /// `reasonCode` is Disconnect with Will Message (5.0).
    mutating func disconnectRequested(_ requestID: RequestID, reasonCode: MQTTReasonCode = .normalDisconnection, properties: MQTTProperties = []) -> [Action] {
        closeRequested(requestID, disconnect: .disconnect(DisconnectPacket(reasonCode: reasonCode, properties: properties)))
    }

    /// Closes the network connection without DISCONNECT, so the server publishes the will.
    mutating func closeAbruptlyRequested(_ requestID: RequestID) -> [Action] {
        closeRequested(requestID, disconnect: nil)
    }

    private mutating func closeRequested(_ requestID: RequestID, disconnect: MQTTPacket?) -> [Action] {
        switch state {
        case .disconnected, .shutdown:
            return [.succeedClose(requestID)]
        case .connecting(var connecting):
            connecting.closeRequests.append(requestID)
            state = .connecting(connecting)
            return []
        case .awaitingConnAck(let connecting):
            state = .closing(Closing(reason: nil, closeRequests: connecting.closeRequests + [requestID]))
            return [.fail(connecting.requestID, .connectionClosed), .close]
        case .connected:
            return closeConnection(reason: nil, disconnect: disconnect, closeRequests: [requestID])
        case .closing(var closing):
            closing.closeRequests.append(requestID)
            state = .closing(closing)
            return []
        }
    }

    // MARK: - Timers and errors

    /// Keep alive (§3.1.2.10): PINGREQ when nothing was sent for the keep-alive interval
    /// ([MQTT-3.1.2-20]); close when a PINGREQ goes unanswered for the ping response timeout.
    mutating func keepAliveTimerFired(now: NIODeadline) -> [Action] {
        guard case .connected(var connected) = state, let keepAlive = connected.keepAlive else { return [] }
        if let pingSentAt = connected.pingRequestSentAt {
            let deadline = pingSentAt + connected.pingResponseTimeout
            if now >= deadline {
                return closeConnection(reason: .keepAliveTimeout, disconnect: nil, closeRequests: [])
            }
            return [.scheduleKeepAlive(at: deadline)]
        }
        let due = connected.lastPacketSentAt + keepAlive
        guard now >= due else { return [.scheduleKeepAlive(at: due)] }
        connected.pingRequestSentAt = now
        connected.lastPacketSentAt = now
        state = .connected(connected)
        return [.send(.pingReq), .scheduleKeepAlive(at: now + min(keepAlive, connected.pingResponseTimeout))]
    }

    /// Packets were written at `now`: the keep-alive interval restarts.
    mutating func packetsSent(now: NIODeadline) {
        guard case .connected(var connected) = state else { return }
        connected.lastPacketSentAt = now
        state = .connected(connected)
    }

    /// The pipeline reported an error: a packet that could not be decoded or a network error.
    mutating func errorCaught(_ error: MQTTClientError) -> [Action] {
        var disconnect: MQTTPacket?
        if case .decodeFailed(let decodeError) = error {
            disconnect = .disconnect(DisconnectPacket(reasonCode: decodeError.reasonCode))  // §4.13
        }
        switch state {
        case .awaitingConnAck(let connecting):
            state = .closing(Closing(reason: error, closeRequests: connecting.closeRequests))
            return [.fail(connecting.requestID, error), .close]
        case .connected:
            return closeConnection(reason: error, disconnect: configuration.protocolVersion.hasProperties ? disconnect : nil, closeRequests: [])
        case .disconnected, .connecting, .closing, .shutdown:
            return []
        }
    }

    /// The network connection closed, whoever closed it.
    mutating func connectionClosed() -> [Action] {
        switch state {
        case .connecting(let connecting), .awaitingConnAck(let connecting):
            state = .disconnected
            return [.fail(connecting.requestID, .connectionClosed)] + connecting.closeRequests.map { .succeedClose($0) }
        case .connected:
            // Closed by the server or the network.
            var actions = closeConnection(reason: .connectionClosed, disconnect: nil, closeRequests: [], channelIsOpen: false)
            state = .disconnected
            actions.append(.reportClosed(.connectionClosed))
            return actions
        case .closing(let closing):
            state = .disconnected
            return closing.closeRequests.map { .succeedClose($0) } + [.reportClosed(closing.reason)]
        case .disconnected, .shutdown:
            return []
        }
    }

    /// Fails every request with `.shutdown` and closes; the machine accepts no requests afterwards.
    mutating func shutdownRequested() -> [Action] {
        var actions: [Action] = []
        var needsClose = false
        switch state {
        case .disconnected, .shutdown:
            break
        case .connecting(let connecting):
            // The runner reports `connectionEstablished` or `connectionFailed`; both end in `.shutdown`.
            actions.append(.fail(connecting.requestID, .shutdown))
            actions += connecting.closeRequests.map { .succeedClose($0) }
        case .awaitingConnAck(let connecting):
            actions.append(.fail(connecting.requestID, .shutdown))
            actions += connecting.closeRequests.map { .succeedClose($0) }
            needsClose = true
        case .connected(let connected):
            for pending in connected.pendingSubscribes.values { actions.append(.fail(pending.requestID, .shutdown)) }
            for pending in connected.pendingUnsubscribes.values { actions.append(.fail(pending.requestID, .shutdown)) }
            actions.append(.reportClosed(.shutdown))
            needsClose = true
        case .closing(let closing):
            actions += closing.closeRequests.map { .succeedClose($0) }
            actions.append(.reportClosed(closing.reason ?? .shutdown))
        }
        for requestID in session.end() {
            actions.append(.fail(requestID, .shutdown))
        }
        state = .shutdown
        if needsClose { actions.append(.close) }
        return actions
    }

    // MARK: - Helpers

    /// Payloads above this are checked against the protocol's 256 MiB packet limit before sending.
    static let largePayloadBytes = 128 * 1024 * 1024

    /// Why the encoder would refuse `packet` on this connection, if it would. A PUBLISH payload is
    /// counted, not copied.
    private func encodeError(_ packet: MQTTPacket, _ connected: Connected) -> MQTTEncodeError? {
        let encoder = MQTTPacketEncoder(protocolVersion: connected.protocolVersion, maxPacketSizeBytes: connected.serverMaximumPacketSizeBytes)
        do throws(MQTTEncodeError) {
            _ = try encoder.encodedSize(of: packet)
            return nil
        } catch {
            return error
        }
    }

    private var notConnectedError: MQTTClientError {
        if case .shutdown = state { return .shutdown }
        return .notConnected
    }

    /// Sends resends and queued publishes while the inflight window has room.
    private mutating func fillWindow(_ connected: Connected, into actions: inout [Action]) {
        while let packet = session.nextPacket(window: connected.sendWindow) {
            actions.append(.send(packet))
        }
    }

    /// Leaves `.connected` for `.closing`: fails what cannot outlive the connection, optionally sends
    /// DISCONNECT, and closes. Inflight publishes wait for a resumed session if the server keeps it.
    private mutating func closeConnection(
        reason: MQTTClientError?, disconnect: MQTTPacket?, closeRequests: [RequestID], channelIsOpen: Bool = true
    ) -> [Action] {
        guard case .connected(let connected) = state else { preconditionFailure("closeConnection in \(state)") }
        let error = reason ?? .connectionClosed
        var actions: [Action] = []
        for (identifier, pending) in connected.pendingSubscribes.sorted(by: { $0.key < $1.key }) {
            session.packetIdentifiers.release(identifier)
            actions.append(.fail(pending.requestID, error))
        }
        for (identifier, pending) in connected.pendingUnsubscribes.sorted(by: { $0.key < $1.key }) {
            session.packetIdentifiers.release(identifier)
            actions.append(.fail(pending.requestID, error))
        }
        for requestID in session.connectionClosed(sessionContinues: connected.sessionContinuesAfterClose) {
            actions.append(.fail(requestID, error))
        }
        if channelIsOpen {
            if let disconnect { actions.append(.send(disconnect)) }
            actions.append(.close)
        }
        state = .closing(Closing(reason: reason, closeRequests: closeRequests))
        return actions
    }

    /// The server broke the protocol: in 5.0 say why with DISCONNECT (§4.13), then close.
    private mutating func protocolViolation(_ reasonCode: MQTTReasonCode, _ detail: String) -> [Action] {
        let error = MQTTClientError.protocolViolation(reasonCode: reasonCode, detail: detail)
        let disconnect: MQTTPacket? = configuration.protocolVersion.hasProperties ? .disconnect(DisconnectPacket(reasonCode: reasonCode)) : nil
        switch state {
        case .awaitingConnAck(let connecting):
            state = .closing(Closing(reason: error, closeRequests: connecting.closeRequests))
            return (disconnect.map { [.send($0)] } ?? []) + [.fail(connecting.requestID, error), .close]
        case .connected:
            return closeConnection(reason: error, disconnect: disconnect, closeRequests: [])
        case .disconnected, .connecting, .closing, .shutdown:
            return []
        }
    }

    private func disconnectPacket(_ reasonCode: MQTTReasonCode, version: MQTTProtocolVersion) -> [Action] {
        version.hasProperties ? [.send(.disconnect(DisconnectPacket(reasonCode: reasonCode)))] : []
    }
}

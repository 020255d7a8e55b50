import NIOCore

/// The server side of one MQTT 3.1, 3.1.1 or 5.0 connection as a pure state machine: methods named after
/// events take what happened and return the actions to run, in order. There is no channel, clock, logger
/// or store inside; time comes in as milliseconds, and everything slow (authentication, the store) is an
/// action out and an event back. The gateway's channel handler only runs the actions, and tests drive the
/// machine without I/O.
///
/// ```
/// awaitingConnect ─CONNECT─▶ authenticating ─allowed─▶ attachingSession ─attached─▶ connected
///        │                        │                         │                          │
///        └────────────── refusal, timeout, error ───────────┴──────────────────────────┴─▶ closing ─▶ closed
/// ```
///
/// It owns what one network connection needs: the negotiated limits, inbound topic aliases, inbound QoS 1/2
/// flows awaiting the store, QoS 2 identifiers awaiting PUBREL, outbound deliveries in flight and their
/// packet identifiers. Everything that must survive the connection lives in the store, reached through
/// actions (`attachSession`, `storePublish`, `recordDeliveryReleased`, `detachSession`).
///
/// Rule citations use the MQTT 5.0 numbering unless marked 3.1.1.
public struct ServerConnectionStateMachine: Sendable {
    /// Where the connection is in its life.
    public enum State: Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// Open; the first packet, which must be CONNECT, has not arrived.
        case awaitingConnect
        /// CONNECT accepted by the protocol checks; waiting for `authenticationCompleted`.
        case authenticating
        /// Authenticated; waiting for `sessionAttached`.
        case attachingSession
        /// CONNACK sent with Success.
        case connected
        /// `close` was asked for; waiting for `connectionClosed`.
        case closing
        /// Final.
        case closed

        public var description: String {
            switch self {
            case .awaitingConnect: return "awaiting CONNECT"
            case .authenticating: return "authenticating"
            case .attachingSession: return "attaching session"
            case .connected: return "connected"
            case .closing: return "closing"
            case .closed: return "closed"
            }
        }
    }

    public let configuration: Configuration
    /// Unique among the cluster's connections; an assigned client identifier is the configured prefix
    /// followed by it ([MQTT-3.2.2-16]).
    public let connectionIdentifier: String
    var phase: Phase

    /// - Parameters:
    ///   - connectionIdentifier: unique over the whole cluster and over time (a UUID, or node name plus a
    ///     counter): it names the client when the server must assign an identifier.
    public init(configuration: Configuration = Configuration(), connectionIdentifier: String) {
        self.configuration = configuration
        self.connectionIdentifier = connectionIdentifier
        self.phase = .awaitingConnect(connectDeadlineMillis: nil)
    }

    // MARK: - Observing

    public var state: State {
        switch phase {
        case .awaitingConnect: return .awaitingConnect
        case .authenticating: return .authenticating
        case .attachingSession: return .attachingSession
        case .connected: return .connected
        case .closing: return .closing
        case .closed: return .closed
        case .modifying: preconditionFailure("state read while being modified")
        }
    }

    /// The parameters of the CONNECT once it passed the protocol checks.
    var parameters: ConnectionParameters? {
        switch phase {
        case .authenticating(let handshake), .attachingSession(let handshake): return handshake.parameters
        case .connected(let connected): return connected.parameters
        case .awaitingConnect, .closing, .closed: return nil
        case .modifying: preconditionFailure("parameters read while being modified")
        }
    }

    /// The client's identifier (the assigned one if the server assigned it), once CONNECT passed the
    /// protocol checks and until the connection closes.
    public var clientIdentifier: String? { parameters?.clientIdentifier }

    /// The protocol version of the connection, once CONNECT passed the protocol checks and until it closes.
    public var protocolVersion: MQTTProtocolVersion? { parameters?.protocolVersion }

    /// How many more QoS 1/2 deliveries `deliveryRequested` would take now; 0 when not connected.
    public var availableDeliverySlots: Int {
        guard case .connected(let connected) = phase, connected.pendingResends.isEmpty else { return 0 }
        return max(0, connected.deliveryWindow - connected.sentInflightCount)
    }

    /// QoS 1/2 deliveries sent on this connection and not yet finished.
    public var inflightDeliveryCount: Int {
        guard case .connected(let connected) = phase else { return 0 }
        return connected.sentInflightCount
    }

    // MARK: - Connection lifecycle

    /// The network connection is open: start the connect timeout.
    public mutating func connectionOpened(nowMillis: Int64) -> [Action] {
        guard case .awaitingConnect(nil) = phase else {
            preconditionFailure("connectionOpened in \(state)")
        }
        let deadline = nowMillis + Int64(configuration.connectTimeoutSeconds) * 1_000
        phase = .awaitingConnect(connectDeadlineMillis: deadline)
        return [.scheduleTimer(atMillis: deadline)]
    }

    /// The network connection is closed, whoever closed it. The machine is final afterwards.
    public mutating func connectionClosed() -> [Action] {
        switch phase {
        case .awaitingConnect, .authenticating, .closing, .closed:
            phase = .closed
            return []
        case .attachingSession(let handshake):
            // Never accepted: no will is published ([MQTT-3.1.2-8] starts with an accepted connection).
            phase = .closed
            let reason = CloseReason(kind: .connectionLost, reasonCode: .unspecifiedError, detail: "connection closed before CONNACK")
            return [.detachSession(detachment(handshake.parameters, reason: reason, publishWill: false))]
        case .connected(let connected):
            phase = .closed
            // [MQTT-3.1.2-8]: a close without DISCONNECT publishes the will.
            let reason = CloseReason(kind: .connectionLost, reasonCode: .unspecifiedError, detail: "network connection closed without DISCONNECT")
            return [.detachSession(detachment(
                connected.parameters, reason: reason, publishWill: true, unfinishedDeliveries: connected.unfinishedDeliveries
            ))]
        case .modifying:
            preconditionFailure("connectionClosed while being modified")
        }
    }

    /// The timer asked for by `scheduleTimer` fired (or any time: early calls only reschedule).
    public mutating func timerFired(nowMillis: Int64) -> [Action] {
        switch phase {
        case .awaitingConnect(let deadline):
            guard let deadline else { return [] }
            guard nowMillis >= deadline else { return [.scheduleTimer(atMillis: deadline)] }
            phase = .closing
            return [.close(CloseReason(kind: .connectTimeout, reasonCode: .unspecifiedError, detail: "no CONNECT within \(configuration.connectTimeoutSeconds) s"))]
        case .authenticating(let handshake), .attachingSession(let handshake):
            guard let deadline = handshake.connectDeadlineMillis else { return [] }
            guard nowMillis >= deadline else { return [.scheduleTimer(atMillis: deadline)] }
            // Our side (authentication or the store) did not answer in time: say so where the protocol can.
            let stage = state == .authenticating ? "authentication" : "session attach"
            return refuseConnection(
                .serverUnavailable, kind: .connectTimeout,
                detail: "\(stage) not finished within \(configuration.connectTimeoutSeconds) s", specRule: nil,
                sendConnAckInV3: true
            )
        case .connected(var connected):
            guard connected.parameters.keepAliveSeconds > 0 else { return [] }
            let deadline = connected.lastPacketReceivedAtMillis + configuration.keepAliveGraceMillis(connected.parameters.keepAliveSeconds)
            guard nowMillis >= deadline else { return [.scheduleTimer(atMillis: deadline)] }
            phase = .modifying
            // [MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]): close as if the network had failed, so the will is published.
            let termination = Termination(
                reason: CloseReason(
                    kind: .keepAliveTimeout, reasonCode: .keepAliveTimeout,
                    detail: "nothing received for \(nowMillis - connected.lastPacketReceivedAtMillis) ms, keep alive \(connected.parameters.keepAliveSeconds) s × \(configuration.keepAliveMultiplier)",
                    specRule: "MQTT-3.1.2-22"
                ),
                sendDisconnect: true, publishWill: true
            )
            return terminate(&connected, termination)
        case .closing, .closed:
            return []
        case .modifying:
            preconditionFailure("timerFired while being modified")
        }
    }

    /// A packet could not be decoded. The channel must not feed the machine anything more from the stream.
    /// v5 clients are told the error's reason code (CONNACK before the connection is accepted, DISCONNECT
    /// after, §4.13); 3.1.1 clients are disconnected (3.1.1 §4.8).
    public mutating func decodeFailed(_ error: MQTTDecodeError) -> [Action] {
        switch phase {
        case .awaitingConnect:
            phase = .closing
            let reason = CloseReason(kind: .protocolViolation, reasonCode: error.reasonCode, detail: "cannot decode the first packet: \(error)", specRule: "MQTT-3.1.4-1")
            if case .unsupportedProtocolVersion = error.violation {
                // 3.1.1 [MQTT-3.1.2-2]: CONNACK 0x01, in the 3.1.1 form every version of client can read.
                let connAck = ConnAckPacket(sessionPresent: false, reasonCode: .unsupportedProtocolVersion)
                return [.configureEncoder(protocolVersion: .v3_1_1, maximumPacketSizeBytes: nil), .send(.connAck(connAck)), .close(reason)]
            }
            return [.close(reason)]
        case .authenticating, .attachingSession:
            let code = error.reasonCode.isValid(in: .connAck) ? error.reasonCode : .malformedPacket
            return refuseConnection(code, kind: .protocolViolation, detail: "cannot decode a packet: \(error)", specRule: nil, sendConnAckInV3: false)
        case .connected(var connected):
            phase = .modifying
            let termination = Termination(
                reason: CloseReason(kind: .protocolViolation, reasonCode: error.reasonCode, detail: "cannot decode a packet: \(error)"),
                sendDisconnect: true, publishWill: true
            )
            return terminate(&connected, termination)
        case .closing, .closed:
            return []
        case .modifying:
            preconditionFailure("decodeFailed while being modified")
        }
    }

    /// Another connection attached this client's session ([MQTT-3.1.4-3]): DISCONNECT 0x8E, then close.
    public mutating func sessionTakenOver() -> [Action] {
        serverInitiatedClose(
            kind: .sessionTakenOver, disconnectCode: .sessionTakenOver, connAckCode: .serverUnavailable,
            detail: "another connection took the session over", specRule: "MQTT-3.1.4-3", sessionTakenOver: true
        )
    }

    /// The server is stopping: DISCONNECT 0x8B (v5), then close. The session stays in the store.
    public mutating func serverShuttingDown() -> [Action] {
        serverInitiatedClose(
            kind: .serverShuttingDown, disconnectCode: .serverShuttingDown, connAckCode: .serverUnavailable,
            detail: "server shutting down", specRule: nil, sessionTakenOver: false
        )
    }

    private mutating func serverInitiatedClose(
        kind: CloseReason.Kind, disconnectCode: MQTTReasonCode, connAckCode: MQTTReasonCode, detail: String, specRule: String?,
        sessionTakenOver: Bool
    ) -> [Action] {
        switch phase {
        case .awaitingConnect:
            phase = .closing
            return [.close(CloseReason(kind: kind, reasonCode: disconnectCode, detail: detail, specRule: specRule))]
        case .authenticating, .attachingSession:
            // [MQTT-3.14.0-1]: no DISCONNECT before CONNACK; refuse the connection instead.
            return refuseConnection(connAckCode, kind: kind, detail: detail, specRule: specRule, sendConnAckInV3: true)
        case .connected(var connected):
            phase = .modifying
            let termination = Termination(
                reason: CloseReason(kind: kind, reasonCode: disconnectCode, detail: detail, specRule: specRule),
                sendDisconnect: true, publishWill: true, sessionTakenOver: sessionTakenOver
            )
            return terminate(&connected, termination)
        case .closing, .closed:
            return []
        case .modifying:
            preconditionFailure("close requested while being modified")
        }
    }

    // MARK: - Packets

    /// A packet arrived from the client.
    public mutating func packetReceived(_ packet: MQTTPacket, nowMillis: Int64) -> [Action] {
        switch phase {
        case .awaitingConnect(let deadline):
            guard case .connect(let connect) = packet else {
                // [MQTT-3.1.0-1]: nothing but CONNECT first; there is no CONNACK to answer with.
                phase = .closing
                return [.close(CloseReason(kind: .protocolViolation, reasonCode: .protocolError, detail: "first packet is \(packet.type), not CONNECT", specRule: "MQTT-3.1.0-1"))]
            }
            return connectReceived(connect, connectDeadlineMillis: deadline)
        case .authenticating(var handshake):
            // [MQTT-3.1.4-6] (3.1.1: [MQTT-3.1.4-5]): nothing after CONNECT is processed before it is accepted.
            guard handshake.earlyPackets.count < configuration.maximumPacketsBeforeConnAck else {
                return earlyPacketLimitExceeded()
            }
            handshake.earlyPackets.append(packet)
            phase = .authenticating(handshake)
            return []
        case .attachingSession(var handshake):
            guard handshake.earlyPackets.count < configuration.maximumPacketsBeforeConnAck else {
                return earlyPacketLimitExceeded()
            }
            handshake.earlyPackets.append(packet)
            phase = .attachingSession(handshake)
            return []
        case .connected(var connected):
            phase = .modifying
            connected.lastPacketReceivedAtMillis = nowMillis
            var actions: [Action] = []
            if let termination = handle(packet, &connected, &actions) {
                actions += terminate(&connected, termination)
            } else {
                phase = .connected(connected)
            }
            return actions
        case .closing, .closed:
            // Nothing after the decision to close is acted on.
            return []
        case .modifying:
            preconditionFailure("packetReceived while being modified")
        }
    }

    private mutating func earlyPacketLimitExceeded() -> [Action] {
        refuseConnection(
            .quotaExceeded, kind: .limitExceeded,
            detail: "more than \(configuration.maximumPacketsBeforeConnAck) packets before CONNACK", specRule: nil, sendConnAckInV3: false
        )
    }

    // MARK: - Closing

    /// Refuses a connection that has not been accepted yet (`authenticating` or `attachingSession`): a
    /// CONNACK with `reasonCode` for v5 (and for 3.1/3.1.1 when `sendConnAckInV3`, the code mapped to the
    /// 3.1.1 return code of the same meaning), then close ([MQTT-3.2.2-7]). When `attachSession` was asked
    /// for, `detachSession` follows (unless `sessionAttached` is false).
    mutating func refuseConnection(
        _ reasonCode: MQTTReasonCode, kind: CloseReason.Kind, detail: String, specRule: String?, sendConnAckInV3: Bool,
        sessionAttached: Bool = true
    ) -> [Action] {
        let handshake: Handshake
        let wasAttaching: Bool
        switch phase {
        case .authenticating(let value): handshake = value; wasAttaching = false
        case .attachingSession(let value): handshake = value; wasAttaching = sessionAttached
        case .awaitingConnect, .connected, .closing, .closed, .modifying:
            preconditionFailure("refuseConnection in \(state)")
        }
        phase = .closing
        let reason = CloseReason(kind: kind, reasonCode: reasonCode, detail: detail, specRule: specRule)
        var actions: [Action] = []
        let connAck = refusalConnAck(reasonCode, detail: detail, parameters: handshake.parameters)
        // [MQTT-3.1.2-24]: not even a refusal goes out larger than the client's Maximum Packet Size.
        if (handshake.parameters.protocolVersion.hasProperties || sendConnAckInV3) && fits(.connAck(connAck), handshake.parameters) {
            actions.append(.send(.connAck(connAck)))
        }
        if wasAttaching {
            actions.append(.detachSession(detachment(handshake.parameters, reason: reason, publishWill: false)))
        }
        actions.append(.close(reason))
        return actions
    }

    /// A CONNACK refusing the connection: Session Present 0 ([MQTT-3.2.2-6]), and a Reason String for v5.
    func refusalConnAck(_ reasonCode: MQTTReasonCode, detail: String, parameters: ConnectionParameters?) -> ConnAckPacket {
        precondition(reasonCode.isFailure && reasonCode.isValid(in: .connAck), "\(reasonCode) is no CONNACK refusal")
        var connAck = ConnAckPacket(sessionPresent: false, reasonCode: reasonCode)
        if let parameters, parameters.protocolVersion.hasProperties, configuration.reasonStringsEnabled {
            var withReason = connAck
            withReason.properties = [.reasonString(detail)]
            // [MQTT-3.2.2-19]: only if it fits the client's Maximum Packet Size.
            if fits(.connAck(withReason), parameters) { connAck = withReason }
        }
        return connAck
    }

    /// Leaves `connected`: optionally DISCONNECT (v5 only, [MQTT-3.14.0-1] holds since CONNACK was sent),
    /// then `detachSession`, then close. Sets the phase to `closing`.
    mutating func terminate(_ connected: inout Connected, _ termination: Termination) -> [Action] {
        var actions: [Action] = []
        let parameters = connected.parameters
        if termination.sendDisconnect && parameters.protocolVersion.hasProperties {
            let code = termination.reason.reasonCode.isValid(in: .disconnect) ? termination.reason.reasonCode : .unspecifiedError
            var disconnect = DisconnectPacket(reasonCode: code)
            if configuration.reasonStringsEnabled {
                var withReason = disconnect
                withReason.properties = [.reasonString(termination.reason.detail)]
                // [MQTT-3.14.2-3]
                if fits(.disconnect(withReason), parameters) { disconnect = withReason }
            }
            actions.append(.send(.disconnect(disconnect)))
        }
        var parametersAtClose = parameters
        if let expiry = termination.sessionExpiryIntervalSeconds {
            parametersAtClose.sessionExpiryIntervalSeconds = expiry
        }
        actions.append(.detachSession(detachment(
            parametersAtClose, reason: termination.reason, publishWill: termination.publishWill,
            sessionTakenOver: termination.sessionTakenOver, unfinishedDeliveries: connected.unfinishedDeliveries
        )))
        actions.append(.close(termination.reason))
        phase = .closing
        return actions
    }

    func detachment(
        _ parameters: ConnectionParameters, reason: CloseReason, publishWill: Bool, sessionTakenOver: Bool = false,
        unfinishedDeliveries: [InflightDelivery] = []
    ) -> SessionDetachment {
        SessionDetachment(
            clientIdentifier: parameters.clientIdentifier,
            sessionExpiryIntervalSeconds: parameters.sessionExpiryIntervalSeconds,
            willToPublish: publishWill ? parameters.will : nil,
            sessionTakenOver: sessionTakenOver,
            reason: reason,
            unfinishedDeliveries: unfinishedDeliveries
        )
    }

    /// Whether `packet` fits the client's Maximum Packet Size ([MQTT-3.1.2-24]).
    func fits(_ packet: MQTTPacket, _ parameters: ConnectionParameters) -> Bool {
        encodedSizeIfTooLarge(packet, parameters) == nil
    }

    /// The size of `packet` when the encoder would refuse it on this connection, else nil.
    func encodedSizeIfTooLarge(_ packet: MQTTPacket, _ parameters: ConnectionParameters) -> (sizeBytes: Int, limitBytes: Int)? {
        let encoder = MQTTPacketEncoder(protocolVersion: parameters.protocolVersion, maxPacketSizeBytes: parameters.clientMaximumPacketSizeBytes)
        do throws(MQTTEncodeError) {
            _ = try encoder.encodedSize(of: packet)
            return nil
        } catch {
            switch error {
            case .packetTooLarge(let size, let limit): return (size, limit)
            case .fieldTooLong, .missingPacketIdentifier, .notSupported, .propertyNotAllowed, .valueOutOfRange:
                // Packets built here are well-formed; a delivery that is not cannot be sent either.
                return (Int.max, parameters.clientMaximumPacketSizeBytes ?? MQTTPacketDecoder.Limits.protocolMaximumPacketSizeBytes)
            }
        }
    }
}

// MARK: - Internal state

extension ServerConnectionStateMachine {
    enum Phase: Sendable {
        case awaitingConnect(connectDeadlineMillis: Int64?)
        case authenticating(Handshake)
        case attachingSession(Handshake)
        case connected(Connected)
        case closing
        case closed
        /// Held while a `Connected` value is mutated outside the enum, so its collections are not copied.
        case modifying
    }

    /// What CONNECT settled, in force for the whole connection.
    struct ConnectionParameters: Sendable, Hashable {
        var protocolVersion: MQTTProtocolVersion
        var clientIdentifier: String
        var clientIdentifierAssigned: Bool
        var cleanStart: Bool
        /// The keep alive in force: the client's, or the server's override (v5).
        var keepAliveSeconds: UInt16
        var announceServerKeepAlive: Bool
        /// The Session Expiry Interval the CONNECT asked for (0 when absent; 3.1.1: 0 or never).
        var requestedSessionExpiryIntervalSeconds: UInt32
        /// The Session Expiry Interval in force (capped by the configuration).
        var sessionExpiryIntervalSeconds: UInt32
        var will: ConnectPacket.Will?
        /// The client's Receive Maximum (65,535 when absent or before 5.0).
        var clientReceiveMaximum: Int
        var clientMaximumPacketSizeBytes: Int?
        var clientTopicAliasMaximum: UInt16
        /// The client's Request Problem Information (v5, §3.1.2.11.7): with 0 it gets no Reason String
        /// on a PUBACK or PUBREC ([MQTT-3.1.2-29]).
        var requestProblemInformation: Bool = true
    }

    struct Handshake: Sendable {
        var parameters: ConnectionParameters
        var connectDeadlineMillis: Int64?
        /// Packets that came after CONNECT, held until CONNACK.
        var earlyPackets: [MQTTPacket] = []
    }

    /// How a connected connection ends.
    struct Termination {
        var reason: CloseReason
        /// Send DISCONNECT with the reason's code (v5 only).
        var sendDisconnect: Bool
        var publishWill: Bool
        var sessionTakenOver: Bool = false
        /// A new Session Expiry Interval from the client's DISCONNECT.
        var sessionExpiryIntervalSeconds: UInt32? = nil

        /// The client broke a rule: DISCONNECT with `reasonCode` (v5), publish the will, close.
        static func violation(_ reasonCode: MQTTReasonCode, _ detail: String, specRule: String?) -> Termination {
            Termination(
                reason: CloseReason(kind: .protocolViolation, reasonCode: reasonCode, detail: detail, specRule: specRule),
                sendDisconnect: true, publishWill: true
            )
        }
    }
}

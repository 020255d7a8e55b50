extension ServerConnectionStateMachine {
    /// What the machine asks the channel handler to do. Run the actions of one event in order: when an
    /// action is a store operation, the packet that follows it in the same list (a PUBCOMP after
    /// `releaseInboundPacketIdentifier`, a PUBREL after `recordDeliveryReleased`) must not be written before
    /// that operation is durable, or a crash in between breaks exactly-once delivery.
    public enum Action: Sendable, Hashable {
        /// Write a packet.
        case send(MQTTPacket)
        /// Flush what was written, then close the network connection. Always the last action of its list;
        /// report `connectionClosed` once the channel is closed.
        case close(CloseReason)
        /// Call `timerFired(nowMillis:)` at this time. There is one timer per connection: each new schedule
        /// replaces the previous one. Firing early or late is harmless.
        case scheduleTimer(atMillis: Int64)
        /// Encode packets for this protocol version from now on, and never write a packet larger than
        /// `maximumPacketSizeBytes` (the client's Maximum Packet Size, [MQTT-3.1.2-24]); nil means no limit
        /// beyond the protocol's. Comes before the first packet of the connection.
        case configureEncoder(protocolVersion: MQTTProtocolVersion, maximumPacketSizeBytes: Int?)
        /// Check the client's credentials (the CONNECT as received); report `authenticationCompleted`.
        case authenticate(ConnectPacket)
        /// Open or create the client's session in the store, taking it over from any other connection
        /// (which the gateway tells `sessionTakenOver`); report `sessionAttached` or `sessionAttachFailed`.
        case attachSession(SessionAttachment)
        /// Append an inbound application message to the store; report `publishStored` or `publishRefused`
        /// for QoS 1 and 2. The topic is resolved from any Topic Alias and the alias property removed. For
        /// QoS 2, the store must keep `packetIdentifier` in the session's awaiting-PUBREL set atomically with
        /// the message, so a resend after a reconnect is recognised ([MQTT-4.3.3-10]).
        case storePublish(PublishPacket)
        /// The client released an inbound QoS 2 message (PUBREL): remove the identifier from the session's
        /// awaiting-PUBREL set before writing the PUBCOMP that follows.
        case releaseInboundPacketIdentifier(UInt16)
        /// Add these subscriptions to the session (QoS already capped at the server's maximum); report
        /// `subscribeCompleted` with one reason code per subscription, in order.
        case subscribe(SubscribePacket)
        /// Remove these subscriptions; report `unsubscribeCompleted`.
        case unsubscribe(UnsubscribePacket)
        /// The delivery is finished (QoS 0 written, PUBACK, PUBCOMP, or a refusing PUBREC): advance its
        /// queue's offset over it.
        case acknowledgeDelivery(DeliveryTag)
        /// A QoS 2 delivery is about to be sent for the first time with this packet identifier: record it in the
        /// session before writing the PUBLISH that follows, so that after a crash it is resent with the same
        /// identifier and the client recognises it ([MQTT-4.3.3-3], [MQTT-4.4.0-1]) instead of delivering it twice.
        case recordDeliverySent(DeliveryTag, packetIdentifier: UInt16)
        /// The client received the QoS 2 delivery (PUBREC): record that it awaits PUBCOMP, so a resumed
        /// session resends PUBREL and not the PUBLISH ([MQTT-4.3.3-6]), before writing the PUBREL that follows.
        case recordDeliveryReleased(DeliveryTag, packetIdentifier: UInt16)
        /// The delivery could not be taken now (the client's receive window is full, or the connection is not
        /// ready): offer it again later, before anything that follows it on its topic.
        case retryDeliveryLater(DeliveryTag)
        /// The delivery will never be sent to this client ([MQTT-3.1.2-25]): advance the offset over it as if
        /// acknowledged, and count it.
        case dropDelivery(DeliveryTag, DeliveryDropReason)
        /// The connection is over for the session: record it as disconnected (or delete it when the expiry
        /// is 0), drop its stored will, and publish `willToPublish` if set. Exactly once after `attachSession`.
        case detachSession(SessionDetachment)
    }

    /// Why a connection is closed: the log line, the rule behind it and the reason code the spec names.
    /// `description` reads "closing: <detail> [MQTT-x.y.z] (0x.. name)".
    public struct CloseReason: Sendable, Hashable, CustomStringConvertible {
        /// What kind of close this is, for metrics.
        public enum Kind: Sendable, Hashable, CaseIterable, CustomStringConvertible {
            /// The client sent DISCONNECT.
            case clientDisconnected
            /// The network connection closed without a DISCONNECT.
            case connectionLost
            /// The client broke a rule of the protocol (decode errors included).
            case protocolViolation
            /// The CONNECT was refused (CONNACK with a failure code, or none where 3.1.1 has no code).
            case connectionRefused
            /// No CONNECT, or no decision on it, within the connect timeout.
            case connectTimeout
            /// Nothing arrived for keep-alive × multiplier.
            case keepAliveTimeout
            /// Another connection took the session over.
            case sessionTakenOver
            /// The server is stopping.
            case serverShuttingDown
            /// The server could not do its part (the store refused a 3.1.1 message).
            case serverError
            /// The client went past a limit of `Configuration`.
            case limitExceeded

            public var description: String {
                switch self {
                case .clientDisconnected: return "client disconnected"
                case .connectionLost: return "connection lost"
                case .protocolViolation: return "protocol violation"
                case .connectionRefused: return "connection refused"
                case .connectTimeout: return "connect timeout"
                case .keepAliveTimeout: return "keep alive timeout"
                case .sessionTakenOver: return "session taken over"
                case .serverShuttingDown: return "server shutting down"
                case .serverError: return "server error"
                case .limitExceeded: return "limit exceeded"
                }
            }
        }

        public var kind: Kind
        /// The reason code the spec names: sent to v5 clients in CONNACK or DISCONNECT where the protocol
        /// allows, and logged for every version.
        public var reasonCode: MQTTReasonCode
        /// What happened, for the log.
        public var detail: String
        /// The specification rule behind the close, e.g. `MQTT-3.1.0-2`; nil when it is no rule's doing.
        public var specRule: String?

        public init(kind: Kind, reasonCode: MQTTReasonCode, detail: String, specRule: String? = nil) {
            self.kind = kind
            self.reasonCode = reasonCode
            self.detail = detail
            self.specRule = specRule
        }

        public var description: String {
            let rule = specRule.map { " [\($0)]" } ?? ""
            return "\(kind): \(detail)\(rule) (\(reasonCode))"
        }
    }

    /// The outcome of `authenticate`.
    public enum AuthenticationResult: Sendable, Hashable {
        case allowed
        /// The client may not connect. `reasonCode` is the v5 CONNACK code: 0x86 Bad User Name or Password,
        /// 0x87 Not authorized, 0x88 Server unavailable, 0x8A Banned, 0x8C Bad authentication method; 3.1
        /// and 3.1.1 clients get the return code of the same meaning (0x04, 0x05, 0x03). `detail` is logged,
        /// never sent.
        case denied(MQTTReasonCode, detail: String)
    }

    /// What `attachSession` asks the store for.
    public struct SessionAttachment: Sendable, Hashable {
        public var clientIdentifier: String
        public var protocolVersion: MQTTProtocolVersion
        /// Discard any existing session first ([MQTT-3.1.2-4]).
        public var cleanStart: Bool
        /// How long the session outlives the connection; `UInt32.max` never expires (3.1.1 CleanSession 0).
        public var sessionExpiryIntervalSeconds: UInt32
        /// The will to keep with the session ([MQTT-3.1.2-7]).
        public var will: ConnectPacket.Will?

        public init(
            clientIdentifier: String, protocolVersion: MQTTProtocolVersion, cleanStart: Bool,
            sessionExpiryIntervalSeconds: UInt32, will: ConnectPacket.Will?
        ) {
            self.clientIdentifier = clientIdentifier
            self.protocolVersion = protocolVersion
            self.cleanStart = cleanStart
            self.sessionExpiryIntervalSeconds = sessionExpiryIntervalSeconds
            self.will = will
        }
    }

    /// What `detachSession` tells the store when the connection ends.
    public struct SessionDetachment: Sendable, Hashable {
        public var clientIdentifier: String
        /// The session's expiry from now on (a v5 DISCONNECT may have changed it); 0 ends the session now.
        public var sessionExpiryIntervalSeconds: UInt32
        /// The will to publish (subject to its Will Delay Interval, [MQTT-3.1.2-8]), or nil when it is
        /// discarded or there is none. Either way it leaves the session state ([MQTT-3.1.2-10]).
        public var willToPublish: ConnectPacket.Will?
        /// Another connection owns the session now: publish the will but leave the session record alone.
        public var sessionTakenOver: Bool
        /// Why the connection ended.
        public var reason: CloseReason
        /// QoS 1/2 deliveries sent and not finished, in the order they were first sent: the session keeps
        /// them and a resumed session resends them ([MQTT-4.4.0-1]).
        public var unfinishedDeliveries: [InflightDelivery]

        public init(
            clientIdentifier: String, sessionExpiryIntervalSeconds: UInt32, willToPublish: ConnectPacket.Will?,
            sessionTakenOver: Bool, reason: CloseReason, unfinishedDeliveries: [InflightDelivery] = []
        ) {
            self.clientIdentifier = clientIdentifier
            self.sessionExpiryIntervalSeconds = sessionExpiryIntervalSeconds
            self.willToPublish = willToPublish
            self.sessionTakenOver = sessionTakenOver
            self.reason = reason
            self.unfinishedDeliveries = unfinishedDeliveries
        }
    }

    /// What the store still holds of a resumed session's message flows (sessionPresent only).
    public struct SessionResumption: Sendable, Hashable {
        /// Outbound QoS 1/2 deliveries sent on an earlier connection and not finished, in the order they
        /// were first sent; they are resent with their original packet identifiers ([MQTT-4.4.0-1]).
        public var inflightDeliveries: [InflightDelivery]
        /// Inbound QoS 2 packet identifiers stored and answered with PUBREC, awaiting PUBREL.
        public var awaitingPubRelPacketIdentifiers: [UInt16]

        public init(inflightDeliveries: [InflightDelivery] = [], awaitingPubRelPacketIdentifiers: [UInt16] = []) {
            self.inflightDeliveries = inflightDeliveries
            self.awaitingPubRelPacketIdentifiers = awaitingPubRelPacketIdentifiers
        }

        public var isEmpty: Bool { inflightDeliveries.isEmpty && awaitingPubRelPacketIdentifiers.isEmpty }
    }
}

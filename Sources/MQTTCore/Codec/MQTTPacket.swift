import NIOCore

/// Any MQTT control packet of 3.1, 3.1.1 or 5.0. One case per packet type, so protocol code can
/// `switch` over every packet without casts.
public enum MQTTPacket: Sendable, Hashable {
    case connect(ConnectPacket)
    case connAck(ConnAckPacket)
    case publish(PublishPacket)
    case pubAck(PubAckPacket)
    case pubRec(PubAckPacket)
    case pubRel(PubAckPacket)
    case pubComp(PubAckPacket)
    case subscribe(SubscribePacket)
    case subAck(SubAckPacket)
    case unsubscribe(UnsubscribePacket)
    case unsubAck(UnsubAckPacket)
    case pingReq
    case pingResp
    case disconnect(DisconnectPacket)
    case auth(AuthPacket)

    /// The control packet type of this packet.
    @inlinable
    public var type: MQTTPacketType {
        switch self {
        case .connect: return .connect
        case .connAck: return .connAck
        case .publish: return .publish
        case .pubAck: return .pubAck
        case .pubRec: return .pubRec
        case .pubRel: return .pubRel
        case .pubComp: return .pubComp
        case .subscribe: return .subscribe
        case .subAck: return .subAck
        case .unsubscribe: return .unsubscribe
        case .unsubAck: return .unsubAck
        case .pingReq: return .pingReq
        case .pingResp: return .pingResp
        case .disconnect: return .disconnect
        case .auth: return .auth
        }
    }
}

/// CONNECT (§3.1). The first packet a client sends.
public struct ConnectPacket: Sendable, Hashable {
    public var protocolVersion: MQTTProtocolVersion
    /// May be empty: the server then assigns one (v5) or, for 3.1.1, only with a clean session ([MQTT-3.1.3-7]).
    public var clientIdentifier: String
    /// "Clean Session" in 3.1/3.1.1, "Clean Start" in 5.0.
    public var cleanStart: Bool
    public var keepAliveSeconds: UInt16
    public var username: String?
    /// Binary data: MQTT does not require a password to be text.
    public var password: ByteBuffer?
    public var will: Will?
    public var properties: MQTTProperties

    public init(
        protocolVersion: MQTTProtocolVersion = .v3_1_1,
        clientIdentifier: String,
        cleanStart: Bool = true,
        keepAliveSeconds: UInt16 = 60,
        username: String? = nil,
        password: ByteBuffer? = nil,
        will: Will? = nil,
        properties: MQTTProperties = []
    ) {
        self.protocolVersion = protocolVersion
        self.clientIdentifier = clientIdentifier
        self.cleanStart = cleanStart
        self.keepAliveSeconds = keepAliveSeconds
        self.username = username
        self.password = password
        self.will = will
        self.properties = properties
    }

    /// The will message of a CONNECT (§3.1.2.5, §3.1.3.2 - §3.1.3.4).
    public struct Will: Sendable, Hashable {
        public var topicName: String
        public var payload: ByteBuffer
        public var qos: MQTTQoS
        public var retain: Bool
        /// Will properties (v5 only).
        public var properties: MQTTProperties

        public init(topicName: String, payload: ByteBuffer, qos: MQTTQoS = .atMostOnce, retain: Bool = false, properties: MQTTProperties = []) {
            self.topicName = topicName
            self.payload = payload
            self.qos = qos
            self.retain = retain
            self.properties = properties
        }
    }
}

/// CONNACK (§3.2).
public struct ConnAckPacket: Sendable, Hashable {
    public var sessionPresent: Bool
    /// In 3.1.1 the connect return code, mapped onto the v5 code of the same meaning.
    public var reasonCode: MQTTReasonCode
    public var properties: MQTTProperties

    public init(sessionPresent: Bool = false, reasonCode: MQTTReasonCode = .success, properties: MQTTProperties = []) {
        self.sessionPresent = sessionPresent
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// PUBLISH (§3.3). The payload is a slice of the buffer the packet was read from: it is never copied.
public struct PublishPacket: Sendable, Hashable {
    /// May be empty in 5.0 when a Topic Alias property names the topic (§3.3.2.3.4).
    public var topicName: String
    public var payload: ByteBuffer
    public var qos: MQTTQoS
    public var retain: Bool
    public var dup: Bool
    /// Present exactly when `qos` is above 0 ([MQTT-2.2.1-2], [MQTT-2.2.1-3]).
    public var packetIdentifier: UInt16?
    public var properties: MQTTProperties

    public init(
        topicName: String,
        payload: ByteBuffer,
        qos: MQTTQoS = .atMostOnce,
        retain: Bool = false,
        dup: Bool = false,
        packetIdentifier: UInt16? = nil,
        properties: MQTTProperties = []
    ) {
        self.topicName = topicName
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packetIdentifier = packetIdentifier
        self.properties = properties
    }
}

/// The shape shared by PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4 - §3.7); `MQTTPacket`'s case says which.
public struct PubAckPacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    /// Always `.success` in 3.1/3.1.1, which have no reason codes here.
    public var reasonCode: MQTTReasonCode
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, reasonCode: MQTTReasonCode = .success, properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// One topic filter of a SUBSCRIBE with its options (§3.8.3.1).
public struct Subscription: Sendable, Hashable {
    public var topicFilter: String
    public var maximumQoS: MQTTQoS
    /// v5: do not send this client's own publishes back to it.
    public var noLocal: Bool
    /// v5: keep the RETAIN flag of forwarded messages as published.
    public var retainAsPublished: Bool
    public var retainHandling: RetainHandling

    public init(
        topicFilter: String,
        maximumQoS: MQTTQoS = .atMostOnce,
        noLocal: Bool = false,
        retainAsPublished: Bool = false,
        retainHandling: RetainHandling = .sendOnSubscribe
    ) {
        self.topicFilter = topicFilter
        self.maximumQoS = maximumQoS
        self.noLocal = noLocal
        self.retainAsPublished = retainAsPublished
        self.retainHandling = retainHandling
    }

    /// When retained messages are sent for a new subscription (§3.8.3.1).
    public enum RetainHandling: UInt8, Sendable, Hashable, CaseIterable {
        case sendOnSubscribe = 0
        case sendOnSubscribeIfNew = 1
        case doNotSend = 2
    }
}

/// SUBSCRIBE (§3.8).
public struct SubscribePacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    /// At least one ([MQTT-3.8.3-2]).
    public var subscriptions: [Subscription]
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, subscriptions: [Subscription], properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.subscriptions = subscriptions
        self.properties = properties
    }
}

/// SUBACK (§3.9). One reason code per subscription, in order; in 3.1.1 only 0x00, 0x01, 0x02 and 0x80 exist.
public struct SubAckPacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    public var reasonCodes: [MQTTReasonCode]
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, reasonCodes: [MQTTReasonCode], properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCodes = reasonCodes
        self.properties = properties
    }
}

/// UNSUBSCRIBE (§3.10).
public struct UnsubscribePacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    /// At least one ([MQTT-3.10.3-2]).
    public var topicFilters: [String]
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, topicFilters: [String], properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.topicFilters = topicFilters
        self.properties = properties
    }
}

/// UNSUBACK (§3.11). 3.1.1 has no reason codes: `reasonCodes` is then empty.
public struct UnsubAckPacket: Sendable, Hashable {
    public var packetIdentifier: UInt16
    public var reasonCodes: [MQTTReasonCode]
    public var properties: MQTTProperties

    public init(packetIdentifier: UInt16, reasonCodes: [MQTTReasonCode] = [], properties: MQTTProperties = []) {
        self.packetIdentifier = packetIdentifier
        self.reasonCodes = reasonCodes
        self.properties = properties
    }
}

/// DISCONNECT (§3.14). In 3.1.1 it has no body: the reason is always normal disconnection.
public struct DisconnectPacket: Sendable, Hashable {
    public var reasonCode: MQTTReasonCode
    public var properties: MQTTProperties

    public init(reasonCode: MQTTReasonCode = .normalDisconnection, properties: MQTTProperties = []) {
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

/// AUTH (§3.15), MQTT 5.0 only.
public struct AuthPacket: Sendable, Hashable {
    /// `.success`, `.continueAuthentication` or `.reAuthenticate` ([MQTT-3.15.2-1]).
    public var reasonCode: MQTTReasonCode
    public var properties: MQTTProperties

    public init(reasonCode: MQTTReasonCode = .success, properties: MQTTProperties = []) {
        self.reasonCode = reasonCode
        self.properties = properties
    }
}

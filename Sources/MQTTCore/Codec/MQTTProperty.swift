import NIOCore

/// One MQTT 5.0 property (§2.2.2.2), with the value type the spec gives its identifier.
public enum MQTTProperty: Sendable, Hashable {
    case payloadFormatIndicator(UInt8)
    case messageExpiryInterval(UInt32)
    case contentType(String)
    case responseTopic(String)
    case correlationData(ByteBuffer)
    /// A variable byte integer, 1 ... 268,435,455.
    case subscriptionIdentifier(UInt32)
    case sessionExpiryInterval(UInt32)
    case assignedClientIdentifier(String)
    case serverKeepAlive(UInt16)
    case authenticationMethod(String)
    case authenticationData(ByteBuffer)
    case requestProblemInformation(UInt8)
    case willDelayInterval(UInt32)
    case requestResponseInformation(UInt8)
    case responseInformation(String)
    case serverReference(String)
    case reasonString(String)
    case receiveMaximum(UInt16)
    case topicAliasMaximum(UInt16)
    case topicAlias(UInt16)
    case maximumQoS(UInt8)
    case retainAvailable(UInt8)
    case userProperty(String, String)
    case maximumPacketSize(UInt32)
    case wildcardSubscriptionAvailable(UInt8)
    case subscriptionIdentifierAvailable(UInt8)
    case sharedSubscriptionAvailable(UInt8)

    /// The property's identifier on the wire.
    @inlinable
    public var identifier: Identifier {
        switch self {
        case .payloadFormatIndicator: return .payloadFormatIndicator
        case .messageExpiryInterval: return .messageExpiryInterval
        case .contentType: return .contentType
        case .responseTopic: return .responseTopic
        case .correlationData: return .correlationData
        case .subscriptionIdentifier: return .subscriptionIdentifier
        case .sessionExpiryInterval: return .sessionExpiryInterval
        case .assignedClientIdentifier: return .assignedClientIdentifier
        case .serverKeepAlive: return .serverKeepAlive
        case .authenticationMethod: return .authenticationMethod
        case .authenticationData: return .authenticationData
        case .requestProblemInformation: return .requestProblemInformation
        case .willDelayInterval: return .willDelayInterval
        case .requestResponseInformation: return .requestResponseInformation
        case .responseInformation: return .responseInformation
        case .serverReference: return .serverReference
        case .reasonString: return .reasonString
        case .receiveMaximum: return .receiveMaximum
        case .topicAliasMaximum: return .topicAliasMaximum
        case .topicAlias: return .topicAlias
        case .maximumQoS: return .maximumQoS
        case .retainAvailable: return .retainAvailable
        case .userProperty: return .userProperty
        case .maximumPacketSize: return .maximumPacketSize
        case .wildcardSubscriptionAvailable: return .wildcardSubscriptionAvailable
        case .subscriptionIdentifierAvailable: return .subscriptionIdentifierAvailable
        case .sharedSubscriptionAvailable: return .sharedSubscriptionAvailable
        }
    }

    /// Property identifiers (§2.2.2.2, table 2-4).
    public enum Identifier: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case payloadFormatIndicator = 0x01
        case messageExpiryInterval = 0x02
        case contentType = 0x03
        case responseTopic = 0x08
        case correlationData = 0x09
        case subscriptionIdentifier = 0x0B
        case sessionExpiryInterval = 0x11
        case assignedClientIdentifier = 0x12
        case serverKeepAlive = 0x13
        case authenticationMethod = 0x15
        case authenticationData = 0x16
        case requestProblemInformation = 0x17
        case willDelayInterval = 0x18
        case requestResponseInformation = 0x19
        case responseInformation = 0x1A
        case serverReference = 0x1C
        case reasonString = 0x1F
        case receiveMaximum = 0x21
        case topicAliasMaximum = 0x22
        case topicAlias = 0x23
        case maximumQoS = 0x24
        case retainAvailable = 0x25
        case userProperty = 0x26
        case maximumPacketSize = 0x27
        case wildcardSubscriptionAvailable = 0x28
        case subscriptionIdentifierAvailable = 0x29
        case sharedSubscriptionAvailable = 0x2A

        /// The wire type of the value (§1.5).
        public var valueType: ValueType {
            switch self {
            case .payloadFormatIndicator, .requestProblemInformation, .requestResponseInformation,
                 .maximumQoS, .retainAvailable, .wildcardSubscriptionAvailable,
                 .subscriptionIdentifierAvailable, .sharedSubscriptionAvailable:
                return .byte
            case .serverKeepAlive, .receiveMaximum, .topicAliasMaximum, .topicAlias:
                return .twoByteInteger
            case .messageExpiryInterval, .sessionExpiryInterval, .willDelayInterval, .maximumPacketSize:
                return .fourByteInteger
            case .subscriptionIdentifier:
                return .variableByteInteger
            case .contentType, .responseTopic, .assignedClientIdentifier, .authenticationMethod,
                 .responseInformation, .serverReference, .reasonString:
                return .utf8String
            case .correlationData, .authenticationData:
                return .binaryData
            case .userProperty:
                return .utf8StringPair
            }
        }

        /// The packets (and the will of CONNECT) that may carry this property (§2.2.2.2, table 2-4).
        public func isAllowed(in context: MQTTPropertyContext) -> Bool {
            switch self {
            case .payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic, .correlationData:
                return context == .publish || context == .will
            case .subscriptionIdentifier:
                return context == .publish || context == .subscribe
            case .sessionExpiryInterval:
                return context == .connect || context == .connAck || context == .disconnect
            case .assignedClientIdentifier, .serverKeepAlive, .responseInformation, .maximumQoS,
                 .retainAvailable, .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable,
                 .sharedSubscriptionAvailable:
                return context == .connAck
            case .authenticationMethod, .authenticationData:
                return context == .connect || context == .connAck || context == .auth
            case .requestProblemInformation, .requestResponseInformation:
                return context == .connect
            case .willDelayInterval:
                return context == .will
            case .serverReference:
                return context == .connAck || context == .disconnect
            case .reasonString:
                switch context {
                case .connAck, .pubAck, .pubRec, .pubRel, .pubComp, .subAck, .unsubAck, .disconnect, .auth:
                    return true
                case .connect, .will, .publish, .subscribe, .unsubscribe:
                    return false
                }
            case .receiveMaximum, .topicAliasMaximum, .maximumPacketSize:
                return context == .connect || context == .connAck
            case .topicAlias:
                return context == .publish
            case .userProperty:
                return true
            }
        }

        /// Whether the property may appear more than once in `context`. User properties always may;
        /// subscription identifiers may repeat in PUBLISH (one per matching subscription) but not in
        /// SUBSCRIBE (§3.8.2.1.2). Every other repeat is a Protocol Error.
        public func mayRepeat(in context: MQTTPropertyContext) -> Bool {
            switch self {
            case .userProperty: return true
            case .subscriptionIdentifier: return context == .publish
            case .payloadFormatIndicator, .messageExpiryInterval, .contentType, .responseTopic,
                 .correlationData, .sessionExpiryInterval, .assignedClientIdentifier, .serverKeepAlive,
                 .authenticationMethod, .authenticationData, .requestProblemInformation,
                 .willDelayInterval, .requestResponseInformation, .responseInformation, .serverReference,
                 .reasonString, .receiveMaximum, .topicAliasMaximum, .topicAlias, .maximumQoS,
                 .retainAvailable, .maximumPacketSize, .wildcardSubscriptionAvailable,
                 .subscriptionIdentifierAvailable, .sharedSubscriptionAvailable:
                return false
            }
        }

        public var description: String { "\(self.name) (0x\(String(rawValue, radix: 16, uppercase: true)))" }

        var name: String {
            switch self {
            case .payloadFormatIndicator: return "Payload Format Indicator"
            case .messageExpiryInterval: return "Message Expiry Interval"
            case .contentType: return "Content Type"
            case .responseTopic: return "Response Topic"
            case .correlationData: return "Correlation Data"
            case .subscriptionIdentifier: return "Subscription Identifier"
            case .sessionExpiryInterval: return "Session Expiry Interval"
            case .assignedClientIdentifier: return "Assigned Client Identifier"
            case .serverKeepAlive: return "Server Keep Alive"
            case .authenticationMethod: return "Authentication Method"
            case .authenticationData: return "Authentication Data"
            case .requestProblemInformation: return "Request Problem Information"
            case .willDelayInterval: return "Will Delay Interval"
            case .requestResponseInformation: return "Request Response Information"
            case .responseInformation: return "Response Information"
            case .serverReference: return "Server Reference"
            case .reasonString: return "Reason String"
            case .receiveMaximum: return "Receive Maximum"
            case .topicAliasMaximum: return "Topic Alias Maximum"
            case .topicAlias: return "Topic Alias"
            case .maximumQoS: return "Maximum QoS"
            case .retainAvailable: return "Retain Available"
            case .userProperty: return "User Property"
            case .maximumPacketSize: return "Maximum Packet Size"
            case .wildcardSubscriptionAvailable: return "Wildcard Subscription Available"
            case .subscriptionIdentifierAvailable: return "Subscription Identifier Available"
            case .sharedSubscriptionAvailable: return "Shared Subscription Available"
            }
        }
    }

    /// Wire types of property values (§1.5).
    public enum ValueType: Sendable, Hashable {
        case byte, twoByteInteger, fourByteInteger, variableByteInteger, utf8String, binaryData, utf8StringPair
    }
}

/// Where a property list sits: a packet type, or the will properties inside CONNECT (§3.1.3.2).
public enum MQTTPropertyContext: Sendable, Hashable, CustomStringConvertible {
    case connect, will, connAck, publish, pubAck, pubRec, pubRel, pubComp
    case subscribe, subAck, unsubscribe, unsubAck, disconnect, auth

    public var description: String {
        switch self {
        case .will: return "CONNECT will properties"
        case .connect: return "CONNECT"
        case .connAck: return "CONNACK"
        case .publish: return "PUBLISH"
        case .pubAck: return "PUBACK"
        case .pubRec: return "PUBREC"
        case .pubRel: return "PUBREL"
        case .pubComp: return "PUBCOMP"
        case .subscribe: return "SUBSCRIBE"
        case .subAck: return "SUBACK"
        case .unsubscribe: return "UNSUBSCRIBE"
        case .unsubAck: return "UNSUBACK"
        case .disconnect: return "DISCONNECT"
        case .auth: return "AUTH"
        }
    }
}

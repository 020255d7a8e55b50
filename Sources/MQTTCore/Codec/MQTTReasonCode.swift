/// Every reason code of MQTT 5.0 (§2.4), also used to report why a 3.1.1 connection was refused or closed.
///
/// The spec gives 0x00 several names (Success, Normal disconnection, Granted QoS 0); the enum
/// has one case per value and the other names as static aliases.
public enum MQTTReasonCode: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case success = 0x00
    case grantedQoS1 = 0x01
    case grantedQoS2 = 0x02
    case disconnectWithWillMessage = 0x04
    case noMatchingSubscribers = 0x10
    case noSubscriptionExisted = 0x11
    case continueAuthentication = 0x18
    case reAuthenticate = 0x19
    case unspecifiedError = 0x80
    case malformedPacket = 0x81
    case protocolError = 0x82
    case implementationSpecificError = 0x83
    case unsupportedProtocolVersion = 0x84
    case clientIdentifierNotValid = 0x85
    case badUserNameOrPassword = 0x86
    case notAuthorized = 0x87
    case serverUnavailable = 0x88
    case serverBusy = 0x89
    case banned = 0x8A
    case serverShuttingDown = 0x8B
    case badAuthenticationMethod = 0x8C
    case keepAliveTimeout = 0x8D
    case sessionTakenOver = 0x8E
    case topicFilterInvalid = 0x8F
    case topicNameInvalid = 0x90
    case packetIdentifierInUse = 0x91
    case packetIdentifierNotFound = 0x92
    case receiveMaximumExceeded = 0x93
    case topicAliasInvalid = 0x94
    case packetTooLarge = 0x95
    case messageRateTooHigh = 0x96
    case quotaExceeded = 0x97
    case administrativeAction = 0x98
    case payloadFormatInvalid = 0x99
    case retainNotSupported = 0x9A
    case qosNotSupported = 0x9B
    case useAnotherServer = 0x9C
    case serverMoved = 0x9D
    case sharedSubscriptionsNotSupported = 0x9E
    case connectionRateExceeded = 0x9F
    case maximumConnectTime = 0xA0
    case subscriptionIdentifiersNotSupported = 0xA1
    case wildcardSubscriptionsNotSupported = 0xA2

    /// 0x00 in DISCONNECT.
    public static var normalDisconnection: MQTTReasonCode { .success }
    /// 0x00 in SUBACK.
    public static var grantedQoS0: MQTTReasonCode { .success }

    /// The granted-QoS reason code of SUBACK for `qos`.
    public static func granted(_ qos: MQTTQoS) -> MQTTReasonCode {
        switch qos {
        case .atMostOnce: return .success
        case .atLeastOnce: return .grantedQoS1
        case .exactlyOnce: return .grantedQoS2
        }
    }

    /// Codes of 0x80 and above report a failure (§2.4).
    @inlinable
    public var isFailure: Bool { rawValue >= 0x80 }

    /// The MQTT 3.1.1 CONNACK return code (§3.2.2.3 of 3.1.1) closest to this reason code.
    public var connectReturnCodeV3: UInt8 {
        switch self {
        case .success: return 0x00
        case .unsupportedProtocolVersion: return 0x01
        case .clientIdentifierNotValid: return 0x02
        case .badUserNameOrPassword, .badAuthenticationMethod: return 0x04
        case .notAuthorized, .banned: return 0x05
        case .grantedQoS1, .grantedQoS2, .disconnectWithWillMessage, .noMatchingSubscribers,
             .noSubscriptionExisted, .continueAuthentication, .reAuthenticate, .unspecifiedError,
             .malformedPacket, .protocolError, .implementationSpecificError, .serverUnavailable,
             .serverBusy, .serverShuttingDown, .keepAliveTimeout, .sessionTakenOver, .topicFilterInvalid,
             .topicNameInvalid, .packetIdentifierInUse, .packetIdentifierNotFound, .receiveMaximumExceeded,
             .topicAliasInvalid, .packetTooLarge, .messageRateTooHigh, .quotaExceeded,
             .administrativeAction, .payloadFormatInvalid, .retainNotSupported, .qosNotSupported,
             .useAnotherServer, .serverMoved, .sharedSubscriptionsNotSupported, .connectionRateExceeded,
             .maximumConnectTime, .subscriptionIdentifiersNotSupported, .wildcardSubscriptionsNotSupported:
            return 0x03
        }
    }

    /// The reason code for an MQTT 3.1.1 CONNACK return code, or nil for the reserved values 6-255.
    public init?(connectReturnCodeV3 code: UInt8) {
        switch code {
        case 0x00: self = .success
        case 0x01: self = .unsupportedProtocolVersion
        case 0x02: self = .clientIdentifierNotValid
        case 0x03: self = .serverUnavailable
        case 0x04: self = .badUserNameOrPassword
        case 0x05: self = .notAuthorized
        default: return nil
        }
    }

    public var description: String {
        let hex = "0x" + String(rawValue, radix: 16, uppercase: true)
        return "\(hex) \(name)"
    }

    /// The name the specification gives this code.
    public var name: String {
        switch self {
        case .success: return "Success"
        case .grantedQoS1: return "Granted QoS 1"
        case .grantedQoS2: return "Granted QoS 2"
        case .disconnectWithWillMessage: return "Disconnect with Will Message"
        case .noMatchingSubscribers: return "No matching subscribers"
        case .noSubscriptionExisted: return "No subscription existed"
        case .continueAuthentication: return "Continue authentication"
        case .reAuthenticate: return "Re-authenticate"
        case .unspecifiedError: return "Unspecified error"
        case .malformedPacket: return "Malformed Packet"
        case .protocolError: return "Protocol Error"
        case .implementationSpecificError: return "Implementation specific error"
        case .unsupportedProtocolVersion: return "Unsupported Protocol Version"
        case .clientIdentifierNotValid: return "Client Identifier not valid"
        case .badUserNameOrPassword: return "Bad User Name or Password"
        case .notAuthorized: return "Not authorized"
        case .serverUnavailable: return "Server unavailable"
        case .serverBusy: return "Server busy"
        case .banned: return "Banned"
        case .serverShuttingDown: return "Server shutting down"
        case .badAuthenticationMethod: return "Bad authentication method"
        case .keepAliveTimeout: return "Keep Alive timeout"
        case .sessionTakenOver: return "Session taken over"
        case .topicFilterInvalid: return "Topic Filter invalid"
        case .topicNameInvalid: return "Topic Name invalid"
        case .packetIdentifierInUse: return "Packet Identifier in use"
        case .packetIdentifierNotFound: return "Packet Identifier not found"
        case .receiveMaximumExceeded: return "Receive Maximum exceeded"
        case .topicAliasInvalid: return "Topic Alias invalid"
        case .packetTooLarge: return "Packet too large"
        case .messageRateTooHigh: return "Message rate too high"
        case .quotaExceeded: return "Quota exceeded"
        case .administrativeAction: return "Administrative action"
        case .payloadFormatInvalid: return "Payload format invalid"
        case .retainNotSupported: return "Retain not supported"
        case .qosNotSupported: return "QoS not supported"
        case .useAnotherServer: return "Use another server"
        case .serverMoved: return "Server moved"
        case .sharedSubscriptionsNotSupported: return "Shared Subscriptions not supported"
        case .connectionRateExceeded: return "Connection rate exceeded"
        case .maximumConnectTime: return "Maximum connect time"
        case .subscriptionIdentifiersNotSupported: return "Subscription Identifiers not supported"
        case .wildcardSubscriptionsNotSupported: return "Wildcard Subscriptions not supported"
        }
    }
}

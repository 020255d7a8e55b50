/// The protocol level carried in CONNECT (MQTT 3.1.1 §3.1.2.2, MQTT 5.0 §3.1.2.2).
public enum MQTTProtocolVersion: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// MQTT 3.1 (protocol name `MQIsdp`).
    case v3_1 = 3
    /// MQTT 3.1.1 (protocol name `MQTT`).
    case v3_1_1 = 4
    /// MQTT 5.0 (protocol name `MQTT`).
    case v5 = 5

    /// The protocol name that goes with this level ([MQTT-3.1.2-1]).
    public var protocolName: String {
        switch self {
        case .v3_1: return "MQIsdp"
        case .v3_1_1, .v5: return "MQTT"
        }
    }

    /// Whether packets of this version carry properties and reason codes.
    @inlinable
    public var hasProperties: Bool { self == .v5 }

    public var description: String {
        switch self {
        case .v3_1: return "3.1"
        case .v3_1_1: return "3.1.1"
        case .v5: return "5.0"
        }
    }
}

/// Quality of service of a PUBLISH or the maximum granted for a subscription (§4.3).
public enum MQTTQoS: UInt8, Sendable, Hashable, CaseIterable, Comparable {
    case atMostOnce = 0
    case atLeastOnce = 1
    case exactlyOnce = 2

    public static func < (lhs: MQTTQoS, rhs: MQTTQoS) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The control packet type, the high nibble of the first byte of every packet (§2.1.2).
public enum MQTTPacketType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case connect = 1
    case connAck = 2
    case publish = 3
    case pubAck = 4
    case pubRec = 5
    case pubRel = 6
    case pubComp = 7
    case subscribe = 8
    case subAck = 9
    case unsubscribe = 10
    case unsubAck = 11
    case pingReq = 12
    case pingResp = 13
    case disconnect = 14
    /// MQTT 5.0 only; reserved (and so malformed) in 3.1 and 3.1.1.
    case auth = 15

    /// The fixed-header flags the spec requires for every type but PUBLISH ([MQTT-2.2.2-1], [MQTT-2.2.2-2]).
    @inlinable
    public var requiredFlags: UInt8 {
        switch self {
        case .pubRel, .subscribe, .unsubscribe: return 0b0010
        case .connect, .connAck, .publish, .pubAck, .pubRec, .pubComp, .subAck, .unsubAck,
             .pingReq, .pingResp, .disconnect, .auth:
            return 0
        }
    }

    public var description: String {
        switch self {
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
        case .pingReq: return "PINGREQ"
        case .pingResp: return "PINGRESP"
        case .disconnect: return "DISCONNECT"
        case .auth: return "AUTH"
        }
    }
}

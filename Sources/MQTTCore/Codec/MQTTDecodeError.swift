/// Why a packet could not be decoded: the rule it broke, where, and the MQTT 5.0 reason code the
/// specification names for it. A server answers with `reasonCode` (CONNACK or DISCONNECT in 5.0) or
/// closes the connection (3.1.1); a client closes.
public struct MQTTDecodeError: Error, Hashable, CustomStringConvertible {
    public var violation: Violation
    /// The type of the packet being decoded, when the fixed header got that far.
    public var packetType: MQTTPacketType?
    /// Offset from the first byte of the packet (its fixed header) where the problem was found.
    public var byteOffset: Int

    public init(_ violation: Violation, packetType: MQTTPacketType?, byteOffset: Int) {
        self.violation = violation
        self.packetType = packetType
        self.byteOffset = byteOffset
    }

    /// The reason code a 5.0 peer is told (§4.13).
    public var reasonCode: MQTTReasonCode { violation.reasonCode }

    public var description: String {
        let packet = packetType.map { "\($0)" } ?? "packet"
        return "\(reasonCode.name) (0x\(String(reasonCode.rawValue, radix: 16, uppercase: true))): \(packet) at byte \(byteOffset): \(violation)"
    }

    /// Every rule the decoder enforces.
    public enum Violation: Hashable, Sendable, CustomStringConvertible {
        /// A variable byte integer longer than 4 bytes ([MQTT-1.5.5-1]).
        case variableByteIntegerTooLong
        /// A variable byte integer not in its shortest form, e.g. `80 00` for 0 ([MQTT-1.5.5-1]).
        case variableByteIntegerNotMinimal
        /// The whole packet would be larger than the configured or negotiated maximum (§3.1.2.11.4).
        case packetTooLarge(sizeBytes: Int, limitBytes: Int)
        /// Packet type 0, or 15 (AUTH) before MQTT 5.0 (§2.1.2).
        case reservedPacketType(UInt8)
        /// Fixed-header flags other than those the spec requires for the type ([MQTT-2.2.2-2]).
        case invalidFixedHeaderFlags(UInt8)
        /// PUBLISH with both QoS bits set ([MQTT-3.3.1-4]).
        case invalidQoS
        /// DUP set on a QoS 0 PUBLISH ([MQTT-3.3.1-2]).
        case dupFlagOnQoS0
        /// A field runs past the end of the packet.
        case truncated
        /// Bytes left over after the last field of a packet that has no payload.
        case trailingBytes(count: Int)
        /// A UTF-8 string that is not well-formed UTF-8 or encodes a surrogate ([MQTT-1.5.4-1]).
        case invalidUTF8
        /// A UTF-8 string containing U+0000 ([MQTT-1.5.4-2]).
        case nullCharacter
        /// A PUBLISH or will topic name that is not valid ([MQTT-3.3.2-2], [MQTT-4.7.3-1]).
        case invalidTopicName(TopicError)
        /// A topic filter of SUBSCRIBE or UNSUBSCRIBE that is not valid ([MQTT-4.7.1-1..3], [MQTT-4.8.2-1..2]).
        case invalidTopicFilter(TopicError)
        /// The protocol name of CONNECT is neither `MQTT` nor `MQIsdp` ([MQTT-3.1.2-1]).
        case invalidProtocolName(String)
        /// A protocol level other than 3, 4 or 5 ([MQTT-3.1.2-2]).
        case unsupportedProtocolVersion(UInt8)
        /// The reserved bit 0 of the CONNECT flags is set ([MQTT-3.1.2-3]).
        case connectReservedFlagSet
        /// Will QoS or Will Retain without the Will Flag, or Will QoS 3 ([MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-14], [MQTT-3.1.2-15]).
        case invalidWillFlags
        /// A password without a user name in 3.1.1 ([MQTT-3.1.2-22]).
        case passwordWithoutUsername
        /// A CONNACK acknowledge-flags byte with reserved bits set ([MQTT-3.2.2-1]).
        case connAckReservedFlagsSet
        /// A CONNACK that refuses the connection but says a session is present ([MQTT-3.2.2-6]).
        case sessionPresentOnRefusal
        /// A property identifier that MQTT 5.0 does not define (§2.2.2.2).
        case unknownProperty(UInt8)
        /// A property the packet may not carry (§2.2.2.2).
        case propertyNotAllowed(MQTTProperty.Identifier, in: MQTTPropertyContext)
        /// A property that may appear only once, twice.
        case duplicateProperty(MQTTProperty.Identifier)
        /// A property value outside the range the spec allows (e.g. Receive Maximum 0, Maximum QoS 2).
        case invalidPropertyValue(MQTTProperty.Identifier)
        /// More properties than the decoder's limit.
        case tooManyProperties(limit: Int)
        /// A zero packet identifier where a non-zero one is required ([MQTT-2.2.1-3]).
        case zeroPacketIdentifier
        /// SUBSCRIBE with no topic filter ([MQTT-3.8.3-2]) or UNSUBSCRIBE with none ([MQTT-3.10.3-2]).
        case noTopicFilters
        /// Subscription options with reserved bits set ([MQTT-3.8.3-5]; 3.1.1: [MQTT-3-8.3-4]).
        case subscriptionOptionsReservedBitsSet
        /// Retain Handling 3 (§3.8.3.1).
        case invalidRetainHandling
        /// No Local on a shared subscription ([MQTT-3.8.3-4]).
        case noLocalOnSharedSubscription
        /// A reason code the packet type does not define.
        case invalidReasonCode(UInt8)
        /// A packet other than CONNECT before CONNECT ([MQTT-3.1.0-1]).
        case firstPacketNotConnect

        /// The reason code the spec names for this violation.
        public var reasonCode: MQTTReasonCode {
            switch self {
            case .packetTooLarge: return .packetTooLarge
            case .invalidTopicName: return .topicNameInvalid
            case .unsupportedProtocolVersion: return .unsupportedProtocolVersion
            case .propertyNotAllowed, .duplicateProperty, .invalidPropertyValue, .zeroPacketIdentifier,
                 .noTopicFilters, .invalidRetainHandling, .noLocalOnSharedSubscription, .invalidProtocolName,
                 .sessionPresentOnRefusal, .firstPacketNotConnect:
                return .protocolError
            case .variableByteIntegerTooLong, .variableByteIntegerNotMinimal, .reservedPacketType, .invalidFixedHeaderFlags, .invalidQoS,
                 .dupFlagOnQoS0, .truncated, .trailingBytes, .invalidUTF8, .nullCharacter, .invalidTopicFilter,
                 .connectReservedFlagSet, .invalidWillFlags, .passwordWithoutUsername, .connAckReservedFlagsSet,
                 .unknownProperty, .tooManyProperties, .subscriptionOptionsReservedBitsSet, .invalidReasonCode:
                return .malformedPacket
            }
        }

        public var description: String {
            switch self {
            case .variableByteIntegerTooLong: return "variable byte integer longer than 4 bytes [MQTT-1.5.5-1]"
            case .variableByteIntegerNotMinimal: return "variable byte integer not in its shortest form [MQTT-1.5.5-1]"
            case .packetTooLarge(let size, let limit): return "packet of \(size) bytes exceeds the maximum packet size of \(limit) bytes"
            case .reservedPacketType(let type): return "reserved packet type \(type)"
            case .invalidFixedHeaderFlags(let flags): return "invalid fixed header flags 0b\(String(flags, radix: 2)) [MQTT-2.2.2-2]"
            case .invalidQoS: return "QoS 3 is not a QoS [MQTT-3.3.1-4]"
            case .dupFlagOnQoS0: return "DUP flag set on a QoS 0 PUBLISH [MQTT-3.3.1-2]"
            case .truncated: return "field runs past the end of the packet"
            case .trailingBytes(let count): return "\(count) unexpected bytes after the last field"
            case .invalidUTF8: return "string is not well-formed UTF-8 [MQTT-1.5.4-1]"
            case .nullCharacter: return "string contains U+0000 [MQTT-1.5.4-2]"
            case .invalidTopicName(let error): return "invalid topic name: \(error)"
            case .invalidTopicFilter(let error): return "invalid topic filter: \(error)"
            case .invalidProtocolName(let name): return "unknown protocol name \"\(name)\" [MQTT-3.1.2-1]"
            case .unsupportedProtocolVersion(let level): return "unsupported protocol level \(level) [MQTT-3.1.2-2]"
            case .connectReservedFlagSet: return "reserved CONNECT flag set [MQTT-3.1.2-3]"
            case .invalidWillFlags: return "will QoS/retain inconsistent with the will flag [MQTT-3.1.2-11..15]"
            case .passwordWithoutUsername: return "password flag without user name flag [MQTT-3.1.2-22]"
            case .connAckReservedFlagsSet: return "reserved CONNACK acknowledge flags set [MQTT-3.2.2-1]"
            case .sessionPresentOnRefusal: return "session present on a refused connection [MQTT-3.2.2-6]"
            case .unknownProperty(let id): return "unknown property identifier 0x\(String(id, radix: 16, uppercase: true))"
            case .propertyNotAllowed(let id, let context): return "property \(id) not allowed in \(context)"
            case .duplicateProperty(let id): return "property \(id) included more than once"
            case .invalidPropertyValue(let id): return "invalid value for property \(id)"
            case .tooManyProperties(let limit): return "more than \(limit) properties"
            case .zeroPacketIdentifier: return "packet identifier 0 [MQTT-2.2.1-3]"
            case .noTopicFilters: return "no topic filter [MQTT-3.8.3-2] [MQTT-3.10.3-2]"
            case .subscriptionOptionsReservedBitsSet: return "reserved subscription option bits set [MQTT-3.8.3-5]"
            case .invalidRetainHandling: return "retain handling 3 is reserved"
            case .noLocalOnSharedSubscription: return "No Local on a shared subscription [MQTT-3.8.3-4]"
            case .invalidReasonCode(let code): return "reason code 0x\(String(code, radix: 16, uppercase: true)) not valid for this packet"
            case .firstPacketNotConnect: return "first packet is not CONNECT [MQTT-3.1.0-1]"
            }
        }
    }
}

/// Why a packet could not be encoded. These are caller errors (or a peer's size limit), never silent truncation.
public enum MQTTEncodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The encoded packet would exceed the peer's Maximum Packet Size ([MQTT-3.1.2-24], [MQTT-3.2.2-15]).
    case packetTooLarge(sizeBytes: Int, limitBytes: Int)
    /// A string or binary field longer than 65,535 bytes (§1.5.4, §1.5.6).
    case fieldTooLong(bytes: Int)
    /// A QoS 1/2 PUBLISH without a packet identifier, or a packet identifier of 0 ([MQTT-2.2.1-3]).
    case missingPacketIdentifier
    /// A packet or feature the protocol version does not have (AUTH before 5.0, for example).
    case notSupported(MQTTPacketType, MQTTProtocolVersion)
    /// A property the packet may not carry (§2.2.2.2).
    case propertyNotAllowed(MQTTProperty.Identifier, in: MQTTPropertyContext)
    /// A value that does not fit its wire type (a subscription identifier above 268,435,455, for example).
    case valueOutOfRange

    public var description: String {
        switch self {
        case .packetTooLarge(let size, let limit): return "packet of \(size) bytes exceeds the peer's maximum packet size of \(limit) bytes"
        case .fieldTooLong(let bytes): return "field of \(bytes) bytes exceeds 65535 bytes"
        case .missingPacketIdentifier: return "QoS > 0 requires a non-zero packet identifier"
        case .notSupported(let type, let version): return "\(type) is not part of MQTT \(version)"
        case .propertyNotAllowed(let id, let context): return "property \(id) not allowed in \(context)"
        case .valueOutOfRange: return "value out of range for its wire type"
        }
    }
}

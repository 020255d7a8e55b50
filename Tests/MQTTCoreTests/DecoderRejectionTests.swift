import MQTTCore
import NIOCore
import Testing

/// One test per rule the decoder enforces; each checks the violation, the reason code the spec names,
/// and where the offending byte is.
@Suite("Decoder rejections")
struct DecoderRejectionTests {
    // MARK: Byte builders

    /// A whole packet: first byte, remaining length, body.
    static func packet(_ firstByte: UInt8, _ body: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(firstByte)
        var length = body.count
        repeat {
            var byte = UInt8(length & 0x7F)
            length >>= 7
            if length > 0 { byte |= 0x80 }
            buffer.writeInteger(byte)
        } while length > 0
        buffer.writeBytes(body)
        return Array(buffer.readableBytesView)
    }

    /// A length-prefixed string of raw bytes.
    static func str(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes }
    static func str(_ string: String) -> [UInt8] { str(Array(string.utf8)) }

    /// A v5 CONNECT body with the given flags, properties and trailing fields.
    static func connectBody(name: String = "MQTT", level: UInt8 = 5, flags: UInt8 = 0x02, properties: [UInt8]? = [0x00], rest: [UInt8] = str("c")) -> [UInt8] {
        str(name) + [level, flags, 0x00, 0x3C] + (properties ?? []) + rest
    }

    func expectViolation(
        _ bytes: [UInt8], _ version: MQTTProtocolVersion?, _ violation: MQTTDecodeError.Violation, _ reasonCode: MQTTReasonCode,
        at offset: Int? = nil, limits: MQTTPacketDecoder.Limits = .init(), sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error = Codec.decodeError(bytes, version, limits: limits) else { return }
        #expect(error.violation == violation, sourceLocation: sourceLocation)
        #expect(error.reasonCode == reasonCode, sourceLocation: sourceLocation)
        if let offset { #expect(error.byteOffset == offset, sourceLocation: sourceLocation) }
    }

    // MARK: Framing

    @Test("a variable byte integer of more than 4 bytes is malformed [MQTT-1.5.5-1]")
    func overlongRemainingLength() {
        expectViolation([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], .v3_1_1, .variableByteIntegerTooLong, .malformedPacket, at: 1)
    }

    @Test("a variable byte integer not in its shortest form is malformed [MQTT-1.5.5-1]")
    func nonMinimalVariableByteInteger() {
        expectViolation([0xC0, 0x80, 0x00], .v3_1_1, .variableByteIntegerNotMinimal, .malformedPacket, at: 1)
        expectViolation([0x30, 0x83, 0x80, 0x00] + [0, 1, 0x61], .v5, .variableByteIntegerNotMinimal, .malformedPacket, at: 1)
        // Property length 0 written as 80 00.
        expectViolation(Self.packet(0x30, Self.str("t") + [0x80, 0x00]), .v5, .variableByteIntegerNotMinimal, .malformedPacket, at: 5)
    }

    @Test("a property-length variable byte integer of more than 4 bytes is malformed")
    func overlongPropertyLength() {
        expectViolation(Self.packet(0x30, Self.str("t") + [0xFF, 0xFF, 0xFF, 0xFF, 0x01]), .v5, .variableByteIntegerTooLong, .malformedPacket, at: 5)
    }

    @Test("a packet over the size limit is refused from its fixed header alone, before the body arrives")
    func packetTooLarge() {
        let limits = MQTTPacketDecoder.Limits(maxPacketSizeBytes: 100)
        // Remaining length 128: header says 131 bytes; no body bytes are present yet.
        expectViolation([0x30, 0x80, 0x01], .v3_1_1, .packetTooLarge(sizeBytes: 131, limitBytes: 100), .packetTooLarge, at: 1, limits: limits)
        // Exactly at the limit is fine.
        let atLimit = Self.packet(0x30, Self.str("t") + [UInt8](repeating: 1, count: 95))
        #expect(atLimit.count == 100)
        #expect(throws: Never.self) { try Codec.decodeOne(ByteBuffer(bytes: atLimit), .v3_1_1, limits: limits) }
    }

    @Test("packet type 0 is reserved")
    func reservedPacketTypeZero() {
        expectViolation([0x00, 0x00], .v3_1_1, .reservedPacketType(0), .malformedPacket, at: 0)
    }

    @Test("AUTH does not exist before MQTT 5.0")
    func authInV311() {
        expectViolation([0xF0, 0x00], .v3_1_1, .reservedPacketType(15), .malformedPacket)
        #expect(throws: Never.self) { try Codec.decodeOne(ByteBuffer(bytes: [0xF0, 0x00]), .v5) }
    }

    @Test("fixed header flags other than the required ones are malformed [MQTT-2.2.2-2]",
          arguments: [(UInt8(0xC1), UInt8(1)), (0x80, 0), (0x60, 0), (0xA0, 0), (0x42, 2), (0xE8, 8), (0x1F, 15)])
    func reservedFlags(firstByte: UInt8, flags: UInt8) {
        expectViolation([firstByte, 0x00], .v3_1_1, .invalidFixedHeaderFlags(flags), .malformedPacket, at: 0)
    }

    @Test("PUBLISH with QoS 3 is malformed [MQTT-3.3.1-4]")
    func qos3() {
        expectViolation(Self.packet(0x36, Self.str("t") + [0, 1]), .v3_1_1, .invalidQoS, .malformedPacket, at: 0)
    }

    @Test("DUP on a QoS 0 PUBLISH is malformed [MQTT-3.3.1-2]")
    func dupOnQoS0() {
        expectViolation(Self.packet(0x38, Self.str("t")), .v3_1_1, .dupFlagOnQoS0, .malformedPacket, at: 0)
    }

    @Test("a field running past the end of the packet is malformed")
    func truncatedString() {
        expectViolation(Self.packet(0x30, [0x00, 0x05, 0x61]), .v3_1_1, .truncated, .malformedPacket, at: 2)
    }

    @Test("a property list longer than the packet is malformed")
    func truncatedProperties() {
        expectViolation(Self.packet(0x30, Self.str("t") + [0x05, 0x01]), .v5, .truncated, .malformedPacket)
    }

    @Test("bytes after the last field are malformed")
    func trailingBytes() {
        expectViolation([0xC0, 0x01, 0x00], .v3_1_1, .trailingBytes(count: 1), .malformedPacket)
        expectViolation(Self.packet(0x40, [0x00, 0x01, 0x00]), .v3_1_1, .trailingBytes(count: 1), .malformedPacket)
    }

    @Test("a packet before CONNECT is a protocol error [MQTT-3.1.0-1]")
    func firstPacketNotConnect() {
        expectViolation([0xC0, 0x00], nil, .firstPacketNotConnect, .protocolError)
    }

    // MARK: Strings

    @Test("ill-formed UTF-8 is malformed [MQTT-1.5.4-1]",
          arguments: [[UInt8(0xC3), 0x28], [0xED, 0xA0, 0x80] /* U+D800, a surrogate */, [0xC0, 0xAF] /* overlong */, [0xFF], [0xE2, 0x82]])
    func invalidUTF8(bytes: [UInt8]) {
        expectViolation(Self.packet(0x30, Self.str(bytes)), .v3_1_1, .invalidUTF8, .malformedPacket, at: 4)
    }

    @Test("U+0000 in a string is malformed [MQTT-1.5.4-2]")
    func nullCharacter() {
        expectViolation(Self.packet(0x30, Self.str([0x61, 0x00])), .v3_1_1, .nullCharacter, .malformedPacket, at: 4)
    }

    @Test("well-formed multi-byte UTF-8 is accepted, including U+FEFF which must not be stripped [MQTT-1.5.4-3]")
    func validUTF8() throws {
        let topic = "\u{FEFF}température/中/😀"
        let decoded = try Codec.decodeOne(ByteBuffer(bytes: Self.packet(0x30, Self.str(topic))), .v3_1_1)
        guard case .publish(let publish) = decoded else { Issue.record("not a PUBLISH"); return }
        #expect(publish.topicName == topic)
        #expect(publish.topicName.utf8.first == 0xEF)
    }

    // MARK: Topics

    @Test("a wildcard in a PUBLISH topic name is Topic Name Invalid [MQTT-3.3.2-2]", arguments: ["a/+", "#", "a/#", "+"])
    func wildcardInTopicName(topic: String) {
        expectViolation(Self.packet(0x30, Self.str(topic)), .v3_1_1, .invalidTopicName(.wildcardInTopicName), .topicNameInvalid, at: 2)
    }

    @Test("a wildcard in a will topic is Topic Name Invalid")
    func wildcardInWillTopic() {
        let body = Self.connectBody(level: 4, flags: 0x06, properties: nil, rest: Self.str("c") + Self.str("w/#") + Self.str("x"))
        expectViolation(Self.packet(0x10, body), nil, .invalidTopicName(.wildcardInTopicName), .topicNameInvalid)
    }

    @Test("an empty topic name is invalid unless a topic alias stands for it [MQTT-4.7.3-1]")
    func emptyTopicName() throws {
        expectViolation(Self.packet(0x30, Self.str("")), .v3_1_1, .invalidTopicName(.empty), .topicNameInvalid)
        expectViolation(Self.packet(0x30, Self.str("") + [0x00]), .v5, .invalidTopicName(.empty), .topicNameInvalid)
        let aliased = try Codec.decodeOne(ByteBuffer(bytes: Self.packet(0x30, Self.str("") + [0x03, 0x23, 0x00, 0x01])), .v5)
        guard case .publish(let publish) = aliased else { Issue.record("not a PUBLISH"); return }
        #expect(publish.properties.topicAlias == 1)
    }

    @Test("'#' not last in a filter is malformed [MQTT-4.7.1-1]")
    func multiLevelWildcardNotLast() {
        expectViolation(Self.packet(0x82, [0, 1] + Self.str("a/#/b") + [0]), .v3_1_1, .invalidTopicFilter(.multiLevelWildcardNotLast), .malformedPacket, at: 4)
    }

    @Test("a wildcard sharing a level with other characters is malformed [MQTT-4.7.1-2] [MQTT-4.7.1-3]", arguments: ["sport+", "a/b#", "+a/b", "a/#b"])
    func wildcardNotWholeLevel(filter: String) {
        guard let error = Codec.decodeError(Self.packet(0x82, [0, 1] + Self.str(filter) + [0]), .v3_1_1) else { return }
        #expect(error.reasonCode == .malformedPacket)
        guard case .invalidTopicFilter = error.violation else { Issue.record("\(error)"); return }
    }

    @Test("a shared subscription with an invalid share name is malformed [MQTT-4.8.2-1]", arguments: ["$share//a", "$share/g+/a", "$share/g"])
    func invalidShareName(filter: String) {
        guard let error = Codec.decodeError(Self.packet(0xA2, [0, 1, 0] + Self.str(filter)), .v5) else { return }
        #expect(error.reasonCode == .malformedPacket)
        guard case .invalidTopicFilter = error.violation else { Issue.record("\(error)"); return }
    }

    // MARK: Properties

    @Test("a property the packet may not carry is a protocol error")
    func propertyNotAllowed() {
        // Session Expiry Interval (0x11) in PUBLISH.
        expectViolation(Self.packet(0x30, Self.str("t") + [0x05, 0x11, 0, 0, 0, 1]), .v5,
                        .propertyNotAllowed(.sessionExpiryInterval, in: .publish), .protocolError, at: 6)
        // Will Delay Interval (0x18) in CONNECT's own properties, not the will's.
        expectViolation(Self.packet(0x10, Self.connectBody(properties: [0x05, 0x18, 0, 0, 0, 1])), nil,
                        .propertyNotAllowed(.willDelayInterval, in: .connect), .protocolError)
    }

    @Test("a property included twice is a protocol error")
    func duplicateProperty() {
        expectViolation(Self.packet(0x30, Self.str("t") + [0x08, 0x03] + Self.str("a") + [0x03] + Self.str("b")), .v5,
                        .duplicateProperty(.contentType), .protocolError)
    }

    @Test("user properties may repeat, and so may subscription identifiers in PUBLISH but not in SUBSCRIBE")
    func repeatableProperties() throws {
        let userProperties: [UInt8] = [0x26] + Self.str("k") + Self.str("1") + [0x26] + Self.str("k") + Self.str("2")
        let publish = Self.packet(0x30, Self.str("t") + [UInt8(userProperties.count + 4)] + userProperties + [0x0B, 0x01, 0x0B, 0x02])
        guard case .publish(let decoded) = try Codec.decodeOne(ByteBuffer(bytes: publish), .v5) else { Issue.record("not a PUBLISH"); return }
        #expect(decoded.properties.userProperties.map(\.1) == ["1", "2"])
        #expect(decoded.properties.subscriptionIdentifiers == [1, 2])
        expectViolation(Self.packet(0x82, [0, 1, 0x04, 0x0B, 0x01, 0x0B, 0x02] + Self.str("a") + [0]), .v5,
                        .duplicateProperty(.subscriptionIdentifier), .protocolError)
    }

    @Test("an unknown property identifier is malformed")
    func unknownProperty() {
        expectViolation(Self.packet(0x30, Self.str("t") + [0x02, 0x7F, 0x00]), .v5, .unknownProperty(0x7F), .malformedPacket, at: 6)
    }

    @Test("property values outside their range are protocol errors",
          arguments: [([UInt8(0x21), 0x00, 0x00], MQTTProperty.Identifier.receiveMaximum),
                      ([0x27, 0, 0, 0, 0], .maximumPacketSize),
                      ([0x17, 0x02], .requestProblemInformation),
                      ([0x19, 0x07], .requestResponseInformation)])
    func invalidPropertyValue(property: [UInt8], identifier: MQTTProperty.Identifier) {
        expectViolation(Self.packet(0x10, Self.connectBody(properties: [UInt8(property.count)] + property)), nil,
                        .invalidPropertyValue(identifier), .protocolError)
    }

    @Test("Payload Format Indicator above 1, Topic Alias 0 and Subscription Identifier 0 are protocol errors")
    func invalidPublishPropertyValues() {
        expectViolation(Self.packet(0x30, Self.str("t") + [0x02, 0x01, 0x02]), .v5, .invalidPropertyValue(.payloadFormatIndicator), .protocolError)
        expectViolation(Self.packet(0x30, Self.str("t") + [0x03, 0x23, 0x00, 0x00]), .v5, .invalidPropertyValue(.topicAlias), .protocolError)
        expectViolation(Self.packet(0x82, [0, 1, 0x02, 0x0B, 0x00] + Self.str("a") + [0]), .v5, .invalidPropertyValue(.subscriptionIdentifier), .protocolError)
    }

    @Test("more properties than the limit are refused")
    func tooManyProperties() {
        let one: [UInt8] = [0x26] + Self.str("k") + Self.str("v")
        let properties = one + one + one
        expectViolation(Self.packet(0x30, Self.str("t") + [UInt8(properties.count)] + properties), .v5,
                        .tooManyProperties(limit: 2), .malformedPacket, limits: .init(maxPropertiesPerPacket: 2))
    }

    // MARK: Packet identifiers and payload rules

    @Test("packet identifier 0 is a protocol error [MQTT-2.2.1-3]",
          arguments: [Self.packet(0x40, [0, 0]), Self.packet(0x32, Self.str("t") + [0, 0]), Self.packet(0x82, [0, 0] + Self.str("a") + [0]),
                      Self.packet(0xA2, [0, 0] + Self.str("a")), Self.packet(0x62, [0, 0]), Self.packet(0x90, [0, 0, 0])])
    func zeroPacketIdentifier(bytes: [UInt8]) {
        expectViolation(bytes, .v3_1_1, .zeroPacketIdentifier, .protocolError)
    }

    @Test("SUBSCRIBE and UNSUBSCRIBE need at least one topic filter [MQTT-3.8.3-2] [MQTT-3.10.3-2]")
    func noTopicFilters() {
        expectViolation(Self.packet(0x82, [0, 1]), .v3_1_1, .noTopicFilters, .protocolError)
        expectViolation(Self.packet(0xA2, [0, 1]), .v3_1_1, .noTopicFilters, .protocolError)
        expectViolation(Self.packet(0x82, [0, 1, 0]), .v5, .noTopicFilters, .protocolError)
    }

    @Test("reserved subscription option bits are malformed [MQTT-3.8.3-5]")
    func subscriptionOptionsReserved() {
        expectViolation(Self.packet(0x82, [0, 1] + Self.str("a") + [0x04]), .v3_1_1, .subscriptionOptionsReservedBitsSet, .malformedPacket, at: 7)
        expectViolation(Self.packet(0x82, [0, 1, 0] + Self.str("a") + [0x40]), .v5, .subscriptionOptionsReservedBitsSet, .malformedPacket, at: 8)
        expectViolation(Self.packet(0x82, [0, 1] + Self.str("a") + [0x03]), .v3_1_1, .invalidQoS, .malformedPacket)
    }

    @Test("retain handling 3 is a protocol error")
    func retainHandling3() {
        expectViolation(Self.packet(0x82, [0, 1, 0] + Self.str("a") + [0x30]), .v5, .invalidRetainHandling, .protocolError)
    }

    @Test("No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]")
    func noLocalOnShared() {
        expectViolation(Self.packet(0x82, [0, 1, 0] + Self.str("$share/g/a") + [0x04]), .v5, .noLocalOnSharedSubscription, .protocolError)
    }

    // MARK: CONNECT and CONNACK

    @Test("an unknown protocol name is refused [MQTT-3.1.2-1]")
    func invalidProtocolName() {
        expectViolation(Self.packet(0x10, Self.connectBody(name: "MQTX")), nil, .invalidProtocolName("MQTX"), .protocolError, at: 2)
    }

    @Test("an unsupported protocol level is Unsupported Protocol Version [MQTT-3.1.2-2]", arguments: [UInt8(6), 2, 0])
    func unsupportedLevel(level: UInt8) {
        expectViolation(Self.packet(0x10, Self.connectBody(level: level)), nil, .unsupportedProtocolVersion(level), .unsupportedProtocolVersion, at: 8)
    }

    @Test("protocol name and level must agree: MQIsdp is 3.1, MQTT is 3.1.1 or 5.0")
    func nameLevelMismatch() {
        expectViolation(Self.packet(0x10, Self.connectBody(name: "MQIsdp", level: 4, properties: nil)), nil, .unsupportedProtocolVersion(4), .unsupportedProtocolVersion)
        expectViolation(Self.packet(0x10, Self.connectBody(name: "MQTT", level: 3, properties: nil)), nil, .unsupportedProtocolVersion(3), .unsupportedProtocolVersion)
    }

    @Test("the reserved CONNECT flag is malformed [MQTT-3.1.2-3]")
    func connectReservedFlag() {
        expectViolation(Self.packet(0x10, Self.connectBody(flags: 0x03)), nil, .connectReservedFlagSet, .malformedPacket, at: 9)
    }

    @Test("will QoS 3, or will QoS/retain without a will, are malformed [MQTT-3.1.2-11..15]", arguments: [UInt8(0x1E), 0x08, 0x20])
    func invalidWillFlags(flags: UInt8) {
        expectViolation(Self.packet(0x10, Self.connectBody(level: 4, flags: flags, properties: nil)), nil, .invalidWillFlags, .malformedPacket, at: 9)
    }

    @Test("a password without a user name is malformed in 3.1.1 [MQTT-3.1.2-22] but allowed in 5.0")
    func passwordWithoutUsername() throws {
        expectViolation(Self.packet(0x10, Self.connectBody(level: 4, flags: 0x42, properties: nil, rest: Self.str("c") + Self.str("pw"))), nil,
                        .passwordWithoutUsername, .malformedPacket)
        let v5 = try Codec.decodeOne(ByteBuffer(bytes: Self.packet(0x10, Self.connectBody(flags: 0x42, rest: Self.str("c") + Self.str("pw")))), nil)
        guard case .connect(let connect) = v5 else { Issue.record("not a CONNECT"); return }
        #expect(connect.username == nil)
        #expect(connect.password == ByteBuffer(string: "pw"))
    }

    @Test("CONNACK reserved flags are malformed [MQTT-3.2.2-1]")
    func connAckReservedFlags() {
        expectViolation([0x20, 0x02, 0x02, 0x00], .v3_1_1, .connAckReservedFlagsSet, .malformedPacket, at: 2)
    }

    @Test("a refused CONNACK may not say session present [MQTT-3.2.2-6]")
    func sessionPresentOnRefusal() {
        expectViolation([0x20, 0x02, 0x01, 0x05], .v3_1_1, .sessionPresentOnRefusal, .protocolError)
        expectViolation([0x20, 0x03, 0x01, 0x87, 0x00], .v5, .sessionPresentOnRefusal, .protocolError)
    }

    @Test("reason codes a packet does not define are malformed")
    func invalidReasonCodes() {
        expectViolation([0x20, 0x02, 0x00, 0x06], .v3_1_1, .invalidReasonCode(6), .malformedPacket, at: 3)
        expectViolation([0x20, 0x03, 0x00, 0x8E, 0x00], .v5, .invalidReasonCode(0x8E), .malformedPacket)
        expectViolation([0x40, 0x03, 0x00, 0x01, 0x04], .v5, .invalidReasonCode(0x04), .malformedPacket, at: 4)
        expectViolation([0x62, 0x03, 0x00, 0x01, 0x10], .v5, .invalidReasonCode(0x10), .malformedPacket)
        expectViolation([0x90, 0x03, 0x00, 0x01, 0x03], .v3_1_1, .invalidReasonCode(3), .malformedPacket)
        expectViolation([0x90, 0x04, 0x00, 0x01, 0x00, 0x91], .v3_1_1, .invalidReasonCode(0x91), .malformedPacket)
        expectViolation([0xE0, 0x01, 0x18], .v5, .invalidReasonCode(0x18), .malformedPacket)
        expectViolation([0xF0, 0x01, 0x04], .v5, .invalidReasonCode(0x04), .malformedPacket)
    }

    @Test("the decoder reports the error once and the stream before it was decoded intact")
    func errorAfterValidPackets() throws {
        var buffer = ByteBuffer(bytes: [0xC0, 0x00, 0xD0, 0x00, 0xC1, 0x00])
        var decoder = MQTTPacketDecoder(protocolVersion: .v3_1_1)
        #expect(try decoder.decode(&buffer) == .pingReq)
        #expect(try decoder.decode(&buffer) == .pingResp)
        #expect(throws: MQTTDecodeError.self) { try decoder.decode(&buffer) }
    }
}

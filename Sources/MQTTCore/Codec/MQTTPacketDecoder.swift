import NIOCore

/// Decodes MQTT packets from a byte stream in two phases: the fixed header and remaining length
/// first, then the packet from a slice of exactly that length.
///
/// Limits are checked before memory is spent: the packet size is known from the fixed header and a
/// packet over `limits.maxPacketSizeBytes` is refused before its body is buffered.
///
/// A server starts with `protocolVersion == nil`: the first packet must then be CONNECT
/// ([MQTT-3.1.0-1]), and the decoder adopts the version that CONNECT names. A client sets the version
/// it connects with.
public struct MQTTPacketDecoder: Sendable {
    /// Bounds on what one packet may make the decoder hold.
    public struct Limits: Sendable, Hashable {
        /// The largest whole packet (fixed header included) accepted. Default: the protocol's own ceiling,
        /// 1 + 4 + 268,435,455 bytes; servers set their `maxPacketSizeInByte`, v5 clients their Maximum Packet Size.
        public var maxPacketSizeBytes: Int
        /// The most properties one property list may hold (user properties are otherwise unbounded). Default 256.
        public var maxPropertiesPerPacket: Int

        public static let protocolMaximumPacketSizeBytes = 1 + 4 + 268_435_455

        public init(maxPacketSizeBytes: Int = Limits.protocolMaximumPacketSizeBytes, maxPropertiesPerPacket: Int = 256) {
            precondition(maxPacketSizeBytes >= 2, "a packet is at least 2 bytes")
            self.maxPacketSizeBytes = maxPacketSizeBytes
            self.maxPropertiesPerPacket = maxPropertiesPerPacket
        }
    }

    /// The version packets are decoded as; nil until CONNECT is seen (server side).
    public var protocolVersion: MQTTProtocolVersion?
    public var limits: Limits

    public init(protocolVersion: MQTTProtocolVersion? = nil, limits: Limits = Limits()) {
        self.protocolVersion = protocolVersion
        self.limits = limits
    }

    /// Decodes the next whole packet from `buffer`, consuming exactly its bytes, or returns nil and
    /// consumes nothing if the packet is not complete yet.
    @inlinable
    public mutating func decode(_ buffer: inout ByteBuffer) throws(MQTTDecodeError) -> MQTTPacket? {
        guard let firstByte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        let packetType = try Self.packetType(of: firstByte, version: protocolVersion)

        // Remaining length: a variable byte integer of at most 4 bytes ([MQTT-1.5.5-1]).
        var remainingLength = 0
        var headerLength = 1
        while true {
            guard let byte = buffer.getInteger(at: buffer.readerIndex + headerLength, as: UInt8.self) else { return nil }
            remainingLength |= Int(byte & 0x7F) << (7 * (headerLength - 1))
            headerLength += 1
            if byte & 0x80 == 0 {
                // [MQTT-1.5.5-1]: the minimum number of bytes; a trailing 0x00 after a continuation is not.
                if byte == 0 && headerLength > 2 {
                    throw MQTTDecodeError(.variableByteIntegerNotMinimal, packetType: packetType, byteOffset: 1)
                }
                break
            }
            if headerLength == 5 {
                throw MQTTDecodeError(.variableByteIntegerTooLong, packetType: packetType, byteOffset: 1)
            }
        }
        let packetSize = headerLength + remainingLength
        guard packetSize <= limits.maxPacketSizeBytes else {
            throw MQTTDecodeError(.packetTooLarge(sizeBytes: packetSize, limitBytes: limits.maxPacketSizeBytes), packetType: packetType, byteOffset: 1)
        }
        guard buffer.readableBytes >= packetSize else { return nil }

        let body = buffer.getSlice(at: buffer.readerIndex + headerLength, length: remainingLength)!
        let packet = try Self.decodePacket(
            type: packetType, flags: firstByte & 0x0F, body: body, headerLength: headerLength,
            version: protocolVersion, limits: limits
        )
        buffer.moveReaderIndex(forwardBy: packetSize)
        if case .connect(let connect) = packet {
            protocolVersion = connect.protocolVersion
        }
        return packet
    }

    /// Checks the first byte: a known type for the version, with the flags the spec requires.
    @inlinable
    static func packetType(of firstByte: UInt8, version: MQTTProtocolVersion?) throws(MQTTDecodeError) -> MQTTPacketType {
        let rawType = firstByte >> 4
        guard let type = MQTTPacketType(rawValue: rawType) else {
            throw MQTTDecodeError(.reservedPacketType(rawType), packetType: nil, byteOffset: 0)
        }
        let flags = firstByte & 0x0F
        switch type {
        case .publish:
            let qos = (flags >> 1) & 0b11
            // [MQTT-3.3.1-4]
            if qos == 3 { throw MQTTDecodeError(.invalidQoS, packetType: type, byteOffset: 0) }
            // [MQTT-3.3.1-2]
            if qos == 0 && flags & 0b1000 != 0 { throw MQTTDecodeError(.dupFlagOnQoS0, packetType: type, byteOffset: 0) }
        case .auth:
            // AUTH is reserved before 5.0; before CONNECT the version is unknown and CONNECT must come first.
            if version != .v5 { throw MQTTDecodeError(.reservedPacketType(rawType), packetType: nil, byteOffset: 0) }
            fallthrough
        case .connect, .connAck, .pubAck, .pubRec, .pubRel, .pubComp, .subscribe, .subAck, .unsubscribe,
             .unsubAck, .pingReq, .pingResp, .disconnect:
            // [MQTT-2.2.2-1], [MQTT-2.2.2-2]; PUBREL, SUBSCRIBE, UNSUBSCRIBE: [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]
            if flags != type.requiredFlags { throw MQTTDecodeError(.invalidFixedHeaderFlags(flags), packetType: type, byteOffset: 0) }
        }
        if version == nil && type != .connect {
            throw MQTTDecodeError(.firstPacketNotConnect, packetType: type, byteOffset: 0)
        }
        return type
    }

    /// Phase two: decodes one packet from the slice that holds exactly its variable header and payload.
    /// `version` is nil only for CONNECT, which names its own.
    public static func decodePacket(
        type: MQTTPacketType,
        flags: UInt8,
        body: ByteBuffer,
        headerLength: Int,
        version: MQTTProtocolVersion?,
        limits: Limits = Limits()
    ) throws(MQTTDecodeError) -> MQTTPacket {
        var reader = MQTTPacketReader(buffer: body, packetType: type, baseOffset: headerLength)
        if type == .connect {
            return .connect(try reader.readConnect(limits: limits))
        }
        guard let version else {
            throw MQTTDecodeError(.firstPacketNotConnect, packetType: type, byteOffset: 0)
        }
        let packet: MQTTPacket
        switch type {
        case .connect:
            preconditionFailure("handled above")
        case .connAck:
            packet = .connAck(try reader.readConnAck(version: version, limits: limits))
        case .publish:
            packet = .publish(try reader.readPublish(flags: flags, version: version, limits: limits))
        case .pubAck:
            packet = .pubAck(try reader.readPubAck(.pubAck, version: version, limits: limits))
        case .pubRec:
            packet = .pubRec(try reader.readPubAck(.pubRec, version: version, limits: limits))
        case .pubRel:
            packet = .pubRel(try reader.readPubAck(.pubRel, version: version, limits: limits))
        case .pubComp:
            packet = .pubComp(try reader.readPubAck(.pubComp, version: version, limits: limits))
        case .subscribe:
            packet = .subscribe(try reader.readSubscribe(version: version, limits: limits))
        case .subAck:
            packet = .subAck(try reader.readSubAck(version: version, limits: limits))
        case .unsubscribe:
            packet = .unsubscribe(try reader.readUnsubscribe(version: version, limits: limits))
        case .unsubAck:
            packet = .unsubAck(try reader.readUnsubAck(version: version, limits: limits))
        case .pingReq:
            try reader.expectEnd()
            packet = .pingReq
        case .pingResp:
            try reader.expectEnd()
            packet = .pingResp
        case .disconnect:
            packet = .disconnect(try reader.readDisconnect(version: version, limits: limits))
        case .auth:
            packet = .auth(try reader.readAuth(limits: limits))
        }
        return packet
    }
}

// MARK: - One reader per packet type

extension MQTTPacketReader {
    /// CONNECT (§3.1.2, §3.1.3).
    @usableFromInline
    mutating func readConnect(limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> ConnectPacket {
        let nameOffset = offset
        let protocolName = try readString()
        let levelOffset = offset
        let level = try readByte()
        guard protocolName == "MQTT" || protocolName == "MQIsdp" else {
            throw error(.invalidProtocolName(protocolName), at: nameOffset)  // [MQTT-3.1.2-1]
        }
        let version: MQTTProtocolVersion
        switch (protocolName, level) {
        case ("MQIsdp", 3): version = .v3_1
        case ("MQTT", 4): version = .v3_1_1
        case ("MQTT", 5): version = .v5
        default: throw error(.unsupportedProtocolVersion(level), at: levelOffset)  // [MQTT-3.1.2-2]
        }

        let flagsOffset = offset
        let flags = try readByte()
        // [MQTT-3.1.2-3]
        if flags & 0b0000_0001 != 0 { throw error(.connectReservedFlagSet, at: flagsOffset) }
        let cleanStart = flags & 0b0000_0010 != 0
        let willFlag = flags & 0b0000_0100 != 0
        let willQoSBits = (flags >> 3) & 0b11
        let willRetain = flags & 0b0010_0000 != 0
        let passwordFlag = flags & 0b0100_0000 != 0
        let usernameFlag = flags & 0b1000_0000 != 0
        // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-14], [MQTT-3.1.2-15]
        if willQoSBits == 3 || (!willFlag && (willQoSBits != 0 || willRetain)) {
            throw error(.invalidWillFlags, at: flagsOffset)
        }
        // [MQTT-3.1.2-22]: 3.1.1 forbids a password without a user name; 5.0 allows it (§3.1.2.9).
        if version != .v5 && passwordFlag && !usernameFlag {
            throw error(.passwordWithoutUsername, at: flagsOffset)
        }
        let keepAliveSeconds = try readUInt16()
        let properties = version.hasProperties ? try readProperties(.connect, limit: limits.maxPropertiesPerPacket) : MQTTProperties()

        let clientIdentifier = try readString()
        var will: ConnectPacket.Will?
        if willFlag {
            let willProperties = version.hasProperties ? try readProperties(.will, limit: limits.maxPropertiesPerPacket) : MQTTProperties()
            let topicOffset = offset
            let topic = try readString()
            do throws(TopicError) {
                try TopicName.validate(topic)
            } catch {
                throw self.error(.invalidTopicName(error), at: topicOffset)
            }
            let payload = try readBinary()
            will = ConnectPacket.Will(
                topicName: topic, payload: payload, qos: MQTTQoS(rawValue: willQoSBits)!, retain: willRetain,
                properties: willProperties
            )
        }
        let username = usernameFlag ? try readString() : nil
        let password = passwordFlag ? try readBinary() : nil
        try expectEnd()
        return ConnectPacket(
            protocolVersion: version, clientIdentifier: clientIdentifier, cleanStart: cleanStart,
            keepAliveSeconds: keepAliveSeconds, username: username, password: password, will: will,
            properties: properties
        )
    }

    /// CONNACK (§3.2.2).
    @usableFromInline
    mutating func readConnAck(version: MQTTProtocolVersion, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> ConnAckPacket {
        let flagsOffset = offset
        let flags = try readByte()
        // [MQTT-3.2.2-1]
        if flags & 0b1111_1110 != 0 { throw error(.connAckReservedFlagsSet, at: flagsOffset) }
        let sessionPresent = flags & 1 == 1
        let codeOffset = offset
        let rawCode = try readByte()
        let reasonCode: MQTTReasonCode
        if version.hasProperties {
            guard let code = MQTTReasonCode(rawValue: rawCode), code.isValid(in: .connAck) else {
                throw error(.invalidReasonCode(rawCode), at: codeOffset)
            }
            reasonCode = code
        } else {
            guard let code = MQTTReasonCode(connectReturnCodeV3: rawCode) else {
                throw error(.invalidReasonCode(rawCode), at: codeOffset)
            }
            reasonCode = code
        }
        // [MQTT-3.2.2-6] (5.0), [MQTT-3.2.2-4] (3.1.1)
        if sessionPresent && reasonCode.isFailure { throw error(.sessionPresentOnRefusal, at: flagsOffset) }
        let properties = version.hasProperties ? try readProperties(.connAck, limit: limits.maxPropertiesPerPacket) : MQTTProperties()
        try expectEnd()
        return ConnAckPacket(sessionPresent: sessionPresent, reasonCode: reasonCode, properties: properties)
    }

    /// PUBLISH (§3.3). The fixed-header flags were checked by `packetType(of:version:)`.
    @usableFromInline
    mutating func readPublish(flags: UInt8, version: MQTTProtocolVersion, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> PublishPacket {
        let qos = MQTTQoS(rawValue: (flags >> 1) & 0b11)!
        let topicOffset = offset
        let topic = try readString()
        let packetIdentifier: UInt16? = qos == .atMostOnce ? nil : try readPacketIdentifier()
        let properties = version.hasProperties ? try readProperties(.publish, limit: limits.maxPropertiesPerPacket) : MQTTProperties()
        if topic.isEmpty {
            // §3.3.2.3.4: an empty topic name is allowed only with a Topic Alias.
            if properties.isEmpty || properties.topicAlias == nil {
                throw error(.invalidTopicName(.empty), at: topicOffset)
            }
        } else {
            do throws(TopicError) {
                try TopicName.validate(topic)  // [MQTT-3.3.2-2]
            } catch {
                throw self.error(.invalidTopicName(error), at: topicOffset)
            }
        }
        return PublishPacket(
            topicName: topic, payload: readRest(), qos: qos, retain: flags & 1 == 1, dup: flags & 0b1000 != 0,
            packetIdentifier: packetIdentifier, properties: properties
        )
    }

    /// PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4 - §3.7). In 5.0 the reason code and properties may be
    /// omitted when the reason is Success and there are no properties (§3.4.2.1).
    @usableFromInline
    mutating func readPubAck(_ context: MQTTPropertyContext, version: MQTTProtocolVersion, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> PubAckPacket {
        let packetIdentifier = try readPacketIdentifier()
        var reasonCode = MQTTReasonCode.success
        var properties = MQTTProperties()
        if version.hasProperties && readableBytes > 0 {
            let codeOffset = offset
            let rawCode = try readByte()
            guard let code = MQTTReasonCode(rawValue: rawCode), code.isValid(in: packetType) else {
                throw error(.invalidReasonCode(rawCode), at: codeOffset)
            }
            reasonCode = code
            if readableBytes > 0 {
                properties = try readProperties(context, limit: limits.maxPropertiesPerPacket)
            }
        }
        try expectEnd()
        return PubAckPacket(packetIdentifier: packetIdentifier, reasonCode: reasonCode, properties: properties)
    }

    /// SUBSCRIBE (§3.8).
    @usableFromInline
    mutating func readSubscribe(version: MQTTProtocolVersion, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> SubscribePacket {
        let packetIdentifier = try readPacketIdentifier()
        let properties = version.hasProperties ? try readProperties(.subscribe, limit: limits.maxPropertiesPerPacket) : MQTTProperties()
        var subscriptions: [Subscription] = []
        subscriptions.reserveCapacity(min(readableBytes / 4, 32))  // a subscription takes at least 4 bytes; growth beyond 32 is amortized
        while readableBytes > 0 {
            let filterOffset = offset
            let filter = try readTopicFilter()
            let optionsOffset = offset
            let options = try readByte()
            let reservedMask: UInt8 = version.hasProperties ? 0b1100_0000 : 0b1111_1100
            // [MQTT-3.8.3-5] (5.0), [MQTT-3-8.3-4] (3.1.1)
            if options & reservedMask != 0 { throw error(.subscriptionOptionsReservedBitsSet, at: optionsOffset) }
            guard let qos = MQTTQoS(rawValue: options & 0b11) else { throw error(.invalidQoS, at: optionsOffset) }
            var subscription = Subscription(topicFilter: filter, maximumQoS: qos)
            if version.hasProperties {
                subscription.noLocal = options & 0b0100 != 0
                subscription.retainAsPublished = options & 0b1000 != 0
                guard let handling = Subscription.RetainHandling(rawValue: (options >> 4) & 0b11) else {
                    throw error(.invalidRetainHandling, at: optionsOffset)
                }
                subscription.retainHandling = handling
                // [MQTT-3.8.3-4]
                if subscription.noLocal && filter.utf8.starts(with: "$share/".utf8) {
                    throw error(.noLocalOnSharedSubscription, at: filterOffset)
                }
            }
            subscriptions.append(subscription)
        }
        // [MQTT-3.8.3-2]
        if subscriptions.isEmpty { throw error(.noTopicFilters) }
        return SubscribePacket(packetIdentifier: packetIdentifier, subscriptions: subscriptions, properties: properties)
    }

    /// SUBACK (§3.9).
    @usableFromInline
    mutating func readSubAck(version: MQTTProtocolVersion, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> SubAckPacket {
        let packetIdentifier = try readPacketIdentifier()
        let properties = version.hasProperties ? try readProperties(.subAck, limit: limits.maxPropertiesPerPacket) : MQTTProperties()
        var reasonCodes: [MQTTReasonCode] = []
        reasonCodes.reserveCapacity(readableBytes)
        while readableBytes > 0 {
            let codeOffset = offset
            let rawCode = try readByte()
            guard let code = MQTTReasonCode(rawValue: rawCode),
                  version.hasProperties ? code.isValid(in: .subAck) : code.isValidSubAckReturnCodeV3
            else {
                throw error(.invalidReasonCode(rawCode), at: codeOffset)
            }
            reasonCodes.append(code)
        }
        return SubAckPacket(packetIdentifier: packetIdentifier, reasonCodes: reasonCodes, properties: properties)
    }

    /// UNSUBSCRIBE (§3.10).
    @usableFromInline
    mutating func readUnsubscribe(version: MQTTProtocolVersion, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> UnsubscribePacket {
        let packetIdentifier = try readPacketIdentifier()
        let properties = version.hasProperties ? try readProperties(.unsubscribe, limit: limits.maxPropertiesPerPacket) : MQTTProperties()
        var filters: [String] = []
        filters.reserveCapacity(min(readableBytes / 3, 32))  // a filter takes at least 3 bytes; growth beyond 32 is amortized
        while readableBytes > 0 {
            filters.append(try readTopicFilter())
        }
        // [MQTT-3.10.3-2]
        if filters.isEmpty { throw error(.noTopicFilters) }
        return UnsubscribePacket(packetIdentifier: packetIdentifier, topicFilters: filters, properties: properties)
    }

    /// UNSUBACK (§3.11). 3.1.1 has only the packet identifier.
    @usableFromInline
    mutating func readUnsubAck(version: MQTTProtocolVersion, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> UnsubAckPacket {
        let packetIdentifier = try readPacketIdentifier()
        guard version.hasProperties else {
            try expectEnd()
            return UnsubAckPacket(packetIdentifier: packetIdentifier)
        }
        let properties = try readProperties(.unsubAck, limit: limits.maxPropertiesPerPacket)
        var reasonCodes: [MQTTReasonCode] = []
        while readableBytes > 0 {
            let codeOffset = offset
            let rawCode = try readByte()
            guard let code = MQTTReasonCode(rawValue: rawCode), code.isValid(in: .unsubAck) else {
                throw error(.invalidReasonCode(rawCode), at: codeOffset)
            }
            reasonCodes.append(code)
        }
        return UnsubAckPacket(packetIdentifier: packetIdentifier, reasonCodes: reasonCodes, properties: properties)
    }

    /// DISCONNECT (§3.14). Empty in 3.1.1; in 5.0 an empty body means Normal disconnection (§3.14.2.1).
    @usableFromInline
    mutating func readDisconnect(version: MQTTProtocolVersion, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> DisconnectPacket {
        guard version.hasProperties, readableBytes > 0 else {
            try expectEnd()
            return DisconnectPacket()
        }
        let (reasonCode, properties) = try readReasonCodeAndProperties(.disconnect, limits: limits)
        return DisconnectPacket(reasonCode: reasonCode, properties: properties)
    }

    /// AUTH (§3.15). An empty body means Success with no properties (§3.15.2.1).
    @usableFromInline
    mutating func readAuth(limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> AuthPacket {
        guard readableBytes > 0 else { return AuthPacket() }
        let (reasonCode, properties) = try readReasonCodeAndProperties(.auth, limits: limits)
        return AuthPacket(reasonCode: reasonCode, properties: properties)
    }

    @usableFromInline
    mutating func readReasonCodeAndProperties(_ context: MQTTPropertyContext, limits: MQTTPacketDecoder.Limits) throws(MQTTDecodeError) -> (MQTTReasonCode, MQTTProperties) {
        let codeOffset = offset
        let rawCode = try readByte()
        guard let code = MQTTReasonCode(rawValue: rawCode), code.isValid(in: packetType) else {
            throw error(.invalidReasonCode(rawCode), at: codeOffset)
        }
        let properties = readableBytes > 0 ? try readProperties(context, limit: limits.maxPropertiesPerPacket) : MQTTProperties()
        try expectEnd()
        return (code, properties)
    }

    /// A topic filter of SUBSCRIBE or UNSUBSCRIBE ([MQTT-4.7.1-1..3], [MQTT-4.8.2-1..2]).
    @usableFromInline
    mutating func readTopicFilter() throws(MQTTDecodeError) -> String {
        let filterOffset = offset
        let filter = try readString()
        do throws(TopicError) {
            try TopicFilter.validate(filter)
        } catch {
            throw self.error(.invalidTopicFilter(error), at: filterOffset)
        }
        return filter
    }
}

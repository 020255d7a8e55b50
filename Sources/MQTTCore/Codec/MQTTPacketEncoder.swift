import NIOCore

/// Encodes packets for one protocol version. Sizes are computed first, so each packet is written in
/// one pass into a buffer of exactly the right size, and a packet over the peer's Maximum Packet Size
/// is refused before anything is written ([MQTT-3.1.2-24], [MQTT-3.2.2-15]).
///
/// A PUBLISH payload is a `ByteBuffer` slice: `encodePublishHeader` writes everything before it, so a
/// channel handler can hand the header and the untouched payload to the kernel as two buffers.
public struct MQTTPacketEncoder: Sendable {
    public var protocolVersion: MQTTProtocolVersion
    /// The peer's Maximum Packet Size, if it announced one.
    public var maxPacketSizeBytes: Int?

    public init(protocolVersion: MQTTProtocolVersion, maxPacketSizeBytes: Int? = nil) {
        self.protocolVersion = protocolVersion
        self.maxPacketSizeBytes = maxPacketSizeBytes
    }

    /// Encodes `packet` at the end of `buffer`. On error nothing is written.
    public func encode(_ packet: MQTTPacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        switch packet {
        case .connect(let connect): try encodeConnect(connect, into: &buffer)
        case .connAck(let connAck): try encodeConnAck(connAck, into: &buffer)
        case .publish(let publish): try encodePublish(publish, into: &buffer, includePayload: true)
        case .pubAck(let ack): try encodePubAck(ack, type: .pubAck, into: &buffer)
        case .pubRec(let ack): try encodePubAck(ack, type: .pubRec, into: &buffer)
        case .pubRel(let ack): try encodePubAck(ack, type: .pubRel, into: &buffer)
        case .pubComp(let ack): try encodePubAck(ack, type: .pubComp, into: &buffer)
        case .subscribe(let subscribe): try encodeSubscribe(subscribe, into: &buffer)
        case .subAck(let subAck): try encodeSubAck(subAck, into: &buffer)
        case .unsubscribe(let unsubscribe): try encodeUnsubscribe(unsubscribe, into: &buffer)
        case .unsubAck(let unsubAck): try encodeUnsubAck(unsubAck, into: &buffer)
        case .pingReq: try writeFixedHeader(type: .pingReq, flags: 0, remainingLength: 0, into: &buffer)
        case .pingResp: try writeFixedHeader(type: .pingResp, flags: 0, remainingLength: 0, into: &buffer)
        case .disconnect(let disconnect): try encodeDisconnect(disconnect, into: &buffer)
        case .auth(let auth): try encodeAuth(auth, into: &buffer)
        }
    }

    /// Writes a PUBLISH without its payload; the payload bytes must follow on the wire unchanged.
    public func encodePublishHeader(_ publish: PublishPacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        try encodePublish(publish, into: &buffer, includePayload: false)
    }

    /// The total size of `packet` on the wire, fixed header included.
    public func encodedSize(of packet: MQTTPacket) throws(MQTTEncodeError) -> Int {
        var scratch = ByteBufferAllocator().buffer(capacity: 0)
        if case .publish(let publish) = packet {
            try encodePublishHeader(publish, into: &scratch)
            return scratch.readableBytes + publish.payload.readableBytes
        }
        try encode(packet, into: &scratch)
        return scratch.readableBytes
    }

    // MARK: - Fixed header

    /// Writes the fixed header after checking the whole packet against the size limits, and reserves
    /// room for the rest.
    func writeFixedHeader(type: MQTTPacketType, flags: UInt8, remainingLength: Int, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        guard remainingLength <= MQTTWire.maxVariableByteInteger else {
            throw .packetTooLarge(sizeBytes: 1 + 4 + remainingLength, limitBytes: MQTTPacketDecoder.Limits.protocolMaximumPacketSizeBytes)
        }
        let packetSize = 1 + MQTTWire.variableByteIntegerSize(remainingLength) + remainingLength
        if let limit = maxPacketSizeBytes, packetSize > limit {
            throw .packetTooLarge(sizeBytes: packetSize, limitBytes: limit)
        }
        buffer.reserveCapacity(minimumWritableBytes: packetSize)
        buffer.writeInteger(type.rawValue << 4 | flags)
        buffer.writeMQTTVariableByteInteger(remainingLength)
    }

    // MARK: - Packets

    func encodeConnect(_ connect: ConnectPacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        let version = connect.protocolVersion
        var size = try MQTTWire.stringSize(version.protocolName) + 1 + 1 + 2
        var properties = (total: 0, contents: 0)
        if version.hasProperties {
            properties = try MQTTWire.propertyListSize(connect.properties, .connect)
            size += properties.total
        }
        size += try MQTTWire.stringSize(connect.clientIdentifier)
        var willProperties = (total: 0, contents: 0)
        if let will = connect.will {
            if version.hasProperties {
                willProperties = try MQTTWire.propertyListSize(will.properties, .will)
                size += willProperties.total
            }
            size += try MQTTWire.stringSize(will.topicName) + MQTTWire.binarySize(will.payload)
        }
        if let username = connect.username { size += try MQTTWire.stringSize(username) }
        if let password = connect.password { size += try MQTTWire.binarySize(password) }

        var flags: UInt8 = 0
        if connect.cleanStart { flags |= 0b0000_0010 }
        if let will = connect.will {
            flags |= 0b0000_0100 | will.qos.rawValue << 3
            if will.retain { flags |= 0b0010_0000 }
        }
        if connect.password != nil { flags |= 0b0100_0000 }
        if connect.username != nil { flags |= 0b1000_0000 }

        try writeFixedHeader(type: .connect, flags: 0, remainingLength: size, into: &buffer)
        buffer.writeMQTTString(version.protocolName)
        buffer.writeInteger(version.rawValue)
        buffer.writeInteger(flags)
        buffer.writeInteger(connect.keepAliveSeconds)
        if version.hasProperties { buffer.writeMQTTProperties(connect.properties, contentsSize: properties.contents) }
        buffer.writeMQTTString(connect.clientIdentifier)
        if let will = connect.will {
            if version.hasProperties { buffer.writeMQTTProperties(will.properties, contentsSize: willProperties.contents) }
            buffer.writeMQTTString(will.topicName)
            buffer.writeMQTTBinary(will.payload)
        }
        if let username = connect.username { buffer.writeMQTTString(username) }
        if let password = connect.password { buffer.writeMQTTBinary(password) }
    }

    func encodeConnAck(_ connAck: ConnAckPacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        let flags: UInt8 = connAck.sessionPresent ? 1 : 0
        guard protocolVersion.hasProperties else {
            try writeFixedHeader(type: .connAck, flags: 0, remainingLength: 2, into: &buffer)
            buffer.writeInteger(flags)
            buffer.writeInteger(connAck.reasonCode.connectReturnCodeV3)
            return
        }
        let properties = try MQTTWire.propertyListSize(connAck.properties, .connAck)
        try writeFixedHeader(type: .connAck, flags: 0, remainingLength: 2 + properties.total, into: &buffer)
        buffer.writeInteger(flags)
        buffer.writeInteger(connAck.reasonCode.rawValue)
        buffer.writeMQTTProperties(connAck.properties, contentsSize: properties.contents)
    }

    func encodePublish(_ publish: PublishPacket, into buffer: inout ByteBuffer, includePayload: Bool) throws(MQTTEncodeError) {
        var size = try MQTTWire.stringSize(publish.topicName)
        if publish.qos != .atMostOnce {
            guard let identifier = publish.packetIdentifier, identifier != 0 else { throw .missingPacketIdentifier }
            size += 2
        }
        var properties = (total: 0, contents: 0)
        if protocolVersion.hasProperties {
            properties = try MQTTWire.propertyListSize(publish.properties, .publish)
            size += properties.total
        }
        size += publish.payload.readableBytes

        var flags = publish.qos.rawValue << 1
        if publish.dup && publish.qos != .atMostOnce { flags |= 0b1000 }  // [MQTT-3.3.1-2]
        if publish.retain { flags |= 0b0001 }
        try writeFixedHeader(type: .publish, flags: flags, remainingLength: size, into: &buffer)
        buffer.writeMQTTString(publish.topicName)
        if publish.qos != .atMostOnce { buffer.writeInteger(publish.packetIdentifier!) }
        if protocolVersion.hasProperties { buffer.writeMQTTProperties(publish.properties, contentsSize: properties.contents) }
        if includePayload { buffer.writeImmutableBuffer(publish.payload) }
    }

    func encodePubAck(_ ack: PubAckPacket, type: MQTTPacketType, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        guard ack.packetIdentifier != 0 else { throw .missingPacketIdentifier }
        let context: MQTTPropertyContext
        switch type {
        case .pubAck: context = .pubAck
        case .pubRec: context = .pubRec
        case .pubRel: context = .pubRel
        case .pubComp: context = .pubComp
        case .connect, .connAck, .publish, .subscribe, .subAck, .unsubscribe, .unsubAck, .pingReq, .pingResp,
             .disconnect, .auth:
            preconditionFailure("\(type) is not an acknowledgement of PUBLISH")
        }
        let flags = type.requiredFlags
        // §3.4.2.1: Reason Code and Property Length may be omitted for Success with no properties.
        guard protocolVersion.hasProperties, ack.reasonCode != .success || !ack.properties.isEmpty else {
            try writeFixedHeader(type: type, flags: flags, remainingLength: 2, into: &buffer)
            buffer.writeInteger(ack.packetIdentifier)
            return
        }
        if ack.properties.isEmpty {
            try writeFixedHeader(type: type, flags: flags, remainingLength: 3, into: &buffer)
            buffer.writeInteger(ack.packetIdentifier)
            buffer.writeInteger(ack.reasonCode.rawValue)
            return
        }
        let properties = try MQTTWire.propertyListSize(ack.properties, context)
        try writeFixedHeader(type: type, flags: flags, remainingLength: 3 + properties.total, into: &buffer)
        buffer.writeInteger(ack.packetIdentifier)
        buffer.writeInteger(ack.reasonCode.rawValue)
        buffer.writeMQTTProperties(ack.properties, contentsSize: properties.contents)
    }

    func encodeSubscribe(_ subscribe: SubscribePacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        guard subscribe.packetIdentifier != 0 else { throw .missingPacketIdentifier }
        var size = 2
        var properties = (total: 0, contents: 0)
        if protocolVersion.hasProperties {
            properties = try MQTTWire.propertyListSize(subscribe.properties, .subscribe)
            size += properties.total
        }
        for subscription in subscribe.subscriptions {
            size += try MQTTWire.stringSize(subscription.topicFilter) + 1
        }
        try writeFixedHeader(type: .subscribe, flags: MQTTPacketType.subscribe.requiredFlags, remainingLength: size, into: &buffer)
        buffer.writeInteger(subscribe.packetIdentifier)
        if protocolVersion.hasProperties { buffer.writeMQTTProperties(subscribe.properties, contentsSize: properties.contents) }
        for subscription in subscribe.subscriptions {
            buffer.writeMQTTString(subscription.topicFilter)
            var options = subscription.maximumQoS.rawValue
            if protocolVersion.hasProperties {
                if subscription.noLocal { options |= 0b0100 }
                if subscription.retainAsPublished { options |= 0b1000 }
                options |= subscription.retainHandling.rawValue << 4
            }
            buffer.writeInteger(options)
        }
    }

    func encodeSubAck(_ subAck: SubAckPacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        guard subAck.packetIdentifier != 0 else { throw .missingPacketIdentifier }
        var size = 2 + subAck.reasonCodes.count
        var properties = (total: 0, contents: 0)
        if protocolVersion.hasProperties {
            properties = try MQTTWire.propertyListSize(subAck.properties, .subAck)
            size += properties.total
        }
        try writeFixedHeader(type: .subAck, flags: 0, remainingLength: size, into: &buffer)
        buffer.writeInteger(subAck.packetIdentifier)
        if protocolVersion.hasProperties {
            buffer.writeMQTTProperties(subAck.properties, contentsSize: properties.contents)
            for code in subAck.reasonCodes { buffer.writeInteger(code.rawValue) }
        } else {
            // 3.1.1 knows only granted QoS 0-2 and 0x80 Failure (§3.9.3 of 3.1.1).
            for code in subAck.reasonCodes {
                buffer.writeInteger(code.isValidSubAckReturnCodeV3 ? code.rawValue : MQTTReasonCode.unspecifiedError.rawValue)
            }
        }
    }

    func encodeUnsubscribe(_ unsubscribe: UnsubscribePacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        guard unsubscribe.packetIdentifier != 0 else { throw .missingPacketIdentifier }
        var size = 2
        var properties = (total: 0, contents: 0)
        if protocolVersion.hasProperties {
            properties = try MQTTWire.propertyListSize(unsubscribe.properties, .unsubscribe)
            size += properties.total
        }
        for filter in unsubscribe.topicFilters { size += try MQTTWire.stringSize(filter) }
        try writeFixedHeader(type: .unsubscribe, flags: MQTTPacketType.unsubscribe.requiredFlags, remainingLength: size, into: &buffer)
        buffer.writeInteger(unsubscribe.packetIdentifier)
        if protocolVersion.hasProperties { buffer.writeMQTTProperties(unsubscribe.properties, contentsSize: properties.contents) }
        for filter in unsubscribe.topicFilters { buffer.writeMQTTString(filter) }
    }

    func encodeUnsubAck(_ unsubAck: UnsubAckPacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        guard unsubAck.packetIdentifier != 0 else { throw .missingPacketIdentifier }
        guard protocolVersion.hasProperties else {
            try writeFixedHeader(type: .unsubAck, flags: 0, remainingLength: 2, into: &buffer)
            buffer.writeInteger(unsubAck.packetIdentifier)
            return
        }
        let properties = try MQTTWire.propertyListSize(unsubAck.properties, .unsubAck)
        try writeFixedHeader(type: .unsubAck, flags: 0, remainingLength: 2 + properties.total + unsubAck.reasonCodes.count, into: &buffer)
        buffer.writeInteger(unsubAck.packetIdentifier)
        buffer.writeMQTTProperties(unsubAck.properties, contentsSize: properties.contents)
        for code in unsubAck.reasonCodes { buffer.writeInteger(code.rawValue) }
    }

    func encodeDisconnect(_ disconnect: DisconnectPacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        try encodeReasonCodeAndProperties(type: .disconnect, context: .disconnect, disconnect.reasonCode, disconnect.properties, into: &buffer)
    }

    func encodeAuth(_ auth: AuthPacket, into buffer: inout ByteBuffer) throws(MQTTEncodeError) {
        guard protocolVersion.hasProperties else { throw .notSupported(.auth, protocolVersion) }
        try encodeReasonCodeAndProperties(type: .auth, context: .auth, auth.reasonCode, auth.properties, into: &buffer)
    }

    /// DISCONNECT and AUTH: empty for Success without properties (§3.14.2.1, §3.15.2.1), the reason code
    /// alone without properties, else both. 3.1.1 DISCONNECT is always empty.
    func encodeReasonCodeAndProperties(
        type: MQTTPacketType, context: MQTTPropertyContext, _ reasonCode: MQTTReasonCode,
        _ properties: MQTTProperties, into buffer: inout ByteBuffer
    ) throws(MQTTEncodeError) {
        guard protocolVersion.hasProperties, reasonCode != .success || !properties.isEmpty else {
            try writeFixedHeader(type: type, flags: 0, remainingLength: 0, into: &buffer)
            return
        }
        if properties.isEmpty {
            try writeFixedHeader(type: type, flags: 0, remainingLength: 1, into: &buffer)
            buffer.writeInteger(reasonCode.rawValue)
            return
        }
        let list = try MQTTWire.propertyListSize(properties, context)
        try writeFixedHeader(type: type, flags: 0, remainingLength: 1 + list.total, into: &buffer)
        buffer.writeInteger(reasonCode.rawValue)
        buffer.writeMQTTProperties(properties, contentsSize: list.contents)
    }
}

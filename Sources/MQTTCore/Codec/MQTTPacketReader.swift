import NIOCore

/// Reads the fields of one packet from that packet's own slice (phase two of decoding).
///
/// Every read checks bounds and reports failures as `MQTTDecodeError` with the byte offset from
/// the start of the packet, so a log line can say exactly where a peer went wrong.
@usableFromInline
struct MQTTPacketReader {
    @usableFromInline var buffer: ByteBuffer
    @usableFromInline let packetType: MQTTPacketType
    /// Offset of `buffer`'s index 0 from the first byte of the packet.
    @usableFromInline let baseOffset: Int

    @inlinable
    init(buffer: ByteBuffer, packetType: MQTTPacketType, baseOffset: Int) {
        self.buffer = buffer
        self.packetType = packetType
        self.baseOffset = baseOffset - buffer.readerIndex
    }

    @inlinable
    var readableBytes: Int { buffer.readableBytes }

    @inlinable
    var offset: Int { baseOffset + buffer.readerIndex }

    @inlinable
    func error(_ violation: MQTTDecodeError.Violation, at offset: Int? = nil) -> MQTTDecodeError {
        MQTTDecodeError(violation, packetType: packetType, byteOffset: offset ?? self.offset)
    }

    @inlinable
    mutating func readByte() throws(MQTTDecodeError) -> UInt8 {
        guard let byte = buffer.readInteger(as: UInt8.self) else { throw error(.truncated) }
        return byte
    }

    @inlinable
    mutating func readUInt16() throws(MQTTDecodeError) -> UInt16 {
        guard let value = buffer.readInteger(as: UInt16.self) else { throw error(.truncated) }
        return value
    }

    @inlinable
    mutating func readUInt32() throws(MQTTDecodeError) -> UInt32 {
        guard let value = buffer.readInteger(as: UInt32.self) else { throw error(.truncated) }
        return value
    }

    /// A variable byte integer of at most 4 bytes (§1.5.5, [MQTT-1.5.5-1]).
    @inlinable
    mutating func readVariableByteInteger() throws(MQTTDecodeError) -> UInt32 {
        let start = offset
        var value: UInt32 = 0
        var shift: UInt32 = 0
        for index in 0..<4 {
            let byte = try readByte()
            value |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                // [MQTT-1.5.5-1]: the minimum number of bytes.
                if byte == 0 && index > 0 { throw error(.variableByteIntegerNotMinimal, at: start) }
                return value
            }
            shift += 7
        }
        throw error(.variableByteIntegerTooLong, at: start)
    }

    /// A non-zero packet identifier ([MQTT-2.2.1-3]).
    @inlinable
    mutating func readPacketIdentifier() throws(MQTTDecodeError) -> UInt16 {
        let start = offset
        let identifier = try readUInt16()
        guard identifier != 0 else { throw error(.zeroPacketIdentifier, at: start) }
        return identifier
    }

    /// A UTF-8 encoded string (§1.5.4): well-formed UTF-8 without surrogates ([MQTT-1.5.4-1]) and
    /// without U+0000 ([MQTT-1.5.4-2]). ASCII, the common case, skips the full validator.
    @inlinable
    mutating func readString() throws(MQTTDecodeError) -> String {
        let start = offset
        let length = Int(try readUInt16())
        guard buffer.readableBytes >= length else { throw error(.truncated, at: start) }
        // nil: ASCII, read below without the full validator; .some(nil): invalid; .some(string): validated non-ASCII.
        var violation: MQTTDecodeError.Violation?
        let validated: String? = buffer.withUnsafeReadableBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<length])
            var isASCII = true
            for byte in bytes {
                if byte == 0 {
                    violation = .nullCharacter
                    return nil
                }
                if byte >= 0x80 { isASCII = false }
            }
            if isASCII { return nil }
            guard let string = String(validating: bytes, as: UTF8.self) else {
                violation = .invalidUTF8
                return nil
            }
            return string
        }
        if let violation { throw error(violation, at: start + 2) }
        if let validated {
            buffer.moveReaderIndex(forwardBy: length)
            return validated
        }
        return buffer.readString(length: length)!
    }

    /// Binary data (§1.5.6), returned as a slice of the packet: no copy.
    @inlinable
    mutating func readBinary() throws(MQTTDecodeError) -> ByteBuffer {
        let start = offset
        let length = Int(try readUInt16())
        guard let slice = buffer.readSlice(length: length) else { throw error(.truncated, at: start) }
        return slice
    }

    /// Everything left in the packet (the PUBLISH payload), as a slice.
    @inlinable
    mutating func readRest() -> ByteBuffer {
        buffer.readSlice(length: buffer.readableBytes)!
    }

    @inlinable
    func expectEnd() throws(MQTTDecodeError) {
        guard buffer.readableBytes == 0 else { throw error(.trailingBytes(count: buffer.readableBytes)) }
    }

    /// A property list (§2.2.2): its length, then properties, each checked against the packet that carries
    /// it, against repeats, and against the value ranges the spec gives.
    @inlinable
    mutating func readProperties(_ context: MQTTPropertyContext, limit: Int) throws(MQTTDecodeError) -> MQTTProperties {
        let lengthOffset = offset
        let length = Int(try readVariableByteInteger())
        if length == 0 { return MQTTProperties() }
        let blockOffset = offset
        guard let block = buffer.readSlice(length: length) else { throw error(.truncated, at: lengthOffset) }
        var reader = MQTTPacketReader(buffer: block, packetType: packetType, baseOffset: blockOffset)
        return try reader.readPropertyBlock(context, limit: limit)
    }

    @usableFromInline
    mutating func readPropertyBlock(_ context: MQTTPropertyContext, limit: Int) throws(MQTTDecodeError) -> MQTTProperties {
        var properties: [MQTTProperty] = []
        properties.reserveCapacity(min(limit, buffer.readableBytes / 2, 32))  // a property takes at least 2 bytes
        var seen: UInt64 = 0  // bit n set once property n was read; every identifier is below 64
        while buffer.readableBytes > 0 {
            let start = offset
            guard properties.count < limit else { throw error(.tooManyProperties(limit: limit), at: start) }
            let rawIdentifier = try readVariableByteInteger()
            guard rawIdentifier <= 0xFF, let identifier = MQTTProperty.Identifier(rawValue: UInt8(rawIdentifier)) else {
                throw error(.unknownProperty(UInt8(truncatingIfNeeded: rawIdentifier)), at: start)
            }
            guard identifier.isAllowed(in: context) else {
                throw error(.propertyNotAllowed(identifier, in: context), at: start)
            }
            let bit: UInt64 = 1 << UInt64(identifier.rawValue)
            if seen & bit != 0 && !identifier.mayRepeat(in: context) {
                throw error(.duplicateProperty(identifier), at: start)
            }
            seen |= bit
            let property = try readPropertyValue(identifier)
            guard property.hasValidValue else { throw error(.invalidPropertyValue(identifier), at: start) }
            properties.append(property)
        }
        return MQTTProperties(properties)
    }

    @usableFromInline
    mutating func readPropertyValue(_ identifier: MQTTProperty.Identifier) throws(MQTTDecodeError) -> MQTTProperty {
        switch identifier {
        case .payloadFormatIndicator: return .payloadFormatIndicator(try readByte())
        case .messageExpiryInterval: return .messageExpiryInterval(try readUInt32())
        case .contentType: return .contentType(try readString())
        case .responseTopic: return .responseTopic(try readString())
        case .correlationData: return .correlationData(try readBinary())
        case .subscriptionIdentifier: return .subscriptionIdentifier(try readVariableByteInteger())
        case .sessionExpiryInterval: return .sessionExpiryInterval(try readUInt32())
        case .assignedClientIdentifier: return .assignedClientIdentifier(try readString())
        case .serverKeepAlive: return .serverKeepAlive(try readUInt16())
        case .authenticationMethod: return .authenticationMethod(try readString())
        case .authenticationData: return .authenticationData(try readBinary())
        case .requestProblemInformation: return .requestProblemInformation(try readByte())
        case .willDelayInterval: return .willDelayInterval(try readUInt32())
        case .requestResponseInformation: return .requestResponseInformation(try readByte())
        case .responseInformation: return .responseInformation(try readString())
        case .serverReference: return .serverReference(try readString())
        case .reasonString: return .reasonString(try readString())
        case .receiveMaximum: return .receiveMaximum(try readUInt16())
        case .topicAliasMaximum: return .topicAliasMaximum(try readUInt16())
        case .topicAlias: return .topicAlias(try readUInt16())
        case .maximumQoS: return .maximumQoS(try readByte())
        case .retainAvailable: return .retainAvailable(try readByte())
        case .userProperty:
            let key = try readString()
            return .userProperty(key, try readString())
        case .maximumPacketSize: return .maximumPacketSize(try readUInt32())
        case .wildcardSubscriptionAvailable: return .wildcardSubscriptionAvailable(try readByte())
        case .subscriptionIdentifierAvailable: return .subscriptionIdentifierAvailable(try readByte())
        case .sharedSubscriptionAvailable: return .sharedSubscriptionAvailable(try readByte())
        }
    }
}

extension MQTTProperty {
    /// Whether the value lies in the range §3 gives for it; anything else is a Protocol Error.
    @usableFromInline
    var hasValidValue: Bool {
        switch self {
        case .payloadFormatIndicator(let v), .requestProblemInformation(let v), .requestResponseInformation(let v),
             .maximumQoS(let v), .retainAvailable(let v), .wildcardSubscriptionAvailable(let v),
             .subscriptionIdentifierAvailable(let v), .sharedSubscriptionAvailable(let v):
            return v <= 1
        case .receiveMaximum(let v), .topicAlias(let v):
            return v != 0  // Receive Maximum 0 and Topic Alias 0 are Protocol Errors (§3.1.2.11.3, §3.3.2.3.4)
        case .maximumPacketSize(let v):
            return v != 0  // §3.1.2.11.4
        case .subscriptionIdentifier(let v):
            return v != 0  // §3.8.2.1.2: 1 ... 268,435,455
        case .messageExpiryInterval, .contentType, .responseTopic, .correlationData, .sessionExpiryInterval,
             .assignedClientIdentifier, .serverKeepAlive, .authenticationMethod, .authenticationData,
             .willDelayInterval, .responseInformation, .serverReference, .reasonString, .topicAliasMaximum,
             .userProperty:
            return true
        }
    }
}

import NIOCore

/// Wire primitives for encoding (§1.5): sizes first, then writes, so a packet is written into a
/// buffer of exactly the right capacity with its remaining length known up front.
enum MQTTWire {
    static let maxFieldLength = Int(UInt16.max)
    static let maxVariableByteInteger = 268_435_455

    static func variableByteIntegerSize(_ value: Int) -> Int {
        switch value {
        case 0..<128: return 1
        case 128..<16_384: return 2
        case 16_384..<2_097_152: return 3
        default: return 4
        }
    }

    static func stringSize(_ string: String) throws(MQTTEncodeError) -> Int {
        let count = string.utf8.count
        guard count <= maxFieldLength else { throw .fieldTooLong(bytes: count) }
        return 2 + count
    }

    static func binarySize(_ data: ByteBuffer) throws(MQTTEncodeError) -> Int {
        let count = data.readableBytes
        guard count <= maxFieldLength else { throw .fieldTooLong(bytes: count) }
        return 2 + count
    }

    /// Size of the property list's contents (without its own length prefix), checking that each
    /// property belongs in `context`.
    static func propertiesSize(_ properties: MQTTProperties, _ context: MQTTPropertyContext) throws(MQTTEncodeError) -> Int {
        var size = 0
        for property in properties {
            let identifier = property.identifier
            guard identifier.isAllowed(in: context) else { throw .propertyNotAllowed(identifier, in: context) }
            size += 1
            switch property {
            case .payloadFormatIndicator, .requestProblemInformation, .requestResponseInformation, .maximumQoS,
                 .retainAvailable, .wildcardSubscriptionAvailable, .subscriptionIdentifierAvailable,
                 .sharedSubscriptionAvailable:
                size += 1
            case .serverKeepAlive, .receiveMaximum, .topicAliasMaximum, .topicAlias:
                size += 2
            case .messageExpiryInterval, .sessionExpiryInterval, .willDelayInterval, .maximumPacketSize:
                size += 4
            case .subscriptionIdentifier(let value):
                guard value >= 1 && value <= maxVariableByteInteger else { throw .valueOutOfRange }
                size += variableByteIntegerSize(Int(value))
            case .contentType(let s), .responseTopic(let s), .assignedClientIdentifier(let s),
                 .authenticationMethod(let s), .responseInformation(let s), .serverReference(let s),
                 .reasonString(let s):
                size += try stringSize(s)
            case .correlationData(let data), .authenticationData(let data):
                size += try binarySize(data)
            case .userProperty(let key, let value):
                size += try stringSize(key) + stringSize(value)
            }
        }
        guard size <= maxVariableByteInteger else { throw .valueOutOfRange }
        return size
    }

    /// Size of a property list including its length prefix.
    static func propertyListSize(_ properties: MQTTProperties, _ context: MQTTPropertyContext) throws(MQTTEncodeError) -> (total: Int, contents: Int) {
        let contents = try propertiesSize(properties, context)
        return (variableByteIntegerSize(contents) + contents, contents)
    }
}

extension ByteBuffer {
    /// Writes a variable byte integer (§1.5.5). The caller guarantees `value` <= 268,435,455.
    @inlinable
    mutating func writeMQTTVariableByteInteger(_ value: Int) {
        var remaining = value
        repeat {
            var byte = UInt8(remaining & 0x7F)
            remaining >>= 7
            if remaining > 0 { byte |= 0x80 }
            writeInteger(byte)
        } while remaining > 0
    }

    /// Writes a length-prefixed UTF-8 string (§1.5.4); the size was checked by `MQTTWire.stringSize`.
    @inlinable
    mutating func writeMQTTString(_ string: String) {
        writeInteger(UInt16(truncatingIfNeeded: string.utf8.count))
        writeString(string)
    }

    /// Writes length-prefixed binary data (§1.5.6); the size was checked by `MQTTWire.binarySize`.
    @inlinable
    mutating func writeMQTTBinary(_ data: ByteBuffer) {
        writeInteger(UInt16(truncatingIfNeeded: data.readableBytes))
        writeImmutableBuffer(data)
    }

    /// Writes a property list whose contents measure `contentsSize` bytes.
    mutating func writeMQTTProperties(_ properties: MQTTProperties, contentsSize: Int) {
        writeMQTTVariableByteInteger(contentsSize)
        for property in properties {
            writeInteger(property.identifier.rawValue)
            switch property {
            case .payloadFormatIndicator(let v), .requestProblemInformation(let v), .requestResponseInformation(let v),
                 .maximumQoS(let v), .retainAvailable(let v), .wildcardSubscriptionAvailable(let v),
                 .subscriptionIdentifierAvailable(let v), .sharedSubscriptionAvailable(let v):
                writeInteger(v)
            case .serverKeepAlive(let v), .receiveMaximum(let v), .topicAliasMaximum(let v), .topicAlias(let v):
                writeInteger(v)
            case .messageExpiryInterval(let v), .sessionExpiryInterval(let v), .willDelayInterval(let v),
                 .maximumPacketSize(let v):
                writeInteger(v)
            case .subscriptionIdentifier(let v):
                writeMQTTVariableByteInteger(Int(v))
            case .contentType(let s), .responseTopic(let s), .assignedClientIdentifier(let s),
                 .authenticationMethod(let s), .responseInformation(let s), .serverReference(let s),
                 .reasonString(let s):
                writeMQTTString(s)
            case .correlationData(let data), .authenticationData(let data):
                writeMQTTBinary(data)
            case .userProperty(let key, let value):
                writeMQTTString(key)
                writeMQTTString(value)
            }
        }
    }
}

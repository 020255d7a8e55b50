import MQTTCore
import NIOCore

/// The stored form of an MQTT 5.0 property list (retained messages, wills), see docs/store-metadata.md.
///
/// MQTT's own property encoding is internal to MQTTCore's codec, and a stored format should not change when
/// the wire codec does, so the store has its own, simpler one:
///
/// ```
/// properties := formatVersion:u8 (= 1)  property*
/// property   := identifier:u8  value            (identifier as on the wire, §2.2.2.2)
/// value      := u8                               byte
///             | u16                              two byte integer
///             | u32                              four byte integer and variable byte integer
///             | length:u32 bytes                 UTF-8 string, binary data
///             | length:u32 bytes length:u32 bytes  UTF-8 string pair
/// ```
///
/// All integers are big-endian. Properties keep their order.
enum MetadataPropertiesCodec {
    static let formatVersion: UInt8 = 1

    static func encode(_ properties: MQTTProperties) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 1 + properties.count * 8)
        buffer.writeInteger(formatVersion)
        for property in properties {
            buffer.writeInteger(property.identifier.rawValue)
            switch property {
            case .payloadFormatIndicator(let value), .requestProblemInformation(let value),
                .requestResponseInformation(let value), .maximumQoS(let value), .retainAvailable(let value),
                .wildcardSubscriptionAvailable(let value), .subscriptionIdentifierAvailable(let value),
                .sharedSubscriptionAvailable(let value):
                buffer.writeInteger(value)
            case .serverKeepAlive(let value), .receiveMaximum(let value), .topicAliasMaximum(let value),
                .topicAlias(let value):
                buffer.writeInteger(value)
            case .messageExpiryInterval(let value), .subscriptionIdentifier(let value),
                .sessionExpiryInterval(let value), .willDelayInterval(let value), .maximumPacketSize(let value):
                buffer.writeInteger(value)
            case .contentType(let value), .responseTopic(let value), .assignedClientIdentifier(let value),
                .authenticationMethod(let value), .responseInformation(let value), .serverReference(let value),
                .reasonString(let value):
                writeString(value, to: &buffer)
            case .correlationData(let value), .authenticationData(let value):
                buffer.writeInteger(UInt32(value.readableBytes))
                buffer.writeImmutableBuffer(value)
            case .userProperty(let key, let value):
                writeString(key, to: &buffer)
                writeString(value, to: &buffer)
            }
        }
        return buffer
    }

    private static func writeString(_ string: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(string.utf8.count))
        buffer.writeString(string)
    }

    /// Decodes what ``encode(_:)`` wrote.
    /// - Throws: a description of the first inconsistency (unknown version or identifier, truncation).
    static func decode(_ buffer: ByteBuffer) throws(DecodeFailure) -> MQTTProperties {
        var buffer = buffer
        guard let version: UInt8 = buffer.readInteger() else { throw DecodeFailure("empty property list") }
        guard version == formatVersion else { throw DecodeFailure("unknown property format version \(version)") }
        var properties = MQTTProperties()
        while buffer.readableBytes > 0 {
            let offset = buffer.readerIndex
            let rawIdentifier: UInt8 = buffer.readInteger()!
            guard let identifier = MQTTProperty.Identifier(rawValue: rawIdentifier) else {
                throw DecodeFailure("unknown property identifier \(rawIdentifier) at byte \(offset)")
            }
            let property: MQTTProperty?
            switch identifier {
            case .payloadFormatIndicator: property = buffer.readInteger().map(MQTTProperty.payloadFormatIndicator)
            case .requestProblemInformation: property = buffer.readInteger().map(MQTTProperty.requestProblemInformation)
            case .requestResponseInformation: property = buffer.readInteger().map(MQTTProperty.requestResponseInformation)
            case .maximumQoS: property = buffer.readInteger().map(MQTTProperty.maximumQoS)
            case .retainAvailable: property = buffer.readInteger().map(MQTTProperty.retainAvailable)
            case .wildcardSubscriptionAvailable: property = buffer.readInteger().map(MQTTProperty.wildcardSubscriptionAvailable)
            case .subscriptionIdentifierAvailable:
                property = buffer.readInteger().map(MQTTProperty.subscriptionIdentifierAvailable)
            case .sharedSubscriptionAvailable: property = buffer.readInteger().map(MQTTProperty.sharedSubscriptionAvailable)
            case .serverKeepAlive: property = buffer.readInteger().map(MQTTProperty.serverKeepAlive)
            case .receiveMaximum: property = buffer.readInteger().map(MQTTProperty.receiveMaximum)
            case .topicAliasMaximum: property = buffer.readInteger().map(MQTTProperty.topicAliasMaximum)
            case .topicAlias: property = buffer.readInteger().map(MQTTProperty.topicAlias)
            case .messageExpiryInterval: property = buffer.readInteger().map(MQTTProperty.messageExpiryInterval)
            case .subscriptionIdentifier: property = buffer.readInteger().map(MQTTProperty.subscriptionIdentifier)
            case .sessionExpiryInterval: property = buffer.readInteger().map(MQTTProperty.sessionExpiryInterval)
            case .willDelayInterval: property = buffer.readInteger().map(MQTTProperty.willDelayInterval)
            case .maximumPacketSize: property = buffer.readInteger().map(MQTTProperty.maximumPacketSize)
            case .contentType: property = readString(&buffer).map(MQTTProperty.contentType)
            case .responseTopic: property = readString(&buffer).map(MQTTProperty.responseTopic)
            case .assignedClientIdentifier: property = readString(&buffer).map(MQTTProperty.assignedClientIdentifier)
            case .authenticationMethod: property = readString(&buffer).map(MQTTProperty.authenticationMethod)
            case .responseInformation: property = readString(&buffer).map(MQTTProperty.responseInformation)
            case .serverReference: property = readString(&buffer).map(MQTTProperty.serverReference)
            case .reasonString: property = readString(&buffer).map(MQTTProperty.reasonString)
            case .correlationData: property = readBinary(&buffer).map(MQTTProperty.correlationData)
            case .authenticationData: property = readBinary(&buffer).map(MQTTProperty.authenticationData)
            case .userProperty:
                if let key = readString(&buffer), let value = readString(&buffer) {
                    property = .userProperty(key, value)
                } else {
                    property = nil
                }
            }
            guard let property else { throw DecodeFailure("\(identifier) at byte \(offset) is truncated") }
            properties.append(property)
        }
        return properties
    }

    private static func readString(_ buffer: inout ByteBuffer) -> String? {
        guard let length: UInt32 = buffer.readInteger() else { return nil }
        return buffer.readString(length: Int(length))
    }

    private static func readBinary(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        guard let length: UInt32 = buffer.readInteger() else { return nil }
        return buffer.readSlice(length: Int(length))
    }

    /// Why a stored property list could not be decoded.
    struct DecodeFailure: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }
}

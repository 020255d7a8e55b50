import NIOCore

extension MQTTProperties {
    /// The size of this list in the wire format of §2.2.2 (its variable-byte-integer length included).
    public func encodedSize(in context: MQTTPropertyContext) throws(MQTTEncodeError) -> Int {
        try MQTTWire.propertyListSize(self, context).total
    }

    /// Writes this list in the wire format of §2.2.2, for storing properties beside a message
    /// (the commit log keeps PUBLISH properties this way so they reach subscribers unchanged).
    public func encode(into buffer: inout ByteBuffer, context: MQTTPropertyContext) throws(MQTTEncodeError) {
        let size = try MQTTWire.propertyListSize(self, context)
        buffer.writeMQTTProperties(self, contentsSize: size.contents)
    }

    /// Reads a list written by `encode(into:context:)`, with every check the packet decoder applies.
    public static func decode(
        from buffer: inout ByteBuffer, context: MQTTPropertyContext, limit: Int = 256
    ) throws(MQTTDecodeError) -> MQTTProperties {
        var reader = MQTTPacketReader(buffer: buffer, packetType: .publish, baseOffset: 0)
        let properties = try reader.readProperties(context, limit: limit)
        buffer = reader.buffer
        return properties
    }
}

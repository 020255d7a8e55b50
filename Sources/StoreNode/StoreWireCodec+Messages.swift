import LMQStore
import MQTTCore
import NIOCore

// The message types of the store's log: appends, reads and their results (docs/store-protocol.md).

extension QueueOffset: StoreWireCodable {
    /// `queue` string, `offset` i64.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeWireString(queue)
        buffer.writeInteger(offset)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        self.init(queue: try reader.string("queue"), offset: try reader.integer("offset"))
    }
}

extension LMQMessage: StoreWireCodable {
    /// topic, qos u8, retain u8, messageId u64, properties, payload, origin client identifier (optional).
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeWireString(topic)
        buffer.writeInteger(qos.rawValue)
        buffer.writeWireBool(retain)
        buffer.writeInteger(messageId)
        properties.write(to: &buffer)
        buffer.writeWireBytes(payload)
        originClientIdentifier.write(to: &buffer)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        let topic = try reader.string("topic")
        let qos = try reader.rawValue("qos", as: MQTTQoS.self)
        let retain = try reader.bool("retain")
        let messageId: UInt64 = try reader.integer("message id")
        let properties = try MQTTProperties(from: &reader)
        let payload = try reader.bytes("payload")
        let origin = try String?(from: &reader)
        self.init(
            topic: topic, payload: payload, qos: qos, retain: retain, messageId: messageId, properties: properties,
            originClientIdentifier: origin
        )
    }
}

extension StoredMessage: StoreWireCodable {
    /// message, firstTopic, storeTimestampMillis i64, commitLogPosition i64, queueOffsets.
    public func write(to buffer: inout ByteBuffer) {
        message.write(to: &buffer)
        buffer.writeWireString(firstTopic)
        buffer.writeInteger(storeTimestampMillis)
        buffer.writeInteger(commitLogPosition)
        queueOffsets.write(to: &buffer)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        self.init(
            message: try LMQMessage(from: &reader),
            firstTopic: try reader.string("first topic"),
            storeTimestampMillis: try reader.integer("store timestamp"),
            commitLogPosition: try reader.integer("commit-log position"),
            queueOffsets: try [QueueOffset](from: &reader)
        )
    }
}

extension AppendResult: StoreWireCodable {
    /// commitLogPosition i64, queueOffsets, storeTimestampMillis i64.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(commitLogPosition)
        queueOffsets.write(to: &buffer)
        buffer.writeInteger(storeTimestampMillis)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        self.init(
            commitLogPosition: try reader.integer("commit-log position"),
            queueOffsets: try [QueueOffset](from: &reader),
            storeTimestampMillis: try reader.integer("store timestamp")
        )
    }
}

extension LMQReadResult.Status {
    /// The status byte of a PULL response.
    var wireValue: UInt8 {
        switch self {
        case .found: return 0
        case .noNewMessages: return 1
        case .offsetMovedForward: return 2
        case .offsetPastEnd: return 3
        }
    }

    init?(wireValue: UInt8) {
        switch wireValue {
        case 0: self = .found
        case 1: self = .noNewMessages
        case 2: self = .offsetMovedForward
        case 3: self = .offsetPastEnd
        default: return nil
        }
    }
}

extension LMQReadResult: StoreWireCodable {
    /// status u8, nextOffset i64, minOffset i64, maxOffset i64, count u32, then per message: offset i64
    /// and the ``StoredMessage``.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(status.wireValue)
        buffer.writeInteger(nextOffset)
        buffer.writeInteger(minOffset)
        buffer.writeInteger(maxOffset)
        buffer.writeInteger(UInt32(messages.count))
        for message in messages {
            buffer.writeInteger(message.offset)
            message.message.write(to: &buffer)
        }
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        let at = reader.offset
        let rawStatus: UInt8 = try reader.integer("status")
        guard let status = Status(wireValue: rawStatus) else {
            throw .invalidValue(field: "status", offset: at, reason: "unknown value \(rawStatus)")
        }
        let nextOffset: Int64 = try reader.integer("next offset")
        let minOffset: Int64 = try reader.integer("min offset")
        let maxOffset: Int64 = try reader.integer("max offset")
        let count = try reader.count("message count", minimumElementBytes: 8)
        var messages: [Message] = []
        messages.reserveCapacity(count)
        for _ in 0..<count {
            let offset: Int64 = try reader.integer("message offset")
            messages.append(Message(offset: offset, message: try StoredMessage(from: &reader)))
        }
        self.init(status: status, messages: messages, nextOffset: nextOffset, minOffset: minOffset, maxOffset: maxOffset)
    }
}

extension MQTTProperties: StoreWireCodable {
    /// A u32 count, then per property its identifier (u8, as in MQTT §2.2.2.2) and its value: u8, u16 or u32
    /// integers as such (a variable byte integer as u32), strings and binary data with a u32 length, a user
    /// property as two strings.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(count))
        for property in self {
            buffer.writeInteger(property.identifier.rawValue)
            switch property {
            case .payloadFormatIndicator(let value), .requestProblemInformation(let value),
                .requestResponseInformation(let value), .maximumQoS(let value), .retainAvailable(let value),
                .wildcardSubscriptionAvailable(let value), .subscriptionIdentifierAvailable(let value),
                .sharedSubscriptionAvailable(let value):
                buffer.writeInteger(value)
            case .serverKeepAlive(let value), .receiveMaximum(let value), .topicAliasMaximum(let value), .topicAlias(let value):
                buffer.writeInteger(value)
            case .messageExpiryInterval(let value), .subscriptionIdentifier(let value), .sessionExpiryInterval(let value),
                .willDelayInterval(let value), .maximumPacketSize(let value):
                buffer.writeInteger(value)
            case .contentType(let value), .responseTopic(let value), .assignedClientIdentifier(let value),
                .authenticationMethod(let value), .responseInformation(let value), .serverReference(let value),
                .reasonString(let value):
                buffer.writeWireString(value)
            case .correlationData(let value), .authenticationData(let value):
                buffer.writeWireBytes(value)
            case .userProperty(let key, let value):
                buffer.writeWireString(key)
                buffer.writeWireString(value)
            }
        }
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        let count = try reader.count("property count", minimumElementBytes: 2)
        var properties = MQTTProperties()
        for _ in 0..<count {
            let identifier = try reader.rawValue("property identifier", as: MQTTProperty.Identifier.self)
            let field = "property \(identifier)"
            let property: MQTTProperty
            switch identifier {
            case .payloadFormatIndicator: property = .payloadFormatIndicator(try reader.integer(field))
            case .requestProblemInformation: property = .requestProblemInformation(try reader.integer(field))
            case .requestResponseInformation: property = .requestResponseInformation(try reader.integer(field))
            case .maximumQoS: property = .maximumQoS(try reader.integer(field))
            case .retainAvailable: property = .retainAvailable(try reader.integer(field))
            case .wildcardSubscriptionAvailable: property = .wildcardSubscriptionAvailable(try reader.integer(field))
            case .subscriptionIdentifierAvailable: property = .subscriptionIdentifierAvailable(try reader.integer(field))
            case .sharedSubscriptionAvailable: property = .sharedSubscriptionAvailable(try reader.integer(field))
            case .serverKeepAlive: property = .serverKeepAlive(try reader.integer(field))
            case .receiveMaximum: property = .receiveMaximum(try reader.integer(field))
            case .topicAliasMaximum: property = .topicAliasMaximum(try reader.integer(field))
            case .topicAlias: property = .topicAlias(try reader.integer(field))
            case .messageExpiryInterval: property = .messageExpiryInterval(try reader.integer(field))
            case .subscriptionIdentifier: property = .subscriptionIdentifier(try reader.integer(field))
            case .sessionExpiryInterval: property = .sessionExpiryInterval(try reader.integer(field))
            case .willDelayInterval: property = .willDelayInterval(try reader.integer(field))
            case .maximumPacketSize: property = .maximumPacketSize(try reader.integer(field))
            case .contentType: property = .contentType(try reader.string(field))
            case .responseTopic: property = .responseTopic(try reader.string(field))
            case .assignedClientIdentifier: property = .assignedClientIdentifier(try reader.string(field))
            case .authenticationMethod: property = .authenticationMethod(try reader.string(field))
            case .responseInformation: property = .responseInformation(try reader.string(field))
            case .serverReference: property = .serverReference(try reader.string(field))
            case .reasonString: property = .reasonString(try reader.string(field))
            case .correlationData: property = .correlationData(try reader.bytes(field))
            case .authenticationData: property = .authenticationData(try reader.bytes(field))
            case .userProperty: property = .userProperty(try reader.string(field), try reader.string(field))
            }
            properties.append(property)
        }
        self = properties
    }
}

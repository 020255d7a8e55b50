import LMQStore
import MQTTCore
import NIOCore

// The metadata types: retained messages, sessions and their journal (docs/store-protocol.md).

extension RetainedMessage: StoreWireCodable {
    /// topic, payload, qos u8, properties, storeTimestampMillis i64.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeWireString(topic)
        buffer.writeWireBytes(payload)
        buffer.writeInteger(qos.rawValue)
        properties.write(to: &buffer)
        buffer.writeInteger(storeTimestampMillis)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        self.init(
            topic: try reader.string("topic"),
            payload: try reader.bytes("payload"),
            qos: try reader.rawValue("qos", as: MQTTQoS.self),
            properties: try MQTTProperties(from: &reader),
            storeTimestampMillis: try reader.integer("store timestamp")
        )
    }
}

extension StoredSubscription: StoreWireCodable {
    /// topicFilter, maximumQoS u8, noLocal u8, retainAsPublished u8, retainHandling u8, subscription
    /// identifier (optional u32).
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeWireString(subscription.topicFilter)
        buffer.writeInteger(subscription.maximumQoS.rawValue)
        buffer.writeWireBool(subscription.noLocal)
        buffer.writeWireBool(subscription.retainAsPublished)
        buffer.writeInteger(subscription.retainHandling.rawValue)
        if let subscriptionIdentifier {
            buffer.writeWireBool(true)
            buffer.writeInteger(subscriptionIdentifier)
        } else {
            buffer.writeWireBool(false)
        }
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        let subscription = Subscription(
            topicFilter: try reader.string("topic filter"),
            maximumQoS: try reader.rawValue("maximum qos", as: MQTTQoS.self),
            noLocal: try reader.bool("no local"),
            retainAsPublished: try reader.bool("retain as published"),
            retainHandling: try reader.rawValue("retain handling", as: Subscription.RetainHandling.self)
        )
        let identifier: UInt32? = try reader.bool("subscription identifier flag") ? try reader.integer("subscription identifier") : nil
        self.init(subscription, subscriptionIdentifier: identifier)
    }
}

extension StoredWill: StoreWireCodable {
    /// topic, payload, qos u8, retain u8, properties, delayIntervalSeconds u32.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeWireString(topic)
        buffer.writeWireBytes(payload)
        buffer.writeInteger(qos.rawValue)
        buffer.writeWireBool(retain)
        properties.write(to: &buffer)
        buffer.writeInteger(delayIntervalSeconds)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        self.init(
            topic: try reader.string("will topic"),
            payload: try reader.bytes("will payload"),
            qos: try reader.rawValue("will qos", as: MQTTQoS.self),
            retain: try reader.bool("will retain"),
            properties: try MQTTProperties(from: &reader),
            delayIntervalSeconds: try reader.integer("will delay")
        )
    }
}

extension SessionRecord: StoreWireCodable {
    /// clientIdentifier, protocolVersion u8, subscriptions, will (optional), sessionExpiryIntervalSeconds
    /// u32, pending PUBREL packet identifiers (u32 count, u16 each), disconnectedAtMillis (optional i64),
    /// gatewayNode (optional string).
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeWireString(clientIdentifier)
        buffer.writeInteger(protocolVersion.rawValue)
        subscriptions.write(to: &buffer)
        will.write(to: &buffer)
        buffer.writeInteger(sessionExpiryIntervalSeconds)
        buffer.writeInteger(UInt32(pendingPubRelPacketIdentifiers.count))
        for identifier in pendingPubRelPacketIdentifiers { buffer.writeInteger(identifier) }
        disconnectedAtMillis.write(to: &buffer)
        gatewayNode.write(to: &buffer)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        let clientIdentifier = try reader.string("client identifier")
        let protocolVersion = try reader.rawValue("protocol version", as: MQTTProtocolVersion.self)
        let subscriptions = try [StoredSubscription](from: &reader)
        let will = try StoredWill?(from: &reader)
        let expiry: UInt32 = try reader.integer("session expiry interval")
        let pendingCount = try reader.count("pending PUBREL count", minimumElementBytes: 2)
        var pending: [UInt16] = []
        pending.reserveCapacity(pendingCount)
        for _ in 0..<pendingCount { pending.append(try reader.integer("pending PUBREL packet identifier")) }
        self.init(
            clientIdentifier: clientIdentifier, protocolVersion: protocolVersion, subscriptions: subscriptions, will: will,
            sessionExpiryIntervalSeconds: expiry, pendingPubRelPacketIdentifiers: pending,
            disconnectedAtMillis: try Int64?(from: &reader), gatewayNode: try String?(from: &reader)
        )
    }
}

extension SessionDelivery: StoreWireCodable {
    /// topicFilter, queueOffset i64, packetIdentifier u16, qos u8, state u8.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeWireString(topicFilter)
        buffer.writeInteger(queueOffset)
        buffer.writeInteger(packetIdentifier)
        buffer.writeInteger(qos.rawValue)
        buffer.writeInteger(state.rawValue)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        self.init(
            topicFilter: try reader.string("topic filter"),
            queueOffset: try reader.integer("queue offset"),
            packetIdentifier: try reader.integer("packet identifier"),
            qos: try reader.rawValue("qos", as: MQTTQoS.self),
            state: try reader.rawValue("delivery state", as: SessionDelivery.State.self)
        )
    }
}

extension SessionJournalEntry: StoreWireCodable {
    /// A tag u8, then the case's fields in order: 1 deliverySent, 2 deliveryState, 3 unfinishedDeliveries,
    /// 4 consumeOffset, 5 subscriptionAdded, 6 subscriptionRemoved, 7 inboundReleased, 8 disconnected.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .deliverySent(let delivery):
            buffer.writeInteger(UInt8(1))
            delivery.write(to: &buffer)
        case .deliveryState(let topicFilter, let queueOffset, let state):
            buffer.writeInteger(UInt8(2))
            buffer.writeWireString(topicFilter)
            buffer.writeInteger(queueOffset)
            buffer.writeInteger(state.rawValue)
        case .unfinishedDeliveries(let deliveries):
            buffer.writeInteger(UInt8(3))
            deliveries.write(to: &buffer)
        case .consumeOffset(let topicFilter, let lmq, let offset):
            buffer.writeInteger(UInt8(4))
            buffer.writeWireString(topicFilter)
            buffer.writeWireString(lmq)
            buffer.writeInteger(offset)
        case .subscriptionAdded(let subscription, let lmq, let startOffset):
            buffer.writeInteger(UInt8(5))
            subscription.write(to: &buffer)
            buffer.writeWireString(lmq)
            buffer.writeInteger(startOffset)
        case .subscriptionRemoved(let topicFilter, let lmq):
            buffer.writeInteger(UInt8(6))
            buffer.writeWireString(topicFilter)
            buffer.writeWireString(lmq)
        case .inboundReleased(let packetIdentifier):
            buffer.writeInteger(UInt8(7))
            buffer.writeInteger(packetIdentifier)
        case .disconnected(let atMillis, let expiry, let will):
            buffer.writeInteger(UInt8(8))
            buffer.writeInteger(atMillis)
            buffer.writeInteger(expiry)
            will.write(to: &buffer)
        }
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        let at = reader.offset
        let tag: UInt8 = try reader.integer("journal entry tag")
        switch tag {
        case 1:
            self = .deliverySent(try SessionDelivery(from: &reader))
        case 2:
            self = .deliveryState(
                topicFilter: try reader.string("topic filter"), queueOffset: try reader.integer("queue offset"),
                try reader.rawValue("delivery state", as: SessionDelivery.State.self)
            )
        case 3:
            self = .unfinishedDeliveries(try [SessionDelivery](from: &reader))
        case 4:
            self = .consumeOffset(topicFilter: try reader.string("topic filter"), lmq: try reader.string("lmq"), offset: try reader.integer("offset"))
        case 5:
            self = .subscriptionAdded(try StoredSubscription(from: &reader), lmq: try reader.string("lmq"), startOffset: try reader.integer("start offset"))
        case 6:
            self = .subscriptionRemoved(topicFilter: try reader.string("topic filter"), lmq: try reader.string("lmq"))
        case 7:
            self = .inboundReleased(packetIdentifier: try reader.integer("packet identifier"))
        case 8:
            self = .disconnected(
                atMillis: try reader.integer("disconnected at"), sessionExpiryIntervalSeconds: try reader.integer("session expiry interval"),
                will: try StoredWill?(from: &reader)
            )
        default:
            throw .invalidValue(field: "journal entry tag", offset: at, reason: "unknown tag \(tag)")
        }
    }
}

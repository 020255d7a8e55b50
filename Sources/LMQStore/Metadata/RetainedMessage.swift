import MQTTCore
import NIOCore

/// The retained message of one topic (MQTT 5.0 §3.3.1.3): sent to every new subscription whose filter
/// matches the topic, with RETAIN set.
public struct RetainedMessage: Sendable, Hashable {
    /// The topic name the message was published to; a valid ``TopicName`` (checked when stored).
    public var topic: String
    /// The application message. An empty payload is never stored: publishing one deletes the topic's
    /// retained message ([MQTT-3.3.1-6], [MQTT-3.3.1-7]).
    public var payload: ByteBuffer
    /// The QoS it was published with.
    public var qos: MQTTQoS
    /// The PUBLISH properties to forward (v5): payload format, content type, response topic, correlation
    /// data, user properties, message expiry interval. Empty for messages published with 3.1 / 3.1.1.
    public var properties: MQTTProperties
    /// When the store accepted the message, in milliseconds since 1970; the message expiry interval counts
    /// from here.
    public var storeTimestampMillis: Int64

    public init(
        topic: String,
        payload: ByteBuffer,
        qos: MQTTQoS,
        properties: MQTTProperties = [],
        storeTimestampMillis: Int64
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.properties = properties
        self.storeTimestampMillis = storeTimestampMillis
    }

    /// The Message Expiry Interval property, if the publisher set one (§3.3.2.3.3).
    public var messageExpiryIntervalSeconds: UInt32? {
        properties.messageExpiryInterval
    }

    /// When the message expires, in milliseconds since 1970; `nil` if it never does.
    public var expiresAtMillis: Int64? {
        messageExpiryIntervalSeconds.map { storeTimestampMillis + Int64($0) * 1_000 }
    }

    /// Whether the message has expired at `nowMillis` and must no longer be sent [MQTT-3.3.2-5].
    public func isExpired(atMillis nowMillis: Int64) -> Bool {
        guard let expiresAtMillis else { return false }
        return expiresAtMillis <= nowMillis
    }
}

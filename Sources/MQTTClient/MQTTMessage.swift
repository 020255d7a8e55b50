import MQTTCore
import NIOCore

/// An application message the server delivered to this client.
public struct MQTTMessage: Sendable, Hashable {
    /// The topic name, with a 5.0 Topic Alias already resolved.
    public var topic: String
    /// The payload: a slice of the buffer the packet was read into, not a copy.
    public var payload: ByteBuffer
    /// The QoS the message was delivered with.
    public var qos: MQTTQoS
    /// Set for a retained message sent because of a new subscription (or, in 5.0 with Retain As
    /// Published, as the publisher sent it).
    public var retain: Bool
    /// Set when the server re-delivers a message it may have sent before.
    public var dup: Bool
    /// The PUBLISH properties (5.0): content type, response topic, user properties, subscription identifiers, ...
    public var properties: MQTTProperties

    public init(
        topic: String,
        payload: ByteBuffer,
        qos: MQTTQoS = .atMostOnce,
        retain: Bool = false,
        dup: Bool = false,
        properties: MQTTProperties = []
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.properties = properties
    }

    /// The payload read as UTF-8 text (invalid sequences are repaired, as `String(decoding:as:)` does).
    public var payloadString: String {
        String(buffer: payload)
    }
}

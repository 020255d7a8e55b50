import MQTTCore
import NIOCore

/// The will message of a persistent session (§3.1.2.5, §3.1.3.2 - §3.1.3.4), kept so that the cluster can
/// publish it even when the gateway that held the connection is gone.
public struct StoredWill: Sendable, Hashable {
    /// The will topic; a valid topic name.
    public var topic: String
    public var payload: ByteBuffer
    public var qos: MQTTQoS
    /// Whether the will is published as a retained message.
    public var retain: Bool
    /// The will properties (v5), stored as sent: payload format, message expiry, content type, response
    /// topic, correlation data, user properties and the will delay interval.
    public var properties: MQTTProperties
    /// Seconds to wait after the connection closes before publishing (v5 Will Delay Interval, §3.1.3.2.2);
    /// 0 publishes at once.
    public var delayIntervalSeconds: UInt32

    public init(
        topic: String,
        payload: ByteBuffer,
        qos: MQTTQoS = .atMostOnce,
        retain: Bool = false,
        properties: MQTTProperties = [],
        delayIntervalSeconds: UInt32 = 0
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.delayIntervalSeconds = delayIntervalSeconds
    }

    /// The will of a CONNECT packet; the delay comes from its Will Delay Interval property, 0 when absent.
    public init(_ will: ConnectPacket.Will) {
        self.init(
            topic: will.topicName,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties: will.properties,
            delayIntervalSeconds: will.properties.willDelayInterval ?? 0
        )
    }
}

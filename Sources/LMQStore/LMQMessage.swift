import MQTTCore
import NIOCore

/// A message as handed to the store: one MQTT PUBLISH, written once to the commit log and indexed
/// into every queue it is dispatched to.
public struct LMQMessage: Sendable, Hashable {
    /// The MQTT topic name, e.g. `sensors/7/temp`.
    public var topic: String
    public var qos: MQTTQoS
    public var retain: Bool
    /// An identifier the caller chooses (0 if it has none); stored and returned unchanged.
    public var messageId: UInt64
    /// The PUBLISH properties (user properties, message expiry, content type, response topic, ...),
    /// kept in MQTT 5.0 wire format so they reach subscribers unchanged.
    public var properties: MQTTProperties
    public var payload: ByteBuffer
    /// The client identifier of the publishing connection, if the caller records it: subscriptions with
    /// No Local do not get their own messages back ([MQTT-3.8.3-3]).
    public var originClientIdentifier: String?

    public init(
        topic: String, payload: ByteBuffer, qos: MQTTQoS = .atMostOnce, retain: Bool = false, messageId: UInt64 = 0,
        properties: MQTTProperties = [], originClientIdentifier: String? = nil
    ) {
        self.topic = topic
        self.qos = qos
        self.retain = retain
        self.messageId = messageId
        self.properties = properties
        self.payload = payload
        self.originClientIdentifier = originClientIdentifier
    }
}

/// One queue a message was dispatched to and the offset it got there.
public struct QueueOffset: Sendable, Hashable {
    public var queue: String
    public var offset: Int64

    public init(queue: String, offset: Int64) {
        self.queue = queue
        self.offset = offset
    }
}

/// A message read back from the commit log.
public struct StoredMessage: Sendable, Hashable {
    public var message: LMQMessage
    /// The first level of the topic (`sensors` for `sensors/7/temp`).
    public var firstTopic: String
    public var storeTimestampMillis: Int64
    /// Where the record starts in the commit log.
    public var commitLogPosition: Int64
    /// Every queue the message went to, with its offset in each.
    public var queueOffsets: [QueueOffset]

    public init(message: LMQMessage, firstTopic: String, storeTimestampMillis: Int64, commitLogPosition: Int64, queueOffsets: [QueueOffset]) {
        self.message = message
        self.firstTopic = firstTopic
        self.storeTimestampMillis = storeTimestampMillis
        self.commitLogPosition = commitLogPosition
        self.queueOffsets = queueOffsets
    }
}

/// The outcome of an append: where the record went and the offset it got in each queue, in the
/// order the queues were named (duplicates removed).
public struct AppendResult: Sendable, Hashable {
    public var commitLogPosition: Int64
    public var queueOffsets: [QueueOffset]
    public var storeTimestampMillis: Int64

    public init(commitLogPosition: Int64, queueOffsets: [QueueOffset], storeTimestampMillis: Int64) {
        self.commitLogPosition = commitLogPosition
        self.queueOffsets = queueOffsets
        self.storeTimestampMillis = storeTimestampMillis
    }
}

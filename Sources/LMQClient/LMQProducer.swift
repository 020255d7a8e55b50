import LMQStore
import Logging
import MQTTCore
import NIOCore
import StoreNode

/// Sends messages to topics the way an MQTT PUBLISH reaches the store: to the store node of the topic's
/// first topic (created in the name servers if needed), written once and dispatched to the topic's queue
/// and to the queue of every wildcard filter that matches it — so MQTT subscribers of `a/b/c`, `a/+/c` and
/// `a/#` get it — and, with `retain`, kept as the topic's retained message.
///
/// ```swift
/// let producer = try await LMQProducer.start(LMQClientConfiguration(nameServerAddresses: ["127.0.0.1:9876"]))
/// let receipt = try await producer.send(topic: "cmd/device-7", payload: "reboot", qos: .atLeastOnce)
/// await producer.shutdown()
/// ```
public final class LMQProducer: Sendable {
    private let connection: StoreConnection

    private init(connection: StoreConnection) {
        self.connection = connection
    }

    /// Connects to the primary store node, found through the name servers.
    public static func start(_ configuration: LMQClientConfiguration = LMQClientConfiguration(), logger: Logger = Logger(label: "lmq.producer")) async throws -> LMQProducer {
        LMQProducer(connection: try await StoreConnection.open(configuration, logger: logger))
    }

    /// Sends `payload` to `topic`; returns once the store node says it is stored as its `flushDiskType`
    /// defines durable (on disk under `SYNC_FLUSH`).
    ///
    /// - Parameters:
    ///   - qos: the QoS MQTT subscribers get it with (at most the QoS of their subscription).
    ///   - retain: keep it as the topic's retained message (an empty payload deletes the retained message).
    ///   - properties: MQTT 5.0 PUBLISH properties subscribers get (user properties, content type,
    ///     response topic, correlation data, message expiry interval, ...).
    ///   - messageId: an identifier of the application's, stored and handed back to consumers.
    @discardableResult
    public func send(
        topic: String, payload: ByteBuffer, qos: MQTTQoS = .atLeastOnce, retain: Bool = false, properties: MQTTProperties = [],
        messageId: UInt64 = 0
    ) async throws -> LMQSendReceipt {
        let name: TopicName
        do {
            name = try TopicName(topic)
        } catch {
            throw LMQClientError.invalidTopic(topic, reason: "\(error)")
        }
        if topic == "$SYS" || topic.hasPrefix("$SYS/") { throw LMQClientError.reservedTopic(topic) }
        let message = LMQMessage(topic: topic, payload: payload, qos: qos, retain: retain, messageId: messageId, properties: properties)
        let firstTopic = String(name.firstTopic)
        // A peer-to-peer topic goes to the recipient's queue alone, which is the primary's.
        let node: StoreNodeClient
        let queues: [String]
        if let recipient = LMQNaming.p2pRecipientClientId(of: name) {
            (node, queues) = (connection.primary, [LMQNaming.p2pLMQName(clientId: String(recipient))])
        } else {
            (node, queues) = (try await connection.node(forFirstTopic: firstTopic, creating: true), [name.lmqName])
        }
        var result = try await node.append(message, to: queues)
        if node !== connection.primary {
            // Filters whose first level is a wildcard (`+/x`, `#`) live on the primary.
            let spanning = try await connection.primary.appendToMatchingFiltersInOrder(message).get()
            result.queueOffsets += spanning.queueOffsets
        }
        if retain {
            // An empty payload deletes the retained message ([MQTT-3.3.1-6]).
            try await connection.primary.setRetained(RetainedMessage(
                topic: topic, payload: payload, qos: qos, properties: properties, storeTimestampMillis: result.storeTimestampMillis
            ))
        }
        return LMQSendReceipt(topic: topic, queueOffsets: result.queueOffsets, storeTimestampMillis: result.storeTimestampMillis)
    }

    /// ``send(topic:payload:qos:retain:properties:messageId:)`` with a text payload (UTF-8).
    @discardableResult
    public func send(
        topic: String, payload: String, qos: MQTTQoS = .atLeastOnce, retain: Bool = false, properties: MQTTProperties = [],
        messageId: UInt64 = 0
    ) async throws -> LMQSendReceipt {
        try await send(topic: topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, properties: properties, messageId: messageId)
    }

    /// Closes the connections to the store nodes and name servers.
    public func shutdown() async {
        await connection.close()
    }
}

/// Where a sent message was stored.
public struct LMQSendReceipt: Sendable, Hashable {
    public var topic: String
    /// Each queue it was dispatched to (the topic's, and those of the matching wildcard filters), with
    /// the offset it got there.
    public var queueOffsets: [QueueOffset]
    /// When the store node stored it (milliseconds since 1970).
    public var storeTimestampMillis: Int64
}

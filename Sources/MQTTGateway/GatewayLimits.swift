/// The gateway's limits against abuse, from `connect.conf` (docs/limits.md). Every value has a default
/// that a fresh node runs with; 0 turns a rate or count limit off where said.
public struct GatewayLimits: Sendable, Hashable {
    /// The `connect.conf` keys this type reads.
    public enum Key {
        public static let maxConnections = "maxConn"
        public static let maxInboundMessagesPerSecond = "maxInboundMessagesPerSecond"
        public static let maxInboundBytesPerSecond = "maxInboundBytesPerSecond"
        public static let maxSubscriptionsPerClient = "maxSubscriptionsPerClient"
        public static let maxQueuedMessagesPerSession = "maxQueuedMessagesPerSession"
        public static let queuedMessagesOverflow = "queuedMessagesOverflow"
        public static let writeBufferLowWaterMark = "writeBufferLowWaterMarkInByte"
        public static let writeBufferHighWaterMark = "writeBufferHighWaterMarkInByte"
    }

    /// `maxConn`: the most open MQTT connections; one more is closed as soon as it is accepted. Default 100,000.
    public var maximumConnections: Int
    /// `maxInboundMessagesPerSecond`: PUBLISHes one connection may send per second (a burst of one
    /// second's worth is allowed); above it the gateway stops reading the connection until the budget
    /// refills. 0 = no limit (the default).
    public var maximumInboundMessagesPerSecond: Int
    /// `maxInboundBytesPerSecond`: topic and payload bytes of PUBLISHes one connection may send per
    /// second, enforced like the message rate. 0 = no limit (the default).
    public var maximumInboundBytesPerSecond: Int
    /// `maxSubscriptionsPerClient`: the most subscriptions one session holds; a SUBSCRIBE to one more filter
    /// gets 0x97 Quota exceeded for it (v5) or 0x80 (3.1.1). 0 = no limit. Default 1,000.
    public var maximumSubscriptionsPerClient: Int
    /// `maxQueuedMessagesPerSession`: when a persistent session resumes, the most messages it is sent from
    /// the backlog of each subscription; the others are skipped, per `queuedMessagesOverflow`. 0 = no limit.
    /// Default 100,000.
    public var maximumQueuedMessagesPerSession: Int
    /// `queuedMessagesOverflow`: which messages of a longer backlog a resuming session does not get.
    public var queuedMessagesOverflow: QueuedMessagesOverflow = .dropOldest

    /// What `maxQueuedMessagesPerSession` leaves out of a longer backlog.
    public enum QueuedMessagesOverflow: String, Sendable, Hashable, CaseIterable {
        /// The oldest: the session gets the last `maxQueuedMessagesPerSession` messages (the default).
        case dropOldest
        /// The newest: it gets the first `maxQueuedMessagesPerSession` messages that waited for it, then
        /// what is published after it resumed — as mosquitto's `max_queued_messages` does.
        case dropNewest
    }
    /// `writeBufferLowWaterMarkInByte` / `writeBufferHighWaterMarkInByte`: a connection whose unsent bytes
    /// exceed the high mark is not writable, and gets no deliveries until they fall below the low mark.
    /// Defaults 32 KiB and 64 KiB.
    public var writeBufferLowWaterMarkBytes: Int
    public var writeBufferHighWaterMarkBytes: Int

    public init(
        maximumConnections: Int = 100_000,
        maximumInboundMessagesPerSecond: Int = 0,
        maximumInboundBytesPerSecond: Int = 0,
        maximumSubscriptionsPerClient: Int = 1_000,
        maximumQueuedMessagesPerSession: Int = 100_000,
        writeBufferLowWaterMarkBytes: Int = 32 * 1024,
        writeBufferHighWaterMarkBytes: Int = 64 * 1024
    ) {
        precondition(maximumConnections > 0)
        precondition(maximumInboundMessagesPerSecond >= 0 && maximumInboundBytesPerSecond >= 0)
        precondition(maximumSubscriptionsPerClient >= 0 && maximumQueuedMessagesPerSession >= 0)
        precondition(writeBufferLowWaterMarkBytes > 0 && writeBufferLowWaterMarkBytes <= writeBufferHighWaterMarkBytes)
        self.maximumConnections = maximumConnections
        self.maximumInboundMessagesPerSecond = maximumInboundMessagesPerSecond
        self.maximumInboundBytesPerSecond = maximumInboundBytesPerSecond
        self.maximumSubscriptionsPerClient = maximumSubscriptionsPerClient
        self.maximumQueuedMessagesPerSession = maximumQueuedMessagesPerSession
        self.writeBufferLowWaterMarkBytes = writeBufferLowWaterMarkBytes
        self.writeBufferHighWaterMarkBytes = writeBufferHighWaterMarkBytes
    }

    /// Whether connections need the inbound rate limiter in their pipeline.
    public var limitsInboundRate: Bool {
        maximumInboundMessagesPerSecond > 0 || maximumInboundBytesPerSecond > 0
    }

    /// Reads the limits from the parsed `connect.conf`; absent or empty keys take their defaults.
    public init(connectProperties properties: [String: String]) throws(GatewayConfiguration.LoadError) {
        let defaults = GatewayLimits()
        func value(_ key: String, _ defaultValue: Int, _ range: ClosedRange<Int>) throws(GatewayConfiguration.LoadError) -> Int {
            guard let text = properties[key], !text.isEmpty else { return defaultValue }
            guard let parsed = Int(text), range.contains(parsed) else {
                throw GatewayConfiguration.LoadError(
                    message: "connect.conf: \(key)=\(text), expected an integer in \(range.lowerBound)...\(range.upperBound)"
                )
            }
            return parsed
        }
        var overflow = QueuedMessagesOverflow.dropOldest
        if let text = properties[Key.queuedMessagesOverflow], !text.isEmpty {
            guard let parsed = QueuedMessagesOverflow(rawValue: text) else {
                throw GatewayConfiguration.LoadError(
                    message: "connect.conf: \(Key.queuedMessagesOverflow)=\(text), expected dropOldest or dropNewest"
                )
            }
            overflow = parsed
        }
        let low = try value(Key.writeBufferLowWaterMark, defaults.writeBufferLowWaterMarkBytes, 1...(1 << 30))
        let high = try value(Key.writeBufferHighWaterMark, max(low, defaults.writeBufferHighWaterMarkBytes), low...(1 << 30))
        self.init(
            maximumConnections: try value(Key.maxConnections, defaults.maximumConnections, 1...10_000_000),
            maximumInboundMessagesPerSecond: try value(Key.maxInboundMessagesPerSecond, 0, 0...100_000_000),
            maximumInboundBytesPerSecond: try value(Key.maxInboundBytesPerSecond, 0, 0...(1 << 40)),
            maximumSubscriptionsPerClient: try value(Key.maxSubscriptionsPerClient, defaults.maximumSubscriptionsPerClient, 0...10_000_000),
            maximumQueuedMessagesPerSession: try value(
                Key.maxQueuedMessagesPerSession, defaults.maximumQueuedMessagesPerSession, 0...Int(Int32.max)
            ),
            writeBufferLowWaterMarkBytes: low,
            writeBufferHighWaterMarkBytes: high
        )
        queuedMessagesOverflow = overflow
    }
}

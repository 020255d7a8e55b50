import MQTTCore
import NIOCore
import SQLite

// Retained messages: at most one per topic name, found by exact topic or by topic filter.
extension LMQMetadataStore {
    /// Stores `message` as the retained message of its topic, replacing the previous one [MQTT-3.3.1-5];
    /// a message with an empty payload instead deletes the topic's retained message and is not stored
    /// itself [MQTT-3.3.1-6], [MQTT-3.3.1-7].
    ///
    /// - Throws: ``LMQMetadataStoreError/invalidTopic(_:_:)`` when the topic is not a valid topic name.
    public func setRetained(_ message: RetainedMessage) async throws {
        let topicName: TopicName
        do {
            topicName = try TopicName(message.topic)
        } catch {
            throw LMQMetadataStoreError.invalidTopic(message.topic, error)
        }
        guard message.payload.readableBytes > 0 else {
            try await deleteRetained(topic: message.topic)
            return
        }
        let firstTopic = String(topicName.firstTopic)
        let properties = MetadataPropertiesCodec.encode(message.properties)
        try await withConnection { connection in
            let upsert = try connection.prepare(
                """
                INSERT INTO retained_messages (topic, first_topic, qos, payload, properties, store_timestamp_millis,
                                               message_expiry_interval_seconds)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (topic) DO UPDATE SET
                    qos = excluded.qos, payload = excluded.payload, properties = excluded.properties,
                    store_timestamp_millis = excluded.store_timestamp_millis,
                    message_expiry_interval_seconds = excluded.message_expiry_interval_seconds
                """
            )
            try upsert.bind(1, message.topic)
            try upsert.bind(2, firstTopic)
            try upsert.bind(3, Int64(message.qos.rawValue))
            try upsert.bind(4, message.payload)
            try upsert.bind(5, properties)
            try upsert.bind(6, message.storeTimestampMillis)
            if let expiry = message.messageExpiryIntervalSeconds {
                try upsert.bind(7, Int64(expiry))
            } else {
                try upsert.bindNull(7)
            }
            try upsert.step()
        }
    }

    /// Deletes the retained message of `topic`.
    /// - Returns: whether there was one.
    @discardableResult
    public func deleteRetained(topic: String) async throws -> Bool {
        try await withConnection { connection in
            try connection.prepare("DELETE FROM retained_messages WHERE topic = ?").run(.text(topic))
            return connection.changes > 0
        }
    }

    /// The retained message of exactly `topic`, if any.
    ///
    /// - Parameter nowMillis: when given, a message whose expiry interval has passed is treated as absent
    ///   [MQTT-3.3.2-5]; it stays stored until ``deleteExpiredRetained(nowMillis:)``.
    public func retained(topic: String, nowMillis: Int64? = nil) async throws -> RetainedMessage? {
        try await withConnection { connection in
            let select = try connection.prepare("SELECT \(Self.retainedColumns) FROM retained_messages WHERE topic = ?")
            try select.bind(1, topic)
            guard try select.step() else { return nil }
            let message = try Self.retainedMessage(from: select)
            if let nowMillis, message.isExpired(atMillis: nowMillis) { return nil }
            return message
        }
    }

    /// The retained messages whose topics match `filter`, sorted by topic (byte order).
    ///
    /// Matching is MQTTCore's ``TopicFilter/matches(_:)``, so a filter starting with `+` or `#` does not match
    /// topics starting with `$` [MQTT-4.7.2-1], and a shared subscription matches by its filter proper.
    /// A filter whose first level is not a wildcard only reads that first topic's rows (an index lookup);
    /// one starting with a wildcard reads every topic name.
    ///
    /// - Parameters:
    ///   - nowMillis: when given, expired messages are left out [MQTT-3.3.2-5].
    ///   - limit: at most this many messages are returned.
    public func retained(
        matching filter: TopicFilter,
        nowMillis: Int64? = nil,
        limit: Int = .max
    ) async throws -> [RetainedMessage] {
        precondition(limit >= 0, "limit must not be negative")
        let firstTopic = String(filter.firstTopic)
        let startsWithWildcard = firstTopic == "+" || firstTopic == "#"
        return try await withConnection { connection in
            if !filter.hasWildcards {
                let select = try connection.prepare("SELECT \(Self.retainedColumns) FROM retained_messages WHERE topic = ?")
                try select.bind(1, filter.filter)
                guard limit > 0, try select.step() else { return [] }
                let message = try Self.retainedMessage(from: select)
                if let nowMillis, message.isExpired(atMillis: nowMillis) { return [] }
                return [message]
            }
            let select: SQLiteStatement
            if startsWithWildcard {
                select = try connection.prepare("SELECT \(Self.retainedColumns) FROM retained_messages ORDER BY topic")
            } else {
                select = try connection.prepare(
                    "SELECT \(Self.retainedColumns) FROM retained_messages WHERE first_topic = ? ORDER BY topic"
                )
                try select.bind(1, firstTopic)
            }
            var messages: [RetainedMessage] = []
            while messages.count < limit, try select.step() {
                // Match on the topic column alone first, so rows that do not match never have their payload read.
                let topic = select.string(at: 0) ?? ""
                guard let topicName = try? TopicName(topic), filter.matches(topicName) else { continue }
                let message = try Self.retainedMessage(from: select)
                if let nowMillis, message.isExpired(atMillis: nowMillis) { continue }
                messages.append(message)
            }
            return messages
        }
    }

    /// How many retained messages are stored (expired ones included until deleted).
    public func retainedCount() async throws -> Int {
        try await withConnection { connection in
            let count = try connection.prepare("SELECT count(*) FROM retained_messages")
            try count.step()
            return Int(count.int64(at: 0))
        }
    }

    /// Deletes every retained message whose expiry interval has passed at `nowMillis` [MQTT-3.3.2-5].
    /// - Returns: how many were deleted.
    @discardableResult
    public func deleteExpiredRetained(nowMillis: Int64) async throws -> Int {
        try await withConnection { connection in
            try connection.prepare("DELETE FROM retained_messages WHERE expires_at_millis <= ?").run(.integer(nowMillis))
            return connection.changes
        }
    }

    /// The columns ``retainedMessage(from:)`` reads, in order; `topic` first.
    static let retainedColumns = "topic, qos, payload, properties, store_timestamp_millis"

    static func retainedMessage(from row: SQLiteStatement) throws -> RetainedMessage {
        let topic = row.string(at: 0) ?? ""
        let rawQoS = row.int64(at: 1)
        guard let qosByte = UInt8(exactly: rawQoS), let qos = MQTTQoS(rawValue: qosByte) else {
            throw LMQMetadataStoreError.corruptValue(table: "retained_messages", key: topic, reason: "QoS \(rawQoS)")
        }
        let properties: MQTTProperties
        do {
            properties = try MetadataPropertiesCodec.decode(row.byteBuffer(at: 3))
        } catch {
            throw LMQMetadataStoreError.corruptValue(table: "retained_messages", key: topic, reason: error.reason)
        }
        return RetainedMessage(
            topic: topic,
            payload: row.byteBuffer(at: 2),
            qos: qos,
            properties: properties,
            storeTimestampMillis: row.int64(at: 4)
        )
    }
}

import MQTTCore
import SQLite

/// One outbound QoS 1/2 delivery of a persistent session (MQTT 5.0 §4.4): which message (the subscription's
/// topic filter and the offset in its queue) went out under which packet identifier, and how far its flow got.
public struct SessionDelivery: Sendable, Hashable {
    /// Where a delivery's flow stands.
    public enum State: UInt8, Sendable, Hashable, CaseIterable {
        /// PUBLISH sent; no PUBACK/PUBREC yet. A resumed session resends the PUBLISH with DUP.
        case sent = 0
        /// QoS 2: PUBREC received and PUBREL sent. A resumed session resends PUBREL, never the PUBLISH
        /// ([MQTT-4.3.3-6]).
        case released = 1
        /// Finished, but the consume offset does not cover it yet (a lower offset is still in flight):
        /// kept so that a resumed session skips it instead of delivering it again.
        case completed = 2
    }

    /// The subscription the message was delivered for, as the client wrote its filter.
    public var topicFilter: String
    /// The message's offset in that subscription's queue.
    public var queueOffset: Int64
    public var packetIdentifier: UInt16
    /// The QoS it was delivered with (1 or 2).
    public var qos: MQTTQoS
    public var state: State

    public init(topicFilter: String, queueOffset: Int64, packetIdentifier: UInt16, qos: MQTTQoS, state: State) {
        self.topicFilter = topicFilter
        self.queueOffset = queueOffset
        self.packetIdentifier = packetIdentifier
        self.qos = qos
        self.state = state
    }
}

/// A change to a persistent session's progress. A gateway batches them and applies each batch in one
/// transaction (``LMQMetadataStore/applySessionJournal(clientIdentifier:_:)``), before it writes the packets
/// that depend on them.
public enum SessionJournalEntry: Sendable, Hashable {
    /// A QoS 2 delivery is about to be sent for the first time (inserted, or replacing an older row).
    case deliverySent(SessionDelivery)
    /// The delivery's flow moved on (PUBREC → released; PUBACK/PUBCOMP → completed).
    case deliveryState(topicFilter: String, queueOffset: Int64, SessionDelivery.State)
    /// Replaces every unfinished (sent or released) delivery by `deliveries`, in order: the snapshot a
    /// connection leaves when it closes. Completed rows stay until the offsets pass them.
    case unfinishedDeliveries([SessionDelivery])
    /// The consume offset of the subscription's queue: every message below it is finished. Also deletes the
    /// delivery rows of that subscription below it.
    case consumeOffset(topicFilter: String, lmq: String, offset: Int64)
    /// A subscription added or replaced, starting at `startOffset` in its queue when it is new.
    case subscriptionAdded(StoredSubscription, lmq: String, startOffset: Int64)
    /// A subscription removed with its consume offset and delivery rows.
    case subscriptionRemoved(topicFilter: String, lmq: String)
    /// The inbound QoS 2 packet identifier was released by PUBREL.
    case inboundReleased(packetIdentifier: UInt16)
    /// The connection closed at `atMillis`: the expiry interval runs from now, and `will` (nil: none) waits
    /// for its delay ([MQTT-3.1.2-10]: a will that was published or discarded is removed).
    case disconnected(atMillis: Int64, sessionExpiryIntervalSeconds: UInt32, will: StoredWill?)
}

extension LMQMetadataStore {
    /// Applies `entries` in order, in one transaction.
    ///
    /// - Throws: ``LMQMetadataStoreError/sessionNotFound(clientIdentifier:)`` when there is no session.
    public func applySessionJournal(clientIdentifier: String, _ entries: [SessionJournalEntry]) async throws {
        guard !entries.isEmpty else { return }
        let group = LMQNaming.consumerGroupName(clientId: clientIdentifier)
        try await transaction { connection in
            try Self.requireSession(connection, clientIdentifier: clientIdentifier)
            for entry in entries {
                try Self.apply(entry, clientIdentifier: clientIdentifier, group: group, connection)
            }
        }
    }

    /// Deletes a session with everything it holds, consume offsets included, in one transaction (so that a
    /// later session of the same client never starts from a stale offset).
    /// - Returns: whether a session was stored.
    @discardableResult
    public func deleteSessionAndOffsets(clientIdentifier: String) async throws -> Bool {
        let group = LMQNaming.consumerGroupName(clientId: clientIdentifier)
        return try await transaction { connection in
            try connection.prepare("DELETE FROM consume_offsets WHERE consumer_group = ?").run(.text(group))
            // ON DELETE CASCADE removes the subscriptions, pending identifiers, will and deliveries.
            try connection.prepare("DELETE FROM sessions WHERE client_identifier = ?").run(.text(clientIdentifier))
            return connection.changes > 0
        }
    }

    /// The session's delivery rows, in the order they were sent.
    public func sessionDeliveries(clientIdentifier: String) async throws -> [SessionDelivery] {
        try await withConnection { connection in
            let select = try connection.prepare(
                """
                SELECT topic_filter, queue_offset, packet_identifier, qos, state FROM session_deliveries
                WHERE client_identifier = ? ORDER BY sequence
                """
            )
            try select.bind(1, clientIdentifier)
            var deliveries: [SessionDelivery] = []
            while try select.step() {
                guard let packetIdentifier = UInt16(exactly: select.int64(at: 2)), packetIdentifier != 0,
                    let qos = MQTTQoS(rawValue: UInt8(clamping: select.int64(at: 3))),
                    let state = SessionDelivery.State(rawValue: UInt8(clamping: select.int64(at: 4)))
                else {
                    throw LMQMetadataStoreError.corruptValue(table: "session_deliveries", key: clientIdentifier, reason: "packet identifier, QoS or state out of range")
                }
                deliveries.append(SessionDelivery(
                    topicFilter: select.string(at: 0) ?? "", queueOffset: select.int64(at: 1), packetIdentifier: packetIdentifier,
                    qos: qos, state: state
                ))
            }
            return deliveries
        }
    }

    private static func apply(_ entry: SessionJournalEntry, clientIdentifier: String, group: String, _ connection: SQLiteConnection) throws {
        switch entry {
        case .deliverySent(let delivery):
            try insertDelivery(delivery, clientIdentifier: clientIdentifier, connection)
        case .deliveryState(let topicFilter, let queueOffset, let state):
            try connection.prepare(
                "UPDATE session_deliveries SET state = ? WHERE client_identifier = ? AND topic_filter = ? AND queue_offset = ?"
            ).run(.integer(Int64(state.rawValue)), .text(clientIdentifier), .text(topicFilter), .integer(queueOffset))
        case .unfinishedDeliveries(let deliveries):
            try connection.prepare("DELETE FROM session_deliveries WHERE client_identifier = ? AND state < 2").run(.text(clientIdentifier))
            for delivery in deliveries {
                try insertDelivery(delivery, clientIdentifier: clientIdentifier, connection)
            }
        case .consumeOffset(let topicFilter, let lmq, let offset):
            guard offset >= 0 else { throw LMQMetadataStoreError.invalidArgument("offset \(offset) is negative") }
            try connection.prepare(
                """
                INSERT INTO consume_offsets (consumer_group, lmq, queue_offset) VALUES (?, ?, ?)
                ON CONFLICT (consumer_group, lmq) DO UPDATE SET queue_offset = excluded.queue_offset
                """
            ).run(.text(group), .text(lmq), .integer(offset))
            try connection.prepare(
                "DELETE FROM session_deliveries WHERE client_identifier = ? AND topic_filter = ? AND queue_offset < ?"
            ).run(.text(clientIdentifier), .text(topicFilter), .integer(offset))
        case .subscriptionAdded(let subscription, let lmq, let startOffset):
            try validate([subscription])
            try upsertSubscription(connection, clientIdentifier: clientIdentifier, subscription)
            // A replaced subscription keeps its place in the queue ([MQTT-3.8.4-3]: the flow is not interrupted).
            try connection.prepare(
                "INSERT OR IGNORE INTO consume_offsets (consumer_group, lmq, queue_offset) VALUES (?, ?, ?)"
            ).run(.text(group), .text(lmq), .integer(max(0, startOffset)))
        case .subscriptionRemoved(let topicFilter, let lmq):
            try connection.prepare(
                "DELETE FROM session_subscriptions WHERE client_identifier = ? AND topic_filter = ?"
            ).run(.text(clientIdentifier), .text(topicFilter))
            try connection.prepare("DELETE FROM consume_offsets WHERE consumer_group = ? AND lmq = ?").run(.text(group), .text(lmq))
            try connection.prepare(
                "DELETE FROM session_deliveries WHERE client_identifier = ? AND topic_filter = ?"
            ).run(.text(clientIdentifier), .text(topicFilter))
        case .inboundReleased(let packetIdentifier):
            try connection.prepare(
                "DELETE FROM session_pending_pubrel WHERE client_identifier = ? AND packet_identifier = ?"
            ).run(.text(clientIdentifier), .integer(Int64(packetIdentifier)))
        case .disconnected(let atMillis, let expiry, let will):
            try connection.prepare(
                "UPDATE sessions SET disconnected_at_millis = ?, session_expiry_interval_seconds = ? WHERE client_identifier = ?"
            ).run(.integer(atMillis), .integer(Int64(expiry)), .text(clientIdentifier))
            if let will { try validate(will) }
            try writeWill(connection, clientIdentifier: clientIdentifier, will: will.map { ($0, MetadataPropertiesCodec.encode($0.properties)) })
        }
    }

    private static func insertDelivery(_ delivery: SessionDelivery, clientIdentifier: String, _ connection: SQLiteConnection) throws {
        guard delivery.packetIdentifier != 0, delivery.qos != .atMostOnce else {
            throw LMQMetadataStoreError.invalidArgument("a delivery in flight has QoS 1 or 2 and a non-zero packet identifier")
        }
        try connection.prepare(
            """
            INSERT INTO session_deliveries (client_identifier, topic_filter, queue_offset, packet_identifier, qos, state, sequence)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                    (SELECT coalesce(max(sequence), 0) + 1 FROM session_deliveries WHERE client_identifier = ?1))
            ON CONFLICT (client_identifier, topic_filter, queue_offset) DO UPDATE SET
                packet_identifier = excluded.packet_identifier, qos = excluded.qos, state = excluded.state,
                sequence = excluded.sequence
            """
        ).run(
            .text(clientIdentifier), .text(delivery.topicFilter), .integer(delivery.queueOffset),
            .integer(Int64(delivery.packetIdentifier)), .integer(Int64(delivery.qos.rawValue)), .integer(Int64(delivery.state.rawValue))
        )
    }
}

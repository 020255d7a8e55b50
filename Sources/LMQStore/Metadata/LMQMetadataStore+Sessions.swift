import MQTTCore
import NIOCore
import SQLite

// Persistent-session records, normalized into four tables (sessions, session_subscriptions,
// session_pending_pubrel, session_wills) so that a SUBSCRIBE, a PUBREL or a disconnect updates single rows.
extension LMQMetadataStore {
    /// Stores `record`, replacing everything stored for its client identifier.
    ///
    /// - Throws: ``LMQMetadataStoreError/invalidTopic(_:_:)`` for an invalid topic filter or will topic,
    ///   ``LMQMetadataStoreError/invalidArgument(_:)`` for a repeated topic filter or packet identifier, a
    ///   packet identifier of 0 or a subscription identifier out of range.
    public func putSession(_ record: SessionRecord) async throws {
        try Self.validate(record.subscriptions)
        try Self.validate(packetIdentifiers: record.pendingPubRelPacketIdentifiers)
        if let will = record.will { try Self.validate(will) }
        guard Set(record.subscriptions.map(\.topicFilter)).count == record.subscriptions.count else {
            throw LMQMetadataStoreError.invalidArgument("a session cannot have two subscriptions with the same topic filter")
        }
        guard Set(record.pendingPubRelPacketIdentifiers).count == record.pendingPubRelPacketIdentifiers.count else {
            throw LMQMetadataStoreError.invalidArgument("a packet identifier is pending PUBREL at most once")
        }
        let will = record.will.map { ($0, MetadataPropertiesCodec.encode($0.properties)) }
        try await transaction { connection in
            let clientIdentifier = record.clientIdentifier
            let upsert = try connection.prepare(
                """
                INSERT INTO sessions (client_identifier, protocol_version, session_expiry_interval_seconds,
                                      disconnected_at_millis, gateway_node)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (client_identifier) DO UPDATE SET
                    protocol_version = excluded.protocol_version,
                    session_expiry_interval_seconds = excluded.session_expiry_interval_seconds,
                    disconnected_at_millis = excluded.disconnected_at_millis,
                    gateway_node = excluded.gateway_node
                """
            )
            try upsert.bind(1, clientIdentifier)
            try upsert.bind(2, Int64(record.protocolVersion.rawValue))
            try upsert.bind(3, Int64(record.sessionExpiryIntervalSeconds))
            try upsert.bind(4, record.disconnectedAtMillis.map(SQLiteValue.integer) ?? .null)
            try upsert.bind(5, record.gatewayNode.map(SQLiteValue.text) ?? .null)
            try upsert.step()

            // The session row is kept (not replaced) so these deletes are the only ones: REPLACE would cascade.
            try connection.prepare("DELETE FROM session_subscriptions WHERE client_identifier = ?").run(.text(clientIdentifier))
            try connection.prepare("DELETE FROM session_pending_pubrel WHERE client_identifier = ?").run(.text(clientIdentifier))
            try Self.writeWill(connection, clientIdentifier: clientIdentifier, will: will)
            for subscription in record.subscriptions {
                try Self.upsertSubscription(connection, clientIdentifier: clientIdentifier, subscription)
            }
            for packetIdentifier in record.pendingPubRelPacketIdentifiers {
                try connection.prepare(
                    "INSERT INTO session_pending_pubrel (client_identifier, packet_identifier) VALUES (?, ?)"
                ).run(.text(clientIdentifier), .integer(Int64(packetIdentifier)))
            }
        }
    }

    /// The session stored for `clientIdentifier`, if any.
    public func session(clientIdentifier: String) async throws -> SessionRecord? {
        try await withConnection { connection in
            let select = try connection.prepare("SELECT \(Self.sessionColumns) FROM sessions WHERE client_identifier = ?")
            try select.bind(1, clientIdentifier)
            guard try select.step() else { return nil }
            var record = try Self.sessionRecord(from: select)

            let subscriptions = try connection.prepare(
                "SELECT \(Self.subscriptionColumns) FROM session_subscriptions WHERE client_identifier = ? ORDER BY topic_filter"
            )
            try subscriptions.bind(1, clientIdentifier)
            while try subscriptions.step() {
                record.subscriptions.append(try Self.storedSubscription(from: subscriptions))
            }

            let pending = try connection.prepare(
                "SELECT client_identifier, packet_identifier FROM session_pending_pubrel WHERE client_identifier = ? ORDER BY packet_identifier"
            )
            try pending.bind(1, clientIdentifier)
            while try pending.step() {
                record.pendingPubRelPacketIdentifiers.append(try Self.packetIdentifier(from: pending))
            }

            let will = try connection.prepare("SELECT \(Self.willColumns) FROM session_wills WHERE client_identifier = ?")
            try will.bind(1, clientIdentifier)
            if try will.step() {
                record.will = try Self.storedWill(from: will)
            }
            return record
        }
    }

    /// Every stored session, sorted by client identifier (byte order).
    public func allSessions() async throws -> [SessionRecord] {
        try await withConnection { connection in
            var records: [SessionRecord] = []
            var indexByClient: [String: Int] = [:]
            let select = try connection.prepare("SELECT \(Self.sessionColumns) FROM sessions ORDER BY client_identifier")
            while try select.step() {
                let record = try Self.sessionRecord(from: select)
                indexByClient[record.clientIdentifier] = records.count
                records.append(record)
            }

            let subscriptions = try connection.prepare(
                "SELECT \(Self.subscriptionColumns) FROM session_subscriptions ORDER BY client_identifier, topic_filter"
            )
            while try subscriptions.step() {
                let clientIdentifier = subscriptions.string(at: 0) ?? ""
                guard let index = indexByClient[clientIdentifier] else { continue }  // unreachable: foreign key
                records[index].subscriptions.append(try Self.storedSubscription(from: subscriptions))
            }

            let pending = try connection.prepare(
                "SELECT client_identifier, packet_identifier FROM session_pending_pubrel ORDER BY client_identifier, packet_identifier"
            )
            while try pending.step() {
                guard let index = indexByClient[pending.string(at: 0) ?? ""] else { continue }
                records[index].pendingPubRelPacketIdentifiers.append(try Self.packetIdentifier(from: pending))
            }

            let wills = try connection.prepare("SELECT \(Self.willColumns) FROM session_wills")
            while try wills.step() {
                guard let index = indexByClient[wills.string(at: 0) ?? ""] else { continue }
                records[index].will = try Self.storedWill(from: wills)
            }
            return records
        }
    }

    /// Deletes the session of `clientIdentifier` with its subscriptions, pending packet identifiers and will.
    /// Its consume offsets (group `%LMQ%<clientIdentifier>`) are the caller's to delete.
    /// - Returns: whether a session was stored.
    @discardableResult
    public func deleteSession(clientIdentifier: String) async throws -> Bool {
        try await withConnection { connection in
            // ON DELETE CASCADE removes the rows of the other three tables in the same statement.
            try connection.prepare("DELETE FROM sessions WHERE client_identifier = ?").run(.text(clientIdentifier))
            return connection.changes > 0
        }
    }

    /// Adds `subscriptions` to the session, each replacing a stored subscription with the same topic filter
    /// [MQTT-3.8.4-3]. If `subscriptions` repeats a filter, the last one wins.
    ///
    /// - Returns: the topic filters that were already subscribed (and so were replaced); a v5 subscription
    ///   with Retain Handling 1 gets retained messages only if its filter is not among them (§3.8.3.1).
    /// - Throws: ``LMQMetadataStoreError/sessionNotFound(clientIdentifier:)``, or as ``putSession(_:)``.
    @discardableResult
    public func addSubscriptions(clientIdentifier: String, _ subscriptions: [StoredSubscription]) async throws -> Set<String> {
        try Self.validate(subscriptions)
        return try await transaction { connection in
            try Self.requireSession(connection, clientIdentifier: clientIdentifier)
            var replaced: Set<String> = []
            let exists = try connection.prepare(
                "SELECT 1 FROM session_subscriptions WHERE client_identifier = ? AND topic_filter = ?"
            )
            for subscription in subscriptions {
                exists.reset()
                try exists.bind(1, clientIdentifier)
                try exists.bind(2, subscription.topicFilter)
                if try exists.step() {
                    replaced.insert(subscription.topicFilter)
                }
                exists.reset()
                try Self.upsertSubscription(connection, clientIdentifier: clientIdentifier, subscription)
            }
            return replaced
        }
    }

    /// Removes the subscriptions with these topic filters (UNSUBSCRIBE). Unknown filters and an unknown
    /// client are ignored.
    /// - Returns: how many subscriptions were removed.
    @discardableResult
    public func removeSubscriptions(clientIdentifier: String, filters: [String]) async throws -> Int {
        guard !filters.isEmpty else { return 0 }
        return try await transaction { connection in
            var removed = 0
            for filter in filters {
                try connection.prepare(
                    "DELETE FROM session_subscriptions WHERE client_identifier = ? AND topic_filter = ?"
                ).run(.text(clientIdentifier), .text(filter))
                removed += connection.changes
            }
            return removed
        }
    }

    /// Records that the inbound QoS 2 PUBLISH with `packetIdentifier` was answered with PUBREC and awaits
    /// PUBREL (§4.3.3).
    ///
    /// - Returns: `false` if the identifier was already pending: the PUBLISH is a resend, and its message must
    ///   not be delivered again [MQTT-4.3.3-10].
    /// - Throws: ``LMQMetadataStoreError/sessionNotFound(clientIdentifier:)``,
    ///   ``LMQMetadataStoreError/invalidArgument(_:)`` for packet identifier 0.
    @discardableResult
    public func addPendingPubRel(clientIdentifier: String, packetIdentifier: UInt16) async throws -> Bool {
        try Self.validate(packetIdentifiers: [packetIdentifier])
        return try await transaction { connection in
            try Self.requireSession(connection, clientIdentifier: clientIdentifier)
            try connection.prepare(
                "INSERT OR IGNORE INTO session_pending_pubrel (client_identifier, packet_identifier) VALUES (?, ?)"
            ).run(.text(clientIdentifier), .integer(Int64(packetIdentifier)))
            return connection.changes > 0
        }
    }

    /// Records that PUBREL for `packetIdentifier` arrived, releasing the identifier.
    /// - Returns: whether it was pending (v5 answers an unknown one with PUBCOMP reason 0x92).
    @discardableResult
    public func removePendingPubRel(clientIdentifier: String, packetIdentifier: UInt16) async throws -> Bool {
        try await withConnection { connection in
            try connection.prepare(
                "DELETE FROM session_pending_pubrel WHERE client_identifier = ? AND packet_identifier = ?"
            ).run(.text(clientIdentifier), .integer(Int64(packetIdentifier)))
            return connection.changes > 0
        }
    }

    /// Replaces the session's will; `nil` removes it (a normal DISCONNECT discards the will [MQTT-3.1.2-10],
    /// as does publishing it).
    /// - Throws: ``LMQMetadataStoreError/sessionNotFound(clientIdentifier:)``,
    ///   ``LMQMetadataStoreError/invalidTopic(_:_:)`` for an invalid will topic.
    public func setWill(clientIdentifier: String, _ will: StoredWill?) async throws {
        if let will { try Self.validate(will) }
        let encoded = will.map { ($0, MetadataPropertiesCodec.encode($0.properties)) }
        try await transaction { connection in
            try Self.requireSession(connection, clientIdentifier: clientIdentifier)
            try Self.writeWill(connection, clientIdentifier: clientIdentifier, will: encoded)
        }
    }

    /// Records that a client resumed the session: it is connected (``SessionRecord/disconnectedAtMillis``
    /// becomes `nil`, so it cannot expire) through `gatewayNode`.
    ///
    /// - Parameters:
    ///   - protocolVersion: the version of the new connection, if it changed.
    ///   - sessionExpiryIntervalSeconds: the new connection's session expiry interval, if it changed.
    /// - Throws: ``LMQMetadataStoreError/sessionNotFound(clientIdentifier:)``.
    public func markConnected(
        clientIdentifier: String,
        gatewayNode: String?,
        protocolVersion: MQTTProtocolVersion? = nil,
        sessionExpiryIntervalSeconds: UInt32? = nil
    ) async throws {
        try await withConnection { connection in
            let update = try connection.prepare(
                """
                UPDATE sessions SET disconnected_at_millis = NULL, gateway_node = ?,
                    protocol_version = coalesce(?, protocol_version),
                    session_expiry_interval_seconds = coalesce(?, session_expiry_interval_seconds)
                WHERE client_identifier = ?
                """
            )
            try update.bind(1, gatewayNode.map(SQLiteValue.text) ?? .null)
            try update.bind(2, protocolVersion.map { SQLiteValue.integer(Int64($0.rawValue)) } ?? .null)
            try update.bind(3, sessionExpiryIntervalSeconds.map { SQLiteValue.integer(Int64($0)) } ?? .null)
            try update.bind(4, clientIdentifier)
            try update.step()
            guard connection.changes > 0 else { throw LMQMetadataStoreError.sessionNotFound(clientIdentifier: clientIdentifier) }
        }
    }

    /// Records that the session's connection closed at `atMillis`; from then on its expiry interval runs.
    ///
    /// - Parameter sessionExpiryIntervalSeconds: a new interval from a v5 DISCONNECT (§3.14.2.2.2), if any.
    /// - Throws: ``LMQMetadataStoreError/sessionNotFound(clientIdentifier:)``.
    public func markDisconnected(
        clientIdentifier: String,
        atMillis: Int64,
        sessionExpiryIntervalSeconds: UInt32? = nil
    ) async throws {
        try await withConnection { connection in
            let update = try connection.prepare(
                """
                UPDATE sessions SET disconnected_at_millis = ?,
                    session_expiry_interval_seconds = coalesce(?, session_expiry_interval_seconds)
                WHERE client_identifier = ?
                """
            )
            try update.bind(1, atMillis)
            try update.bind(2, sessionExpiryIntervalSeconds.map { SQLiteValue.integer(Int64($0)) } ?? .null)
            try update.bind(3, clientIdentifier)
            try update.step()
            guard connection.changes > 0 else { throw LMQMetadataStoreError.sessionNotFound(clientIdentifier: clientIdentifier) }
        }
    }

    /// The client identifiers of disconnected sessions whose expiry interval has passed at `nowMillis`,
    /// soonest-expired first (an index range scan). Sessions that never expire, and connected ones, are
    /// never listed.
    public func expiredSessions(nowMillis: Int64, limit: Int = .max) async throws -> [String] {
        precondition(limit >= 0, "limit must not be negative")
        return try await withConnection { connection in
            let select = try connection.prepare(
                """
                SELECT client_identifier FROM sessions WHERE expires_at_millis <= ?
                ORDER BY expires_at_millis, client_identifier LIMIT ?
                """
            )
            try select.bind(1, nowMillis)
            try select.bind(2, Int64(clamping: limit))
            var clientIdentifiers: [String] = []
            while try select.step() {
                clientIdentifiers.append(select.string(at: 0) ?? "")
            }
            return clientIdentifiers
        }
    }

    // MARK: Rows

    static let sessionColumns =
        "client_identifier, protocol_version, session_expiry_interval_seconds, disconnected_at_millis, gateway_node"
    static let subscriptionColumns =
        "client_identifier, topic_filter, maximum_qos, no_local, retain_as_published, retain_handling, subscription_identifier"
    static let willColumns = "client_identifier, topic, payload, qos, retain, properties, delay_interval_seconds"

    static func sessionRecord(from row: SQLiteStatement) throws -> SessionRecord {
        let clientIdentifier = row.string(at: 0) ?? ""
        let rawVersion = row.int64(at: 1)
        guard let versionByte = UInt8(exactly: rawVersion), let protocolVersion = MQTTProtocolVersion(rawValue: versionByte) else {
            throw LMQMetadataStoreError.corruptValue(table: "sessions", key: clientIdentifier, reason: "protocol version \(rawVersion)")
        }
        let rawExpiry = row.int64(at: 2)
        guard let expiry = UInt32(exactly: rawExpiry) else {
            throw LMQMetadataStoreError.corruptValue(table: "sessions", key: clientIdentifier, reason: "session expiry interval \(rawExpiry)")
        }
        return SessionRecord(
            clientIdentifier: clientIdentifier,
            protocolVersion: protocolVersion,
            sessionExpiryIntervalSeconds: expiry,
            disconnectedAtMillis: row.optionalInt64(at: 3),
            gatewayNode: row.string(at: 4)
        )
    }

    static func storedSubscription(from row: SQLiteStatement) throws -> StoredSubscription {
        let key = "\(row.string(at: 0) ?? "") \(row.string(at: 1) ?? "")"
        let rawQoS = row.int64(at: 2)
        let rawRetainHandling = row.int64(at: 5)
        guard let qosByte = UInt8(exactly: rawQoS), let maximumQoS = MQTTQoS(rawValue: qosByte) else {
            throw LMQMetadataStoreError.corruptValue(table: "session_subscriptions", key: key, reason: "maximum QoS \(rawQoS)")
        }
        guard let handlingByte = UInt8(exactly: rawRetainHandling),
            let retainHandling = Subscription.RetainHandling(rawValue: handlingByte)
        else {
            throw LMQMetadataStoreError.corruptValue(
                table: "session_subscriptions", key: key, reason: "retain handling \(rawRetainHandling)"
            )
        }
        var subscriptionIdentifier: UInt32?
        if let rawIdentifier = row.optionalInt64(at: 6) {
            guard let identifier = UInt32(exactly: rawIdentifier) else {
                throw LMQMetadataStoreError.corruptValue(
                    table: "session_subscriptions", key: key, reason: "subscription identifier \(rawIdentifier)"
                )
            }
            subscriptionIdentifier = identifier
        }
        return StoredSubscription(
            Subscription(
                topicFilter: row.string(at: 1) ?? "",
                maximumQoS: maximumQoS,
                noLocal: row.int64(at: 3) != 0,
                retainAsPublished: row.int64(at: 4) != 0,
                retainHandling: retainHandling
            ),
            subscriptionIdentifier: subscriptionIdentifier
        )
    }

    static func packetIdentifier(from row: SQLiteStatement) throws -> UInt16 {
        let raw = row.int64(at: 1)
        guard let packetIdentifier = UInt16(exactly: raw), packetIdentifier != 0 else {
            throw LMQMetadataStoreError.corruptValue(
                table: "session_pending_pubrel", key: row.string(at: 0) ?? "", reason: "packet identifier \(raw)"
            )
        }
        return packetIdentifier
    }

    static func storedWill(from row: SQLiteStatement) throws -> StoredWill {
        let clientIdentifier = row.string(at: 0) ?? ""
        let rawQoS = row.int64(at: 3)
        guard let qosByte = UInt8(exactly: rawQoS), let qos = MQTTQoS(rawValue: qosByte) else {
            throw LMQMetadataStoreError.corruptValue(table: "session_wills", key: clientIdentifier, reason: "QoS \(rawQoS)")
        }
        let rawDelay = row.int64(at: 6)
        guard let delay = UInt32(exactly: rawDelay) else {
            throw LMQMetadataStoreError.corruptValue(table: "session_wills", key: clientIdentifier, reason: "will delay \(rawDelay)")
        }
        let properties: MQTTProperties
        do {
            properties = try MetadataPropertiesCodec.decode(row.byteBuffer(at: 5))
        } catch {
            throw LMQMetadataStoreError.corruptValue(table: "session_wills", key: clientIdentifier, reason: error.reason)
        }
        return StoredWill(
            topic: row.string(at: 1) ?? "",
            payload: row.byteBuffer(at: 2),
            qos: qos,
            retain: row.int64(at: 4) != 0,
            properties: properties,
            delayIntervalSeconds: delay
        )
    }

    // MARK: Writes and checks

    static func requireSession(_ connection: SQLiteConnection, clientIdentifier: String) throws {
        let exists = try connection.prepare("SELECT 1 FROM sessions WHERE client_identifier = ?")
        try exists.bind(1, clientIdentifier)
        guard try exists.step() else { throw LMQMetadataStoreError.sessionNotFound(clientIdentifier: clientIdentifier) }
        exists.reset()
    }

    static func upsertSubscription(
        _ connection: SQLiteConnection,
        clientIdentifier: String,
        _ stored: StoredSubscription
    ) throws {
        let subscription = stored.subscription
        try connection.prepare(
            """
            INSERT INTO session_subscriptions (client_identifier, topic_filter, maximum_qos, no_local,
                                               retain_as_published, retain_handling, subscription_identifier)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (client_identifier, topic_filter) DO UPDATE SET
                maximum_qos = excluded.maximum_qos, no_local = excluded.no_local,
                retain_as_published = excluded.retain_as_published, retain_handling = excluded.retain_handling,
                subscription_identifier = excluded.subscription_identifier
            """
        ).run(
            .text(clientIdentifier),
            .text(subscription.topicFilter),
            .integer(Int64(subscription.maximumQoS.rawValue)),
            .integer(subscription.noLocal ? 1 : 0),
            .integer(subscription.retainAsPublished ? 1 : 0),
            .integer(Int64(subscription.retainHandling.rawValue)),
            stored.subscriptionIdentifier.map { .integer(Int64($0)) } ?? .null
        )
    }

    /// Replaces the will row; `will` carries the will with its encoded properties, or `nil` to delete it.
    static func writeWill(
        _ connection: SQLiteConnection,
        clientIdentifier: String,
        will: (StoredWill, ByteBuffer)?
    ) throws {
        guard let (will, properties) = will else {
            try connection.prepare("DELETE FROM session_wills WHERE client_identifier = ?").run(.text(clientIdentifier))
            return
        }
        let upsert = try connection.prepare(
            """
            INSERT INTO session_wills (client_identifier, topic, payload, qos, retain, properties, delay_interval_seconds)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (client_identifier) DO UPDATE SET
                topic = excluded.topic, payload = excluded.payload, qos = excluded.qos, retain = excluded.retain,
                properties = excluded.properties, delay_interval_seconds = excluded.delay_interval_seconds
            """
        )
        try upsert.bind(1, clientIdentifier)
        try upsert.bind(2, will.topic)
        try upsert.bind(3, will.payload)
        try upsert.bind(4, Int64(will.qos.rawValue))
        try upsert.bind(5, will.retain)
        try upsert.bind(6, properties)
        try upsert.bind(7, Int64(will.delayIntervalSeconds))
        try upsert.step()
    }

    static func validate(_ subscriptions: [StoredSubscription]) throws {
        for subscription in subscriptions {
            do {
                try TopicFilter.validate(subscription.topicFilter)
            } catch {
                throw LMQMetadataStoreError.invalidTopic(subscription.topicFilter, error)
            }
            if let identifier = subscription.subscriptionIdentifier,
                identifier == 0 || identifier > StoredSubscription.maximumSubscriptionIdentifier
            {
                // §3.8.2.1.2: the identifier is 1 ... 268,435,455; 0 is a Protocol Error.
                throw LMQMetadataStoreError.invalidArgument(
                    "subscription identifier \(identifier) of '\(subscription.topicFilter)' is outside 1...268435455"
                )
            }
        }
    }

    private static func validate(packetIdentifiers: [UInt16]) throws {
        // [MQTT-2.2.1-3] packet identifiers are non-zero.
        if packetIdentifiers.contains(0) {
            throw LMQMetadataStoreError.invalidArgument("packet identifier 0 is not allowed")
        }
    }

    static func validate(_ will: StoredWill) throws {
        do {
            try TopicName.validate(will.topic)
        } catch {
            throw LMQMetadataStoreError.invalidTopic(will.topic, error)
        }
    }
}

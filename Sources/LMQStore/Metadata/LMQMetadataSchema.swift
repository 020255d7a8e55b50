import SQLite

/// The tables of `metadata.db` and how a file is brought to the current version.
///
/// The version is kept in `PRAGMA user_version`; `PRAGMA application_id` marks the file as ours.
/// docs/store-metadata.md shows the same statements; keep the two in step.
enum LMQMetadataSchema {
    /// The schema this code reads and writes. Raise it with every change, and add a migration step.
    static let currentVersion: Int32 = 3
    /// `PRAGMA application_id` of a metadata file: "LMQM" in ASCII.
    static let applicationID: Int32 = 0x4C4D_514D

    /// Version 1.
    static let version1: [String] = [
        """
        CREATE TABLE consume_offsets (
            consumer_group TEXT NOT NULL,
            lmq TEXT NOT NULL,
            queue_offset INTEGER NOT NULL,
            PRIMARY KEY (consumer_group, lmq)
        ) STRICT, WITHOUT ROWID
        """,
        """
        CREATE TABLE retained_messages (
            topic TEXT NOT NULL PRIMARY KEY,
            first_topic TEXT NOT NULL,
            qos INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
            payload BLOB NOT NULL,
            properties BLOB NOT NULL,
            store_timestamp_millis INTEGER NOT NULL,
            message_expiry_interval_seconds INTEGER,
            expires_at_millis INTEGER GENERATED ALWAYS AS
                (store_timestamp_millis + message_expiry_interval_seconds * 1000) VIRTUAL
        ) STRICT
        """,
        "CREATE INDEX retained_messages_by_first_topic ON retained_messages (first_topic, topic)",
        "CREATE INDEX retained_messages_by_expiry ON retained_messages (expires_at_millis)",
        """
        CREATE TABLE sessions (
            client_identifier TEXT NOT NULL PRIMARY KEY,
            protocol_version INTEGER NOT NULL,
            session_expiry_interval_seconds INTEGER NOT NULL
                CHECK (session_expiry_interval_seconds BETWEEN 0 AND 4294967295),
            disconnected_at_millis INTEGER,
            gateway_node TEXT,
            expires_at_millis INTEGER GENERATED ALWAYS AS (
                CASE WHEN session_expiry_interval_seconds = 4294967295 THEN NULL
                     ELSE disconnected_at_millis + session_expiry_interval_seconds * 1000 END
            ) VIRTUAL
        ) STRICT
        """,
        "CREATE INDEX sessions_by_expiry ON sessions (expires_at_millis, client_identifier)",
        """
        CREATE TABLE session_subscriptions (
            client_identifier TEXT NOT NULL REFERENCES sessions (client_identifier) ON DELETE CASCADE,
            topic_filter TEXT NOT NULL,
            maximum_qos INTEGER NOT NULL CHECK (maximum_qos BETWEEN 0 AND 2),
            no_local INTEGER NOT NULL,
            retain_as_published INTEGER NOT NULL,
            retain_handling INTEGER NOT NULL CHECK (retain_handling BETWEEN 0 AND 2),
            subscription_identifier INTEGER,
            PRIMARY KEY (client_identifier, topic_filter)
        ) STRICT, WITHOUT ROWID
        """,
        """
        CREATE TABLE session_pending_pubrel (
            client_identifier TEXT NOT NULL REFERENCES sessions (client_identifier) ON DELETE CASCADE,
            packet_identifier INTEGER NOT NULL CHECK (packet_identifier BETWEEN 1 AND 65535),
            PRIMARY KEY (client_identifier, packet_identifier)
        ) STRICT, WITHOUT ROWID
        """,
        """
        CREATE TABLE session_wills (
            client_identifier TEXT NOT NULL PRIMARY KEY
                REFERENCES sessions (client_identifier) ON DELETE CASCADE,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            qos INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
            retain INTEGER NOT NULL,
            properties BLOB NOT NULL,
            delay_interval_seconds INTEGER NOT NULL
        ) STRICT
        """,
    ]

    /// Version 2: the outbound QoS 1/2 deliveries of persistent sessions (docs/store-metadata.md).
    static let version2: [String] = [
        """
        CREATE TABLE session_deliveries (
            client_identifier TEXT NOT NULL REFERENCES sessions (client_identifier) ON DELETE CASCADE,
            topic_filter TEXT NOT NULL,
            queue_offset INTEGER NOT NULL,
            packet_identifier INTEGER NOT NULL CHECK (packet_identifier BETWEEN 1 AND 65535),
            qos INTEGER NOT NULL CHECK (qos BETWEEN 1 AND 2),
            state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 2),
            sequence INTEGER NOT NULL,
            PRIMARY KEY (client_identifier, topic_filter, queue_offset)
        ) STRICT, WITHOUT ROWID
        """,
    ]

    /// Version 3: the wildcard filters gateways registered with a store node for dispatch, so that a
    /// restarted node dispatches by them before the gateways register again (docs/cluster.md).
    static let version3: [String] = [
        """
        CREATE TABLE dispatch_registrations (
            topic_filter TEXT NOT NULL,
            client_identifier TEXT NOT NULL,
            PRIMARY KEY (topic_filter, client_identifier)
        ) STRICT, WITHOUT ROWID
        """,
    ]

    /// Checks the file's identity and version and creates or migrates the schema, in one transaction.
    ///
    /// - Throws: ``LMQMetadataStoreError/unsupportedSchemaVersion(path:found:supported:)`` for a file from a
    ///   newer release, ``LMQMetadataStoreError/notAMetadataFile(path:applicationID:)`` for someone else's file.
    static func prepare(_ connection: SQLiteConnection, path: String) throws {
        try connection.transaction {
            let version = try connection.userVersion()
            let applicationID = try connection.applicationID()
            if version > currentVersion {
                throw LMQMetadataStoreError.unsupportedSchemaVersion(path: path, found: version, supported: currentVersion)
            }
            if version == 0 {
                // A new file is empty; anything else without a version is not ours.
                let objects = try connection.prepare("SELECT count(*) FROM sqlite_schema")
                try objects.step()
                guard applicationID == 0, objects.int64(at: 0) == 0 else {
                    throw LMQMetadataStoreError.notAMetadataFile(path: path, applicationID: applicationID)
                }
                try connection.setApplicationID(Self.applicationID)
            } else if applicationID != Self.applicationID {
                throw LMQMetadataStoreError.notAMetadataFile(path: path, applicationID: applicationID)
            }
            // One step per version; each runs inside this transaction, so a crash mid-way leaves the old version.
            if version < 1 {
                for statement in version1 {
                    try connection.execute(statement)
                }
            }
            if version < 2 {
                for statement in version2 {
                    try connection.execute(statement)
                }
            }
            if version < 3 {
                for statement in version3 {
                    try connection.execute(statement)
                }
            }
            if version < currentVersion {
                try connection.setUserVersion(currentVersion)
            }
        }
    }
}

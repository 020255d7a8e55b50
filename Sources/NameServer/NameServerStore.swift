import Foundation
import SQLite

/// The name server's SQLite database: the KV entries and the topic routes, durable on commit
/// (WAL, `synchronous=FULL`: a write that returned survives `kill -9` and power loss).
///
/// Every call blocks on disk I/O: ``NameServerService`` runs them on its own thread pool.
final class NameServerStore: Sendable {
    /// `PRAGMA application_id` of a name-server database: "MQNS".
    static let applicationID: Int32 = 0x4D51_4E53
    /// `PRAGMA user_version` of the schema this code writes.
    static let schemaVersion: Int32 = 1
    static let fileName = "namesrv.db"

    let database: SQLiteDatabase

    /// Opens (creating if needed) `namesrv.db` in `directory`.
    ///
    /// - Throws: ``NameServerError/storageFailed(_:)`` when the file cannot be opened, belongs to another
    ///   application, or was written by a newer version.
    init(directory: String) throws(NameServerError) {
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        do {
            database = try SQLiteDatabase(path: path, configuration: .init(synchronous: .full))
            try database.transaction { connection in
                let applicationID = try connection.applicationID()
                let version = try connection.userVersion()
                guard applicationID == 0 || applicationID == Self.applicationID else {
                    throw NameServerError.storageFailed("\(path) is not a name-server database (application_id \(applicationID))")
                }
                guard version <= Self.schemaVersion else {
                    throw NameServerError.storageFailed("\(path) has schema version \(version), newer than this name server (\(Self.schemaVersion))")
                }
                try connection.execute(
                    """
                    CREATE TABLE IF NOT EXISTS kv (
                        namespace TEXT NOT NULL,
                        key TEXT NOT NULL,
                        value TEXT NOT NULL,
                        updated_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (namespace, key)
                    ) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS topic (
                        topic TEXT PRIMARY KEY NOT NULL,
                        created_at_ms INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS topic_route (
                        topic TEXT NOT NULL REFERENCES topic (topic) ON DELETE CASCADE,
                        store_address TEXT NOT NULL,
                        PRIMARY KEY (topic, store_address)
                    ) WITHOUT ROWID;
                    """
                )
                try connection.setApplicationID(Self.applicationID)
                try connection.setUserVersion(Self.schemaVersion)
            }
        } catch let error as NameServerError {
            throw error
        } catch {
            throw .storageFailed("\(error)")
        }
    }

    /// Everything stored, read into a ``NameServerMetadata``.
    func load(limits: NameServerLimits) throws(NameServerError) -> NameServerMetadata {
        do {
            return try database.withConnection { connection in
                var changes: [NameServerMetadata.Change] = []
                let values = try connection.prepare("SELECT namespace, key, value FROM kv")
                while try values.step() {
                    changes.append(.putValue(namespace: values.string(at: 0) ?? "", key: values.string(at: 1) ?? "", value: values.string(at: 2) ?? ""))
                }
                var routes: [String: [String]] = [:]
                let topics = try connection.prepare("SELECT topic FROM topic")
                while try topics.step() {
                    routes[topics.string(at: 0) ?? ""] = []
                }
                let stores = try connection.prepare("SELECT topic, store_address FROM topic_route")
                while try stores.step() {
                    routes[stores.string(at: 0) ?? "", default: []].append(stores.string(at: 1) ?? "")
                }
                for (topic, addresses) in routes {
                    changes.append(.putTopic(TopicRoute(topic: topic, storeAddresses: addresses.sorted())))
                }
                var metadata = NameServerMetadata(limits: limits)
                metadata.apply(changes)
                return metadata
            }
        } catch {
            throw .storageFailed("\(error)")
        }
    }

    /// Commits `changes` in one transaction on `connection` (which the caller holds).
    func commit(_ changes: [NameServerMetadata.Change], on connection: SQLiteConnection) throws(NameServerError) {
        let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1_000)
        do {
            try connection.transaction {
                for change in changes {
                    switch change {
                    case .putValue(let namespace, let key, let value):
                        try connection.prepare(
                            "INSERT INTO kv (namespace, key, value, updated_at_ms) VALUES (?, ?, ?, ?) "
                                + "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms"
                        ).run(.text(namespace), .text(key), .text(value), .integer(nowMilliseconds))
                    case .deleteValue(let namespace, let key):
                        try connection.prepare("DELETE FROM kv WHERE namespace = ? AND key = ?").run(.text(namespace), .text(key))
                    case .putTopic(let route):
                        try connection.prepare("INSERT INTO topic (topic, created_at_ms) VALUES (?, ?) ON CONFLICT (topic) DO NOTHING")
                            .run(.text(route.topic), .integer(nowMilliseconds))
                        try connection.prepare("DELETE FROM topic_route WHERE topic = ?").run(.text(route.topic))
                        for address in route.storeAddresses {
                            try connection.prepare("INSERT INTO topic_route (topic, store_address) VALUES (?, ?)")
                                .run(.text(route.topic), .text(address))
                        }
                    case .deleteTopic(let topic):
                        try connection.prepare("DELETE FROM topic WHERE topic = ?").run(.text(topic))
                    }
                }
            }
        } catch {
            throw .storageFailed("\(error)")
        }
    }

    func close() {
        database.close()
    }
}

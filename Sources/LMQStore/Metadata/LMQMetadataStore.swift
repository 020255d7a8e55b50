import Foundation
import MQTTCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLite

/// The small durable metadata of an LMQ store, kept in SQLite next to the commit log
/// (`<storePathRootDir>/metadata.db`): consume offsets, retained messages and persistent-session records.
///
/// Every call is `async` and runs on a thread of its own (a one-thread `NIOThreadPool`), so SQLite's blocking
/// I/O never stalls an event loop or the cooperative pool. Calls run one at a time, in the order they were
/// made. A call that has returned is durable: it was committed to SQLite's write-ahead log, which survives a
/// crash of the process (`kill -9`); with ``Configuration/synchronous`` set to `.full` it also survives a
/// power loss. See docs/store-metadata.md for the schema.
///
/// Errors are ``LMQMetadataStoreError`` for the store's own checks and `SQLiteError` for SQLite's. A call
/// whose task is cancelled before it reaches the store's thread throws `CancellationError` and changes
/// nothing; once running, a call completes. Call ``close()`` before the last reference goes away.
public final class LMQMetadataStore: Sendable {
    /// Settings of the metadata file.
    public struct Configuration: Sendable, Hashable {
        /// The sync policy of each commit. Default: `.normal` (durable against process crashes; the last
        /// commits may roll back on power loss). `.full` fsyncs every commit.
        public var synchronous: SQLiteDatabase.Configuration.Synchronous
        /// How long a call waits for a lock held by another connection to the file (e.g. an operator's
        /// `sqlite3` shell). Default: 5,000 ms.
        public var busyTimeoutMilliseconds: Int32

        public init(synchronous: SQLiteDatabase.Configuration.Synchronous = .normal, busyTimeoutMilliseconds: Int32 = 5_000) {
            self.synchronous = synchronous
            self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        }
    }

    /// The file name under the store's root directory.
    public static let fileName = "metadata.db"
    /// The newest schema version this code reads and writes (`PRAGMA user_version`).
    public static var schemaVersion: Int32 { LMQMetadataSchema.currentVersion }

    /// The path of the SQLite file.
    public let path: String
    let database: SQLiteDatabase
    private let threadPool: NIOThreadPool
    private let isClosed: NIOLockedValueBox<Bool>

    private init(path: String, database: SQLiteDatabase, threadPool: NIOThreadPool) {
        self.path = path
        self.database = database
        self.threadPool = threadPool
        self.isClosed = NIOLockedValueBox(false)
    }

    /// Opens `<storePathRootDir>/metadata.db`, creating the directory and the file if needed, and checks or
    /// creates its schema.
    ///
    /// - Throws: ``LMQMetadataStoreError/unsupportedSchemaVersion(path:found:supported:)`` for a file written
    ///   by a newer release, ``LMQMetadataStoreError/notAMetadataFile(path:applicationID:)`` for an SQLite
    ///   file that is not ours, `SQLiteError` when SQLite cannot open it.
    public static func open(
        storePathRootDir: String,
        configuration: Configuration = Configuration()
    ) async throws -> LMQMetadataStore {
        let path = URL(fileURLWithPath: storePathRootDir).appendingPathComponent(fileName).path
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        do {
            let database = try await threadPool.runIfActive {
                try FileManager.default.createDirectory(
                    atPath: storePathRootDir,
                    withIntermediateDirectories: true
                )
                let database = try SQLiteDatabase(
                    path: path,
                    configuration: SQLiteDatabase.Configuration(
                        openMode: .readWriteCreate,
                        synchronous: configuration.synchronous,
                        busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds,
                        foreignKeys: true
                    )
                )
                do {
                    try database.withConnection { connection in
                        try LMQMetadataSchema.prepare(connection, path: path)
                    }
                } catch {
                    database.close()
                    throw error
                }
                return database
            }
            return LMQMetadataStore(path: path, database: database, threadPool: threadPool)
        } catch {
            try? await threadPool.shutdownGracefully()
            throw error
        }
    }

    /// Finishes the calls already made, closes the file and stops the store's thread. Later calls throw
    /// ``LMQMetadataStoreError/closed``; closing again does nothing.
    public func close() async throws {
        let wasOpen = isClosed.withLockedValue { isClosed in
            defer { isClosed = true }
            return !isClosed
        }
        guard wasOpen else { return }
        // The pool has one thread and runs work in order, so this runs after every call queued before it.
        try? await threadPool.runIfActive { [database] in database.close() }
        try await threadPool.shutdownGracefully()
        // In case the task was cancelled and the work item above never ran.
        database.close()
    }

    // MARK: Running work on the store's thread

    /// Runs `body` on the store's thread with the connection held (autocommit: each statement commits).
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await perform { database in try database.withConnection(body) }
    }

    /// Runs `body` on the store's thread in one write transaction.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await perform { database in try database.transaction(body) }
    }

    private func perform<T: Sendable>(_ body: @escaping @Sendable (SQLiteDatabase) throws -> T) async throws -> T {
        guard !isClosed.withLockedValue({ $0 }) else { throw LMQMetadataStoreError.closed }
        do {
            return try await threadPool.runIfActive { [database] in try body(database) }
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw LMQMetadataStoreError.closed
        } catch is SQLiteError where database.isClosed {
            // A call that raced with close() and reached SQLite after it.
            throw LMQMetadataStoreError.closed
        }
    }
}

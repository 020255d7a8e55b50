import CSQLite

/// One SQLite connection, safe to share between threads.
///
/// Every use goes through ``withConnection(_:)`` or ``transaction(_:)``, which hold a lock for the length of
/// the closure: statements, bindings, ``SQLiteConnection/lastInsertRowID`` and ``SQLiteConnection/changes``
/// all belong to one caller at a time. The calls block (disk I/O, `busy_timeout` waits), so callers on an
/// event loop or in a Swift concurrency task should move them to a thread of their own (e.g. `NIOThreadPool`).
///
/// ```swift
/// let database = try SQLiteDatabase(path: "/var/lib/app/meta.db")
/// try database.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
/// try database.transaction { connection in
///     let insert = try connection.prepare("INSERT INTO kv (key, value) VALUES (?, ?)")
///     try insert.run(.text("a"), .text("1"))
/// }
/// ```
///
/// The file is opened in write-ahead-log mode, so a commit that has returned survives a crash of the process;
/// with ``Configuration/Synchronous/full`` it also survives a power loss.
public final class SQLiteDatabase: @unchecked Sendable {
    // @unchecked: all mutable state lives in `connection`, which is only reached while `mutex` is held
    // (withConnection, transaction, close, deinit). The SQLite handle is opened with SQLITE_OPEN_NOMUTEX
    // because this lock already serializes every call on it.
    private let mutex = SQLiteMutex()
    private let connection: SQLiteConnection

    /// The path the database was opened with.
    public let path: String
    /// The configuration the database was opened with.
    public let configuration: Configuration

    /// Opens (or, with ``Configuration/OpenMode/readWriteCreate``, creates) the database at `path` and applies
    /// `configuration`: WAL journal mode (not for read-only or in-memory databases), `synchronous`,
    /// `busy_timeout` and `foreign_keys`.
    ///
    /// - Parameter path: a file path; `":memory:"` opens a private in-memory database.
    /// - Throws: ``SQLiteError`` when the file cannot be opened or a setting cannot be applied.
    public init(path: String, configuration: Configuration = Configuration()) throws(SQLiteError) {
        self.path = path
        self.configuration = configuration

        var flags = SQLITE_OPEN_NOMUTEX
        switch configuration.openMode {
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        }
        var handle: OpaquePointer?
        let result = sqlite3_open_v2(path, &handle, flags, nil)
        guard result == SQLITE_OK, let handle else {
            let error = SQLiteError(code: result, handle: handle)
            // sqlite3_open_v2 hands out a handle even on failure; it must still be closed.
            sqlite3_close_v2(handle)
            throw SQLiteError(
                extendedResultCode: error.extendedResultCode,
                message: "cannot open database at \(path): \(error.message)"
            )
        }
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, configuration.busyTimeoutMilliseconds)
        connection = SQLiteConnection(handle: handle, statementCacheCapacity: configuration.statementCacheCapacity)

        do throws(SQLiteError) {
            try mutex.withLock { () throws(SQLiteError) in
                connection.beginAccess()
                defer { connection.endAccess() }
                try applySettings()
            }
        } catch {
            connection.close()
            throw error
        }
    }

    deinit {
        connection.close()
    }

    private func applySettings() throws(SQLiteError) {
        let isInMemory = path == ":memory:" || path.isEmpty || path.hasPrefix("file::memory:")
        switch configuration.openMode {
        case .readOnly:
            break
        case .readWrite, .readWriteCreate:
            if !isInMemory {
                let mode = try connection.prepare("PRAGMA journal_mode=WAL")
                guard try mode.step(), mode.string(at: 0)?.lowercased() == "wal" else {
                    throw SQLiteError(
                        extendedResultCode: SQLITE_ERROR,
                        message: "cannot switch \(path) to write-ahead-log mode (journal_mode is \(mode.string(at: 0) ?? "unknown"))",
                        sql: mode.sql
                    )
                }
            }
        }
        try connection.execute("PRAGMA synchronous=\(configuration.synchronous.rawValue)")
        try connection.execute("PRAGMA foreign_keys=\(configuration.foreignKeys ? "ON" : "OFF")")
    }

    /// Whether ``close()`` has run.
    public var isClosed: Bool {
        mutex.withLock { connection.isClosed }
    }

    /// Runs `body` with exclusive use of the connection.
    ///
    /// Statements prepared in `body` must not be used after it returns. When it returns, every statement it
    /// used is reset (ending any read it left open) and its bindings are cleared. A transaction `body` opened
    /// with plain SQL and left open is rolled back: the lock is released, so no one else could finish it.
    ///
    /// Calling back into this database from `body` is a programming error and stops the process; use the
    /// connection passed in instead.
    ///
    /// - Throws: ``SQLiteError`` with `SQLITE_MISUSE` if the database is closed, or whatever `body` throws.
    public func withConnection<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try mutex.withLock {
            guard !connection.isClosed else { throw SQLiteError.misuse("database \(path) is closed") }
            connection.beginAccess()
            defer { connection.endAccess() }
            return try body(connection)
        }
    }

    /// Runs `body` in a write transaction (`BEGIN IMMEDIATE` ... `COMMIT`), rolled back if `body` throws.
    ///
    /// `BEGIN IMMEDIATE` takes the write lock up front, so the transaction cannot fail half-way with
    /// `SQLITE_BUSY` because another connection wrote first. See ``SQLiteConnection/transaction(_:)``.
    public func transaction<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try withConnection { connection in
            try connection.transaction { try body(connection) }
        }
    }

    /// Runs one or more `;`-separated SQL statements that return no rows you need (DDL, pragmas, ...).
    public func execute(_ sql: String) throws {
        try withConnection { connection in try connection.execute(sql) }
    }

    /// Finalizes every prepared statement and closes the connection. The last connection to close
    /// checkpoints the WAL into the main file. Calling it again does nothing; any later use throws.
    public func close() {
        mutex.withLock { connection.close() }
    }
}

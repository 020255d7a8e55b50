import CSQLite

/// The connection of a ``SQLiteDatabase`` while the caller holds it, inside
/// ``SQLiteDatabase/withConnection(_:)`` or ``SQLiteDatabase/transaction(_:)``.
///
/// Not `Sendable`, and valid only inside the closure it was passed to: using it (or a statement it
/// prepared) afterwards stops the process rather than race with another thread.
public final class SQLiteConnection {
    /// `nil` once closed.
    private var handle: OpaquePointer?
    private let statementCacheCapacity: Int
    /// Prepared statements by SQL text, reused across accesses.
    private var statementCache: [String: SQLiteStatement] = [:]
    /// Statements prepared in the current access; reset when it ends.
    private var statementsInUse: [SQLiteStatement] = []
    /// Counts accesses; a statement remembers the last one it was used in, for least-recently-used eviction.
    private var accessNumber: UInt64 = 0
    /// True between `beginAccess` and `endAccess`, i.e. while the database's lock is held by the caller.
    private(set) var isAccessible = false
    /// Nesting depth of ``transaction(_:)``; levels above the first are savepoints.
    private var transactionDepth = 0

    init(handle: OpaquePointer, statementCacheCapacity: Int) {
        self.handle = handle
        self.statementCacheCapacity = statementCacheCapacity
    }

    var isClosed: Bool { handle == nil }

    // MARK: Access (called by SQLiteDatabase with its lock held)

    func beginAccess() {
        precondition(!isAccessible, "SQLiteConnection access is not re-entrant")
        isAccessible = true
        accessNumber &+= 1
    }

    func endAccess() {
        for statement in statementsInUse {
            statement.finishAccess()
        }
        statementsInUse.removeAll(keepingCapacity: true)
        if let handle, sqlite3_get_autocommit(handle) == 0 {
            // A transaction opened with plain SQL and never finished: nobody can finish it once the lock is
            // released, and leaving it open would hold the write lock forever.
            sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
        }
        transactionDepth = 0
        trimStatementCache()
        isAccessible = false
    }

    /// Finalizes the least recently used statements beyond the cache's capacity. Only runs between accesses,
    /// so no caller can still hold a statement that is finalized here.
    private func trimStatementCache() {
        let excess = statementCache.count - statementCacheCapacity
        guard excess > 0 else { return }
        let oldest = statementCache.values.sorted { $0.lastAccessNumber < $1.lastAccessNumber }.prefix(excess)
        for statement in oldest {
            statementCache[statement.sql] = nil
            statement.finalize()
        }
    }

    func close() {
        guard let handle else { return }
        for statement in statementCache.values {
            statement.finalize()
        }
        statementCache.removeAll()
        statementsInUse.removeAll()
        sqlite3_close_v2(handle)
        self.handle = nil
    }

    /// The open handle, for use by statements and by this connection's own calls.
    func checkedHandle(sql: String? = nil) throws(SQLiteError) -> OpaquePointer {
        precondition(isAccessible, "SQLiteConnection used outside the closure it was passed to")
        guard let handle else { throw SQLiteError.misuse("database is closed", sql: sql) }
        return handle
    }

    // MARK: Public API

    /// Runs one or more `;`-separated SQL statements, discarding any rows (DDL, pragmas, ...).
    ///
    /// - Throws: ``SQLiteError`` with SQLite's message and the SQL text.
    public func execute(_ sql: String) throws(SQLiteError) {
        let handle = try checkedHandle(sql: sql)
        let result = sqlite3_exec(handle, sql, nil, nil, nil)
        guard result == SQLITE_OK else { throw SQLiteError(code: result, handle: handle, sql: sql) }
    }

    /// Returns a prepared statement for `sql` (exactly one SQL statement), reset and with no bindings.
    ///
    /// Statements are cached by their SQL text and reused by later calls, so prepare with `?` parameters
    /// rather than values spliced into the text. Preparing the same SQL again in one closure returns the same
    /// statement, reset: finish reading one before preparing it again.
    ///
    /// - Throws: ``SQLiteError`` for a syntax error, an unknown table or column, or more than one statement.
    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        let handle = try checkedHandle(sql: sql)
        let statement: SQLiteStatement
        if let cached = statementCache[sql] {
            cached.reset()
            cached.clearBindings()
            statement = cached
        } else {
            var statementHandle: OpaquePointer?
            var tail: UnsafePointer<CChar>?
            let result = sql.withCString { text in
                let result = sqlite3_prepare_v3(
                    handle, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statementHandle, &tail
                )
                // Anything but whitespace after the first statement would be silently ignored by SQLite.
                if result == SQLITE_OK, let tail, !Self.isBlank(tail) {
                    return SQLITE_MISUSE
                }
                return result
            }
            if result == SQLITE_MISUSE, let statementHandle {
                sqlite3_finalize(statementHandle)
                throw SQLiteError.misuse("prepare accepts exactly one SQL statement; use execute for several", sql: sql)
            }
            guard result == SQLITE_OK, let statementHandle else {
                throw SQLiteError(code: result, handle: handle, sql: sql)
            }
            statement = SQLiteStatement(connection: self, handle: statementHandle, sql: sql)
            statementCache[sql] = statement
        }
        if statement.lastAccessNumber != accessNumber {
            statement.lastAccessNumber = accessNumber
            statementsInUse.append(statement)
        }
        return statement
    }

    private static func isBlank(_ text: UnsafePointer<CChar>) -> Bool {
        var pointer = text
        while pointer.pointee != 0 {
            switch UInt8(bitPattern: pointer.pointee) {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ";"):
                pointer += 1
            default:
                return false
            }
        }
        return true
    }

    /// Runs `body` in a transaction: `BEGIN IMMEDIATE` ... `COMMIT` at the outermost level, a `SAVEPOINT`
    /// when nested in another transaction. If `body` throws, its changes are rolled back and the error is
    /// rethrown; if the commit fails, the transaction is rolled back and the commit's error is thrown.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        let handle = try checkedHandle()
        let isOutermost = sqlite3_get_autocommit(handle) != 0
        let savepoint = "sqlite_swift_savepoint_\(transactionDepth)"
        if isOutermost {
            try prepare("BEGIN IMMEDIATE").step()
        } else {
            try execute("SAVEPOINT \(savepoint)")
        }
        transactionDepth += 1
        defer { transactionDepth -= 1 }

        let result: T
        do {
            result = try body()
        } catch {
            rollBack(isOutermost: isOutermost, savepoint: savepoint, handle: handle)
            throw error
        }
        do throws(SQLiteError) {
            if isOutermost {
                try prepare("COMMIT").step()
            } else {
                try execute("RELEASE \(savepoint)")
            }
        } catch {
            rollBack(isOutermost: isOutermost, savepoint: savepoint, handle: handle)
            throw error
        }
        return result
    }

    private func rollBack(isOutermost: Bool, savepoint: String, handle: OpaquePointer) {
        // SQLite rolls a transaction back by itself after some errors (SQLITE_FULL, SQLITE_IOERR, ...);
        // then there is nothing left to roll back.
        guard sqlite3_get_autocommit(handle) == 0 else { return }
        if isOutermost {
            sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
        } else {
            sqlite3_exec(handle, "ROLLBACK TO \(savepoint); RELEASE \(savepoint)", nil, nil, nil)
        }
    }

    /// Whether a transaction is open (the connection is not in autocommit mode).
    public var isInTransaction: Bool {
        guard let handle = try? checkedHandle() else { return false }
        return sqlite3_get_autocommit(handle) == 0
    }

    /// The rowid of the last successful `INSERT` on this connection.
    public var lastInsertRowID: Int64 {
        guard let handle = try? checkedHandle() else { return 0 }
        return sqlite3_last_insert_rowid(handle)
    }

    /// The number of rows changed by the most recent `INSERT`, `UPDATE` or `DELETE` on this connection.
    public var changes: Int {
        guard let handle = try? checkedHandle() else { return 0 }
        return Int(sqlite3_changes64(handle))
    }

    /// `PRAGMA user_version`: a number the application keeps in the file header, e.g. its schema version.
    public func userVersion() throws(SQLiteError) -> Int32 {
        Int32(truncatingIfNeeded: try integerPragma("user_version"))
    }

    /// Sets `PRAGMA user_version`; part of the enclosing transaction, if any.
    public func setUserVersion(_ version: Int32) throws(SQLiteError) {
        try execute("PRAGMA user_version=\(version)")
    }

    /// `PRAGMA application_id`: a number identifying the application that owns the file.
    public func applicationID() throws(SQLiteError) -> Int32 {
        Int32(truncatingIfNeeded: try integerPragma("application_id"))
    }

    /// Sets `PRAGMA application_id`; part of the enclosing transaction, if any.
    public func setApplicationID(_ id: Int32) throws(SQLiteError) {
        try execute("PRAGMA application_id=\(id)")
    }

    private func integerPragma(_ name: String) throws(SQLiteError) -> Int64 {
        let statement = try prepare("PRAGMA \(name)")
        guard try statement.step() else {
            throw SQLiteError(extendedResultCode: SQLITE_ERROR, message: "PRAGMA \(name) returned no row", sql: statement.sql)
        }
        return statement.int64(at: 0)
    }
}

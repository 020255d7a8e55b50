import CSQLite

/// A failed SQLite call: the result code SQLite returned, its message and the statement it ran.
///
/// `extendedResultCode` is the extended code (`SQLITE_CONSTRAINT_PRIMARYKEY`, `SQLITE_IOERR_FSYNC`, ...);
/// ``resultCode`` is its primary part (`SQLITE_CONSTRAINT`, `SQLITE_IOERR`, ...), which is what most callers test.
public struct SQLiteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The primary result code, e.g. `SQLITE_BUSY` (5) or `SQLITE_CONSTRAINT` (19).
    public var resultCode: Int32
    /// The extended result code, e.g. `SQLITE_CONSTRAINT_UNIQUE` (2067).
    public var extendedResultCode: Int32
    /// The text of `sqlite3_errmsg` at the time of the failure, or a message of this wrapper's own.
    public var message: String
    /// The SQL that failed, when the failure belongs to a statement.
    public var sql: String?

    /// Creates an error from its parts; `resultCode` is derived from `extendedResultCode`.
    public init(extendedResultCode: Int32, message: String, sql: String? = nil) {
        self.resultCode = extendedResultCode & 0xFF
        self.extendedResultCode = extendedResultCode
        self.message = message
        self.sql = sql
    }

    /// Reads the error state of `handle` after a call returned `code`.
    ///
    /// `sqlite3_extended_errcode` is preferred over `code` because the connection runs with extended result
    /// codes on; `code` is the fallback for failures that leave no error state (a `nil` handle).
    init(code: Int32, handle: OpaquePointer?, sql: String? = nil) {
        let extended: Int32
        let message: String
        if let handle {
            let stateCode = sqlite3_extended_errcode(handle)
            // The connection's error state can lag behind `code` (e.g. after sqlite3_reset); trust `code`
            // unless the state refines it.
            extended = stateCode & 0xFF == code & 0xFF ? stateCode : code
            message = String(cString: sqlite3_errmsg(handle))
        } else {
            extended = code
            message = String(cString: sqlite3_errstr(code))
        }
        self.init(extendedResultCode: extended, message: message, sql: sql)
    }

    /// A misuse of this wrapper (not of the SQLite library), reported with `SQLITE_MISUSE`.
    static func misuse(_ message: String, sql: String? = nil) -> SQLiteError {
        SQLiteError(extendedResultCode: SQLITE_MISUSE, message: message, sql: sql)
    }

    /// Whether another connection held a lock for longer than the busy timeout (`SQLITE_BUSY`).
    public var isBusy: Bool { resultCode == SQLITE_BUSY }
    /// Whether a constraint (unique, not null, check, foreign key) was violated (`SQLITE_CONSTRAINT`).
    public var isConstraintViolation: Bool { resultCode == SQLITE_CONSTRAINT }

    public var description: String {
        var text = "SQLite error \(extendedResultCode) (\(String(cString: sqlite3_errstr(extendedResultCode)))): \(message)"
        if let sql { text += " — in: \(sql)" }
        return text
    }
}

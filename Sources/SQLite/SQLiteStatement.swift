import CSQLite

/// SQLite copies the bytes of a `TRANSIENT` binding before the bind call returns, so Swift buffers
/// only need to live for the call. The C macro is `((sqlite3_destructor_type)-1)`, which Swift does not import.
private let transientDestructor = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A prepared SQL statement, from ``SQLiteConnection/prepare(_:)``.
///
/// Parameters are bound by **1-based** index (`?` is number 1), columns are read by **0-based** index, as in
/// SQLite's C API. A statement is valid only inside the closure whose connection prepared it.
///
/// ```swift
/// let select = try connection.prepare("SELECT value FROM kv WHERE key = ?")
/// try select.bind(1, "a")
/// while try select.step() { print(select.string(at: 0) ?? "NULL") }
/// ```
public final class SQLiteStatement {
    // unowned: the connection's cache owns its statements; a statement that outlives its connection
    // traps on use instead of touching freed memory.
    private unowned let connection: SQLiteConnection
    /// `nil` once finalized.
    private var handle: OpaquePointer?
    /// The SQL text this statement was prepared from.
    public let sql: String
    /// The number of the connection access that last prepared this statement (for cache eviction).
    var lastAccessNumber: UInt64 = 0

    init(connection: SQLiteConnection, handle: OpaquePointer, sql: String) {
        self.connection = connection
        self.handle = handle
        self.sql = sql
    }

    /// The handle, after checking this statement is used while its connection is held.
    private var checkedHandle: OpaquePointer {
        precondition(connection.isAccessible, "SQLiteStatement used outside the closure that prepared it: \(sql)")
        guard let handle else { preconditionFailure("SQLiteStatement used after it was finalized: \(sql)") }
        return handle
    }

    func finalize() {
        if let handle { sqlite3_finalize(handle) }
        handle = nil
    }

    /// Called when the access that used this statement ends: ends any read in progress and releases the
    /// memory held by bound values.
    func finishAccess() {
        guard let handle else { return }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    private func check(_ result: Int32) throws(SQLiteError) {
        guard result == SQLITE_OK else {
            throw SQLiteError(code: result, handle: sqlite3_db_handle(checkedHandle), sql: sql)
        }
    }

    // MARK: Binding (1-based)

    /// The number of `?` parameters.
    public var parameterCount: Int { Int(sqlite3_bind_parameter_count(checkedHandle)) }

    /// Binds an integer to parameter `index` (1-based).
    public func bind(_ index: Int, _ value: Int64) throws(SQLiteError) {
        try check(sqlite3_bind_int64(checkedHandle, Int32(index), value))
    }

    /// Binds an integer to parameter `index` (1-based).
    public func bind(_ index: Int, _ value: Int) throws(SQLiteError) {
        try bind(index, Int64(value))
    }

    /// Binds `true` as 1 and `false` as 0 to parameter `index` (1-based).
    public func bind(_ index: Int, _ value: Bool) throws(SQLiteError) {
        try bind(index, Int64(value ? 1 : 0))
    }

    /// Binds a floating-point number to parameter `index` (1-based).
    public func bind(_ index: Int, _ value: Double) throws(SQLiteError) {
        try check(sqlite3_bind_double(checkedHandle, Int32(index), value))
    }

    /// Binds text to parameter `index` (1-based). Embedded U+0000 characters are kept.
    public func bind(_ index: Int, _ value: String) throws(SQLiteError) {
        let handle = checkedHandle
        var value = value
        let result = value.withUTF8 { utf8 -> Int32 in
            // A nil pointer would bind NULL; an empty string must stay an empty text value.
            guard let base = utf8.baseAddress, utf8.count > 0 else {
                return sqlite3_bind_text(handle, Int32(index), "", 0, transientDestructor)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text64(handle, Int32(index), $0, UInt64(utf8.count), transientDestructor, UInt8(SQLITE_UTF8))
            }
        }
        try check(result)
    }

    /// Binds a blob to parameter `index` (1-based). An empty array is an empty blob, not NULL.
    public func bind(_ index: Int, _ value: [UInt8]) throws(SQLiteError) {
        let result = value.withUnsafeBytes { bytes in bindBlobBytes(index, bytes) }
        try check(result)
    }

    /// Binds a blob copied from `bytes` to parameter `index` (1-based); lets callers bind bytes from any
    /// buffer type without an intermediate array. An empty buffer is an empty blob, not NULL.
    public func bindBlob(_ index: Int, bytes: UnsafeRawBufferPointer) throws(SQLiteError) {
        try check(bindBlobBytes(index, bytes))
    }

    private func bindBlobBytes(_ index: Int, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return sqlite3_bind_zeroblob(checkedHandle, Int32(index), 0)
        }
        return sqlite3_bind_blob64(checkedHandle, Int32(index), base, UInt64(bytes.count), transientDestructor)
    }

    /// Binds NULL to parameter `index` (1-based).
    public func bindNull(_ index: Int) throws(SQLiteError) {
        try check(sqlite3_bind_null(checkedHandle, Int32(index)))
    }

    /// Binds any ``SQLiteValue`` to parameter `index` (1-based).
    public func bind(_ index: Int, _ value: SQLiteValue) throws(SQLiteError) {
        switch value {
        case .integer(let integer): try bind(index, integer)
        case .real(let real): try bind(index, real)
        case .text(let text): try bind(index, text)
        case .blob(let blob): try bind(index, blob)
        case .null: try bindNull(index)
        }
    }

    /// Binds `values` to parameters 1, 2, ... in order.
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        for (offset, value) in values.enumerated() {
            try bind(offset + 1, value)
        }
    }

    /// Removes every binding (all parameters become NULL).
    public func clearBindings() {
        sqlite3_clear_bindings(checkedHandle)
    }

    // MARK: Execution

    /// Runs the statement up to its next row.
    ///
    /// - Returns: `true` when a row is available to read with the column getters, `false` when the statement
    ///   has finished.
    /// - Throws: ``SQLiteError`` with SQLite's message (a constraint violation, `SQLITE_BUSY`, an I/O error...).
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let handle = checkedHandle
        let result = sqlite3_step(handle)
        switch result {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            return false
        default:
            throw SQLiteError(code: result, handle: sqlite3_db_handle(handle), sql: sql)
        }
    }

    /// Rewinds the statement so it can run again; bindings are kept.
    public func reset() {
        // sqlite3_reset repeats the error of the last step, which step already reported.
        sqlite3_reset(checkedHandle)
    }

    /// Resets the statement, binds `values` to parameters 1, 2, ... and runs it to completion, discarding any
    /// rows. For `INSERT`, `UPDATE`, `DELETE` and DDL.
    public func run(_ values: SQLiteValue...) throws(SQLiteError) {
        reset()
        clearBindings()
        try bind(values)
        while try step() {}
    }

    // MARK: Columns (0-based, valid after step() returned true)

    /// The number of columns in a result row.
    public var columnCount: Int { Int(sqlite3_column_count(checkedHandle)) }

    /// The name of column `index` (0-based), as given by its `AS` clause or the column's name.
    public func columnName(at index: Int) -> String {
        guard let name = sqlite3_column_name(checkedHandle, Int32(index)) else { return "" }
        return String(cString: name)
    }

    /// Whether column `index` (0-based) of the current row is NULL.
    public func isNull(at index: Int) -> Bool {
        sqlite3_column_type(checkedHandle, Int32(index)) == SQLITE_NULL
    }

    /// Column `index` (0-based) as an integer; NULL reads as 0, as SQLite converts it.
    public func int64(at index: Int) -> Int64 {
        sqlite3_column_int64(checkedHandle, Int32(index))
    }

    /// Column `index` (0-based) as a floating-point number; NULL reads as 0.
    public func double(at index: Int) -> Double {
        sqlite3_column_double(checkedHandle, Int32(index))
    }

    /// Column `index` (0-based) as text, or `nil` when it is NULL. Embedded U+0000 characters are kept.
    public func string(at index: Int) -> String? {
        let handle = checkedHandle
        let column = Int32(index)
        guard sqlite3_column_type(handle, column) != SQLITE_NULL else { return nil }
        // sqlite3_column_text before sqlite3_column_bytes, so the byte count is of the UTF-8 form.
        guard let text = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// Column `index` (0-based) as bytes, or `nil` when it is NULL.
    public func blob(at index: Int) -> [UInt8]? {
        guard !isNull(at: index) else { return nil }
        return withBlob(at: index) { [UInt8]($0) }
    }

    /// Calls `body` with the bytes of column `index` (0-based) without copying them; NULL reads as no bytes.
    /// The buffer is valid only during the call.
    public func withBlob<R, E: Error>(at index: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let handle = checkedHandle
        let column = Int32(index)
        // sqlite3_column_blob before sqlite3_column_bytes, as SQLite documents.
        let base = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        return try body(UnsafeRawBufferPointer(start: count > 0 ? base : nil, count: count))
    }

    /// Column `index` (0-based) in its own storage class.
    public func value(at index: Int) -> SQLiteValue {
        switch sqlite3_column_type(checkedHandle, Int32(index)) {
        case SQLITE_INTEGER: return .integer(int64(at: index))
        case SQLITE_FLOAT: return .real(double(at: index))
        case SQLITE_TEXT: return .text(string(at: index) ?? "")
        case SQLITE_BLOB: return .blob(blob(at: index) ?? [])
        default: return .null
        }
    }
}

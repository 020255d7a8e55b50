import Foundation
import SQLite
import Testing

/// Runs `body` with a path to a database file in a fresh directory, removed afterwards.
private func withDatabasePath<T>(_ body: (String) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sqlite-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory.appendingPathComponent("test.db").path)
}

private struct Abort: Error {}

@Suite("SQLite wrapper")
struct SQLiteDatabaseTests {
    @Test("values of every storage class round-trip through bind and the column getters")
    func bindAndReadEveryType() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
            let text = "héllo\u{0}wörld ✓"
            try database.withConnection { connection in
                let insert = try connection.prepare("INSERT INTO t (i, r, s, b, n) VALUES (?, ?, ?, ?, ?)")
                #expect(insert.parameterCount == 5)
                try insert.bind(1, Int64.min)
                try insert.bind(2, 2.5)
                try insert.bind(3, text)
                try insert.bind(4, [0, 1, 2, 255] as [UInt8])
                try insert.bindNull(5)
                #expect(try insert.step() == false)
                // Empty text and an empty blob are values, not NULL.
                try insert.run(.integer(Int64.max), .real(-0.25), .text(""), .blob([]), .null)
            }
            try database.withConnection { connection in
                let select = try connection.prepare("SELECT i, r, s, b, n FROM t ORDER BY rowid")
                #expect(select.columnCount == 5)
                #expect(select.columnName(at: 3) == "b")
                #expect(try select.step())
                #expect(select.int64(at: 0) == Int64.min)
                #expect(select.double(at: 1) == 2.5)
                #expect(select.string(at: 2) == text)
                #expect(select.blob(at: 3) == [0, 1, 2, 255])
                #expect(select.isNull(at: 4))
                #expect(select.string(at: 4) == nil)
                #expect(select.value(at: 4) == .null)
                #expect(try select.step())
                #expect(select.value(at: 0) == .integer(Int64.max))
                #expect(select.value(at: 1) == .real(-0.25))
                #expect(select.value(at: 2) == .text(""))
                #expect(!select.isNull(at: 2))
                #expect(select.value(at: 3) == .blob([]))
                #expect(!select.isNull(at: 3))
                #expect(try select.step() == false)
            }
        }
    }

    @Test("bad SQL reports SQLite's message, the result code and the SQL text")
    func badSQLReportsMessage() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            let syntax = try #require(throws: SQLiteError.self) {
                try database.withConnection { try $0.prepare("SELEC 1") }
            }
            #expect(syntax.resultCode == 1)  // SQLITE_ERROR
            #expect(syntax.message.contains("syntax error"))
            #expect(syntax.sql == "SELEC 1")
            #expect(syntax.description.contains("SELEC 1"))

            let missing = try #require(throws: SQLiteError.self) { try database.execute("DELETE FROM nope") }
            #expect(missing.message == "no such table: nope")
            #expect(missing.sql == "DELETE FROM nope")

            let several = try #require(throws: SQLiteError.self) {
                try database.withConnection { try $0.prepare("SELECT 1; SELECT 2") }
            }
            #expect(several.resultCode == 21)  // SQLITE_MISUSE
        }
    }

    @Test("a constraint violation carries the extended result code")
    func constraintViolation() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
            try database.withConnection { try $0.prepare("INSERT INTO t VALUES (?, ?)").run("a", 1) }
            let duplicate = try #require(throws: SQLiteError.self) {
                try database.withConnection { try $0.prepare("INSERT INTO t VALUES (?, ?)").run("a", 2) }
            }
            #expect(duplicate.isConstraintViolation)
            #expect(duplicate.extendedResultCode == 1555)  // SQLITE_CONSTRAINT_PRIMARYKEY
            #expect(duplicate.message.contains("UNIQUE constraint failed: t.k"))
        }
    }

    @Test("a transaction whose body throws is rolled back and the error is rethrown")
    func transactionRollsBackOnThrow() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("CREATE TABLE t (v INTEGER)")
            #expect(throws: Abort.self) {
                try database.transaction { connection in
                    try connection.prepare("INSERT INTO t VALUES (?)").run(1)
                    try connection.prepare("INSERT INTO t VALUES (?)").run(2)
                    #expect(connection.isInTransaction)
                    throw Abort()
                }
            }
            try database.transaction { connection in
                try connection.prepare("INSERT INTO t VALUES (?)").run(3)
            }
            let values = try database.withConnection { connection in
                #expect(!connection.isInTransaction)
                let select = try connection.prepare("SELECT v FROM t")
                var values: [Int64] = []
                while try select.step() { values.append(select.int64(at: 0)) }
                return values
            }
            #expect(values == [3])
        }
    }

    @Test("a nested transaction is a savepoint: its rollback keeps the outer transaction's work")
    func nestedTransactionIsSavepoint() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("CREATE TABLE t (v INTEGER)")
            try database.transaction { connection in
                try connection.prepare("INSERT INTO t VALUES (?)").run(1)
                do {
                    try connection.transaction {
                        try connection.prepare("INSERT INTO t VALUES (?)").run(2)
                        throw Abort()
                    }
                    Issue.record("the nested transaction did not throw")
                } catch {
                    #expect(error is Abort)
                }
                try connection.transaction {
                    try connection.prepare("INSERT INTO t VALUES (?)").run(3)
                }
            }
            let sum = try database.withConnection { connection in
                let select = try connection.prepare("SELECT sum(v), count(*) FROM t")
                try select.step()
                return (select.int64(at: 0), select.int64(at: 1))
            }
            #expect(sum == (4, 2))
        }
    }

    @Test("a transaction left open with plain SQL is rolled back when the closure returns")
    func openTransactionIsRolledBack() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("CREATE TABLE t (v INTEGER)")
            try database.withConnection { connection in
                try connection.execute("BEGIN; INSERT INTO t VALUES (1)")
                #expect(connection.isInTransaction)
            }
            let count = try database.withConnection { connection in
                #expect(!connection.isInTransaction)
                let select = try connection.prepare("SELECT count(*) FROM t")
                try select.step()
                return select.int64(at: 0)
            }
            #expect(count == 0)
        }
    }

    @Test("lastInsertRowID and changes describe the last statement")
    func rowIDAndChanges() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
            try database.withConnection { connection in
                let insert = try connection.prepare("INSERT INTO t (v) VALUES (?)")
                try insert.run(10)
                #expect(connection.lastInsertRowID == 1)
                try insert.run(20)
                #expect(connection.lastInsertRowID == 2)
                try insert.run(20)
                try connection.prepare("UPDATE t SET v = 0 WHERE v = ?").run(20)
                #expect(connection.changes == 2)
                try connection.prepare("DELETE FROM t WHERE v = ?").run(99)
                #expect(connection.changes == 0)
            }
        }
    }

    @Test("the file is in WAL mode with the configured synchronous level, busy timeout and foreign keys")
    func settingsApplied() throws {
        try withDatabasePath { path in
            func pragma(_ database: SQLiteDatabase, _ name: String) throws -> SQLiteValue {
                try database.withConnection { connection in
                    let statement = try connection.prepare("PRAGMA \(name)")
                    try statement.step()
                    return statement.value(at: 0)
                }
            }
            let normal = try SQLiteDatabase(path: path)
            #expect(try pragma(normal, "journal_mode") == .text("wal"))
            #expect(try pragma(normal, "synchronous") == .integer(1))  // NORMAL
            #expect(try pragma(normal, "foreign_keys") == .integer(1))
            #expect(try pragma(normal, "busy_timeout") == .integer(5_000))
            normal.close()

            let full = try SQLiteDatabase(
                path: path,
                configuration: .init(synchronous: .full, busyTimeoutMilliseconds: 250, foreignKeys: false)
            )
            defer { full.close() }
            #expect(try pragma(full, "synchronous") == .integer(2))  // FULL
            #expect(try pragma(full, "foreign_keys") == .integer(0))
            #expect(try pragma(full, "busy_timeout") == .integer(250))
        }
    }

    @Test("prepared statements are cached across calls and come back reset with no bindings")
    func statementCache() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            let first = try database.withConnection { connection in
                let statement = try connection.prepare("SELECT ?")
                try statement.bind(1, "bound")
                #expect(try statement.step())
                #expect(statement.string(at: 0) == "bound")
                return ObjectIdentifier(statement)
            }
            try database.withConnection { connection in
                let statement = try connection.prepare("SELECT ?")
                #expect(ObjectIdentifier(statement) == first)
                #expect(try statement.step())
                #expect(statement.isNull(at: 0))
            }
        }
    }

    @Test("statements evicted from a small cache are prepared again transparently")
    func statementCacheEviction() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path, configuration: .init(statementCacheCapacity: 2))
            defer { database.close() }
            for round in 0..<3 {
                for value in 0..<5 {
                    let result = try database.withConnection { connection in
                        let statement = try connection.prepare("SELECT \(value) + ?")
                        try statement.bind(1, round)
                        try statement.step()
                        return statement.int64(at: 0)
                    }
                    #expect(result == Int64(value + round))
                }
            }
        }
    }

    @Test("committed rows survive closing and reopening the file")
    func survivesReopen() throws {
        try withDatabasePath { path in
            let writer = try SQLiteDatabase(path: path)
            try writer.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
            try writer.transaction { connection in
                try connection.prepare("INSERT INTO kv VALUES (?, ?)").run("key", .blob([9, 8, 7]))
                try connection.setUserVersion(7)
            }
            writer.close()
            #expect(writer.isClosed)

            let reader = try SQLiteDatabase(path: path, configuration: .init(openMode: .readOnly))
            defer { reader.close() }
            let (blob, version) = try reader.withConnection { connection in
                let select = try connection.prepare("SELECT v FROM kv WHERE k = ?")
                try select.bind(1, "key")
                try select.step()
                return (select.blob(at: 0), try connection.userVersion())
            }
            #expect(blob == [9, 8, 7])
            #expect(version == 7)
        }
    }

    @Test("opening a missing file without create fails with a message naming the path")
    func missingFile() throws {
        try withDatabasePath { path in
            let error = try #require(throws: SQLiteError.self) {
                try SQLiteDatabase(path: path, configuration: .init(openMode: .readWrite))
            }
            #expect(error.resultCode == 14)  // SQLITE_CANTOPEN
            #expect(error.message.contains(path))
        }
    }

    @Test("a closed database refuses further use")
    func closedDatabase() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            database.close()
            database.close()  // idempotent
            let error = try #require(throws: SQLiteError.self) { try database.execute("SELECT 1") }
            #expect(error.resultCode == 21)  // SQLITE_MISUSE
            #expect(error.message.contains("closed"))
        }
    }

    @Test("concurrent writers from many threads are serialized without losing an update")
    func concurrentTransactions() throws {
        try withDatabasePath { path in
            let database = try SQLiteDatabase(path: path)
            defer { database.close() }
            try database.execute("CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0)")
            let threads = 8
            let incrementsPerThread = 50
            DispatchQueue.concurrentPerform(iterations: threads) { _ in
                for _ in 0..<incrementsPerThread {
                    // Read-modify-write: only correct if each transaction has the connection to itself.
                    try! database.transaction { connection in
                        let select = try connection.prepare("SELECT n FROM counter")
                        try select.step()
                        let value = select.int64(at: 0)
                        try connection.prepare("UPDATE counter SET n = ?").run(.integer(value + 1))
                    }
                }
            }
            let total = try database.withConnection { connection in
                let select = try connection.prepare("SELECT n FROM counter")
                try select.step()
                return select.int64(at: 0)
            }
            #expect(total == Int64(threads * incrementsPerThread))
        }
    }
}

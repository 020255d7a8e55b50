extension SQLiteDatabase {
    /// How a database file is opened and tuned. The defaults suit durable metadata: write-ahead log,
    /// `synchronous=NORMAL`, foreign keys on, a 5 s busy timeout.
    public struct Configuration: Sendable, Hashable {
        /// Whether the file may be written and created.
        public enum OpenMode: Sendable, Hashable {
            /// Read only; the file must exist. The journal mode is left as the file has it.
            case readOnly
            /// Read and write; the file must exist.
            case readWrite
            /// Read and write, creating the file if it does not exist.
            case readWriteCreate
        }

        /// `PRAGMA synchronous` (https://sqlite.org/pragma.html#pragma_synchronous), in WAL mode.
        public enum Synchronous: String, Sendable, Hashable {
            /// A commit is written to the WAL before it returns and survives a crash of the process
            /// (`kill -9`); the last commits before a power loss or kernel crash may be rolled back.
            /// The database itself is never corrupted.
            case normal = "NORMAL"
            /// A commit also fsyncs the WAL before it returns, so it survives a power loss too.
            case full = "FULL"
        }

        /// Whether the file may be written and created. Default: ``OpenMode/readWriteCreate``.
        public var openMode: OpenMode
        /// The sync policy of commits. Default: ``Synchronous/normal``.
        public var synchronous: Synchronous
        /// How long a statement waits for another connection's lock before failing with `SQLITE_BUSY`.
        /// Default: 5,000 ms.
        public var busyTimeoutMilliseconds: Int32
        /// Whether `REFERENCES` clauses are enforced (`PRAGMA foreign_keys`). Default: `true`.
        public var foreignKeys: Bool
        /// How many prepared statements are kept for reuse between calls (least recently used are
        /// finalized first). Default: 64.
        public var statementCacheCapacity: Int

        public init(
            openMode: OpenMode = .readWriteCreate,
            synchronous: Synchronous = .normal,
            busyTimeoutMilliseconds: Int32 = 5_000,
            foreignKeys: Bool = true,
            statementCacheCapacity: Int = 64
        ) {
            precondition(busyTimeoutMilliseconds >= 0, "busyTimeoutMilliseconds must not be negative")
            precondition(statementCacheCapacity >= 0, "statementCacheCapacity must not be negative")
            self.openMode = openMode
            self.synchronous = synchronous
            self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
            self.foreignKeys = foreignKeys
            self.statementCacheCapacity = statementCacheCapacity
        }
    }
}

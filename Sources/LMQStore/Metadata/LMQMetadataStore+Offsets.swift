import SQLite

// Consume offsets: for each consumer group and light message queue, the offset of the next message the group
// will read. A persistent session's group is `%LMQ%<clientIdentifier>`.
extension LMQMetadataStore {
    /// Stores `offset` as the consume offset of `group` in `lmq`, replacing any earlier one (it may move
    /// backwards, to reset a consumer).
    ///
    /// - Throws: ``LMQMetadataStoreError/invalidArgument(_:)`` for a negative offset.
    public func commitOffset(group: String, lmq: String, offset: Int64) async throws {
        try Self.checkOffset(offset)
        try await withConnection { connection in
            try Self.upsertOffset(connection, group: group, lmq: lmq, offset: offset)
        }
    }

    /// Stores several consume offsets in one transaction: all or none are written. Later entries for the
    /// same group and queue win.
    public func commitOffsets(_ entries: [(group: String, lmq: String, offset: Int64)]) async throws {
        for entry in entries {
            try Self.checkOffset(entry.offset)
        }
        guard !entries.isEmpty else { return }
        try await transaction { connection in
            for entry in entries {
                try Self.upsertOffset(connection, group: entry.group, lmq: entry.lmq, offset: entry.offset)
            }
        }
    }

    /// The consume offset of `group` in `lmq`, or `nil` if none was committed (new queues start at the tail).
    public func queryOffset(group: String, lmq: String) async throws -> Int64? {
        try await withConnection { connection in
            let select = try connection.prepare(
                "SELECT queue_offset FROM consume_offsets WHERE consumer_group = ? AND lmq = ?"
            )
            try select.bind(1, group)
            try select.bind(2, lmq)
            return try select.step() ? select.int64(at: 0) : nil
        }
    }

    /// Every consume offset of `group`, by queue name.
    public func offsets(group: String) async throws -> [String: Int64] {
        try await withConnection { connection in
            let select = try connection.prepare("SELECT lmq, queue_offset FROM consume_offsets WHERE consumer_group = ?")
            try select.bind(1, group)
            var offsets: [String: Int64] = [:]
            while try select.step() {
                offsets[select.string(at: 0) ?? "", default: 0] = select.int64(at: 1)
            }
            return offsets
        }
    }

    /// Deletes every consume offset of `group` (e.g. when its session ends).
    /// - Returns: how many offsets were deleted.
    @discardableResult
    public func deleteOffsets(group: String) async throws -> Int {
        try await withConnection { connection in
            try connection.prepare("DELETE FROM consume_offsets WHERE consumer_group = ?").run(.text(group))
            return connection.changes
        }
    }

    private static func checkOffset(_ offset: Int64) throws {
        guard offset >= 0 else {
            throw LMQMetadataStoreError.invalidArgument("a consume offset cannot be negative (\(offset))")
        }
    }

    private static func upsertOffset(_ connection: SQLiteConnection, group: String, lmq: String, offset: Int64) throws {
        try connection.prepare(
            """
            INSERT INTO consume_offsets (consumer_group, lmq, queue_offset) VALUES (?, ?, ?)
            ON CONFLICT (consumer_group, lmq) DO UPDATE SET queue_offset = excluded.queue_offset
            """
        ).run(.text(group), .text(lmq), .integer(offset))
    }
}

import SQLite

// The wildcard filters gateways registered with a store node for dispatch (StoreNode's DispatchRegistry),
// kept so that a restarted node dispatches by them at once.
extension LMQMetadataStore {
    /// Adds `added` and deletes `removed` (pairs of topic filter and client identifier), in one transaction.
    public func updateDispatchRegistrations(
        added: [(topicFilter: String, clientIdentifier: String)], removed: [(topicFilter: String, clientIdentifier: String)]
    ) async throws {
        guard !added.isEmpty || !removed.isEmpty else { return }
        try await transaction { connection in
            let insert = try connection.prepare(
                "INSERT OR IGNORE INTO dispatch_registrations (topic_filter, client_identifier) VALUES (?, ?)"
            )
            for pair in added {
                try insert.run(.text(pair.topicFilter), .text(pair.clientIdentifier))
            }
            let delete = try connection.prepare(
                "DELETE FROM dispatch_registrations WHERE topic_filter = ? AND client_identifier = ?"
            )
            for pair in removed {
                try delete.run(.text(pair.topicFilter), .text(pair.clientIdentifier))
            }
        }
    }

    /// Every registration kept.
    public func dispatchRegistrations() async throws -> [(topicFilter: String, clientIdentifier: String)] {
        try await withConnection { connection in
            let select = try connection.prepare("SELECT topic_filter, client_identifier FROM dispatch_registrations")
            var pairs: [(topicFilter: String, clientIdentifier: String)] = []
            while try select.step() {
                pairs.append((select.string(at: 0) ?? "", select.string(at: 1) ?? ""))
            }
            return pairs
        }
    }
}

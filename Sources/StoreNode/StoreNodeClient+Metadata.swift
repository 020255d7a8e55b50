import LMQStore
import MQTTCore
import NIOCore

// `LMQMetadataStoring` over the wire: each method is one request, served by the node's
// `LMQMetadataStore` (docs/store-protocol.md). A session update for an unknown client throws
// `LMQMetadataStoreError.sessionNotFound`, as the local store does.

extension StoreNodeClient {
    // MARK: Consume offsets

    public func commitOffset(group: String, lmq: String, offset: Int64) async throws {
        try await call(.commitOffset) { body in
            body.writeWireString(group)
            body.writeWireString(lmq)
            body.writeInteger(offset)
        } decode: { _ throws(StoreWireError) in }
    }

    public func queryOffset(group: String, lmq: String) async throws -> Int64? {
        try await call(.queryOffset) { body in
            body.writeWireString(group)
            body.writeWireString(lmq)
        } decode: { reader throws(StoreWireError) in try Int64?(from: &reader) }
    }

    public func offsets(group: String) async throws -> [String: Int64] {
        try await call(.offsets) { body in body.writeWireString(group) } decode: { reader throws(StoreWireError) in
            try [String: Int64](from: &reader)
        }
    }

    @discardableResult
    public func deleteOffsets(group: String) async throws -> Int {
        try await call(.deleteOffsets) { body in body.writeWireString(group) } decode: { reader throws(StoreWireError) in
            Int(try reader.integer("count", as: Int64.self))
        }
    }

    // MARK: Retained messages

    public func setRetained(_ message: RetainedMessage) async throws {
        try await call(.setRetained) { body in message.write(to: &body) } decode: { _ throws(StoreWireError) in }
    }

    @discardableResult
    public func deleteRetained(topic: String) async throws -> Bool {
        try await call(.deleteRetained) { body in body.writeWireString(topic) } decode: { reader throws(StoreWireError) in
            try reader.bool("deleted")
        }
    }

    public func retained(topic: String, nowMillis: Int64?) async throws -> RetainedMessage? {
        try await call(.retainedByTopic) { body in
            body.writeWireString(topic)
            nowMillis.write(to: &body)
        } decode: { reader throws(StoreWireError) in try RetainedMessage?(from: &reader) }
    }

    public func retained(matching filter: TopicFilter, nowMillis: Int64?, limit: Int) async throws -> [RetainedMessage] {
        try await call(.retainedMatching) { body in
            body.writeWireString(filter.string)
            nowMillis.write(to: &body)
            body.writeInteger(Int64(limit))
        } decode: { reader throws(StoreWireError) in try [RetainedMessage](from: &reader) }
    }

    public func retainedCount() async throws -> Int {
        try await call(.retainedCount) { _ in } decode: { reader throws(StoreWireError) in
            Int(try reader.integer("count", as: Int64.self))
        }
    }

    @discardableResult
    public func deleteExpiredRetained(nowMillis: Int64) async throws -> Int {
        try await call(.deleteExpiredRetained) { body in body.writeInteger(nowMillis) } decode: { reader throws(StoreWireError) in
            Int(try reader.integer("count", as: Int64.self))
        }
    }

    // MARK: Sessions

    public func putSession(_ record: SessionRecord) async throws {
        try await call(.putSession) { body in record.write(to: &body) } decode: { _ throws(StoreWireError) in }
    }

    public func session(clientIdentifier: String) async throws -> SessionRecord? {
        try await call(.getSession) { body in body.writeWireString(clientIdentifier) } decode: { reader throws(StoreWireError) in
            try SessionRecord?(from: &reader)
        }
    }

    public func allSessions() async throws -> [SessionRecord] {
        try await call(.allSessions) { _ in } decode: { reader throws(StoreWireError) in try [SessionRecord](from: &reader) }
    }

    @discardableResult
    public func deleteSession(clientIdentifier: String) async throws -> Bool {
        try await call(.deleteSession) { body in body.writeWireString(clientIdentifier) } decode: { reader throws(StoreWireError) in
            try reader.bool("deleted")
        }
    }

    @discardableResult
    public func addPendingPubRel(clientIdentifier: String, packetIdentifier: UInt16) async throws -> Bool {
        try await call(.addPendingPubRel) { body in
            body.writeWireString(clientIdentifier)
            body.writeInteger(packetIdentifier)
        } decode: { reader throws(StoreWireError) in try reader.bool("added") }
    }

    @discardableResult
    public func removePendingPubRel(clientIdentifier: String, packetIdentifier: UInt16) async throws -> Bool {
        try await call(.removePendingPubRel) { body in
            body.writeWireString(clientIdentifier)
            body.writeInteger(packetIdentifier)
        } decode: { reader throws(StoreWireError) in try reader.bool("removed") }
    }

    public func setWill(clientIdentifier: String, _ will: StoredWill?) async throws {
        try await call(.setWill) { body in
            body.writeWireString(clientIdentifier)
            will.write(to: &body)
        } decode: { _ throws(StoreWireError) in }
    }

    public func markConnected(
        clientIdentifier: String, gatewayNode: String?, protocolVersion: MQTTProtocolVersion?, sessionExpiryIntervalSeconds: UInt32?
    ) async throws {
        try await call(.markConnected) { body in
            body.writeWireString(clientIdentifier)
            gatewayNode.write(to: &body)
            protocolVersion.map(\.rawValue).write(to: &body)
            sessionExpiryIntervalSeconds.write(to: &body)
        } decode: { _ throws(StoreWireError) in }
    }

    public func markDisconnected(clientIdentifier: String, atMillis: Int64, sessionExpiryIntervalSeconds: UInt32?) async throws {
        try await call(.markDisconnected) { body in
            body.writeWireString(clientIdentifier)
            body.writeInteger(atMillis)
            sessionExpiryIntervalSeconds.write(to: &body)
        } decode: { _ throws(StoreWireError) in }
    }

    public func expiredSessions(nowMillis: Int64, limit: Int) async throws -> [String] {
        try await call(.expiredSessions) { body in
            body.writeInteger(nowMillis)
            body.writeInteger(Int64(limit))
        } decode: { reader throws(StoreWireError) in try [String](from: &reader) }
    }

    // MARK: Session journal

    public func applySessionJournal(clientIdentifier: String, _ entries: [SessionJournalEntry]) async throws {
        try await call(.applySessionJournal) { body in
            body.writeWireString(clientIdentifier)
            entries.write(to: &body)
        } decode: { _ throws(StoreWireError) in }
    }

    @discardableResult
    public func deleteSessionAndOffsets(clientIdentifier: String) async throws -> Bool {
        try await call(.deleteSessionAndOffsets) { body in body.writeWireString(clientIdentifier) } decode: { reader throws(StoreWireError) in
            try reader.bool("deleted")
        }
    }

    public func sessionDeliveries(clientIdentifier: String) async throws -> [SessionDelivery] {
        try await call(.sessionDeliveries) { body in body.writeWireString(clientIdentifier) } decode: { reader throws(StoreWireError) in
            try [SessionDelivery](from: &reader)
        }
    }
}

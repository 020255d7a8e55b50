import MQTTCore

/// What a gateway asks of the store's metadata: consume offsets, retained messages and persistent
/// sessions.
///
/// Two implementations: ``LMQMetadataStore`` in the same process (standalone mode), and the store
/// node's network client in cluster mode. Each method means exactly what the ``LMQMetadataStore``
/// method of the same name documents; a network implementation throws its transport's errors too.
public protocol LMQMetadataStoring: Sendable {
    // MARK: Consume offsets

    func commitOffset(group: String, lmq: String, offset: Int64) async throws
    func queryOffset(group: String, lmq: String) async throws -> Int64?
    func offsets(group: String) async throws -> [String: Int64]
    @discardableResult
    func deleteOffsets(group: String) async throws -> Int

    // MARK: Retained messages

    func setRetained(_ message: RetainedMessage) async throws
    @discardableResult
    func deleteRetained(topic: String) async throws -> Bool
    func retained(topic: String, nowMillis: Int64?) async throws -> RetainedMessage?
    func retained(matching filter: TopicFilter, nowMillis: Int64?, limit: Int) async throws -> [RetainedMessage]
    func retainedCount() async throws -> Int
    @discardableResult
    func deleteExpiredRetained(nowMillis: Int64) async throws -> Int

    // MARK: Sessions

    func putSession(_ record: SessionRecord) async throws
    func session(clientIdentifier: String) async throws -> SessionRecord?
    func allSessions() async throws -> [SessionRecord]
    @discardableResult
    func deleteSession(clientIdentifier: String) async throws -> Bool
    @discardableResult
    func addPendingPubRel(clientIdentifier: String, packetIdentifier: UInt16) async throws -> Bool
    @discardableResult
    func removePendingPubRel(clientIdentifier: String, packetIdentifier: UInt16) async throws -> Bool
    func setWill(clientIdentifier: String, _ will: StoredWill?) async throws
    func markConnected(
        clientIdentifier: String, gatewayNode: String?, protocolVersion: MQTTProtocolVersion?, sessionExpiryIntervalSeconds: UInt32?
    ) async throws
    func markDisconnected(clientIdentifier: String, atMillis: Int64, sessionExpiryIntervalSeconds: UInt32?) async throws
    func expiredSessions(nowMillis: Int64, limit: Int) async throws -> [String]

    // MARK: Session journal

    func applySessionJournal(clientIdentifier: String, _ entries: [SessionJournalEntry]) async throws
    @discardableResult
    func deleteSessionAndOffsets(clientIdentifier: String) async throws -> Bool
    func sessionDeliveries(clientIdentifier: String) async throws -> [SessionDelivery]

    /// Releases what the implementation holds (the database, or the connection to the store node).
    func close() async throws
}

extension LMQMetadataStore: LMQMetadataStoring {}

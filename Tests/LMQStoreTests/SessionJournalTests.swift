import Foundation
@testable import LMQStore
import MQTTCore
import NIOCore
import SQLite
import Testing

@Suite("Session journal and origin client identifiers")
struct SessionJournalTests {
    static func withMetadata(_ body: (LMQMetadataStore, String) async throws -> Void) async throws {
        let directory = TemporaryDirectory("journal")
        defer { directory.remove() }
        let store = try await LMQMetadataStore.open(storePathRootDir: directory.path)
        do {
            try await body(store, directory.path)
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
    }

    static func delivery(_ filter: String, _ offset: Int64, id: UInt16, qos: MQTTQoS = .exactlyOnce, _ state: SessionDelivery.State = .sent) -> SessionDelivery {
        SessionDelivery(topicFilter: filter, queueOffset: offset, packetIdentifier: id, qos: qos, state: state)
    }

    @Test("deliveries are kept in send order; offsets delete the rows below them; removal cleans a subscription up")
    func deliveriesAndOffsets() async throws {
        try await Self.withMetadata { store, _ in
            let client = "c1"
            try await store.putSession(SessionRecord(clientIdentifier: client, protocolVersion: .v5, sessionExpiryIntervalSeconds: 60))
            let subscription = StoredSubscription(Subscription(topicFilter: "a/+", maximumQoS: .exactlyOnce))
            try await store.applySessionJournal(clientIdentifier: client, [
                .subscriptionAdded(subscription, lmq: "%LMQ%a%+%", startOffset: 5),
                .deliverySent(Self.delivery("a/+", 7, id: 3)),
                .deliverySent(Self.delivery("a/+", 5, id: 4)),
                .deliverySent(Self.delivery("a/+", 6, id: 5)),
                .deliveryState(topicFilter: "a/+", queueOffset: 5, .released),
                .deliveryState(topicFilter: "a/+", queueOffset: 6, .completed),
            ])
            #expect(try await store.sessionDeliveries(clientIdentifier: client) == [
                Self.delivery("a/+", 7, id: 3), Self.delivery("a/+", 5, id: 4, .released), Self.delivery("a/+", 6, id: 5, .completed),
            ])
            #expect(try await store.queryOffset(group: LMQNaming.consumerGroupName(clientId: client), lmq: "%LMQ%a%+%") == 5)
            // A replaced subscription keeps its offset.
            try await store.applySessionJournal(clientIdentifier: client, [.subscriptionAdded(subscription, lmq: "%LMQ%a%+%", startOffset: 99)])
            #expect(try await store.queryOffset(group: LMQNaming.consumerGroupName(clientId: client), lmq: "%LMQ%a%+%") == 5)

            try await store.applySessionJournal(clientIdentifier: client, [.consumeOffset(topicFilter: "a/+", lmq: "%LMQ%a%+%", offset: 7)])
            #expect(try await store.sessionDeliveries(clientIdentifier: client).map(\.queueOffset) == [7])

            // The snapshot at close replaces unfinished rows and keeps completed ones.
            try await store.applySessionJournal(clientIdentifier: client, [
                .deliveryState(topicFilter: "a/+", queueOffset: 7, .completed),
                .deliverySent(Self.delivery("a/+", 9, id: 6)),
                .unfinishedDeliveries([Self.delivery("a/+", 8, id: 7, qos: .atLeastOnce)]),
            ])
            #expect(try await store.sessionDeliveries(clientIdentifier: client).map(\.queueOffset) == [7, 8])

            try await store.applySessionJournal(clientIdentifier: client, [.subscriptionRemoved(topicFilter: "a/+", lmq: "%LMQ%a%+%")])
            #expect(try await store.sessionDeliveries(clientIdentifier: client).isEmpty)
            #expect(try await store.session(clientIdentifier: client)?.subscriptions.isEmpty == true)
            #expect(try await store.queryOffset(group: LMQNaming.consumerGroupName(clientId: client), lmq: "%LMQ%a%+%") == nil)
        }
    }

    @Test("disconnect, will and PUBREL release; ending a session removes its offsets too")
    func disconnectAndEnd() async throws {
        try await Self.withMetadata { store, _ in
            let client = "c2"
            try await store.putSession(SessionRecord(clientIdentifier: client, protocolVersion: .v3_1_1, sessionExpiryIntervalSeconds: 10))
            #expect(try await store.addPendingPubRel(clientIdentifier: client, packetIdentifier: 9))
            let will = StoredWill(topic: "w/t", payload: ByteBuffer(string: "bye"), qos: .atLeastOnce, retain: false, delayIntervalSeconds: 5)
            try await store.applySessionJournal(clientIdentifier: client, [
                .inboundReleased(packetIdentifier: 9),
                .consumeOffset(topicFilter: "#p2p", lmq: "%LMQ%%p2p%c2%", offset: 3),
                .disconnected(atMillis: 1_000, sessionExpiryIntervalSeconds: 20, will: will),
            ])
            let record = try #require(try await store.session(clientIdentifier: client))
            #expect(record.pendingPubRelPacketIdentifiers.isEmpty)
            #expect(record.disconnectedAtMillis == 1_000 && record.sessionExpiryIntervalSeconds == 20)
            #expect(record.will == will)
            #expect(try await store.expiredSessions(nowMillis: 21_000) == [client])

            #expect(try await store.deleteSessionAndOffsets(clientIdentifier: client))
            #expect(try await store.session(clientIdentifier: client) == nil)
            #expect(try await store.offsets(group: LMQNaming.consumerGroupName(clientId: client)).isEmpty)
            await #expect(throws: LMQMetadataStoreError.self) {
                try await store.applySessionJournal(clientIdentifier: client, [.inboundReleased(packetIdentifier: 1)])
            }
        }
    }

    @Test("a version 1 metadata file is migrated to the current version and keeps its rows")
    func migrationFromVersion1() async throws {
        let directory = TemporaryDirectory("journal-migration")
        defer { directory.remove() }
        // A version 1 file as an earlier release left it.
        let database = try SQLiteDatabase(path: directory.path + "/metadata.db")
        try database.withConnection { connection in
            try connection.setApplicationID(LMQMetadataSchema.applicationID)
            for statement in LMQMetadataSchema.version1 { try connection.execute(statement) }
            try connection.setUserVersion(1)
            try connection.execute("INSERT INTO consume_offsets VALUES ('g', 'q', 42)")
        }
        database.close()
        let store = try await LMQMetadataStore.open(storePathRootDir: directory.path)
        #expect(try await store.queryOffset(group: "g", lmq: "q") == 42)
        try await store.putSession(SessionRecord(clientIdentifier: "m", protocolVersion: .v5, sessionExpiryIntervalSeconds: 1))
        try await store.applySessionJournal(clientIdentifier: "m", [.deliverySent(Self.delivery("t", 1, id: 1))])
        #expect(try await store.sessionDeliveries(clientIdentifier: "m").count == 1)
        try await store.close()
    }

    @Test("the publishing client's identifier survives the commit log and an index rebuild")
    func originClientIdentifier() async throws {
        let directory = TemporaryDirectory("origin")
        defer { directory.remove() }
        var store = try LMQStore(configuration: .testing(directory.path))
        let tagged = LMQMessage(topic: "o/t", payload: ByteBuffer(string: "x"), qos: .atLeastOnce, originClientIdentifier: "publisher-1")
        _ = try await store.append(tagged, to: ["q1", "q2"])
        _ = try await store.append(message("o/t", "untagged"), to: ["q1"])
        try store.close()
        // Without index and checkpoint, recovery rebuilds the queues from the records.
        try FileManager.default.removeItem(atPath: directory.path + "/index")
        try? FileManager.default.removeItem(atPath: directory.path + "/checkpoint")
        store = try LMQStore(configuration: .testing(directory.path))
        let q1 = try readAll(store, "q1")
        #expect(q1.map(\.message.message.originClientIdentifier) == ["publisher-1", nil])
        #expect(q1.map(\.message.message.payload) == [ByteBuffer(string: "x"), ByteBuffer(string: "untagged")])
        #expect(try readAll(store, "q2").map(\.offset) == [0])
        try store.close()
    }
}

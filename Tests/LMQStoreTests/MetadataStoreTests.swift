import Foundation
import LMQStore
import MQTTCore
import NIOCore
import SQLite
import Testing

/// Runs `body` with a fresh store root directory, removed afterwards.
private func withStoreDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metadata-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

/// Opens the store under `directory`, runs `body`, and closes it whatever happens.
private func withStore<T>(_ directory: String, _ body: (LMQMetadataStore) async throws -> T) async throws -> T {
    let store = try await LMQMetadataStore.open(storePathRootDir: directory)
    do {
        let result = try await body(store)
        try await store.close()
        return result
    } catch {
        try? await store.close()
        throw error
    }
}

/// Every kind of property value the stored format has: byte, two- and four-byte integers, variable byte
/// integer, string, binary data, string pair.
private let allKindsOfProperties: MQTTProperties = [
    .payloadFormatIndicator(1),
    .messageExpiryInterval(3_600),
    .contentType("application/json"),
    .responseTopic("reply/here"),
    .correlationData(ByteBuffer(bytes: [0, 1, 2, 0xFF])),
    .subscriptionIdentifier(268_435_455),
    .topicAlias(7),
    .userProperty("k", "v"),
    .userProperty("k", "second value, same key"),
    .userProperty("", ""),
]

private func retained(_ topic: String, _ text: String, qos: MQTTQoS = .atLeastOnce, at millis: Int64 = 1_000) -> RetainedMessage {
    RetainedMessage(topic: topic, payload: ByteBuffer(string: text), qos: qos, storeTimestampMillis: millis)
}

@Suite("LMQ metadata store: consume offsets")
struct MetadataStoreOffsetTests {
    @Test("offsets are stored, replaced, listed per group and deleted")
    func offsetsRoundTrip() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                #expect(try await store.queryOffset(group: "%LMQ%c1", lmq: "%LMQ%a%b%") == nil)
                try await store.commitOffset(group: "%LMQ%c1", lmq: "%LMQ%a%b%", offset: 5)
                try await store.commitOffset(group: "%LMQ%c1", lmq: "%LMQ%a%b%", offset: 9)
                try await store.commitOffset(group: "%LMQ%c1", lmq: "%LMQ%a%+%", offset: 0)
                try await store.commitOffset(group: "%LMQ%c2", lmq: "%LMQ%a%b%", offset: 2)
                #expect(try await store.queryOffset(group: "%LMQ%c1", lmq: "%LMQ%a%b%") == 9)
                #expect(try await store.offsets(group: "%LMQ%c1") == ["%LMQ%a%b%": 9, "%LMQ%a%+%": 0])
                // Offsets may move back (a consumer reset).
                try await store.commitOffset(group: "%LMQ%c1", lmq: "%LMQ%a%b%", offset: 3)
                #expect(try await store.queryOffset(group: "%LMQ%c1", lmq: "%LMQ%a%b%") == 3)

                #expect(try await store.deleteOffsets(group: "%LMQ%c1") == 2)
                #expect(try await store.offsets(group: "%LMQ%c1").isEmpty)
                #expect(try await store.queryOffset(group: "%LMQ%c2", lmq: "%LMQ%a%b%") == 2)
            }
        }
    }

    @Test("a batch of offsets is committed together; a negative offset rejects the whole batch")
    func batchedOffsets() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                try await store.commitOffsets([
                    (group: "g", lmq: "q1", offset: 1),
                    (group: "g", lmq: "q2", offset: 2),
                    (group: "g", lmq: "q1", offset: 10),
                ])
                #expect(try await store.offsets(group: "g") == ["q1": 10, "q2": 2])

                await #expect(throws: LMQMetadataStoreError.self) {
                    try await store.commitOffsets([(group: "g", lmq: "q3", offset: 3), (group: "g", lmq: "q4", offset: -1)])
                }
                #expect(try await store.offsets(group: "g") == ["q1": 10, "q2": 2])
            }
        }
    }

    @Test("offsets survive closing and reopening the store")
    func offsetsSurviveReopen() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                for index in 0..<100 {
                    try await store.commitOffset(group: "g", lmq: "q\(index)", offset: Int64(index * 3))
                }
            }
            let path = URL(fileURLWithPath: directory).appendingPathComponent("metadata.db").path
            #expect(FileManager.default.fileExists(atPath: path))
            try await withStore(directory) { store in
                let offsets = try await store.offsets(group: "g")
                #expect(offsets.count == 100)
                #expect(offsets["q42"] == 126)
            }
        }
    }

    @Test("concurrent commits from many tasks all land")
    func concurrentCommits() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<200 {
                        group.addTask {
                            try await store.commitOffset(group: "g\(index % 4)", lmq: "q\(index)", offset: Int64(index))
                        }
                    }
                    try await group.waitForAll()
                }
                var total = 0
                for group in 0..<4 {
                    let offsets = try await store.offsets(group: "g\(group)")
                    #expect(offsets.count == 50)
                    #expect(offsets.allSatisfy { $0.key == "q\($0.value)" })
                    total += offsets.count
                }
                #expect(total == 200)
            }
        }
    }
}

@Suite("LMQ metadata store: retained messages")
struct MetadataStoreRetainedTests {
    @Test("a retained message is stored, replaced, and deleted by an empty payload [MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-7]")
    func setReplaceDelete() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                let first = RetainedMessage(
                    topic: "sensors/7/temp", payload: ByteBuffer(string: "21.5"), qos: .exactlyOnce,
                    properties: allKindsOfProperties, storeTimestampMillis: 1_700_000_000_000
                )
                try await store.setRetained(first)
                #expect(try await store.retained(topic: "sensors/7/temp") == first)
                #expect(try await store.retainedCount() == 1)

                let second = retained("sensors/7/temp", "22.0", qos: .atMostOnce, at: 1_700_000_001_000)
                try await store.setRetained(second)
                let stored = try await store.retained(topic: "sensors/7/temp")
                #expect(stored == second)
                #expect(stored?.properties.isEmpty == true)
                #expect(try await store.retainedCount() == 1)

                // The empty payload deletes and is not itself stored.
                try await store.setRetained(retained("sensors/7/temp", ""))
                #expect(try await store.retained(topic: "sensors/7/temp") == nil)
                #expect(try await store.retainedCount() == 0)
                // Deleting what is not there is not an error.
                try await store.setRetained(retained("sensors/8/temp", ""))
                #expect(try await store.deleteRetained(topic: "nothing") == false)
            }
        }
    }

    @Test("a retained message with a wildcard or empty topic is refused")
    func invalidTopicRefused() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                for topic in ["a/+", "a/#", ""] {
                    let error = try await #require(throws: LMQMetadataStoreError.self) {
                        try await store.setRetained(retained(topic, "x"))
                    }
                    guard case .invalidTopic(let rejected, _) = error else {
                        Issue.record("unexpected error \(error)")
                        continue
                    }
                    #expect(rejected == topic)
                }
                #expect(try await store.retainedCount() == 0)
            }
        }
    }

    @Test("wildcard lookups match as MQTTCore's TopicFilter does, '$' topics only by explicit filters [MQTT-4.7.2-1]")
    func wildcardLookup() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                let topics = [
                    "a", "a/b", "a/b/c", "a/c", "a/", "a//b", "ab/c", "b/c", "/a", "$SYS/uptime", "$SYS/a/b", "sport/tennis/player1",
                ]
                for (index, topic) in topics.enumerated() {
                    try await store.setRetained(retained(topic, "payload of \(topic)", at: Int64(index)))
                }
                #expect(try await store.retainedCount() == topics.count)

                func lookup(_ filter: String) async throws -> [String] {
                    try await store.retained(matching: TopicFilter(filter)).map(\.topic)
                }
                #expect(try await lookup("#") == topics.filter { !$0.hasPrefix("$") }.sorted())
                #expect(try await lookup("+/c") == ["a/c", "ab/c", "b/c"])
                #expect(try await lookup("+") == ["a"])
                #expect(try await lookup("a/#") == ["a", "a/", "a//b", "a/b", "a/b/c", "a/c"])
                #expect(try await lookup("a/+") == ["a/", "a/b", "a/c"])
                #expect(try await lookup("a/+/c") == ["a/b/c"])
                #expect(try await lookup("a/b") == ["a/b"])
                #expect(try await lookup("a/x") == [])
                #expect(try await lookup("/+") == ["/a"])
                #expect(try await lookup("$SYS/#") == ["$SYS/a/b", "$SYS/uptime"])
                #expect(try await lookup("$SYS/+") == ["$SYS/uptime"])
                #expect(try await lookup("+/uptime") == [])
                // A shared subscription matches by its filter proper.
                #expect(try await lookup("$share/group/a/+") == ["a/", "a/b", "a/c"])
                #expect(try await store.retained(matching: TopicFilter("#"), limit: 2).count == 2)

                // Each result carries its own payload.
                let matched = try await store.retained(matching: TopicFilter("sport/#"))
                #expect(matched.count == 1)
                #expect(matched.first?.payload == ByteBuffer(string: "payload of sport/tennis/player1"))
                #expect(matched.first?.storeTimestampMillis == 11)
            }
        }
    }

    @Test("expired retained messages are hidden when a time is given and deleted on request [MQTT-3.3.2-5]")
    func retainedExpiry() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                let expiring = RetainedMessage(
                    topic: "a/expiring", payload: ByteBuffer(string: "x"), qos: .atLeastOnce,
                    properties: [.messageExpiryInterval(10)], storeTimestampMillis: 1_000
                )
                #expect(expiring.messageExpiryIntervalSeconds == 10)
                #expect(expiring.expiresAtMillis == 11_000)
                try await store.setRetained(expiring)
                try await store.setRetained(retained("a/forever", "y", at: 1_000))

                #expect(try await store.retained(topic: "a/expiring", nowMillis: 10_999) == expiring)
                #expect(try await store.retained(topic: "a/expiring", nowMillis: 11_000) == nil)
                #expect(try await store.retained(matching: TopicFilter("a/+"), nowMillis: 11_000).map(\.topic) == ["a/forever"])
                #expect(try await store.retained(matching: TopicFilter("a/+")).count == 2)

                #expect(try await store.deleteExpiredRetained(nowMillis: 10_999) == 0)
                #expect(try await store.deleteExpiredRetained(nowMillis: 11_000) == 1)
                #expect(try await store.retained(topic: "a/expiring") == nil)
                #expect(try await store.retained(topic: "a/forever") != nil)
            }
        }
    }

    @Test("retained messages survive closing and reopening the store")
    func retainedSurviveReopen() async throws {
        try await withStoreDirectory { directory in
            let message = RetainedMessage(
                topic: "t/1", payload: ByteBuffer(bytes: Array(0...255)), qos: .exactlyOnce,
                properties: allKindsOfProperties, storeTimestampMillis: 42
            )
            try await withStore(directory) { store in try await store.setRetained(message) }
            try await withStore(directory) { store async throws in
                #expect(try await store.retained(topic: "t/1") == message)
                #expect(try await store.retained(matching: TopicFilter("t/#")) == [message])
            }
        }
    }

    @Test("a damaged property blob is reported as a corrupt value, not misread")
    func corruptPropertiesReported() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in try await store.setRetained(retained("t", "x")) }
            let database = try SQLiteDatabase(path: URL(fileURLWithPath: directory).appendingPathComponent("metadata.db").path)
            try database.withConnection { connection in
                // Format version 1, then an identifier that does not exist.
                try connection.prepare("UPDATE retained_messages SET properties = ?").run(.blob([1, 0x7F]))
            }
            database.close()
            try await withStore(directory) { store in
                let error = try await #require(throws: LMQMetadataStoreError.self) { try await store.retained(topic: "t") }
                guard case .corruptValue(let table, let key, _) = error else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(table == "retained_messages")
                #expect(key == "t")
            }
        }
    }
}

@Suite("LMQ metadata store: persistent sessions")
struct MetadataStoreSessionTests {
    /// A session with every field set.
    static let fullRecord = SessionRecord(
        clientIdentifier: "device-42",
        protocolVersion: .v5,
        subscriptions: [
            StoredSubscription(
                Subscription(topicFilter: "$share/g/a/+", maximumQoS: .atLeastOnce, noLocal: false, retainAsPublished: true, retainHandling: .doNotSend),
                subscriptionIdentifier: 7
            ),
            StoredSubscription(
                Subscription(topicFilter: "a/b", maximumQoS: .exactlyOnce, noLocal: true, retainAsPublished: false, retainHandling: .sendOnSubscribeIfNew)
            ),
            StoredSubscription(Subscription(topicFilter: "sensors/#"), subscriptionIdentifier: 268_435_455),
        ],
        will: StoredWill(
            topic: "devices/42/status", payload: ByteBuffer(string: "offline"), qos: .exactlyOnce, retain: true,
            properties: allKindsOfProperties, delayIntervalSeconds: 30
        ),
        sessionExpiryIntervalSeconds: 3_600,
        pendingPubRelPacketIdentifiers: [1, 300, 65_535],
        disconnectedAtMillis: 1_700_000_000_000,
        gatewayNode: "10.0.0.1:7001"
    )

    @Test("a session record round-trips with every field, and putSession replaces it whole")
    func sessionRoundTrip() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                #expect(try await store.session(clientIdentifier: "device-42") == nil)
                try await store.putSession(Self.fullRecord)
                #expect(try await store.session(clientIdentifier: "device-42") == Self.fullRecord)

                let minimal = SessionRecord(clientIdentifier: "device-42", protocolVersion: .v3_1_1, sessionExpiryIntervalSeconds: SessionRecord.neverExpires)
                try await store.putSession(minimal)
                let replaced = try await store.session(clientIdentifier: "device-42")
                #expect(replaced == minimal)
                #expect(replaced?.will == nil)
                #expect(replaced?.subscriptions.isEmpty == true)
            }
        }
    }

    @Test("sessions survive closing and reopening; allSessions returns each whole, sorted by client")
    func sessionsSurviveReopen() async throws {
        try await withStoreDirectory { directory in
            var other = Self.fullRecord
            other.clientIdentifier = "alpha"
            other.will = nil
            other.pendingPubRelPacketIdentifiers = [9]
            other.disconnectedAtMillis = nil
            let bare = SessionRecord(clientIdentifier: "zulu", protocolVersion: .v3_1, sessionExpiryIntervalSeconds: 0)
            try await withStore(directory) { store in
                try await store.putSession(Self.fullRecord)
                try await store.putSession(other)
                try await store.putSession(bare)
            }
            try await withStore(directory) { store async throws in
                #expect(try await store.allSessions() == [other, Self.fullRecord, bare])
                #expect(try await store.session(clientIdentifier: "device-42") == Self.fullRecord)
            }
        }
    }

    @Test("subscriptions are added, replaced per filter [MQTT-3.8.4-3] and removed row by row")
    func subscriptionUpdates() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                try await store.putSession(SessionRecord(clientIdentifier: "c", protocolVersion: .v5, sessionExpiryIntervalSeconds: 60))
                let replaced = try await store.addSubscriptions(clientIdentifier: "c", [
                    StoredSubscription(Subscription(topicFilter: "a/+", maximumQoS: .atMostOnce)),
                    StoredSubscription(Subscription(topicFilter: "b/#", maximumQoS: .atLeastOnce), subscriptionIdentifier: 3),
                ])
                #expect(replaced.isEmpty)
                let secondReplaced = try await store.addSubscriptions(clientIdentifier: "c", [
                    StoredSubscription(Subscription(topicFilter: "a/+", maximumQoS: .exactlyOnce, noLocal: true)),
                    StoredSubscription(Subscription(topicFilter: "c")),
                ])
                #expect(secondReplaced == ["a/+"])
                var subscriptions = try await store.session(clientIdentifier: "c")?.subscriptions ?? []
                #expect(subscriptions.map(\.topicFilter) == ["a/+", "b/#", "c"])
                #expect(subscriptions.first?.subscription.maximumQoS == .exactlyOnce)
                #expect(subscriptions.first?.subscription.noLocal == true)
                #expect(subscriptions[1].subscriptionIdentifier == 3)

                #expect(try await store.removeSubscriptions(clientIdentifier: "c", filters: ["b/#", "not/subscribed"]) == 1)
                subscriptions = try await store.session(clientIdentifier: "c")?.subscriptions ?? []
                #expect(subscriptions.map(\.topicFilter) == ["a/+", "c"])
                #expect(try await store.removeSubscriptions(clientIdentifier: "nobody", filters: ["a"]) == 0)
            }
        }
    }

    @Test("fine-grained updates of an unknown session, and invalid values, are refused")
    func invalidUpdatesRefused() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                await #expect(throws: LMQMetadataStoreError.sessionNotFound(clientIdentifier: "ghost")) {
                    try await store.addSubscriptions(clientIdentifier: "ghost", [StoredSubscription(Subscription(topicFilter: "a"))])
                }
                await #expect(throws: LMQMetadataStoreError.sessionNotFound(clientIdentifier: "ghost")) {
                    try await store.addPendingPubRel(clientIdentifier: "ghost", packetIdentifier: 1)
                }
                await #expect(throws: LMQMetadataStoreError.sessionNotFound(clientIdentifier: "ghost")) {
                    try await store.markDisconnected(clientIdentifier: "ghost", atMillis: 1)
                }
                await #expect(throws: LMQMetadataStoreError.sessionNotFound(clientIdentifier: "ghost")) {
                    try await store.markConnected(clientIdentifier: "ghost", gatewayNode: nil)
                }
                await #expect(throws: LMQMetadataStoreError.sessionNotFound(clientIdentifier: "ghost")) {
                    try await store.setWill(clientIdentifier: "ghost", nil)
                }

                try await store.putSession(SessionRecord(clientIdentifier: "c", protocolVersion: .v5, sessionExpiryIntervalSeconds: 0))
                await #expect(throws: LMQMetadataStoreError.self) {
                    try await store.addSubscriptions(clientIdentifier: "c", [StoredSubscription(Subscription(topicFilter: "a/b#"))])
                }
                await #expect(throws: LMQMetadataStoreError.self) {
                    try await store.addSubscriptions(
                        clientIdentifier: "c", [StoredSubscription(Subscription(topicFilter: "a"), subscriptionIdentifier: 0)]
                    )
                }
                await #expect(throws: LMQMetadataStoreError.self) {
                    try await store.addPendingPubRel(clientIdentifier: "c", packetIdentifier: 0)
                }
                await #expect(throws: LMQMetadataStoreError.self) {
                    try await store.setWill(clientIdentifier: "c", StoredWill(topic: "will/+", payload: ByteBuffer()))
                }
                var duplicated = Self.fullRecord
                duplicated.subscriptions.append(duplicated.subscriptions[0])
                await #expect(throws: LMQMetadataStoreError.self) { try await store.putSession(duplicated) }
                #expect(try await store.session(clientIdentifier: "c")?.subscriptions.isEmpty == true)
            }
        }
    }

    @Test("pending PUBREL packet identifiers are added once and released [MQTT-4.3.3-10]")
    func pendingPubRel() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                try await store.putSession(SessionRecord(clientIdentifier: "c", protocolVersion: .v3_1_1, sessionExpiryIntervalSeconds: 60))
                #expect(try await store.addPendingPubRel(clientIdentifier: "c", packetIdentifier: 10))
                #expect(try await store.addPendingPubRel(clientIdentifier: "c", packetIdentifier: 2))
                // A resent PUBLISH with the same identifier: already pending, so not delivered again.
                #expect(try await store.addPendingPubRel(clientIdentifier: "c", packetIdentifier: 10) == false)
                #expect(try await store.session(clientIdentifier: "c")?.pendingPubRelPacketIdentifiers == [2, 10])

                #expect(try await store.removePendingPubRel(clientIdentifier: "c", packetIdentifier: 10))
                #expect(try await store.removePendingPubRel(clientIdentifier: "c", packetIdentifier: 10) == false)
                #expect(try await store.session(clientIdentifier: "c")?.pendingPubRelPacketIdentifiers == [2])
            }
        }
    }

    @Test("the will is replaced and removed without touching the rest of the session")
    func willUpdates() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                try await store.putSession(Self.fullRecord)
                let newWill = StoredWill(
                    ConnectPacket.Will(
                        topicName: "w", payload: ByteBuffer(string: "bye"), qos: .atLeastOnce, retain: false,
                        properties: [.willDelayInterval(5), .contentType("text/plain")]
                    )
                )
                #expect(newWill.delayIntervalSeconds == 5)
                try await store.setWill(clientIdentifier: "device-42", newWill)
                var expected = Self.fullRecord
                expected.will = newWill
                #expect(try await store.session(clientIdentifier: "device-42") == expected)

                try await store.setWill(clientIdentifier: "device-42", nil)
                expected.will = nil
                #expect(try await store.session(clientIdentifier: "device-42") == expected)
            }
        }
    }

    @Test("connect and disconnect marks drive the expiry query; never-expiring and connected sessions are never listed")
    func expiry() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                for (client, expiry) in [("short", UInt32(10)), ("long", 100), ("zero", 0), ("forever", SessionRecord.neverExpires)] {
                    try await store.putSession(SessionRecord(clientIdentifier: client, protocolVersion: .v5, sessionExpiryIntervalSeconds: expiry, gatewayNode: "g1"))
                }
                #expect(try await store.expiredSessions(nowMillis: .max).isEmpty)  // all connected

                for client in ["short", "long", "zero", "forever"] {
                    try await store.markDisconnected(clientIdentifier: client, atMillis: 1_000_000)
                }
                #expect(try await store.expiredSessions(nowMillis: 999_999).isEmpty)
                #expect(try await store.expiredSessions(nowMillis: 1_000_000) == ["zero"])
                #expect(try await store.expiredSessions(nowMillis: 1_010_000) == ["zero", "short"])
                #expect(try await store.expiredSessions(nowMillis: 1_010_000, limit: 1) == ["zero"])
                #expect(try await store.expiredSessions(nowMillis: .max / 2) == ["zero", "short", "long"])

                // A v5 DISCONNECT can change the interval; a reconnect stops the clock.
                try await store.markDisconnected(clientIdentifier: "long", atMillis: 1_000_000, sessionExpiryIntervalSeconds: 5)
                #expect(try await store.expiredSessions(nowMillis: 1_005_000) == ["zero", "long"])
                try await store.markConnected(clientIdentifier: "long", gatewayNode: "g2", protocolVersion: .v3_1_1)
                #expect(try await store.expiredSessions(nowMillis: .max / 2) == ["zero", "short"])
                let resumed = try await store.session(clientIdentifier: "long")
                #expect(resumed?.disconnectedAtMillis == nil)
                #expect(resumed?.gatewayNode == "g2")
                #expect(resumed?.protocolVersion == .v3_1_1)
                #expect(resumed?.sessionExpiryIntervalSeconds == 5)
                #expect(try await store.session(clientIdentifier: "short")?.expiresAtMillis == 1_010_000)
            }
        }
    }

    @Test("deleting a session deletes its subscriptions, pending identifiers and will")
    func deleteCascades() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in
                try await store.putSession(Self.fullRecord)
                #expect(try await store.deleteSession(clientIdentifier: "device-42"))
                #expect(try await store.deleteSession(clientIdentifier: "device-42") == false)
                #expect(try await store.session(clientIdentifier: "device-42") == nil)
                #expect(try await store.allSessions().isEmpty)
            }
            let database = try SQLiteDatabase(path: URL(fileURLWithPath: directory).appendingPathComponent("metadata.db").path)
            defer { database.close() }
            for table in ["sessions", "session_subscriptions", "session_pending_pubrel", "session_wills"] {
                let rows = try database.withConnection { connection in
                    let count = try connection.prepare("SELECT count(*) FROM \(table)")
                    try count.step()
                    return count.int64(at: 0)
                }
                #expect(rows == 0, "\(table) still has rows")
            }
        }
    }
}

@Suite("LMQ metadata store: file format and lifecycle")
struct MetadataStoreFileTests {
    @Test("a file with a newer schema version is refused with a clear error")
    func newerSchemaRefused() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { store in try await store.commitOffset(group: "g", lmq: "q", offset: 1) }
            let path = URL(fileURLWithPath: directory).appendingPathComponent("metadata.db").path
            let database = try SQLiteDatabase(path: path)
            try database.withConnection { try $0.setUserVersion(LMQMetadataStore.schemaVersion + 1) }
            database.close()

            let error = try await #require(throws: LMQMetadataStoreError.self) {
                try await LMQMetadataStore.open(storePathRootDir: directory)
            }
            #expect(
                error == .unsupportedSchemaVersion(path: path, found: LMQMetadataStore.schemaVersion + 1, supported: LMQMetadataStore.schemaVersion)
            )
            #expect(error.description.contains("newer release"))
        }
    }

    @Test("an SQLite file that is not a metadata file is refused")
    func foreignFileRefused() async throws {
        try await withStoreDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = URL(fileURLWithPath: directory).appendingPathComponent("metadata.db").path
            let database = try SQLiteDatabase(path: path)
            try database.execute("CREATE TABLE something_else (x INTEGER)")
            database.close()

            let error = try await #require(throws: LMQMetadataStoreError.self) {
                try await LMQMetadataStore.open(storePathRootDir: directory)
            }
            #expect(error == .notAMetadataFile(path: path, applicationID: 0))
        }
    }

    @Test("the file is marked with the store's application id and schema version")
    func fileIdentity() async throws {
        try await withStoreDirectory { directory in
            try await withStore(directory) { _ in }
            let database = try SQLiteDatabase(
                path: URL(fileURLWithPath: directory).appendingPathComponent("metadata.db").path,
                configuration: .init(openMode: .readOnly)
            )
            defer { database.close() }
            let (version, applicationID) = try database.withConnection { connection in
                (try connection.userVersion(), try connection.applicationID())
            }
            #expect(version == LMQMetadataStore.schemaVersion)
            #expect(applicationID == 0x4C4D_514D)  // "LMQM"
        }
    }

    @Test("a closed store refuses calls; closing twice is harmless")
    func closedStore() async throws {
        try await withStoreDirectory { directory in
            let store = try await LMQMetadataStore.open(storePathRootDir: directory)
            try await store.commitOffset(group: "g", lmq: "q", offset: 1)
            try await store.close()
            try await store.close()
            await #expect(throws: LMQMetadataStoreError.closed) { try await store.queryOffset(group: "g", lmq: "q") }
        }
    }
}

import LMQStore
import MQTTCore
import NIOCore
import Remoting
import StoreNode
import Testing

@Suite("Store node server and client")
struct StoreNodeServerTests {
    static func message(_ id: UInt64, topic: String = "a/b/c") -> LMQMessage {
        LMQMessage(topic: topic, payload: ByteBuffer(string: "m\(id)"), qos: .atLeastOnce, messageId: id)
    }

    /// Every message of `queue`, read in pages.
    static func pullAll(_ client: StoreNodeClient, queue: String, pageSize: Int = 100) async throws -> [LMQReadResult.Message] {
        var messages: [LMQReadResult.Message] = []
        var offset: Int64 = 0
        for _ in 0..<10_000 {
            let page = try await client.pull(queue: queue, from: offset, maxMessages: pageSize, maxBytes: 1 << 20)
            guard page.status == .found else { break }
            messages += page.messages
            offset = page.nextOffset
        }
        return messages
    }

    @Test("an append dispatched to several queues is read back from each")
    func appendAndPull() async throws {
        let node = try await StoreNodeFixture.start(flushDiskType: .syncFlush)
        let queues = ["%LMQ%a%b%c%", "%LMQ%a%+%c%", "%LMQ%a%#%"]
        for id in 0..<5 as Range<UInt64> {
            let result = try await node.client.append(Self.message(id), to: queues)
            #expect(result.queueOffsets == queues.map { QueueOffset(queue: $0, offset: Int64(id)) })
        }
        for queue in queues {
            let page = try await node.client.pull(queue: queue, from: 0, maxMessages: 32, maxBytes: 1 << 20)
            #expect(page.status == .found)
            #expect(page.messages.map(\.offset) == [0, 1, 2, 3, 4])
            #expect(page.messages.map(\.message.message.messageId) == [0, 1, 2, 3, 4])
            #expect(page.messages.first?.message.message.payload == ByteBuffer(string: "m0"))
            #expect(page.messages.first?.message.firstTopic == "a")
            #expect(page.nextOffset == 5 && page.maxOffset == 5)
        }
        let empty = try await node.client.pull(queue: "%LMQ%nothing%", from: 0, maxMessages: 32, maxBytes: 1 << 20)
        #expect(empty.status == .noNewMessages)
        #expect(try await node.client.maxOffsets(queues: queues + ["%LMQ%nothing%"]) == [
            "%LMQ%a%b%c%": 5, "%LMQ%a%+%c%": 5, "%LMQ%a%#%": 5, "%LMQ%nothing%": 0,
        ])
        #expect(try await node.client.queueCount() == 3)
        await node.stop()
    }

    @Test("offsets stay gap-free under many concurrent appends")
    func concurrentAppendsAreGapFree() async throws {
        let node = try await StoreNodeFixture.start()
        let queueSets = [["q1", "q2"], ["q2", "q3"], ["q1", "q3"], ["q1", "q2", "q3"]]
        let perTask = 50
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<perTask {
                        _ = try await node.client.append(Self.message(UInt64(task * 1000 + index)), to: queueSets[task % queueSets.count])
                    }
                }
            }
            try await group.waitForAll()
        }
        for queue in ["q1", "q2", "q3"] {
            let messages = try await Self.pullAll(node.client, queue: queue)
            let expected = queueSets.enumerated().reduce(0) { count, entry in
                count + (entry.element.contains(queue) ? 2 * perTask : 0)
            }
            #expect(messages.count == expected, "\(queue)")
            #expect(messages.map(\.offset) == (0..<Int64(expected)).map { $0 }, "\(queue)")
            for message in messages {
                #expect(message.message.queueOffsets.contains(QueueOffset(queue: queue, offset: message.offset)))
            }
        }
        await node.stop()
    }

    @Test("appendInOrder keeps the order of the calls, from before the connection is up")
    func appendInOrderKeepsOrder() async throws {
        let node = try await StoreNodeFixture.start(flushDiskType: .syncFlush)
        // A fresh client: the first calls wait for the connection together.
        let client = StoreNodeClient(address: RemotingAddress(host: "127.0.0.1", port: node.port), logger: testLogger)
        let futures = (0..<1_000 as Range<UInt64>).map { id in client.appendInOrder(Self.message(id), to: ["ordered"]) }
        var results: [AppendResult] = []
        for future in futures { results.append(try await future.get()) }
        #expect(results.map { $0.queueOffsets[0].offset } == (0..<1_000).map { Int64($0) })
        let messages = try await Self.pullAll(client, queue: "ordered")
        #expect(messages.map(\.message.message.messageId) == (0..<1_000).map { UInt64($0) })
        try await client.close()
        await node.stop()
    }

    @Test("metadata calls round-trip: offsets, retained, sessions, journal")
    func metadataRoundTrips() async throws {
        let node = try await StoreNodeFixture.start()
        let store: any LMQMetadataStoring = node.client

        try await store.commitOffset(group: "%LMQ%c1", lmq: "%LMQ%a%", offset: 7)
        try await store.commitOffset(group: "%LMQ%c1", lmq: "%LMQ%b%", offset: 9)
        #expect(try await store.queryOffset(group: "%LMQ%c1", lmq: "%LMQ%a%") == 7)
        #expect(try await store.queryOffset(group: "%LMQ%c1", lmq: "%LMQ%zzz%") == nil)
        #expect(try await store.offsets(group: "%LMQ%c1") == ["%LMQ%a%": 7, "%LMQ%b%": 9])
        #expect(try await store.deleteOffsets(group: "%LMQ%c1") == 2)
        #expect(try await store.offsets(group: "%LMQ%c1") == [:])

        let retained = StoreWireCodecTests.retained
        try await store.setRetained(retained)
        try await store.setRetained(RetainedMessage(topic: "a/c", payload: ByteBuffer(string: "x"), qos: .atMostOnce, storeTimestampMillis: 1))
        try await store.setRetained(RetainedMessage(topic: "z", payload: ByteBuffer(string: "y"), qos: .atMostOnce, storeTimestampMillis: 1))
        #expect(try await store.retained(topic: "a/b", nowMillis: nil) == retained)
        #expect(try await store.retainedCount() == 3)
        let matching = try await store.retained(matching: try TopicFilter("a/+"), nowMillis: nil, limit: 10)
        #expect(Set(matching.map(\.topic)) == ["a/b", "a/c"])
        #expect(try await store.retained(matching: try TopicFilter("a/+"), nowMillis: nil, limit: 1).count == 1)
        #expect(try await store.deleteRetained(topic: "z"))
        #expect(try await store.deleteRetained(topic: "z") == false)
        #expect(try await store.deleteExpiredRetained(nowMillis: Int64.max / 2) == 0)

        let session = StoreWireCodecTests.session
        try await store.putSession(session)
        let readBack = try await store.session(clientIdentifier: session.clientIdentifier)
        #expect(readBack?.subscriptions.map(\.topicFilter).sorted() == session.subscriptions.map(\.topicFilter).sorted())
        #expect(readBack?.will == session.will)
        #expect(readBack?.pendingPubRelPacketIdentifiers == [1, 65_535])
        #expect(try await store.allSessions().map(\.clientIdentifier) == [session.clientIdentifier])
        #expect(try await store.addPendingPubRel(clientIdentifier: session.clientIdentifier, packetIdentifier: 3))
        #expect(try await store.removePendingPubRel(clientIdentifier: session.clientIdentifier, packetIdentifier: 1))
        try await store.setWill(clientIdentifier: session.clientIdentifier, nil)
        try await store.markConnected(clientIdentifier: session.clientIdentifier, gatewayNode: "g:1", protocolVersion: .v5, sessionExpiryIntervalSeconds: 10)
        let connected = try await store.session(clientIdentifier: session.clientIdentifier)
        #expect(connected?.will == nil && connected?.gatewayNode == "g:1" && connected?.disconnectedAtMillis == nil)
        #expect(connected?.pendingPubRelPacketIdentifiers == [3, 65_535])
        try await store.markDisconnected(clientIdentifier: session.clientIdentifier, atMillis: 1_000, sessionExpiryIntervalSeconds: nil)
        #expect(try await store.expiredSessions(nowMillis: 1_000 + 10_001, limit: 10) == [session.clientIdentifier])
        #expect(try await store.expiredSessions(nowMillis: 1_000 + 9_000, limit: 10) == [])

        let delivery = StoreWireCodecTests.delivery
        try await store.applySessionJournal(clientIdentifier: session.clientIdentifier, [
            .subscriptionAdded(StoredSubscription(Subscription(topicFilter: "a/+", maximumQoS: .exactlyOnce)), lmq: "%LMQ%a%+%", startOffset: 0),
            .deliverySent(delivery),
        ])
        #expect(try await store.sessionDeliveries(clientIdentifier: session.clientIdentifier) == [delivery])

        // An unknown client comes back as the same error the local store throws.
        await #expect(throws: LMQMetadataStoreError.sessionNotFound(clientIdentifier: "nobody")) {
            try await store.applySessionJournal(clientIdentifier: "nobody", [.inboundReleased(packetIdentifier: 1)])
        }
        #expect(try await store.deleteSessionAndOffsets(clientIdentifier: session.clientIdentifier))
        #expect(try await store.session(clientIdentifier: session.clientIdentifier) == nil)
        #expect(try await store.deleteSession(clientIdentifier: session.clientIdentifier) == false)
        await node.stop()
    }

    @Test("a watching connection is notified of appends to its queues, and only those")
    func watchNotifiesOnlyWatchers() async throws {
        let node = try await StoreNodeFixture.start()
        let address = RemotingAddress(host: "127.0.0.1", port: node.port)
        // A raw remoting client sees every NOTIFY the node sends, unfiltered.
        let pushed = LockedBox<[QueueOffset]>([])
        let raw = RemotingClient(onServerRequest: { request, _ in
            guard request.code == StoreNodeRequestCode.notify.rawValue,
                let offsets = try? StoreWireCodec.decode([QueueOffset].self, from: request.body) else { return }
            pushed.mutate { $0 += offsets }
        })
        let watchResponse = try await raw.invoke(
            .request(code: StoreNodeRequestCode.watch.rawValue, body: StoreWireCodec.encode(["watched"])), to: address
        ).expectSuccess(from: address)
        #expect(try StoreWireCodec.decode([String: Int64].self, from: watchResponse.body) == ["watched": 0])

        let recorder = ArrivalRecorder()
        node.client.setArrivalHandler(recorder.handler)
        #expect(try await node.client.watch(queues: ["watched"]) == ["watched": 0])

        _ = try await node.client.append(Self.message(1), to: ["unwatched"])
        _ = try await node.client.append(Self.message(2), to: ["watched", "other"])
        _ = try await node.client.append(Self.message(3), to: ["unwatched"])
        _ = try await node.client.append(Self.message(4), to: ["watched"])
        #expect(await recorder.wait { $0.contains(QueueOffset(queue: "watched", offset: 2)) })
        let deadline = ContinuousClock.now + .seconds(10)
        while !pushed.value.contains(QueueOffset(queue: "watched", offset: 2)), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(pushed.value.contains(QueueOffset(queue: "watched", offset: 2)))
        // Notifications on one connection arrive in order, so nothing about the other queues is still on its way.
        #expect(pushed.value.allSatisfy { $0.queue == "watched" })
        #expect(recorder.heard.allSatisfy { $0.queue == "watched" })

        // After UNWATCH the client hears nothing more of the queue.
        node.client.unwatch(queues: ["watched"])
        #expect(node.client.watchedQueues.isEmpty)
        await raw.shutdown()
        await node.stop()
    }

    @Test("after the node restarts, the client watches again by itself and hears the current max offsets")
    func clientRewatchesAfterRestart() async throws {
        let folder = TemporaryFolder()
        let configuration = BrokerConfiguration.testing(storePath: folder.path, port: try freePortBelowEphemeralRange())
        let first = StoreNodeServer(configuration: configuration, logger: testLogger)
        let port = try await first.start()
        let address = RemotingAddress(host: "127.0.0.1", port: port)
        let client = StoreNodeClient(address: address, logger: testLogger)
        let recorder = ArrivalRecorder()
        client.setArrivalHandler(recorder.handler)
        #expect(try await client.watch(queues: ["q"]) == ["q": 0])
        _ = try await client.append(Self.message(1), to: ["q"])
        #expect(await recorder.wait { $0.contains(QueueOffset(queue: "q", offset: 1)) })

        await first.shutdown()
        // While the node is down, a message arrives through another node's process (here: the store
        // opened directly), so its notification can only be made up for by the re-watch.
        let store = try LMQStore(configuration: configuration.store, logger: testLogger)
        _ = try await store.append(Self.message(2), to: ["q"])
        _ = try await store.append(Self.message(3), to: ["q"])
        try store.close()

        let second = StoreNodeServer(configuration: configuration, logger: testLogger)
        #expect(try await second.start() == port)
        #expect(await recorder.wait { $0.contains(QueueOffset(queue: "q", offset: 3)) })

        // The re-watch is registered on the new node: a new append is pushed.
        let other = StoreNodeClient(address: address, logger: testLogger)
        _ = try await other.append(Self.message(4), to: ["q"])
        #expect(await recorder.wait { $0.contains(QueueOffset(queue: "q", offset: 4)) })
        try await other.close()
        try await client.close()
        await second.shutdown()
        folder.remove()
    }

    @Test("a node that cannot be reached fails with an error naming its address")
    func unreachableNodeIsNamed() async throws {
        let refusing = try RefusingPort()
        let port = refusing.port
        let client = StoreNodeClient(address: RemotingAddress(host: "127.0.0.1", port: port), logger: testLogger)
        do {
            _ = try await client.queueCount()
            Issue.record("expected a connection error")
        } catch let error as RemotingError {
            #expect(error == .connectionRefused(address: "127.0.0.1:\(port)"))
            #expect("\(error)".contains("127.0.0.1:\(port)"))
        }
        try await client.close()
        withExtendedLifetime(refusing) {}
    }
}

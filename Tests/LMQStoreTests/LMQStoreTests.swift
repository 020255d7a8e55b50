import Foundation
import LMQStore
import MQTTCore
import NIOCore
import Testing

@Suite("LMQ store")
struct LMQStoreTests {
    @Test("a message is written once and gets the next offset in every queue it is dispatched to")
    func multiDispatch() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try LMQStore(configuration: .testing(directory.path))
        defer { try? store.close() }

        let properties: MQTTProperties = [.userProperty("k", "v"), .contentType("text/plain"), .messageExpiryInterval(30)]
        let first = try await store.append(
            LMQMessage(topic: "a/b/c", payload: ByteBuffer(string: "one"), qos: .exactlyOnce, retain: true, messageId: 7, properties: properties),
            to: ["%LMQ%a%b%c%", "%LMQ%a%+%c%", "%LMQ%a%#%", "%LMQ%a%b%c%"]
        )
        #expect(first.queueOffsets == [.init(queue: "%LMQ%a%b%c%", offset: 0), .init(queue: "%LMQ%a%+%c%", offset: 0), .init(queue: "%LMQ%a%#%", offset: 0)])
        let second = try await store.append(message("a/x/c", "two"), to: ["%LMQ%a%x%c%", "%LMQ%a%+%c%", "%LMQ%a%#%"])
        #expect(second.queueOffsets.map(\.offset) == [0, 1, 1])
        #expect(second.commitLogPosition > first.commitLogPosition)

        let wildcard = try store.read(queue: "%LMQ%a%+%c%", from: 0)
        #expect(wildcard.status == .found)
        #expect(wildcard.messages.map(\.offset) == [0, 1])
        #expect(wildcard.messages.map { String(buffer: $0.message.message.payload) } == ["one", "two"])
        let stored = wildcard.messages[0].message
        #expect(stored.message.topic == "a/b/c")
        #expect(stored.firstTopic == "a")
        #expect(stored.message.qos == .exactlyOnce)
        #expect(stored.message.retain)
        #expect(stored.message.messageId == 7)
        #expect(stored.message.properties == properties)
        #expect(stored.queueOffsets == first.queueOffsets)
        #expect(stored.commitLogPosition == first.commitLogPosition)
        #expect(wildcard.nextOffset == 2)
        #expect(store.maxOffset(queue: "%LMQ%a%+%c%") == 2)
        #expect(store.minOffset(queue: "%LMQ%a%+%c%") == 0)
        #expect(store.maxOffset(queue: "%LMQ%nope%") == 0)
        #expect(try store.read(queue: "%LMQ%a%+%c%", from: 2).status == .noNewMessages)
        #expect(try store.read(queue: "%LMQ%a%+%c%", from: 5).status == .offsetPastEnd)
        #expect(try store.read(queue: "%LMQ%a%+%c%", from: 1, maxMessages: 1).messages.map(\.offset) == [1])
    }

    @Test("reads stop at maxBytes but always return at least one message")
    func maxBytes() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try LMQStore(configuration: .testing(directory.path))
        defer { try? store.close() }
        for index in 0..<10 {
            _ = try await store.append(LMQMessage(topic: "t", payload: ByteBuffer(repeating: UInt8(index), count: 1000)), to: ["q"])
        }
        let small = try store.read(queue: "q", from: 0, maxMessages: 100, maxBytes: 10)
        #expect(small.messages.count == 1)
        let some = try store.read(queue: "q", from: 0, maxMessages: 100, maxBytes: 3500)
        #expect(some.messages.count == 3)
        #expect(some.nextOffset == 3)
    }

    @Test("bad appends are refused before anything is written")
    func refusals() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try LMQStore(configuration: .testing(directory.path, segmentSize: 64 * 1024))
        defer { try? store.close() }
        await #expect(throws: LMQStoreError.invalidQueueList(count: 0, limit: 1024)) { try await store.append(message("t", "x"), to: []) }
        await #expect(throws: LMQStoreError.invalidQueueName("")) { try await store.append(message("t", "x"), to: [""]) }
        await #expect(throws: LMQStoreError.self) {
            try await store.append(LMQMessage(topic: "t", payload: ByteBuffer(repeating: 0, count: 70_000)), to: ["q"])
        }
        #expect(store.queueCount == 0)
        _ = try await store.append(message("t", "ok"), to: ["q"])
        #expect(try readAll(store, "q").count == 1)
    }

    @Test("concurrent appends with overlapping queue sets give every queue gap-free offsets pointing at its own messages")
    func concurrentOffsetsAreGapFree() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try LMQStore(configuration: .testing(directory.path, segmentSize: 256 * 1024))
        defer { try? store.close() }
        let queues = (0..<8).map { "%LMQ%q\($0)%" }
        let tasks = 16
        let perTask = 150
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var rng = SystemRandomNumberGenerator()
                    for index in 0..<perTask {
                        let chosen = queues.filter { _ in Bool.random(using: &rng) }
                        let targets = chosen.isEmpty ? [queues[task % queues.count]] : chosen
                        let id = UInt64(task * 10_000 + index)
                        let result = try await store.append(message("t/\(task)", "\(id)", id: id), to: targets)
                        precondition(result.queueOffsets.map(\.queue) == targets)
                    }
                }
            }
            try await group.waitForAll()
        }
        var total = 0
        for queue in queues {
            let messages = try readAll(store, queue)
            #expect(messages.map(\.offset) == Array(0..<Int64(messages.count)), "\(queue) offsets not gap-free")
            #expect(store.maxOffset(queue: queue) == Int64(messages.count))
            for entry in messages {
                // The record says it went to this queue, at this very offset.
                #expect(entry.message.queueOffsets.contains(QueueOffset(queue: queue, offset: entry.offset)))
            }
            // Each message id appears once per queue.
            #expect(Set(messages.map(\.message.message.messageId)).count == messages.count)
            total += messages.count
        }
        #expect(total >= tasks * perTask)
    }

    @Test("SYNC_FLUSH appends complete after their record is synced; concurrent appends share syncs")
    func syncFlush() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try LMQStore(configuration: .testing(directory.path, flush: .syncFlush))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<32 {
                group.addTask {
                    for index in 0..<20 { _ = try await store.append(message("s", "\(task)-\(index)"), to: ["q\(task % 4)"]) }
                }
            }
            try await group.waitForAll()
        }
        try store.close()
        let reopened = try LMQStore(configuration: .testing(directory.path, flush: .syncFlush))
        defer { try? reopened.close() }
        #expect((0..<4).map { reopened.maxOffset(queue: "q\($0)") } == [160, 160, 160, 160])
    }

    @Test("messages survive close and reopen, across several segments")
    func reopen() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var expected: [String] = []
        do {
            let store = try LMQStore(configuration: .testing(directory.path, segmentSize: 64 * 1024))
            for index in 0..<500 {
                let text = "message-\(index)-" + String(repeating: "x", count: index % 300)
                expected.append(text)
                _ = try await store.append(message("r/\(index % 3)", text), to: ["all", "r\(index % 3)"])
            }
            try store.close()
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/commitlog")
        #expect(files.count >= 2)
        let store = try LMQStore(configuration: .testing(directory.path, segmentSize: 64 * 1024))
        defer { try? store.close() }
        #expect(try readAll(store, "all").map { String(buffer: $0.message.message.payload) } == expected)
        #expect(try readAll(store, "r1").count == (0..<500).filter { $0 % 3 == 1 }.count)
        let next = try await store.append(message("r/0", "after"), to: ["all"])
        #expect(next.queueOffsets == [.init(queue: "all", offset: 500)])
    }

    @Test("a waiter is woken by the append that passes its offset; cancellation and close end waits")
    func arrivalNotification() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try LMQStore(configuration: .testing(directory.path))
        let arrivals = ArrivalLog()
        let listener = store.addArrivalListener { arrivals.record($0) }
        async let woken: Void = store.waitForMessages(queue: "w", after: 0)
        try await Task.sleep(for: .milliseconds(50))
        _ = try await store.append(message("w", "first"), to: ["w"])  // offset 0: not past 0 yet
        _ = try await store.append(message("w", "second"), to: ["w", "other"])  // offset 1
        try await woken
        #expect(store.maxOffset(queue: "w") == 2)
        try await store.waitForMessages(queue: "w", after: 1)  // already there: returns at once
        #expect(arrivals.all == [[.init(queue: "w", offset: 0)], [.init(queue: "w", offset: 1), .init(queue: "other", offset: 0)]])
        store.removeArrivalListener(listener)

        let cancelled = Task { try await store.waitForMessages(queue: "never", after: 0) }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }

        let pending = Task { try await store.waitForMessages(queue: "never", after: 10) }
        try await Task.sleep(for: .milliseconds(50))
        try store.close()
        await #expect(throws: LMQStoreError.closed) { try await pending.value }
    }

    @Test("retention deletes whole old segments; reads below the new minimum say where to resume")
    func retention() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var configuration = LMQStore.Configuration.testing(directory.path, segmentSize: 32 * 1024)
        configuration.maxCommitLogBytes = 3 * 32 * 1024
        let store = try LMQStore(configuration: configuration)
        defer { try? store.close() }
        for index in 0..<400 {
            _ = try await store.append(LMQMessage(topic: "old", payload: ByteBuffer(repeating: UInt8(index % 256), count: 500)), to: ["q", "q\(index % 2)"])
        }
        let deleted = try store.runRetention(nowMillis: 0)
        #expect(!deleted.isEmpty)
        let minOffset = store.minOffset(queue: "q")
        #expect(minOffset > 0)
        let early = try store.read(queue: "q", from: 0)
        #expect(early.status == .offsetMovedForward)
        #expect(early.nextOffset == minOffset)
        let rest = try readAll(store, "q", from: minOffset)
        #expect(rest.first?.offset == minOffset)
        #expect(rest.last?.offset == 399)
        #expect(rest.map(\.offset) == Array(minOffset...399))
        // Time-based: everything older than fileReservedTime (72 h) in the future goes, but the segment being written stays.
        _ = try store.runRetention(nowMillis: Int64(Date().timeIntervalSince1970 * 1000) + 100 * 3_600_000)
        #expect(store.minOffset(queue: "q") > minOffset)
        _ = try await store.append(message("new", "still works"), to: ["q"])
        #expect(store.maxOffset(queue: "q") == 401)
    }
}

final class ArrivalLog: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var events: [[QueueOffset]] = []
    func record(_ event: [QueueOffset]) { lock.withLock { events.append(event) } }
    var all: [[QueueOffset]] { lock.withLock { events } }
}

@Suite("LMQ store at scale")
struct LMQStoreScaleTests {
    /// The scale that breaks one-directory-per-queue designs, kept small enough for every test run;
    /// `lmqstore-tool many-queues --count 1000000` runs the same check at a million (docs/benchmarks.md).
    @Test("100,000 queues in a handful of files, each read back before and after reopening")
    func manyQueues() async throws {
        let directory = TemporaryDirectory("many")
        defer { directory.remove() }
        let count = 100_000
        var store = try LMQStore(configuration: .testing(directory.path, segmentSize: 8 * 1024 * 1024))
        for first in stride(from: 0, to: count, by: 4) {
            _ = try await store.append(message("many/\(first)", "\(first)"), to: (first..<first + 4).map { "%LMQ%many%\($0)%" })
        }
        #expect(store.queueCount == count)
        func readEach(_ store: LMQStore) throws {
            for queue in 0..<count {
                let result = try store.read(queue: "%LMQ%many%\(queue)%", from: 0)
                guard result.messages.count == 1, String(buffer: result.messages[0].message.message.payload) == "\(queue / 4 * 4)" else {
                    Issue.record("queue \(queue) did not read back its message")
                    return
                }
            }
        }
        try readEach(store)
        try store.close()
        store = try LMQStore(configuration: .testing(directory.path, segmentSize: 8 * 1024 * 1024))
        defer { try? store.close() }
        #expect(store.queueCount == count)
        try readEach(store)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/index").count
            + FileManager.default.contentsOfDirectory(atPath: directory.path + "/commitlog").count
        #expect(files < 100, "\(files) files for \(count) queues")
    }
}

import Foundation
import LMQStore
import MQTTCore
import NIOCore
import Testing

@Suite("Written appends and their durability")
struct PendingAppendTests {
    @Test("writes take their offsets in call order and are readable at once; under SYNC_FLUSH one wait covers earlier writes")
    func writeThenWait() async throws {
        let directory = TemporaryDirectory("pending")
        defer { directory.remove() }
        let store = try LMQStore(configuration: .testing(directory.path, flush: .syncFlush))
        var pending: [LMQStore.PendingAppend] = []
        for index in 0..<50 {
            pending.append(try store.write(message("p/t", "m\(index)"), to: ["q", "r\(index % 2)"]))
        }
        #expect(pending.map { $0.result.queueOffsets[0].offset } == (0..<50).map(Int64.init))
        #expect(try readAll(store, "q").map(\.message.message.payload) == (0..<50).map { ByteBuffer(string: "m\($0)") })
        // Waiting for the last covers the others: they are synced when it is.
        try await store.waitUntilDurable(pending[49])
        for earlier in pending.prefix(49) {
            try await store.waitUntilDurable(earlier)
        }
        try store.close()
        // Written and synced before close: all there after reopening.
        let reopened = try LMQStore(configuration: .testing(directory.path, flush: .syncFlush))
        #expect(reopened.maxOffset(queue: "q") == 50)
        #expect(reopened.maxOffset(queue: "r1") == 25)
        try reopened.close()
    }
}

@Suite("Decoded-record cache")
struct DecodedRecordCacheTests {
    @Test("readers of the same records, from one queue or several, get the same messages as a fresh decode")
    func sameMessages() async throws {
        let directory = TemporaryDirectory("decoded")
        defer { directory.remove() }
        let store = try LMQStore(configuration: .testing(directory.path))
        for index in 0..<200 {
            _ = try await store.append(message("fan/\(index % 3)", "m\(index)"), to: ["fan", "copy\(index % 2)"])
        }
        let first = try readAll(store, "fan")
        let second = try readAll(store, "fan")
        #expect(first == second)
        #expect(first.map(\.message.message.payload) == (0..<200).map { ByteBuffer(string: "m\($0)") })
        // The same records through other queues: the same stored messages, other offsets.
        let copies = try readAll(store, "copy0") + readAll(store, "copy1")
        #expect(Set(copies.map(\.message)) == Set(first.map(\.message)))
        try store.close()
        // A fresh store decodes everything again and agrees.
        let reopened = try LMQStore(configuration: .testing(directory.path))
        #expect(try readAll(reopened, "fan") == first)
        try reopened.close()
    }
}

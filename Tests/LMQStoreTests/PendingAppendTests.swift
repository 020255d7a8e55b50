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

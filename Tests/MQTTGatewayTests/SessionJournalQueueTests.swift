import LMQStore
import MQTTCore
@testable import MQTTGateway
import Testing

@Suite("Session journal queue")
struct SessionJournalQueueTests {
    typealias Queue = SessionJournalQueue

    static func packet(_ identifier: UInt16) -> MQTTPacket { .pubAck(PubAckPacket(packetIdentifier: identifier)) }
    static let barrier = SessionJournalEntry.inboundReleased(packetIdentifier: 1)
    static let lazy = SessionJournalEntry.consumeOffset(topicFilter: "a", lmq: "%LMQ%a", offset: 3)

    // `#expect` cannot call mutating methods itself.
    static func hold(_ queue: inout Queue, _ step: Queue.Held) -> Bool { queue.hold(step) }
    static func begin(_ queue: inout Queue) -> [SessionJournalEntry]? { queue.beginCommit() }
    static func finish(_ queue: inout Queue) -> [Queue.Held] { queue.commitFinished() }
    static func fail(_ queue: inout Queue) -> [@Sendable () -> Void] { queue.commitFailed() }

    /// The packet identifiers of the packets among `steps`.
    static func identifiers(_ steps: [Queue.Held]) -> [UInt16] {
        steps.compactMap { step in
            if case .packet(.pubAck(let ack)) = step { return ack.packetIdentifier }
            return nil
        }
    }

    @Test("nothing is held without a barrier; lazy entries never hold packets")
    func lazyEntriesHoldNothing() {
        var queue = Queue()
        #expect(!Self.hold(&queue, .packet(Self.packet(1))))
        queue.recordLazily(Self.lazy)
        #expect(!Self.hold(&queue, .packet(Self.packet(2))))
        #expect(Self.begin(&queue) == [Self.lazy])
        // A lazy commit in flight holds nothing either.
        #expect(!Self.hold(&queue, .packet(Self.packet(3))))
        #expect(Self.finish(&queue).isEmpty)
        #expect(queue.isIdle)
    }

    @Test("packets after a barrier wait for its commit and then go out in order")
    func barrierHoldsLaterPackets() {
        var queue = Queue()
        queue.recordBarrier(Self.barrier)
        #expect(Self.hold(&queue, .packet(Self.packet(1))))
        #expect(Self.hold(&queue, .packet(Self.packet(2))))
        #expect(Self.begin(&queue) == [Self.barrier])
        #expect(Self.begin(&queue) == nil, "one commit at a time")
        #expect(Self.hold(&queue, .packet(Self.packet(3))), "packets keep their order behind held ones")
        #expect(Self.identifiers(Self.finish(&queue)) == [1, 2, 3])
        #expect(queue.isIdle)
        #expect(!Self.hold(&queue, .packet(Self.packet(4))))
    }

    @Test("a barrier recorded during a commit holds what follows it until the next commit")
    func barrierDuringCommit() {
        var queue = Queue()
        queue.recordBarrier(Self.barrier)
        #expect(Self.hold(&queue, .packet(Self.packet(1))))
        let first = queue.beginCommit()
        #expect(first?.count == 1)
        #expect(Self.hold(&queue, .packet(Self.packet(2))))
        queue.recordBarrier(.inboundReleased(packetIdentifier: 2))
        queue.recordLazily(Self.lazy)
        #expect(Self.hold(&queue, .packet(Self.packet(3))))
        // The first commit frees what came before the second barrier only.
        #expect(Self.identifiers(Self.finish(&queue)) == [1, 2])
        #expect(queue.holdsPackets)
        #expect(Self.begin(&queue) == [.inboundReleased(packetIdentifier: 2), Self.lazy])
        #expect(Self.identifiers(Self.finish(&queue)) == [3])
        #expect(queue.isIdle)
    }

    @Test("a lazy commit in flight does not stop a barrier from holding what follows it")
    func barrierBehindLazyCommit() {
        var queue = Queue()
        queue.recordLazily(Self.lazy)
        _ = queue.beginCommit()
        queue.recordBarrier(Self.barrier)
        #expect(Self.hold(&queue, .packet(Self.packet(1))))
        #expect(Self.finish(&queue).isEmpty, "the barrier is not in the finished commit")
        #expect(Self.begin(&queue) == [Self.barrier])
        #expect(Self.identifiers(Self.finish(&queue)) == [1])
    }

    @Test("a failed commit releases no packet but returns the callbacks")
    func failedCommit() {
        var queue = Queue()
        queue.recordBarrier(Self.barrier)
        #expect(Self.hold(&queue, .packet(Self.packet(1))))
        #expect(Self.hold(&queue, .callback({})))
        #expect(Self.hold(&queue, .close(.init(kind: .serverError, reasonCode: .unspecifiedError, detail: "test"))))
        _ = queue.beginCommit()
        #expect(Self.fail(&queue).count == 1)
        #expect(queue.isIdle)
    }
}

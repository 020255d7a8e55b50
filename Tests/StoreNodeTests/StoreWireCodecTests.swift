import LMQStore
import MQTTCore
import NIOCore
import StoreNode
import Testing

@Suite("Store-node wire codec")
struct StoreWireCodecTests {
    static let properties: MQTTProperties = [
        .payloadFormatIndicator(1), .messageExpiryInterval(60), .contentType("text/plain"), .responseTopic("r/1"),
        .correlationData(ByteBuffer(bytes: [1, 2, 3])), .subscriptionIdentifier(268_435_455), .topicAlias(7),
        .userProperty("k", "v"), .userProperty("k", "w"), .maximumPacketSize(1024), .reasonString("é ü"),
    ]

    static let message = LMQMessage(
        topic: "sensors/7/temp", payload: ByteBuffer(string: "21.5"), qos: .exactlyOnce, retain: true, messageId: .max,
        properties: properties, originClientIdentifier: "device-7"
    )

    static let will = StoredWill(
        topic: "wills/7", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce, retain: true, properties: [.willDelayInterval(5)],
        delayIntervalSeconds: 5
    )

    static let subscription = StoredSubscription(
        Subscription(topicFilter: "$share/g/a/+/c", maximumQoS: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend),
        subscriptionIdentifier: 42
    )

    static let session = SessionRecord(
        clientIdentifier: "device-7", protocolVersion: .v5, subscriptions: [subscription, StoredSubscription(Subscription(topicFilter: "x/#"))],
        will: will, sessionExpiryIntervalSeconds: SessionRecord.neverExpires, pendingPubRelPacketIdentifiers: [1, 65_535],
        disconnectedAtMillis: 1_700_000_000_000, gatewayNode: "10.0.0.1:7001"
    )

    static let delivery = SessionDelivery(topicFilter: "a/+", queueOffset: 99, packetIdentifier: 12, qos: .exactlyOnce, state: .released)

    static let stored = StoredMessage(
        message: message, firstTopic: "sensors", storeTimestampMillis: 1_700_000_000_123, commitLogPosition: 4096,
        queueOffsets: [QueueOffset(queue: "%LMQ%sensors%7%temp%", offset: 3), QueueOffset(queue: "%LMQ%sensors%#%", offset: 0)]
    )

    static let journal: [SessionJournalEntry] = [
        .deliverySent(delivery),
        .deliveryState(topicFilter: "a/+", queueOffset: 99, .completed),
        .unfinishedDeliveries([delivery, SessionDelivery(topicFilter: "b", queueOffset: 0, packetIdentifier: 1, qos: .atLeastOnce, state: .sent)]),
        .consumeOffset(topicFilter: "a/+", lmq: "%LMQ%a%+%", offset: 100),
        .subscriptionAdded(subscription, lmq: "%LMQ%a%+%c%", startOffset: 5),
        .subscriptionRemoved(topicFilter: "x/#", lmq: "%LMQ%x%#%"),
        .inboundReleased(packetIdentifier: 9),
        .disconnected(atMillis: 1_700_000_000_000, sessionExpiryIntervalSeconds: 30, will: will),
        .disconnected(atMillis: 1, sessionExpiryIntervalSeconds: 0, will: nil),
    ]

    static let readResult = LMQReadResult(
        status: .found, messages: [.init(offset: 3, message: stored), .init(offset: 4, message: stored)], nextOffset: 5, minOffset: 0, maxOffset: 9
    )

    static let retained = RetainedMessage(
        topic: "a/b", payload: ByteBuffer(string: "r"), qos: .atLeastOnce, properties: [.contentType("c")], storeTimestampMillis: 77
    )

    /// Every value a request or response of the protocol carries, encoded alone.
    static func samples() -> [(name: String, bytes: ByteBuffer, roundTrips: (ByteBuffer) throws -> Bool)] {
        func sample<T: StoreWireCodable & Equatable>(_ name: String, _ value: T) -> (String, ByteBuffer, (ByteBuffer) throws -> Bool) {
            (name, StoreWireCodec.encode(value), { bytes in try StoreWireCodec.decode(T.self, from: bytes) == value })
        }
        return [
            sample("LMQMessage", message),
            sample("LMQMessage without properties", LMQMessage(topic: "t", payload: ByteBuffer())),
            sample("StoredMessage", stored),
            sample("AppendResult", AppendResult(commitLogPosition: 1 << 40, queueOffsets: stored.queueOffsets, storeTimestampMillis: -1)),
            sample("LMQReadResult", readResult),
            sample("LMQReadResult empty", LMQReadResult(status: .offsetMovedForward, messages: [], nextOffset: 7, minOffset: 7, maxOffset: 9)),
            sample("queue offsets", ["q1": Int64(3), "q2": Int64.max]),
            sample("RetainedMessage", retained),
            sample("retained list", [retained, retained]),
            sample("SessionRecord", session),
            sample("SessionRecord minimal", SessionRecord(clientIdentifier: "c", protocolVersion: .v3_1_1, sessionExpiryIntervalSeconds: 0)),
            sample("StoredWill", will),
            sample("StoredSubscription", subscription),
            sample("SessionDelivery", delivery),
            sample("journal", journal),
            sample("optional offset", Int64?.some(5)),
            sample("no offset", Int64?.none),
        ]
    }

    @Test("every value survives a round trip")
    func roundTrips() throws {
        for sample in Self.samples() {
            #expect(try sample.roundTrips(sample.bytes), "\(sample.name)")
        }
    }

    @Test("every truncation of every value is rejected with an error")
    func truncationIsRejected() throws {
        for sample in Self.samples() {
            for length in 0..<sample.bytes.readableBytes {
                let truncated = sample.bytes.getSlice(at: sample.bytes.readerIndex, length: length)!
                #expect(throws: StoreWireError.self, "\(sample.name) cut at \(length)") { _ = try sample.roundTrips(truncated) }
            }
        }
    }

    @Test("bytes after a value are rejected")
    func trailingBytesAreRejected() throws {
        var bytes = StoreWireCodec.encode(Self.message)
        bytes.writeInteger(UInt8(0))
        #expect(throws: StoreWireError.trailingBytes(count: 1)) { try StoreWireCodec.decode(LMQMessage.self, from: bytes) }
    }

    @Test("out-of-range values are rejected with the field named")
    func invalidValuesAreRejected() throws {
        // QoS 3: the byte after the topic.
        var message = StoreWireCodec.encode(Self.message)
        let qosIndex = message.readerIndex + 4 + Self.message.topic.utf8.count
        message.setInteger(UInt8(3), at: qosIndex)
        #expect(throws: StoreWireError.invalidValue(field: "qos", offset: qosIndex - message.readerIndex, reason: "unknown value 3")) {
            try StoreWireCodec.decode(LMQMessage.self, from: message)
        }
        // A retain flag of 2.
        var retainFlag = StoreWireCodec.encode(Self.message)
        retainFlag.setInteger(UInt8(2), at: qosIndex + 1)
        #expect(throws: StoreWireError.self) { try StoreWireCodec.decode(LMQMessage.self, from: retainFlag) }
        // An unknown journal tag.
        #expect(throws: StoreWireError.invalidValue(field: "journal entry tag", offset: 0, reason: "unknown tag 99")) {
            try StoreWireCodec.decode(SessionJournalEntry.self, from: ByteBuffer(bytes: [99]))
        }
        // A count claiming four billion elements in a few bytes: refused before allocating.
        #expect(throws: StoreWireError.self) {
            try StoreWireCodec.decode([SessionRecord].self, from: ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0]))
        }
        // A string length past the end.
        #expect(throws: StoreWireError.self) {
            try StoreWireCodec.decode(String.self, from: ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 0x41]))
        }
    }

    @Test("random garbage never traps: it decodes or throws StoreWireError")
    func garbageIsRejected() throws {
        var generator = SplitMix64(seed: 0x5EED_0001)
        var rejected = 0
        for round in 0..<2_000 {
            let length = Int(generator.next() % 96)
            let bytes = ByteBuffer(bytes: (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
            let decoded: Bool
            switch round % 4 {
            case 0: decoded = (try? StoreWireCodec.decode(LMQReadResult.self, from: bytes)) != nil
            case 1: decoded = (try? StoreWireCodec.decode(SessionRecord.self, from: bytes)) != nil
            case 2: decoded = (try? StoreWireCodec.decode([SessionJournalEntry].self, from: bytes)) != nil
            default: decoded = (try? StoreWireCodec.decode(LMQMessage.self, from: bytes)) != nil
            }
            if !decoded { rejected += 1 }
        }
        // Random bytes are almost never a valid value; seed 0x5EED0001.
        #expect(rejected > 1_900)
    }

    @Test("mutating single bytes of a valid body never traps")
    func bitFlipsNeverTrap() throws {
        var generator = SplitMix64(seed: 0x5EED_0002)
        let original = StoreWireCodec.encode(Self.session)
        var rejected = 0
        for _ in 0..<2_000 {
            var bytes = original
            let index = bytes.readerIndex + Int(generator.next() % UInt64(bytes.readableBytes))
            bytes.setInteger(UInt8(truncatingIfNeeded: generator.next()), at: index)
            // Either outcome is fine for one flip (a flipped payload byte is still a valid record); what
            // matters is that decoding returns.
            if (try? StoreWireCodec.decode(SessionRecord.self, from: bytes)) == nil { rejected += 1 }
        }
        #expect(rejected > 0)
    }
}

/// A small seeded generator, so a failing garbage round can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

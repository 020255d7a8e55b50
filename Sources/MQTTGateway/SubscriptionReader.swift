import LMQStore
import MQTTCore

/// One subscription of a connection, reading its queue. A class because the delivery loop and the
/// actions it triggers both update it while it sits in the handler's table. Event-loop bound.
final class SubscriptionReader {
    /// The key in the connection's table and the session's records: the topic filter as the client wrote
    /// it, or `peerToPeerKey`.
    let key: String
    /// nil for the peer-to-peer queue, which every session reads without subscribing.
    let filter: TopicFilter?
    let queue: String
    var options: Subscription
    var subscriptionIdentifier: UInt32?
    /// The next offset to read from the store.
    var readOffset: Int64
    /// Read, not yet offered to the machine (or offered and refused for now), in offset order.
    var buffered: [LMQReadResult.Message] = []
    /// Retained messages to send for this subscription, before anything of its queue.
    var retained: [RetainedMessage] = []
    /// Offered and not finished.
    var outstanding: Set<Int64> = []
    /// Offsets at or above `readOffset` that must not be delivered again: deliveries of a resumed session
    /// that are finished or being resent.
    var skippedOffsets: Set<Int64> = []
    /// The machine answered `retryDeliveryLater`: wait for an acknowledgement before offering more.
    var blocked = false
    /// The consume offset last handed to the store (persistent sessions).
    var committedOffset: Int64
    /// A resumed session's backlog cut in the middle (`queuedMessagesOverflow=dropNewest`): on reaching the
    /// first offset, reading jumps to the second.
    var skipAhead: (from: Int64, to: Int64)?
    /// The group of a shared subscription, which hands out the queue's messages instead of `readOffset`.
    var group: SharedSubscriptionGroup?
    /// A shared subscription's messages taken from the group and not finished, to hand back when it leaves.
    var sharedUnfinished: [Int64: LMQReadResult.Message] = [:]

    /// The key of the peer-to-peer reader: not a valid topic filter (`#` must be a level of its own), so no subscription can have it.
    static let peerToPeerKey = "#p2p"

    init(
        filter: TopicFilter?, key: String, queue: String, options: Subscription, subscriptionIdentifier: UInt32?, readOffset: Int64,
        committedOffset: Int64
    ) {
        self.key = key
        self.filter = filter
        self.queue = queue
        self.options = options
        self.subscriptionIdentifier = subscriptionIdentifier
        self.readOffset = readOffset
        self.committedOffset = committedOffset
    }

    var grantedQoS: MQTTQoS { options.maximumQoS }

    /// The consume offset: every message below it is finished.
    var acknowledgedOffset: Int64 {
        min(outstanding.min() ?? .max, buffered.first?.offset ?? .max, readOffset)
    }

    /// Takes a batch read from the store, leaving out the skipped offsets.
    func accept(_ messages: [LMQReadResult.Message], nextOffset: Int64) {
        if skippedOffsets.isEmpty {
            buffered = messages
        } else {
            buffered = messages.filter { !skippedOffsets.contains($0.offset) }
            skippedOffsets = skippedOffsets.filter { $0 >= nextOffset }
        }
        readOffset = nextOffset
    }
}

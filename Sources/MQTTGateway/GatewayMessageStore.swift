import LMQStore
import MQTTCore
import NIOCore
import StoreNode

/// The message side of the store as the gateway uses it: appends, reads of light message queues, their
/// offsets and arrival notifications.
///
/// Two implementations: ``LocalMessageStore`` over the ``LMQStore`` in this process (standalone mode) and
/// ``RemoteMessageStore`` over a store node (cluster mode). Reads and offsets are synchronous, because the
/// gateway calls them on its event loops in the middle of a delivery pass; the remote store answers them
/// from what it has already fetched and fetches the rest in the background, telling the arrival listeners
/// when it has it.
protocol GatewayMessageStore: Sendable {
    /// Writes `message` to `queues`, in call order: two calls made one after the other (on one event loop)
    /// are stored in that order. The returned value says when it may be acknowledged.
    func write(_ message: LMQMessage, to queues: [String]) throws -> GatewayPendingWrite

    /// Writes `message` to `queues` and returns once it may be acknowledged.
    func append(_ message: LMQMessage, to queues: [String]) async throws -> AppendResult

    /// Up to `maxMessages` messages of `queue` from `offset`. A remote store answers `.noNewMessages`
    /// for what it has not fetched yet, starts fetching it, and tells the arrival listeners when it has.
    func read(queue: String, from offset: Int64, maxMessages: Int) throws -> LMQReadResult

    /// The offset the next message of `queue` will get, as far as this gateway knows: exact for the local
    /// store; for a remote one, exact for a prepared queue as of the last notification.
    func maxOffset(queue: String) -> Int64

    /// The queues of `queues` whose offsets are not known yet: `prepare` them before reading `maxOffset`
    /// to start a subscription. Always empty for the local store.
    func unpreparedQueues(_ queues: [String]) -> [String]

    /// The wildcard filters of `filters` that the store does not dispatch to yet: `prepare` registers them,
    /// so that a message published anywhere after the SUBACK reaches them. Always empty for the local
    /// store, which dispatches by this gateway's own registry.
    func unregisteredFilters(_ filters: [TopicFilter]) -> [TopicFilter]

    /// The topics of `topics` whose store node is not known yet (several store nodes): `prepareRoutes` them
    /// before writing. Always empty for the local store.
    func unroutedTopics(_ topics: [String]) -> [String]

    /// Learns which store node holds each topic of `topics`.
    func prepareRoutes(_ topics: [String]) async throws

    /// Registers `registering` for dispatch, then learns the current end of `queues` and from then on
    /// follows them (notifications).
    func prepare(queues: [String], registering: [DispatchRegistration]) async throws

    /// Called with the queues that have new messages (or, for a remote store, new fetched messages).
    /// Runs on whatever thread noticed them: keep it short.
    func addArrivalListener(_ listener: @escaping @Sendable ([QueueOffset]) -> Void) -> UInt64
    func removeArrivalListener(_ id: UInt64)

    /// How many queues the store holds (a remote store: as of its last report).
    var queueCount: Int { get }

    /// Where the store is, for logs: a directory or a node address.
    var location: String { get }

    func close() async throws
}

/// A write handed to the store: settled (acknowledgeable now), or to be waited for.
struct GatewayPendingWrite: Sendable {
    /// Nothing to wait for before acknowledging: the local store under ASYNC_FLUSH, or a QoS 0 message.
    var isSettled: Bool
    /// Returns once the message may be acknowledged, with where it was stored.
    var completion: @Sendable () async throws -> AppendResult
}

/// The ``LMQStore`` of this process.
final class LocalMessageStore: GatewayMessageStore {
    let store: LMQStore

    init(_ store: LMQStore) {
        self.store = store
    }

    func write(_ message: LMQMessage, to queues: [String]) throws -> GatewayPendingWrite {
        let pending = try store.write(message, to: queues)
        let settled = store.configuration.flushDiskType == .asyncFlush || message.qos == .atMostOnce
        return GatewayPendingWrite(isSettled: settled) { [store] in
            try await store.waitUntilDurable(pending)
            return pending.result
        }
    }

    func append(_ message: LMQMessage, to queues: [String]) async throws -> AppendResult {
        try await store.append(message, to: queues)
    }

    func read(queue: String, from offset: Int64, maxMessages: Int) throws -> LMQReadResult {
        try store.read(queue: queue, from: offset, maxMessages: maxMessages)
    }

    func maxOffset(queue: String) -> Int64 { store.maxOffset(queue: queue) }

    func unpreparedQueues(_ queues: [String]) -> [String] { [] }

    func unregisteredFilters(_ filters: [TopicFilter]) -> [TopicFilter] { [] }

    func unroutedTopics(_ topics: [String]) -> [String] { [] }

    func prepareRoutes(_ topics: [String]) async throws {}

    func prepare(queues: [String], registering: [DispatchRegistration]) async throws {}

    func addArrivalListener(_ listener: @escaping @Sendable ([QueueOffset]) -> Void) -> UInt64 {
        store.addArrivalListener(listener)
    }

    func removeArrivalListener(_ id: UInt64) { store.removeArrivalListener(id) }

    var queueCount: Int { store.queueCount }

    var location: String { store.configuration.storePathRootDir }

    func close() async throws { try store.close() }
}

import LMQStore
import Logging
import NameServer
import NIOConcurrencyHelpers
import MQTTCore
import NIOCore
import StoreNode

/// The message side of a store node, for a gateway in cluster mode.
///
/// The gateway reads queues synchronously on its event loops; this store answers those reads from a
/// cache of fetched messages and fetches what is missing in the background. How it learns of new
/// messages without polling:
///
/// - A queue is *prepared* (watched on the store node) before a subscription starts reading it; the
///   store node answers with the queue's end and from then on pushes this gateway a notification when
///   the queue grows. Only gateways that watch a queue are told of it.
/// - A read past what is cached but below the known end starts one fetch (a pull of up to
///   ``fetchBatch`` messages) and answers "nothing yet"; when the fetch lands, the arrival listeners are
///   told, and the readers come back. Many local readers of one queue share one fetch and one cache.
/// - Messages this gateway appended itself go into the cache from the append's answer, without a fetch.
/// - After the connection to the store node is lost, the client watches everything again and reports
///   the queues' current ends, so a notification missed meanwhile is made up for.
///
/// The cache of a queue is bounded (``cacheLimitPerQueue``) and dropped when no reader touched it for
/// ``idleCacheSeconds``; a reader that falls behind it fetches again.
final class RemoteMessageStore: GatewayMessageStore {
    /// Messages per fetch.
    static let fetchBatch = 256
    /// Bytes per fetch (at least one message).
    static let fetchMaxBytes = 1024 * 1024
    /// Cached messages per queue; the lowest offsets go first.
    static let cacheLimitPerQueue = 4_096
    /// A queue's cache is dropped when it was not read for this long.
    static let idleCacheSeconds: Int64 = 10
    /// A queue no connection of this gateway reads is no longer watched after this long.
    static let idleWatchSeconds: Int64 = 60

    private struct QueueState {
        /// Whether the store node has answered a watch of this queue (its end is known).
        var prepared = false
        /// The offset the next message will get, as last heard.
        var maxOffset: Int64 = 0
        /// Reads below this offset were deleted by retention.
        var minOffset: Int64 = 0
        var cache: [Int64: LMQReadResult.Message] = [:]
        /// Start offsets of fetches in flight.
        var fetching: Set<Int64> = []
        var lastReadMillis: Int64 = 0
    }

    private struct State {
        var queues: [String: QueueState] = [:]
        var listeners: [UInt64: @Sendable ([QueueOffset]) -> Void] = [:]
        var lastListenerID: UInt64 = 0
        var queueCount = 0
        var isClosed = false
        /// Wildcard filter (without a share prefix) → sessions of this gateway registered for it.
        var registeredFilters: [String: Int] = [:]
    }

    let client: StoreNodeClient
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let upkeep = NIOLockedValueBox<Task<Void, Never>?>(nil)
    /// Whether a connection of this gateway reads a queue (SubscriptionRouter), for unwatching idle ones.
    private let readerProbe = NIOLockedValueBox<(@Sendable (String) -> Bool)?>(nil)

    /// Sets how to tell whether a connection of this gateway reads a queue: queues nobody reads for
    /// ``idleWatchSeconds`` are unwatched, so the store node stops notifying this gateway of them.
    func probeReaders(_ probe: @escaping @Sendable (String) -> Bool) {
        readerProbe.withLockedValue { $0 = probe }
    }

    /// The store node of each first topic; `client` is its primary.
    let routes: StoreNodeRoutes

    /// - Parameter nameServers: where routes of first topics are learnt (several store nodes); none: every
    ///   first topic is on `client`.
    init(client: StoreNodeClient, nameServers: [any NameServerClient] = [], logger: Logger) {
        self.client = client
        self.logger = logger
        let handler = NIOLockedValueBox<(@Sendable ([QueueOffset]) -> Void)?>(nil)
        routes = StoreNodeRoutes(primary: client, nameServers: nameServers, logger: logger) { address in
            let node = StoreNodeClient(address: address, logger: logger)
            node.setArrivalHandler { queueOffsets in handler.withLockedValue { $0 }?(queueOffsets) }
            return node
        }
        let notify: @Sendable ([QueueOffset]) -> Void = { [weak self] queueOffsets in self?.notified(queueOffsets) }
        handler.withLockedValue { $0 = notify }
        client.setArrivalHandler(notify)
        let task = Task { [weak self] in
            var rounds = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                guard let self else { return }
                await self.runUpkeep()
                rounds += 1
                if rounds % (StoreNodeRoutes.refreshSeconds / 5) == 0 { await self.routes.refresh() }
            }
        }
        upkeep.withLockedValue { $0 = task }
    }

    var location: String { "store node \(client.address)" }

    // MARK: Routes

    func unroutedTopics(_ topics: [String]) -> [String] {
        routes.unknown(topics.map(StoreNodeRoutes.firstLevel(ofTopic:)))
    }

    func prepareRoutes(_ topics: [String]) async throws {
        try await routes.learn(topics.map(StoreNodeRoutes.firstLevel(ofTopic:)))
    }

    var queueCount: Int { state.withLockedValue { $0.queueCount } }

    // MARK: Appending

    /// A first topic whose route is not known (the caller did not prepare it).
    struct UnroutedTopic: Error, CustomStringConvertible {
        var firstTopic: String
        var description: String { "no route to a store node known for first topic \(firstTopic)" }
    }

    func write(_ message: LMQMessage, to queues: [String]) throws -> GatewayPendingWrite {
        // Sent now, in call order: the store node writes one connection's appends in arrival order.
        let answers = try sendAppends(message, to: queues)
        // One store node (the usual case): its answer as it is, without combining.
        let combined = answers.count == 1 ? answers[0] : EventLoopFuture.whenAllSucceed(answers, on: answers[0].eventLoop).map(Self.merged)
        combined.whenSuccess { [weak self] result in self?.appended(message, result) }
        return GatewayPendingWrite(isSettled: false) { try await combined.get() }
    }

    func append(_ message: LMQMessage, to queues: [String]) async throws -> AppendResult {
        if routes.unknown([StoreNodeRoutes.firstLevel(ofTopic: message.topic)]).count > 0 {
            try await prepareRoutes([message.topic])
        }
        let answers = try sendAppends(message, to: queues)
        let result = Self.merged(try await EventLoopFuture.whenAllSucceed(answers, on: answers[0].eventLoop).get())
        appended(message, result)
        return result
    }

    /// The appends of `message`: its queues grouped by store node; when its first topic is stored away from
    /// the primary, the primary also gets it for the filters registered there whose first level is a
    /// wildcard (they span store nodes).
    private func sendAppends(_ message: LMQMessage, to queues: [String]) throws -> [EventLoopFuture<AppendResult>] {
        let firstTopic = StoreNodeRoutes.firstLevel(ofTopic: message.topic)
        guard let home = routes.node(forFirstTopic: firstTopic) else { throw UnroutedTopic(firstTopic: firstTopic) }
        if home === client && !routes.hasOtherNodes { return [client.appendInOrder(message, to: queues)] }
        var byNode: [ObjectIdentifier: (node: StoreNodeClient, queues: [String])] = [:]
        for queue in queues {
            let node = routes.node(forQueue: queue) ?? home
            byNode[ObjectIdentifier(node), default: (node, [])].queues.append(queue)
        }
        var answers = byNode.values.map { $0.node.appendInOrder(message, to: $0.queues) }
        if home !== client, byNode[ObjectIdentifier(client)] == nil {
            answers.append(client.appendToMatchingFiltersInOrder(message))
        }
        guard !answers.isEmpty else { throw LMQStoreError.invalidQueueList(count: 0, limit: LMQStore.Limits().maxLMQsPerMessage) }
        return answers
    }

    /// One result from the appends of one message on several store nodes.
    private static func merged(_ results: [AppendResult]) -> AppendResult {
        guard var merged = results.first(where: { !$0.queueOffsets.isEmpty }) ?? results.first else {
            return AppendResult(commitLogPosition: -1, queueOffsets: [], storeTimestampMillis: GatewayServices.wallClockMillis)
        }
        for result in results where result != merged { merged.queueOffsets += result.queueOffsets }
        return merged
    }

    /// Caches what this gateway appended for the watched queues among its queues, and tells the readers.
    private func appended(_ message: LMQMessage, _ result: AppendResult) {
        let stored = StoredMessage(
            message: message, firstTopic: String(message.topic.split(separator: "/", maxSplits: 1).first ?? ""),
            storeTimestampMillis: result.storeTimestampMillis, commitLogPosition: result.commitLogPosition,
            queueOffsets: result.queueOffsets
        )
        let (grown, listeners) = state.withLockedValue { state -> ([QueueOffset], [@Sendable ([QueueOffset]) -> Void]) in
            var grown: [QueueOffset] = []
            for queueOffset in result.queueOffsets {
                let end: Int64? = Self.modify(&state, queueOffset.queue) { queue in
                    queue.cache[queueOffset.offset] = LMQReadResult.Message(offset: queueOffset.offset, message: stored)
                    queue.maxOffset = max(queue.maxOffset, queueOffset.offset + 1)
                    Self.trim(&queue)
                    return queue.maxOffset
                }
                if let end { grown.append(QueueOffset(queue: queueOffset.queue, offset: end)) }
            }
            return (grown, Array(state.listeners.values))
        }
        guard !grown.isEmpty else { return }
        for listener in listeners { listener(grown) }
    }

    // MARK: Reading

    func read(queue name: String, from offset: Int64, maxMessages: Int) throws -> LMQReadResult {
        let now = GatewayServices.wallClockMillis
        let (result, fetchFrom) = state.withLockedValue { state -> (LMQReadResult, Int64?) in
            let answer = Self.modify(&state, name) { queue -> (LMQReadResult, Int64?) in
                queue.lastReadMillis = now
                return Self.read(&queue, from: offset, maxMessages: maxMessages)
            }
            return answer ?? (LMQReadResult(status: .noNewMessages, messages: [], nextOffset: offset, minOffset: 0, maxOffset: 0), nil)
        }
        if let fetchFrom { fetch(name, from: fetchFrom) }
        return result
    }

    /// A read of `queue`'s cache; the second value is where to start a fetch, if one is needed.
    private static func read(_ queue: inout QueueState, from offset: Int64, maxMessages: Int) -> (LMQReadResult, Int64?) {
        if offset < queue.minOffset {
            return (
                LMQReadResult(
                    status: .offsetMovedForward, messages: [], nextOffset: queue.minOffset, minOffset: queue.minOffset,
                    maxOffset: queue.maxOffset
                ), nil
            )
        }
        var messages: [LMQReadResult.Message] = []
        var next = offset
        while messages.count < maxMessages, let message = queue.cache[next] {
            messages.append(message)
            next += 1
        }
        if !messages.isEmpty {
            return (
                LMQReadResult(status: .found, messages: messages, nextOffset: next, minOffset: queue.minOffset, maxOffset: queue.maxOffset),
                nil
            )
        }
        // Nothing cached at `offset`: fetch it if the queue has it; the arrival listeners hear when it is here.
        var fetchFrom: Int64?
        if offset < queue.maxOffset, queue.fetching.insert(offset).inserted {
            fetchFrom = offset
        }
        return (
            LMQReadResult(status: .noNewMessages, messages: [], nextOffset: offset, minOffset: queue.minOffset, maxOffset: queue.maxOffset),
            fetchFrom
        )
    }

    /// Runs `body` on the state of queue `name` in place — no copy of its cache — if the queue is known.
    private static func modify<T>(_ state: inout State, _ name: String, _ body: (inout QueueState) -> T) -> T? {
        guard state.queues[name] != nil else { return nil }
        return body(&state.queues[name]!)
    }

    private func fetch(_ name: String, from offset: Int64) {
        Task {
            let outcome: Result<LMQReadResult, any Error>
            do {
                let node = routes.node(forQueue: name) ?? client
                outcome = .success(try await node.pull(queue: name, from: offset, maxMessages: Self.fetchBatch, maxBytes: Self.fetchMaxBytes))
            } catch {
                outcome = .failure(error)
            }
            let listeners = state.withLockedValue { state -> [@Sendable ([QueueOffset]) -> Void] in
                let known: Void? = Self.modify(&state, name) { queue in
                    queue.fetching.remove(offset)
                    guard case .success(let result) = outcome else { return }
                    for message in result.messages { queue.cache[message.offset] = message }
                    queue.maxOffset = max(queue.maxOffset, result.maxOffset)
                    switch result.status {
                    case .offsetMovedForward: queue.minOffset = max(queue.minOffset, result.nextOffset)
                    case .found, .noNewMessages, .offsetPastEnd: queue.minOffset = max(queue.minOffset, result.minOffset)
                    }
                    Self.trim(&queue)
                }
                return known == nil ? [] : Array(state.listeners.values)
            }
            if case .failure(let error) = outcome {
                // The readers stay where they are; they try again once the store node answers (a reconnect
                // reports every watched queue) or after a pause.
                logger.warning("fetching queue \(name) from offset \(offset) failed: \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
            let grown = [QueueOffset(queue: name, offset: offset)]
            for listener in listeners { listener(grown) }
        }
    }

    /// Keeps a queue's cache within its limit: past it, the lowest offsets go until a quarter of the room
    /// is free again, so the sort this takes happens once per thousand or so messages, not for each.
    private static func trim(_ queue: inout QueueState) {
        guard queue.cache.count > cacheLimitPerQueue else { return }
        let excess = queue.cache.count - cacheLimitPerQueue * 3 / 4
        for offset in queue.cache.keys.sorted().prefix(excess) { queue.cache[offset] = nil }
    }

    func maxOffset(queue: String) -> Int64 {
        state.withLockedValue { $0.queues[queue]?.maxOffset ?? 0 }
    }

    // MARK: Watching

    func unpreparedQueues(_ queues: [String]) -> [String] {
        state.withLockedValue { state in queues.filter { state.queues[$0]?.prepared != true } }
    }

    func unregisteredFilters(_ filters: [TopicFilter]) -> [TopicFilter] {
        state.withLockedValue { state in
            filters.filter { $0.hasWildcards && (state.registeredFilters[$0.filter] ?? 0) == 0 }
        }
    }

    /// Registrations per UPDATE_DISPATCH request, well within the frame limit.
    static let dispatchBatch = 10_000

    /// The gateway's dispatch registry changed (SubscriptionRouter): tell the store node, in order.
    func dispatchChanged(_ changes: [(filter: TopicFilter, clientIdentifier: String)], added: Bool) {
        state.withLockedValue { state in
            for change in changes {
                let count = (state.registeredFilters[change.filter.filter] ?? 0) + (added ? 1 : -1)
                state.registeredFilters[change.filter.filter] = count > 0 ? count : nil
            }
        }
        for (node, registrations) in byNode(changes.map { DispatchRegistration(filter: $0.filter.string, clientIdentifier: $0.clientIdentifier) }) {
            for start in stride(from: 0, to: registrations.count, by: Self.dispatchBatch) {
                let batch = Array(registrations[start..<min(start + Self.dispatchBatch, registrations.count)])
                node.updateDispatch(added: added ? batch : [], removed: added ? [] : batch).whenFailure { [logger] error in
                    // The client registers everything again when its connection comes back.
                    logger.warning("telling store node \(node.address) of \(batch.count) wildcard filters failed: \(error)")
                }
            }
        }
    }

    /// Registrations grouped by the store node of their filter's first level (the primary for a wildcard
    /// one, or one whose route is not known).
    private func byNode(_ registrations: [DispatchRegistration]) -> [(StoreNodeClient, [DispatchRegistration])] {
        var grouped: [ObjectIdentifier: (StoreNodeClient, [DispatchRegistration])] = [:]
        for registration in registrations {
            let level = (try? TopicFilter(registration.filter)).map { StoreNodeRoutes.firstLevel(ofTopic: $0.filter) } ?? ""
            let node = routes.node(forFirstTopic: level) ?? client
            grouped[ObjectIdentifier(node), default: (node, [])].1.append(registration)
        }
        return Array(grouped.values)
    }

    /// Queues grouped by their store node (the primary for one whose route is not known).
    private func byNode(queues: [String]) -> [(StoreNodeClient, [String])] {
        var grouped: [ObjectIdentifier: (StoreNodeClient, [String])] = [:]
        for queue in queues {
            let node = routes.node(forQueue: queue) ?? client
            grouped[ObjectIdentifier(node), default: (node, [])].1.append(queue)
        }
        return Array(grouped.values)
    }

    func prepare(queues: [String], registering: [DispatchRegistration]) async throws {
        // Where each queue and filter lives, first.
        try await routes.learn(
            queues.map(StoreNodeRoutes.firstLevel(ofQueue:))
                + registering.compactMap { (try? TopicFilter($0.filter)).map { StoreNodeRoutes.firstLevel(ofTopic: $0.filter) } }
        )
        for (node, registrations) in byNode(registering) {
            try await node.updateDispatch(added: registrations, removed: []).get()
        }
        guard !queues.isEmpty else { return }
        // Known before the watch is sent, so that a notification overtaking the watch's answer is kept.
        state.withLockedValue { state in
            for queue in queues where state.queues[queue] == nil { state.queues[queue] = QueueState() }
        }
        var ends: [String: Int64] = [:]
        for (node, nodeQueues) in byNode(queues: queues) {
            ends.merge(try await node.watch(queues: nodeQueues)) { $1 }
        }
        state.withLockedValue { state in
            for queue in queues {
                var known = state.queues[queue] ?? QueueState()
                known.maxOffset = max(known.maxOffset, ends[queue] ?? 0)
                known.prepared = true
                state.queues[queue] = known
            }
        }
    }

    /// A notification from the store node (or the catch-up after a reconnect): queues and their ends.
    private func notified(_ queueOffsets: [QueueOffset]) {
        let (grown, listeners) = state.withLockedValue { state -> ([QueueOffset], [@Sendable ([QueueOffset]) -> Void]) in
            var grown: [QueueOffset] = []
            for queueOffset in queueOffsets {
                guard let known = state.queues[queueOffset.queue]?.maxOffset, queueOffset.offset > known else { continue }
                state.queues[queueOffset.queue]?.maxOffset = queueOffset.offset
                grown.append(queueOffset)
            }
            return (grown, Array(state.listeners.values))
        }
        guard !grown.isEmpty else { return }
        for listener in listeners { listener(grown) }
    }

    func addArrivalListener(_ listener: @escaping @Sendable ([QueueOffset]) -> Void) -> UInt64 {
        state.withLockedValue { state in
            state.lastListenerID += 1
            state.listeners[state.lastListenerID] = listener
            return state.lastListenerID
        }
    }

    func removeArrivalListener(_ id: UInt64) {
        state.withLockedValue { _ = $0.listeners.removeValue(forKey: id) }
    }

    // MARK: Upkeep

    /// Drops the caches of queues nobody read lately, unwatches queues nobody here reads, and refreshes the
    /// store node's queue count.
    private func runUpkeep() async {
        let now = GatewayServices.wallClockMillis
        let idleBefore = now - Self.idleCacheSeconds * 1_000
        let unwatchBefore = now - Self.idleWatchSeconds * 1_000
        let hasReaders = readerProbe.withLockedValue { $0 }
        state.withLockedValue { state in
            var unwatched: [String] = []
            for (name, queue) in state.queues {
                if let hasReaders, queue.prepared, queue.fetching.isEmpty, queue.lastReadMillis < unwatchBefore, !hasReaders(name) {
                    if queue.lastReadMillis == 0 {
                        // Never read: counted from now, so a subscription being set up is not unwatched.
                        state.queues[name]?.lastReadMillis = now
                        continue
                    }
                    state.queues[name] = nil
                    unwatched.append(name)
                } else if !queue.cache.isEmpty && queue.lastReadMillis < idleBefore {
                    state.queues[name]?.cache = [:]
                }
            }
            // Under the lock: a prepare of the same queue that follows sends its WATCH after this UNWATCH.
            for (node, nodeQueues) in byNode(queues: unwatched) { node.unwatch(queues: nodeQueues) }
        }
        var count = 0
        for node in routes.allNodes {
            count += (try? await node.queueCount()) ?? 0
        }
        state.withLockedValue { $0.queueCount = count }
    }

    /// Stops the upkeep. The connection to the store node belongs to the metadata side (the same
    /// ``StoreNodeClient``), which closes it.
    func close() async throws {
        upkeep.withLockedValue { task in
            task?.cancel()
            task = nil
        }
        await routes.closeOthers()
    }
}

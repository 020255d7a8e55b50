import LMQStore
import Logging
import MQTTCore
import NIOConcurrencyHelpers
import NIOCore
import StoreNode

/// Consumes what is published under a first topic or to a topic filter — by MQTT devices through any
/// gateway, or by server producers — as a member of a named consumer group.
///
/// - **Clustering** (default): each message goes to one member of the group; the members share the
///   work. The group's position is kept by the store node (the group cursor of a shared subscription,
///   ``SharedGroupRegistry``) and committed to its metadata: the lowest offset not yet acknowledged.
///   What a member took and did not acknowledge goes to the other members when it shuts down or its
///   connection closes (it died): at least once.
/// - **Broadcasting**: every member gets every message. Each member keeps its own committed offset,
///   named by ``Options/memberName``.
///
/// A group with a committed offset goes on from there; a new group starts at
/// ``Options/startPosition`` (the queue's end, or its first message).
///
/// Messages arrive in queue order through ``messages``; at most ``Options/maxOutstanding`` are handed
/// out and not yet acknowledged, so a slow application holds the rest in the store (back-pressure).
/// Acknowledge each with ``acknowledge(_:)`` once it is processed.
///
/// ```swift
/// let consumer = try await LMQConsumer.start(configuration, group: "backend", subscription: .firstTopic("sensors"))
/// for await message in consumer.messages {
///     handle(message)
///     consumer.acknowledge(message)
/// }
/// ```
///
/// A wildcard subscription registers its filter with the store node for the group (durable: messages
/// keep reaching the group's queue while every member is away) — ``removeSubscription(_:group:subscription:logger:)``
/// ends that.
public final class LMQConsumer: Sendable {
    /// What a consumer reads.
    public enum Subscription: Sendable, Hashable {
        /// Everything published under a first topic (the filter `<firstTopic>/#`, which includes the
        /// topic `<firstTopic>` itself).
        case firstTopic(String)
        /// An MQTT topic filter (`a/b`, `a/+/c`, `a/#`); not a shared one.
        case filter(String)

        /// The topic filter read.
        public func topicFilter() throws(LMQClientError) -> TopicFilter {
            let text: String
            switch self {
            case .firstTopic(let firstTopic):
                guard !firstTopic.isEmpty, !firstTopic.contains("/"), firstTopic != "+", firstTopic != "#" else {
                    throw .invalidFilter(firstTopic, reason: "a first topic is one topic level without wildcards")
                }
                text = firstTopic + "/#"
            case .filter(let filter):
                text = filter
            }
            let filter: TopicFilter
            do {
                filter = try TopicFilter(text)
            } catch {
                throw .invalidFilter(text, reason: "\(error)")
            }
            guard !filter.isShared else { throw .invalidFilter(text, reason: "shared subscriptions are for MQTT clients; use a consumer group") }
            return filter
        }
    }

    public enum Mode: Sendable, Hashable {
        /// Each message to one member of the group.
        case clustering
        /// Each message to every member of the group.
        case broadcasting
        /// No group state: reads the queue from ``Options/startPosition`` on, commits nothing and
        /// registers nothing (a wildcard filter's queue then holds what reached it for the sessions and
        /// groups that hold the filter). For tools that look at a queue (`mqadmin consumeMessage`
        /// without `-g`); the group name is not used.
        case readOnly
    }

    /// Where a group without a committed offset starts.
    public enum StartPosition: Sendable, Hashable {
        /// With the messages published from now on.
        case latest
        /// With the first message the store still holds.
        case earliest
    }

    public struct Options: Sendable, Hashable {
        public var mode: Mode
        public var startPosition: StartPosition
        /// Broadcasting mode: the name of this member's committed offset; give members on one host
        /// different names. Default: `default`.
        public var memberName: String
        /// At most this many messages handed out and not yet acknowledged (1...1024). Default: 64.
        public var maxOutstanding: Int

        public init(mode: Mode = .clustering, startPosition: StartPosition = .latest, memberName: String = "default", maxOutstanding: Int = 64) {
            self.mode = mode
            self.startPosition = startPosition
            self.memberName = memberName
            self.maxOutstanding = max(1, min(maxOutstanding, 1_024))
        }
    }

    /// The messages, in queue order; the sequence ends after ``shutdown()``.
    public let messages: AsyncStream<LMQConsumedMessage>
    public let group: String
    public let filter: TopicFilter
    public let options: Options
    /// The light message queue read (`%LMQ%a%+%`).
    public let queue: String

    private let connection: StoreConnection
    private let node: StoreNodeClient
    private let logger: Logger
    private let output: AsyncStream<LMQConsumedMessage>.Continuation
    private let wakeups: AsyncStream<Void>.Continuation
    private let commits: AsyncStream<Int64>.Continuation
    private let tasks = NIOLockedValueBox<[Task<Void, Never>]>([])

    private struct State {
        /// Offsets handed out and not acknowledged.
        var outstanding: Set<Int64> = []
        /// Broadcasting: the offset of the next message to pull.
        var cursor: Int64 = 0
        /// Clustering: acknowledged offsets not told to the store node yet (one request carries all).
        var finished: [Int64] = []
        var isShutDown = false
    }

    private let state = NIOLockedValueBox(State())

    /// The key of the group's cursor on the store node (clustering): `%GROUP%<group>/<filter>`.
    var sharedKey: String { DispatchRegistration.consumerGroupPrefix + group + "/" + filter.string }

    /// The consume-offset group of a broadcasting member: `%GROUP%<group>%<memberName>`.
    var broadcastOffsetGroup: String { DispatchRegistration.consumerGroupPrefix + group + "%" + options.memberName }

    private init(
        group: String, filter: TopicFilter, options: Options, connection: StoreConnection, node: StoreNodeClient, logger: Logger,
        wakeups: AsyncStream<Void>.Continuation, commits: AsyncStream<Int64>.Continuation
    ) {
        self.group = group
        self.filter = filter
        self.options = options
        self.queue = filter.lmqName
        self.connection = connection
        self.node = node
        self.logger = logger
        self.wakeups = wakeups
        self.commits = commits
        (messages, output) = AsyncStream.makeStream(of: LMQConsumedMessage.self)
    }

    /// Joins consumer group `group` reading `subscription`, and starts fetching.
    public static func start(
        _ configuration: LMQClientConfiguration = LMQClientConfiguration(), group: String, subscription: Subscription,
        options: Options = Options(), logger: Logger = Logger(label: "lmq.consumer")
    ) async throws -> LMQConsumer {
        guard !group.isEmpty, !group.contains("%"), !group.contains("/") else { throw LMQClientError.invalidGroup(group) }
        let filter = try subscription.topicFilter()
        let connection = try await StoreConnection.open(configuration, logger: logger)
        do {
            let node = try await connection.node(forFirstTopic: String(filter.firstTopic), creating: false)
            // Newest only: a wake-up pending is enough; acknowledgements are gathered in the state
            // (clustering) or only the latest offset needs committing (broadcasting).
            let (wakeStream, wakeups) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            let (commitStream, commits) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .bufferingNewest(1))
            let consumer = LMQConsumer(
                group: group, filter: filter, options: options, connection: connection, node: node, logger: logger,
                wakeups: wakeups, commits: commits
            )
            try await consumer.run(wakeStream: wakeStream, commitStream: commitStream)
            return consumer
        } catch {
            await connection.close()
            throw error
        }
    }

    private func run(wakeStream: AsyncStream<Void>, commitStream: AsyncStream<Int64>) async throws {
        if filter.hasWildcards && options.mode != .readOnly {
            // Durable, and before the start offset is read: every message after it reaches the queue.
            try await node.updateDispatch(added: [.consumerGroup(group, filter: filter.string)], removed: []).get()
        }
        node.setArrivalHandler { [wakeups] _ in wakeups.yield() }
        node.setSharedReturnedHandler { [wakeups] _ in wakeups.yield() }
        let end = try await node.watch(queues: [queue])[queue] ?? 0
        let start: Int64 = options.startPosition == .earliest ? 0 : end
        switch options.mode {
        case .clustering: break
        case .broadcasting:
            let committed = try await node.queryOffset(group: broadcastOffsetGroup, lmq: queue)
            state.withLockedValue { $0.cursor = committed ?? start }
        case .readOnly:
            state.withLockedValue { $0.cursor = start }
        }
        var started = [Task { [self] in await fetch(wakeups: wakeStream, startOffset: start) }]
        // Notifications and hand-backs wake the fetcher; this covers one lost to a reconnect race.
        started.append(Task { [wakeups] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                wakeups.yield()
            }
        })
        switch options.mode {
        case .clustering:
            // Acknowledgements made while a FINISH_SHARED is being sent go in the next one.
            started.append(Task { [node, sharedKey, state] in
                for await _ in commitStream {
                    let offsets = state.withLockedValue { state in
                        defer { state.finished = [] }
                        return state.finished
                    }
                    if !offsets.isEmpty { node.finishShared(key: sharedKey, offsets: offsets) }
                }
            })
        case .broadcasting:
            started.append(Task { [node, queue, broadcastOffsetGroup, logger] in
                for await offset in commitStream {
                    do {
                        try await node.commitOffset(group: broadcastOffsetGroup, lmq: queue, offset: offset)
                    } catch {
                        logger.warning("committing offset \(offset) of \(queue) failed: \(error)")
                    }
                }
            })
        case .readOnly:
            break
        }
        tasks.withLockedValue { $0 = started }
    }

    private func fetch(wakeups: AsyncStream<Void>, startOffset: Int64) async {
        var wake = wakeups.makeAsyncIterator()
        while !Task.isCancelled {
            let (room, cursor) = state.withLockedValue { (options.maxOutstanding - $0.outstanding.count, $0.cursor) }
            guard room > 0 else {
                guard await wake.next() != nil else { return }
                continue
            }
            let taken: [LMQReadResult.Message]
            do {
                switch options.mode {
                case .clustering:
                    taken = try await node.takeShared(key: sharedKey, queue: queue, startOffset: startOffset, maximum: room)
                case .broadcasting, .readOnly:
                    let page = try await node.pull(queue: queue, from: cursor, maxMessages: room, maxBytes: 4 << 20)
                    taken = page.messages
                    state.withLockedValue { $0.cursor = max($0.cursor, page.nextOffset) }
                }
            } catch {
                guard !Task.isCancelled else { return }
                logger.warning("fetching from \(queue) on \(node.address) failed, retrying: \(error)")
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            if taken.isEmpty {
                guard await wake.next() != nil else { return }
                continue
            }
            let delivered = state.withLockedValue { state -> Bool in
                guard !state.isShutDown else { return false }
                for message in taken { state.outstanding.insert(message.offset) }
                return true
            }
            guard delivered else { return }
            for message in taken { output.yield(LMQConsumedMessage(message)) }
        }
    }

    /// `message` is processed: the group will not hand it out again (in broadcasting mode: to this member).
    public func acknowledge(_ message: LMQConsumedMessage) {
        let commit = state.withLockedValue { state -> Int64? in
            guard state.outstanding.remove(message.queueOffset) != nil else { return nil }
            if options.mode == .clustering { state.finished.append(message.queueOffset) }
            return state.outstanding.min() ?? state.cursor
        }
        guard let commit else { return }
        switch options.mode {
        case .clustering, .broadcasting:
            commits.yield(commit)
        case .readOnly:
            break
        }
        wakeups.yield()
    }

    /// Stops fetching and ends ``messages``. What was handed out and not acknowledged goes back to the
    /// group (clustering) or stays uncommitted (broadcasting); the next member or start gets it again.
    public func shutdown() async {
        let outstanding = state.withLockedValue { state -> [Int64]? in
            guard !state.isShutDown else { return nil }
            state.isShutDown = true
            return state.outstanding.sorted()
        }
        guard let outstanding else { return }
        let running = tasks.withLockedValue { $0 }
        for task in running { task.cancel() }
        wakeups.finish()
        output.finish()
        switch options.mode {
        case .clustering:
            commits.finish()
            for task in running { await task.value }
            // Acknowledged to the end; then the rest goes back to the group.
            let finished = state.withLockedValue { state in
                defer { state.finished = [] }
                return state.finished
            }
            if !finished.isEmpty { node.finishShared(key: sharedKey, offsets: finished) }
            if !outstanding.isEmpty { node.giveBackShared(key: sharedKey, offsets: outstanding) }
        case .broadcasting:
            let final = state.withLockedValue { $0.outstanding.min() ?? $0.cursor }
            commits.finish()
            for task in running { await task.value }
            try? await node.commitOffset(group: broadcastOffsetGroup, lmq: queue, offset: final)
        case .readOnly:
            commits.finish()
        }
        for task in running { await task.value }
        node.unwatch(queues: [queue])
        await connection.close()
    }

    /// Ends `group`'s subscription: its wildcard filter stops being dispatched to for it, and the group's
    /// committed offset of it (clustering mode) is deleted. Run it with no member running.
    public static func removeSubscription(
        _ configuration: LMQClientConfiguration = LMQClientConfiguration(), group: String, subscription: Subscription,
        logger: Logger = Logger(label: "lmq.consumer")
    ) async throws {
        let filter = try subscription.topicFilter()
        let connection = try await StoreConnection.open(configuration, logger: logger)
        do {
            let node = try await connection.node(forFirstTopic: String(filter.firstTopic), creating: false)
            if filter.hasWildcards {
                try await node.updateDispatch(added: [], removed: [.consumerGroup(group, filter: filter.string)]).get()
            }
            let key = DispatchRegistration.consumerGroupPrefix + group + "/" + filter.string
            try await node.deleteOffsets(group: SharedGroupRegistry.offsetGroup(key))
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }
}

/// A message as a consumer gets it.
public struct LMQConsumedMessage: Sendable, Hashable {
    public var topic: String
    public var payload: ByteBuffer
    /// The QoS it was published with.
    public var qos: MQTTQoS
    public var retain: Bool
    /// The MQTT 5.0 PUBLISH properties it was published with.
    public var properties: MQTTProperties
    /// The producer's identifier (0 for an MQTT PUBLISH).
    public var messageId: UInt64
    /// The client identifier of the MQTT client that published it, if it came through a gateway.
    public var publisherClientIdentifier: String?
    /// When the store node stored it (milliseconds since 1970).
    public var storeTimestampMillis: Int64
    /// Its offset in the consumer's queue: unique per queue, in publish order.
    public var queueOffset: Int64

    init(_ read: LMQReadResult.Message) {
        let message = read.message.message
        topic = message.topic
        payload = message.payload
        qos = message.qos
        retain = message.retain
        properties = message.properties
        messageId = message.messageId
        publisherClientIdentifier = message.originClientIdentifier
        storeTimestampMillis = read.message.storeTimestampMillis
        queueOffset = read.offset
    }

    /// The payload as UTF-8 text (invalid bytes replaced).
    public var payloadString: String { String(decoding: payload.readableBytesView, as: UTF8.self) }
}

import Logging
import MQTTCore
import NIOConcurrencyHelpers
import NameServer

/// Keeps the cluster metadata of the name servers current with what this gateway sees, so no operator
/// step is needed (DESIGN.md, "The KV metadata"):
///
/// - the gateway is registered as a node (kind gateway, its MQTT address) and heartbeats, through
///   ``NodeHeartbeater``; ``stop()`` unregisters it;
/// - with ``Configuration/autoCreateFirstTopic``, the first topic of a PUBLISH or SUBSCRIBE that the
///   name server does not know is created (`updateTopic`, no store node);
/// - a wildcard filter that is subscribed to is added to its first topic's filter list, the KV value
///   `LMQ/<firstTopic>` (`a/+/c,a/#`).
///
/// The connection handlers call ``topicUsed(_:)`` and ``subscribed(_:)`` on their event loops: both
/// only look the first topic or filter up in memory, and queue it for a background task when it is new,
/// so the name server sees one write per new first topic or filter, never one per PUBLISH. A failing
/// name server never fails a client's PUBLISH or SUBSCRIBE: the failure is logged and the write retried
/// every ``Configuration/retryInterval``.
///
/// Filters are never removed from the list, not even when their last subscriber leaves: a persistent
/// session that is offline still holds its subscription, and must find the messages published while it
/// was away in the filter's queue — which is filled only while the filter is listed. A stale entry costs
/// one index entry per matching message; a missing one loses messages.
///
/// Written against ``NameServerClient``: in standalone mode it holds the in-process ``NameServerService``,
/// in cluster mode a ``RemotingNameServerClient`` per name server (writes go to each, as in RocketMQ,
/// where name servers do not replicate).
public final class ClusterMetadataPublisher: Sendable {
    /// Settings, each with a default.
    public struct Configuration: Sendable, Hashable {
        /// `autoCreateFirstTopic` in service.conf. Default: true.
        public var autoCreateFirstTopic: Bool
        /// How often the node heartbeats. Default: 10 s, a third of the name server's 30 s expiry.
        public var heartbeatInterval: Duration
        /// How long after a failed write it is tried again. Default: 5 s.
        public var retryInterval: Duration
        /// The most first topics remembered (and so created); more are not created, and the log says
        /// so once. Default: 100,000, the name server's own topic limit.
        public var maximumFirstTopics: Int
        /// The most wildcard filters remembered (and so registered). Default: 100,000.
        public var maximumWildcardFilters: Int
        /// Cluster mode: the store node (`host:port`) this gateway appends to. A first topic it creates is
        /// routed there, and one an operator created without a store node gets it added. Default: nil
        /// (standalone: topics are created without a store node).
        public var storeAddress: String?

        public init(
            autoCreateFirstTopic: Bool = true,
            heartbeatInterval: Duration = .seconds(10),
            retryInterval: Duration = .seconds(5),
            maximumFirstTopics: Int = 100_000,
            maximumWildcardFilters: Int = 100_000
        ) {
            precondition(heartbeatInterval > .zero && retryInterval > .zero)
            precondition(maximumFirstTopics >= 0 && maximumWildcardFilters >= 0)
            self.autoCreateFirstTopic = autoCreateFirstTopic
            self.heartbeatInterval = heartbeatInterval
            self.retryInterval = retryInterval
            self.maximumFirstTopics = maximumFirstTopics
            self.maximumWildcardFilters = maximumWildcardFilters
        }
    }

    /// One write to make on every name server.
    enum Work: Sendable, Hashable {
        /// Create the first topic unless it exists.
        case createFirstTopic(String)
        /// Add `filter` to the KV value `LMQ/<firstTopic>` unless it is listed.
        case registerWildcardFilter(firstTopic: String, filter: String)
    }

    /// What came of one write.
    private enum Outcome {
        case done
        /// The name server refused it for good (e.g. a first topic it does not accept): not retried.
        case refused(NameServerError)
        /// The name server could not be reached or failed: retried later.
        case retryLater(NameServerError)
    }

    private enum Lifecycle {
        case idle
        case running(worker: Task<Void, Never>, heartbeat: Task<Void, Never>)
        case stopped
    }

    private struct State {
        /// First topics queued or written; a repeated one costs a set lookup only.
        var knownFirstTopics: Set<String> = []
        /// Wildcard filters (the filter proper, without `$share/{group}/`) queued or written, or left
        /// out on purpose.
        var knownWildcardFilters: Set<String> = []
        /// Per name server, the writes still to make, oldest first.
        var pending: [[Work]]
        /// Per name server, whether its last write failed (to log the failure once, and the recovery).
        var failing: [Bool]
        var firstTopicLimitLogged = false
        var wildcardFilterLimitLogged = false
        var lifecycle: Lifecycle = .idle
    }

    /// The configuration it was created with.
    public let configuration: Configuration
    private let nameServers: [any NameServerClient]
    private let state: NIOLockedValueBox<State>
    private let logger: Logger
    /// Wakes the worker when work is queued; holding one element, repeated wake-ups coalesce.
    private let wakeups: AsyncStream<Void>
    private let wakeupContinuation: AsyncStream<Void>.Continuation

    /// - Parameter nameServers: the name servers to keep current; writes go to each.
    public init(nameServers: [any NameServerClient], configuration: Configuration = Configuration(), logger: Logger = Logger(label: "mqtt.gateway.metadata")) {
        self.nameServers = nameServers
        self.configuration = configuration
        self.logger = logger
        self.state = NIOLockedValueBox(State(
            pending: Array(repeating: [], count: nameServers.count), failing: Array(repeating: false, count: nameServers.count)
        ))
        (wakeups, wakeupContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: Lifecycle

    /// Registers `node` and starts heartbeating and writing what is queued (work queued before `start`
    /// is kept). Call once.
    public func start(node: NodeInfo) {
        let heartbeater = NodeHeartbeater(node: node, nameServers: nameServers, interval: configuration.heartbeatInterval, logger: logger)
        // The tasks are created under the lock: only one worker may ever iterate `wakeups`.
        let started = state.withLockedValue { state -> Bool in
            guard case .idle = state.lifecycle else { return false }
            state.lifecycle = .running(worker: Task { await self.runWorker() }, heartbeat: Task { await heartbeater.run() })
            return true
        }
        if started {
            logger.info("reporting to the name server", metadata: ["node": "\(node.address)", "nameServers": "\(nameServers.count)"])
        } else {
            logger.warning("ClusterMetadataPublisher.start ignored: already started or stopped")
        }
    }

    /// Stops writing and heartbeating and unregisters the node. Writes still queued are dropped.
    public func stop() async {
        let running = state.withLockedValue { state -> (Task<Void, Never>, Task<Void, Never>)? in
            defer { state.lifecycle = .stopped }
            switch state.lifecycle {
            case .running(let worker, let heartbeat): return (worker, heartbeat)
            case .idle, .stopped: return nil
            }
        }
        wakeupContinuation.finish()
        guard let (worker, heartbeat) = running else { return }
        worker.cancel()
        heartbeat.cancel()
        await worker.value
        // The heartbeater unregisters the node once cancelled.
        await heartbeat.value
        let unwritten = state.withLockedValue { $0.pending.reduce(0) { $0 + $1.count } }
        if unwritten > 0 {
            logger.info("stopped with \(unwritten) name-server writes not made")
        }
    }

    // MARK: Events from connections

    /// A PUBLISH to `topic` was received: its first topic is created unless known.
    public func topicUsed(_ topic: TopicName) {
        guard configuration.autoCreateFirstTopic else { return }
        queueFirstTopic(String(topic.firstTopic))
    }

    /// A subscription to `filter` was made: its first topic is created unless known (with
    /// ``Configuration/autoCreateFirstTopic``), and a wildcard filter is added to its first topic's
    /// filter list unless known.
    ///
    /// A filter that starts with a wildcard (`+/status`, `#`) spans every first topic, so there is no
    /// list to add it to (rocketmq-mqtt has none either); this gateway still dispatches to it.
    public func subscribed(_ filter: TopicFilter) {
        let firstTopic = String(filter.firstTopic)
        let spansFirstTopics = firstTopic == "+" || firstTopic == "#"
        if configuration.autoCreateFirstTopic && !spansFirstTopics {
            queueFirstTopic(firstTopic)
        }
        guard filter.hasWildcards else { return }
        let text = filter.filter
        if state.withLockedValue({ $0.knownWildcardFilters.contains(text) }) { return }
        if let reason = Self.reasonNotListable(text, firstTopic: firstTopic, spansFirstTopics: spansFirstTopics) {
            // Remembered (within the limit) only to log it once.
            let isNew = state.withLockedValue { state in
                state.knownWildcardFilters.count < configuration.maximumWildcardFilters && state.knownWildcardFilters.insert(text).inserted
            }
            if isNew { logger.info("wildcard filter not added to the name server: \(reason)", metadata: ["filter": "\(text)"]) }
            return
        }
        queue(.registerWildcardFilter(firstTopic: firstTopic, filter: text))
    }

    /// Why `filter` cannot be kept in the comma-separated list under key `firstTopic`, or `nil`.
    static func reasonNotListable(_ filter: String, firstTopic: String, spansFirstTopics: Bool) -> String? {
        if spansFirstTopics { return "it starts with a wildcard, so it belongs to no first topic" }
        if firstTopic.isEmpty { return "its first level is empty" }
        if firstTopic == LMQMetadataKey.allFirstTopics || firstTopic == LMQMetadataKey.connectNodes {
            return "its first topic names a reserved key of namespace \(LMQMetadataKey.namespace)"
        }
        // The value is split on commas and its items trimmed: such a filter would be read back as another.
        if filter.contains(",") { return "it contains a comma" }
        if filter.first?.isWhitespace == true || filter.last?.isWhitespace == true { return "it starts or ends with white space" }
        return nil
    }

    private func queueFirstTopic(_ firstTopic: String) {
        // `/a` has an empty first level: nothing to create.
        guard !firstTopic.isEmpty else { return }
        queue(.createFirstTopic(firstTopic))
    }

    /// Queues `work` for every name server unless its key is known; a known key costs one set lookup.
    private func queue(_ work: Work) {
        enum Result { case known, queued, overLimit(logNow: Bool) }
        let result = state.withLockedValue { state -> Result in
            // Stopped: nothing would write it.
            if case .stopped = state.lifecycle { return .known }
            switch work {
            case .createFirstTopic(let topic):
                if state.knownFirstTopics.contains(topic) { return .known }
                guard state.knownFirstTopics.count < configuration.maximumFirstTopics else {
                    defer { state.firstTopicLimitLogged = true }
                    return .overLimit(logNow: !state.firstTopicLimitLogged)
                }
                state.knownFirstTopics.insert(topic)
            case .registerWildcardFilter(_, let filter):
                if state.knownWildcardFilters.contains(filter) { return .known }
                guard state.knownWildcardFilters.count < configuration.maximumWildcardFilters else {
                    defer { state.wildcardFilterLimitLogged = true }
                    return .overLimit(logNow: !state.wildcardFilterLimitLogged)
                }
                state.knownWildcardFilters.insert(filter)
            }
            for lane in state.pending.indices {
                state.pending[lane].append(work)
            }
            return .queued
        }
        switch result {
        case .known:
            break
        case .queued:
            wakeupContinuation.yield()
        case .overLimit(let logNow):
            guard logNow else { return }
            switch work {
            case .createFirstTopic:
                logger.warning("\(configuration.maximumFirstTopics) first topics known; further ones are not created")
            case .registerWildcardFilter:
                logger.warning("\(configuration.maximumWildcardFilters) wildcard filters known; further ones are not registered")
            }
        }
    }

    // MARK: Writing

    /// Writes what is queued, then waits for more; after a failure, tries again every `retryInterval`.
    private func runWorker() async {
        var wakeups = self.wakeups.makeAsyncIterator()
        while !Task.isCancelled {
            if await writePending() {
                // nil: stopped (the stream finished or the task was cancelled).
                guard await wakeups.next() != nil else { return }
            } else {
                try? await Task.sleep(for: configuration.retryInterval)
            }
        }
    }

    /// Writes the queued work to every name server at once; true when nothing is left.
    private func writePending() async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            for lane in nameServers.indices {
                group.addTask { await self.writePending(lane: lane) }
            }
            var allWritten = true
            for await written in group {
                allWritten = allWritten && written
            }
            return allWritten
        }
    }

    /// Writes what is queued for one name server, in order, stopping at the first failure (the rest is
    /// put back in front, to keep the order). True when all of it was written.
    private func writePending(lane: Int) async -> Bool {
        let batch = state.withLockedValue { state -> [Work] in
            defer { state.pending[lane] = [] }
            return state.pending[lane]
        }
        let nameServer = nameServers[lane]
        for (index, work) in batch.enumerated() {
            if Task.isCancelled {
                state.withLockedValue { $0.pending[lane] = Array(batch[index...]) + $0.pending[lane] }
                return false
            }
            switch await write(work, to: nameServer) {
            case .done:
                let recovered = state.withLockedValue { state -> Bool in
                    defer { state.failing[lane] = false }
                    return state.failing[lane]
                }
                if recovered { logger.info("name server answers again; writing the queued metadata", metadata: ["nameServer": "\(lane)"]) }
            case .refused(let error):
                logger.warning("the name server refused \(work): \(error)")
            case .retryLater(let error):
                let firstFailure = state.withLockedValue { state -> Bool in
                    state.pending[lane] = Array(batch[index...]) + state.pending[lane]
                    defer { state.failing[lane] = true }
                    return !state.failing[lane]
                }
                let message: Logger.Message = "cannot write cluster metadata to the name server; retrying every \(configuration.retryInterval)"
                let metadata: Logger.Metadata = ["nameServer": "\(lane)", "work": "\(work)", "error": "\(error)"]
                if firstFailure {
                    logger.warning(message, metadata: metadata)
                } else {
                    logger.debug(message, metadata: metadata)
                }
                return false
            }
        }
        return true
    }

    private func write(_ work: Work, to nameServer: any NameServerClient) async -> Outcome {
        do throws(NameServerError) {
            switch work {
            case .createFirstTopic(let topic) where configuration.storeAddress != nil:
                let storeAddress = configuration.storeAddress!
                // A route that names store nodes is left as it is (an operator's, or another gateway's).
                if let route = try? await nameServer.topicRoute(topic), !route.storeAddresses.isEmpty { return .done }
                try await nameServer.updateTopic(topic, target: .storeAddress(storeAddress))
                logger.info("first topic routed to store node", metadata: ["topic": "\(topic)", "store": "\(storeAddress)"])
            case .createFirstTopic(let topic):
                // Read first: a topic an operator created with store nodes is left as it is, and the
                // name server logs only real creations.
                if try await Self.topicExists(topic, on: nameServer) { return .done }
                try await nameServer.updateTopic(topic, target: .none)
                logger.info("first topic created", metadata: ["topic": "\(topic)"])
            case .registerWildcardFilter(let firstTopic, let filter):
                // Read-modify-write: this gateway writes one filter at a time per name server, so it
                // loses none of its own; entries written by operators or other gateways are kept.
                let current = try await nameServer.getKV(namespace: LMQMetadataKey.namespace, key: firstTopic)
                var filters = current.map(LMQMetadataKey.items(of:)) ?? []
                if filters.contains(filter) { return .done }
                filters.append(filter)
                try await nameServer.putKV(namespace: LMQMetadataKey.namespace, key: firstTopic, value: LMQMetadataKey.value(of: filters))
                logger.info("wildcard filter registered", metadata: ["firstTopic": "\(firstTopic)", "filter": "\(filter)"])
            }
            return .done
        } catch {
            switch error {
            case .invalidArgument, .topicNotFound, .clusterNotFound, .nodeNotRegistered:
                return .refused(error)
            case .storageFailed, .notRunning, .unavailable, .unexpectedResponse:
                return .retryLater(error)
            }
        }
    }

    private static func topicExists(_ topic: String, on nameServer: any NameServerClient) async throws(NameServerError) -> Bool {
        do throws(NameServerError) {
            _ = try await nameServer.topicRoute(topic)
            return true
        } catch .topicNotFound {
            return false
        }
    }
}

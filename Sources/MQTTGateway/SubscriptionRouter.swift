import LMQStore
import MQTTCore
import NIOConcurrencyHelpers

/// The node's view of live subscriptions: which wildcard filters exist (a PUBLISH is also dispatched to
/// their queues, DESIGN.md "Multi-dispatch") and which connections read each queue (they are woken when
/// it grows). Shared by every event loop, hence the lock.
final class SubscriptionRouter: Sendable {
    private struct State {
        /// Wildcard filters that messages are dispatched to; the value is the client identifier of a session
        /// holding the subscription, connected or not (an offline persistent session must find what was
        /// published while it was away in the filter's queue).
        var wildcardFilters = TopicFilterTrie<String>()
        /// Queue name → connections reading it.
        var readers: [String: [UInt64: ConnectionHandle]] = [:]
    }

    private let state = NIOLockedValueBox(State())
    /// Told of every change of the dispatch targets, in order (cluster mode: the store node dispatches,
    /// so that a PUBLISH on any gateway reaches the wildcard filters of every gateway's sessions).
    private let dispatchObserver = NIOLockedValueBox<DispatchObserver?>(nil)

    /// Called with changed pairs of a wildcard filter and the client identifier of the session holding it,
    /// and whether they were added (or removed).
    typealias DispatchObserver = @Sendable (_ changes: [(filter: TopicFilter, clientIdentifier: String)], _ added: Bool) -> Void

    func observeDispatch(_ observer: @escaping DispatchObserver) {
        dispatchObserver.withLockedValue { $0 = observer }
    }

    /// Makes `filter` a dispatch target for as long as the session of `clientIdentifier` holds it (only
    /// wildcard filters need it: a topic's own queue always gets its messages).
    func addDispatch(_ filter: TopicFilter, clientIdentifier: String) {
        guard filter.hasWildcards else { return }
        let added = state.withLockedValue { $0.wildcardFilters.insert(filter, value: clientIdentifier) }
        if added, let observer = dispatchObserver.withLockedValue({ $0 }) { observer([(filter, clientIdentifier)], true) }
    }

    /// `addDispatch` for many pairs, told to the observer at once (a gateway's start in cluster mode).
    func addDispatch(_ pairs: [(filter: TopicFilter, clientIdentifier: String)]) {
        let added = state.withLockedValue { state in
            pairs.filter { $0.filter.hasWildcards && state.wildcardFilters.insert($0.filter, value: $0.clientIdentifier) }
        }
        if !added.isEmpty, let observer = dispatchObserver.withLockedValue({ $0 }) { observer(added, true) }
    }

    /// Undoes `addDispatch`.
    func removeDispatch(_ filter: TopicFilter, clientIdentifier: String) {
        guard filter.hasWildcards else { return }
        let removed = state.withLockedValue { $0.wildcardFilters.remove(filter, value: clientIdentifier) }
        if removed, let observer = dispatchObserver.withLockedValue({ $0 }) { observer([(filter, clientIdentifier)], false) }
    }

    /// Registers `handle` as a reader of `queue`, woken when it grows.
    func addReader(_ queue: String, _ handle: ConnectionHandle) {
        state.withLockedValue { $0.readers[queue, default: [:]][handle.connectionID] = handle }
    }

    /// Whether a connection of this gateway reads `queue`.
    func hasReaders(_ queue: String) -> Bool {
        state.withLockedValue { $0.readers[queue]?.isEmpty == false }
    }

    /// Undoes `addReader`.
    func removeReader(_ queue: String, connectionID: UInt64) {
        state.withLockedValue { state in
            state.readers[queue]?[connectionID] = nil
            if state.readers[queue]?.isEmpty == true {
                state.readers[queue] = nil
            }
        }
    }

    /// The queues a PUBLISH to `topic` goes to: its own, and the queue of every active wildcard filter
    /// that matches it, each once.
    func queues(for topic: TopicName) -> [String] {
        // Per PUBLISH: no set or sort unless several wildcard filters match (one per subscribing
        // connection can repeat; the store drops repeated queue names anyway).
        var filters: [String] = []
        var seen: Set<String>?  // only once many distinct filters match, to keep the dedup linear
        state.withLockedValue { state in
            state.wildcardFilters.forEachMatch(topic) { filter, _ in
                if seen == nil {
                    guard !filters.contains(filter) else { return }
                    filters.append(filter)
                    if filters.count == 16 { seen = Set(filters) }
                } else if seen!.insert(filter).inserted {
                    filters.append(filter)
                }
            }
        }
        var queues = [topic.lmqName]
        queues.reserveCapacity(1 + filters.count)
        for filter in filters { queues.append(LMQNaming.lmqName(for: filter)) }
        return queues
    }

    /// Wakes the readers of the queues that just grew.
    func notify(_ queueOffsets: [QueueOffset]) {
        var wake: [(ConnectionHandle, String)] = []
        state.withLockedValue { state in
            for queueOffset in queueOffsets {
                guard let readers = state.readers[queueOffset.queue] else { continue }
                for handle in readers.values { wake.append((handle, queueOffset.queue)) }
            }
        }
        for (handle, queue) in wake { handle.queueHasMessages(queue) }
    }
}

import LMQStore
import MQTTCore
import NIOConcurrencyHelpers

/// The node's view of live subscriptions: which wildcard filters exist (a PUBLISH is also dispatched to
/// their queues, DESIGN.md "Multi-dispatch") and which connections read each queue (they are woken when
/// it grows). Shared by every event loop, hence the lock.
final class SubscriptionRouter: Sendable {
    private struct State {
        /// Active wildcard filters; the value is the subscribing connection.
        var wildcardFilters = TopicFilterTrie<UInt64>()
        /// Queue name → connections reading it.
        var readers: [String: [UInt64: ConnectionHandle]] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Registers `handle` as a reader of `filter`'s queue (and the filter as a dispatch target when it
    /// has wildcards). Returns the queue name.
    @discardableResult
    func add(_ filter: TopicFilter, _ handle: ConnectionHandle) -> String {
        let queue = filter.lmqName
        state.withLockedValue { state in
            if filter.hasWildcards {
                state.wildcardFilters.insert(filter, value: handle.connectionID)
            }
            state.readers[queue, default: [:]][handle.connectionID] = handle
        }
        return queue
    }

    /// Undoes `add`.
    func remove(_ filter: TopicFilter, connectionID: UInt64) {
        let queue = filter.lmqName
        state.withLockedValue { state in
            if filter.hasWildcards {
                state.wildcardFilters.remove(filter, value: connectionID)
            }
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

import LMQStore
import MQTTCore
import NIOConcurrencyHelpers
import NIOCore

/// The wildcard filters of the whole cluster, by the sessions that hold them: a message appended to the
/// store node is dispatched to its topic's queue and to the queue of every matching filter here
/// (DESIGN.md, "Multi-dispatch"), whichever gateway it came through.
///
/// Dispatch is decided here, under the same order as the appends, so that it is exact: once a gateway's
/// registration of `a/+` is answered, every append to `a/...` after it also goes to the queue of `a/+`,
/// whichever gateway sends it. Deciding it in each gateway from a periodically refreshed filter list
/// (rocketmq-mqtt's way) loses the messages published between a SUBACK and the next refresh.
///
/// Filled from three sources:
/// - at start, the subscriptions of every stored session (offline persistent sessions keep receiving);
/// - gateways register and unregister the filters of their sessions as they change;
/// - a gateway that reconnects registers its whole set again (registration is idempotent).
///
/// A registration of a gateway that dies without unregistering stays until the session ends elsewhere or
/// the store node restarts: the cost is index entries in a queue nobody reads, never a lost message.
public final class DispatchRegistry: Sendable {
    private let filters = NIOLockedValueBox(TopicFilterTrie<String>())

    public init() {}

    /// Registers the wildcard filters of every subscription of `sessions`.
    public func load(_ sessions: [SessionRecord]) {
        filters.withLockedValue { trie in
            for session in sessions {
                for subscription in session.subscriptions {
                    guard let filter = try? TopicFilter(subscription.topicFilter), filter.hasWildcards else { continue }
                    _ = trie.insert(filter, value: session.clientIdentifier)
                }
            }
        }
    }

    /// Applies registrations (`added`) and unregistrations of `(filter, clientIdentifier)` pairs; filters
    /// without wildcards and invalid ones are ignored (a topic's own queue always gets its messages).
    public func update(added: [DispatchRegistration], removed: [DispatchRegistration]) {
        filters.withLockedValue { trie in
            for registration in added {
                guard let filter = try? TopicFilter(registration.filter), filter.hasWildcards else { continue }
                _ = trie.insert(filter, value: registration.clientIdentifier)
            }
            for registration in removed {
                guard let filter = try? TopicFilter(registration.filter), filter.hasWildcards else { continue }
                _ = trie.remove(filter, value: registration.clientIdentifier)
            }
        }
    }

    /// `queues` plus the queue of every registered filter matching `topic`, each once.
    public func dispatchQueues(topic: String, adding queues: [String]) -> [String] {
        guard let name = try? TopicName(topic) else { return queues }
        var result = queues
        filters.withLockedValue { trie in
            trie.forEachMatch(name) { filter, _ in
                let queue = LMQNaming.lmqName(for: filter)
                if !result.contains(queue) { result.append(queue) }
            }
        }
        return result
    }
}

/// A session's wildcard filter, as gateways register it with the store node.
public struct DispatchRegistration: Sendable, Hashable, StoreWireCodable {
    public var filter: String
    public var clientIdentifier: String

    public init(filter: String, clientIdentifier: String) {
        self.filter = filter
        self.clientIdentifier = clientIdentifier
    }

    /// The filter, then the client identifier, as strings.
    public func write(to buffer: inout ByteBuffer) {
        filter.write(to: &buffer)
        clientIdentifier.write(to: &buffer)
    }

    public init(from reader: inout StoreWireReader) throws(StoreWireError) {
        filter = try reader.string("topic filter")
        clientIdentifier = try reader.string("client identifier")
    }
}

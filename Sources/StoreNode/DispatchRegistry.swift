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
/// Filled from these sources:
/// - at start, the subscriptions of every stored session (offline persistent sessions keep receiving);
/// - gateways register and unregister the filters of their sessions as they change; registrations are
///   kept in the metadata file too (written in order, in the background);
/// - at start, the registrations kept before: a restarted node dispatches by them at once, rather than
///   only once each gateway has reconnected and registered its sessions' filters again. Those no gateway
///   registers again within ``provisionalSeconds`` and that no stored session holds are dropped (their
///   sessions ended while the node was down, or with a gateway that died);
/// - a gateway that reconnects registers its whole set again (registration is idempotent).
///
/// A registration of a gateway that dies without unregistering stays until the session ends elsewhere or
/// the node restarts: the cost is index entries in a queue nobody reads, never a lost message.
///
/// Registrations of server consumer groups (``DispatchRegistration/consumerGroupPrefix``, made by
/// `LMQClient` consumers) are durable: kept from before a restart, they are never dropped as
/// provisional, since a group keeps receiving while all its members are away.
public final class DispatchRegistry: MessageDispatching {
    /// How long registrations kept from before a restart are used without a gateway registering them again.
    public static let provisionalSeconds = 120

    private struct State {
        var trie = TopicFilterTrie<String>()
        /// Kept from before a restart, not registered again since, and not held by a stored session.
        var provisional: Set<DispatchRegistration> = []
    }

    private let state = NIOLockedValueBox(State())
    /// Writes registrations to the metadata file, in the order they happen.
    private let writes: AsyncStream<(added: [DispatchRegistration], removed: [DispatchRegistration])>.Continuation?
    private let writer: Task<Void, Never>?

    /// - Parameter metadata: where registrations are kept across restarts; nil: in memory only.
    public init(metadata: LMQMetadataStore? = nil) {
        guard let metadata else {
            writes = nil
            writer = nil
            return
        }
        let (stream, continuation) = AsyncStream.makeStream(of: (added: [DispatchRegistration], removed: [DispatchRegistration]).self)
        writes = continuation
        writer = Task {
            for await change in stream {
                try? await metadata.updateDispatchRegistrations(
                    added: change.added.map { ($0.filter, $0.clientIdentifier) }, removed: change.removed.map { ($0.filter, $0.clientIdentifier) }
                )
            }
        }
    }

    deinit {
        writes?.finish()
    }

    /// Stops writing registrations, once those already made are written.
    public func finishWrites() async {
        writes?.finish()
        await writer?.value
    }

    /// Registers the wildcard filters of every subscription of `sessions`, and `kept` (registrations from
    /// before a restart) provisionally.
    public func load(_ sessions: [SessionRecord], kept: [DispatchRegistration] = []) {
        state.withLockedValue { state in
            var held: Set<DispatchRegistration> = []
            for session in sessions {
                for subscription in session.subscriptions {
                    guard let filter = try? TopicFilter(subscription.topicFilter), filter.hasWildcards else { continue }
                    _ = state.trie.insert(filter, value: session.clientIdentifier)
                    held.insert(DispatchRegistration(filter: subscription.topicFilter, clientIdentifier: session.clientIdentifier))
                }
            }
            for registration in kept where !held.contains(registration) {
                guard let filter = try? TopicFilter(registration.filter), filter.hasWildcards else { continue }
                let inserted = state.trie.insert(filter, value: registration.clientIdentifier)
                if inserted && !registration.isConsumerGroup { state.provisional.insert(registration) }
            }
        }
    }

    /// Drops the registrations kept from before a restart that nobody registered again
    /// (``provisionalSeconds`` after the start). Returns how many.
    @discardableResult
    public func dropProvisional() -> Int {
        let dropped = state.withLockedValue { state -> [DispatchRegistration] in
            let dropped = Array(state.provisional)
            for registration in dropped {
                guard let filter = try? TopicFilter(registration.filter) else { continue }
                _ = state.trie.remove(filter, value: registration.clientIdentifier)
            }
            state.provisional = []
            return dropped
        }
        if !dropped.isEmpty { writes?.yield((added: [], removed: dropped)) }
        return dropped.count
    }

    /// Applies registrations (`added`) and unregistrations of `(filter, clientIdentifier)` pairs; filters
    /// without wildcards and invalid ones are ignored (a topic's own queue always gets its messages).
    public func update(added: [DispatchRegistration], removed: [DispatchRegistration]) {
        let wildcard = { (registration: DispatchRegistration) -> TopicFilter? in
            guard let filter = try? TopicFilter(registration.filter), filter.hasWildcards else { return nil }
            return filter
        }
        let (kept, dropped) = state.withLockedValue { state -> ([DispatchRegistration], [DispatchRegistration]) in
            var kept: [DispatchRegistration] = []
            var dropped: [DispatchRegistration] = []
            for registration in added {
                guard let filter = wildcard(registration) else { continue }
                _ = state.trie.insert(filter, value: registration.clientIdentifier)
                state.provisional.remove(registration)
                kept.append(registration)
            }
            for registration in removed {
                guard let filter = wildcard(registration) else { continue }
                _ = state.trie.remove(filter, value: registration.clientIdentifier)
                state.provisional.remove(registration)
                dropped.append(registration)
            }
            return (kept, dropped)
        }
        if !kept.isEmpty || !dropped.isEmpty { writes?.yield((added: kept, removed: dropped)) }
    }

    /// `queues` plus the queue of every registered filter matching `topic`, each once.
    public func dispatchQueues(topic: String, adding queues: [String]) -> [String] {
        guard let name = try? TopicName(topic) else { return queues }
        var result = queues
        state.withLockedValue { state in
            state.trie.forEachMatch(name) { filter, _ in
                let queue = LMQNaming.lmqName(for: filter)
                if !result.contains(queue) { result.append(queue) }
            }
        }
        return result
    }
}

/// Who decides which queues an append goes to: the store node's ``DispatchRegistry``, or in a standalone
/// node the gateway's own subscriptions (the node serves its in-process store to server applications).
public protocol MessageDispatching: Sendable {
    /// Registers (`added`) and unregisters (`removed`) wildcard filters for dispatch.
    func update(added: [DispatchRegistration], removed: [DispatchRegistration])
    /// `queues` plus the queue of every registered filter matching `topic`, each once.
    func dispatchQueues(topic: String, adding queues: [String]) -> [String]
}

/// A session's wildcard filter, as gateways register it with the store node (or a server consumer
/// group's, as `LMQClient` registers it).
public struct DispatchRegistration: Sendable, Hashable, StoreWireCodable {
    public var filter: String
    public var clientIdentifier: String

    /// How the registrations of server consumer groups are named: `%GROUP%<group>` in place of a client
    /// identifier. They are durable (``DispatchRegistry``).
    public static let consumerGroupPrefix = "%GROUP%"

    public init(filter: String, clientIdentifier: String) {
        self.filter = filter
        self.clientIdentifier = clientIdentifier
    }

    /// The registration of `filter` for the server consumer group `group`.
    public static func consumerGroup(_ group: String, filter: String) -> DispatchRegistration {
        DispatchRegistration(filter: filter, clientIdentifier: consumerGroupPrefix + group)
    }

    /// Whether this is a server consumer group's registration (durable).
    public var isConsumerGroup: Bool { clientIdentifier.hasPrefix(Self.consumerGroupPrefix) }

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

import LMQStore
import MQTTCore
import NIOConcurrencyHelpers
import StoreNode

/// One shared subscription `$share/{ShareName}/{filter}` on this node (MQTT 5.0 §4.8.2): its members read
/// the filter's queue through one cursor, so each message goes to one member. A member takes a batch when
/// it has room in its receive window; what a member took and did not finish goes back to the group when it
/// leaves, and the other members get it ([MQTT-4.8.2-4] allows the server to send it to another member).
///
/// Members live on different event loops, hence the lock. The group's cursor lives in memory while the
/// group has members, persistent or connected; docs/gateway.md says what that means for a restart.
///
/// In cluster mode (`remote` set) the cursor is the store node's (SharedGroupRegistry), shared by every
/// gateway: this group takes batches from it into a buffer when a member has room, tells it what its
/// members finished, and gives back what it holds when its last member leaves.
final class SharedSubscriptionGroup: Sendable {
    /// `$share/{ShareName}/{filter}` as subscribed.
    let key: String
    let queue: String
    private let remote: StoreNodeClient?
    /// Messages taken from the store node per request.
    static let remoteBatch = 64

    private struct State {
        /// The next offset to read from the store.
        var readOffset: Int64
        /// Handed back by members that left; given out before anything new.
        var returned: [LMQReadResult.Message] = []
        /// Offsets taken by a member and not finished → that member's connection.
        var outstanding: [Int64: UInt64] = [:]
        var members: [UInt64: ConnectionHandle] = [:]
        /// Cluster mode: taken from the store node and not yet given to a member.
        var buffered: [LMQReadResult.Message] = []
        var fetching = false
    }

    private let state: NIOLockedValueBox<State>

    init(key: String, queue: String, readOffset: Int64, remote: StoreNodeClient? = nil) {
        self.key = key
        self.queue = queue
        self.remote = remote
        self.state = NIOLockedValueBox(State(readOffset: readOffset))
    }

    /// Wakes every member (messages arrived for the group).
    func wakeMembers() {
        for member in state.withLockedValue({ Array($0.members.values) }) { member.queueHasMessages(queue) }
    }

    func join(_ handle: ConnectionHandle) {
        state.withLockedValue { $0.members[handle.connectionID] = handle }
    }

    /// Removes a member; what it took and did not finish (`unfinished`, in offset order) goes back to the
    /// group, and the remaining members are woken to take it. Returns whether the group is now empty.
    @discardableResult
    func leave(connectionID: UInt64, unfinished: [LMQReadResult.Message]) -> Bool {
        let (others, empty) = state.withLockedValue { state -> ([ConnectionHandle], Bool) in
            state.members[connectionID] = nil
            var handedBack: [LMQReadResult.Message] = []
            for message in unfinished where state.outstanding[message.offset] == connectionID {
                state.outstanding[message.offset] = nil
                handedBack.append(message)
            }
            state.returned = (state.returned + handedBack).sorted { $0.offset < $1.offset }
            return (Array(state.members.values), state.members.isEmpty)
        }
        if !unfinished.isEmpty {
            for member in others { member.queueHasMessages(queue) }
        }
        return empty
    }

    /// Up to `maximum` messages for the member `connectionID`: handed-back ones first, then the next ones of
    /// the queue. Empty when there is nothing new.
    func take(for connectionID: UInt64, maximum: Int, store: any GatewayMessageStore) -> [LMQReadResult.Message] {
        if let remote { return takeFromStoreNode(for: connectionID, maximum: maximum, remote) }
        return state.withLockedValue { state in
            var taken: [LMQReadResult.Message] = []
            if !state.returned.isEmpty {
                taken = Array(state.returned.prefix(maximum))
                state.returned.removeFirst(taken.count)
            }
            if taken.count < maximum, state.readOffset < store.maxOffset(queue: queue),
                let result = try? store.read(queue: queue, from: state.readOffset, maxMessages: maximum - taken.count)
            {
                taken += result.messages
                state.readOffset = max(state.readOffset, result.nextOffset)
            }
            for message in taken { state.outstanding[message.offset] = connectionID }
            return taken
        }
    }

    /// Cluster mode: handed-back messages, then the buffer; an empty buffer starts a take from the store
    /// node, whose answer wakes the members.
    private func takeFromStoreNode(for connectionID: UInt64, maximum: Int, _ remote: StoreNodeClient) -> [LMQReadResult.Message] {
        let (taken, fetchFrom) = state.withLockedValue { state -> ([LMQReadResult.Message], Int64?) in
            var taken = Array(state.returned.prefix(maximum))
            state.returned.removeFirst(taken.count)
            let fromBuffer = state.buffered.prefix(maximum - taken.count)
            taken += fromBuffer
            state.buffered.removeFirst(fromBuffer.count)
            for message in taken { state.outstanding[message.offset] = connectionID }
            guard taken.count < maximum, state.buffered.isEmpty, !state.fetching else { return (taken, nil) }
            state.fetching = true
            return (taken, state.readOffset)
        }
        if let fetchFrom {
            Task {
                let fetched = (try? await remote.takeShared(key: key, queue: queue, startOffset: fetchFrom, maximum: Self.remoteBatch)) ?? []
                state.withLockedValue { state in
                    state.buffered += fetched
                    state.fetching = false
                }
                if !fetched.isEmpty { wakeMembers() }
            }
        }
        return taken
    }

    /// The member finished the delivery at `offset` (or will never send it).
    func finish(_ offset: Int64) {
        state.withLockedValue { _ = $0.outstanding.removeValue(forKey: offset) }
        remote?.finishShared(key: key, offsets: [offset])
    }

    /// Cluster mode: the last member left; what the group holds goes back to the store node for the
    /// other gateways.
    fileprivate func giveBackToStoreNode() {
        guard let remote else { return }
        let offsets = state.withLockedValue { state -> [Int64] in
            let offsets = (state.returned + state.buffered).map(\.offset) + Array(state.outstanding.keys)
            state.returned = []
            state.buffered = []
            state.outstanding = [:]
            return offsets.sorted()
        }
        if !offsets.isEmpty { remote.giveBackShared(key: key, offsets: offsets) }
    }

    var memberCount: Int { state.withLockedValue { $0.members.count } }
}

/// The shared subscription groups of this node, by `$share/{ShareName}/{filter}`.
final class SharedSubscriptionGroups: Sendable {
    private let groups = NIOLockedValueBox<[String: SharedSubscriptionGroup]>([:])
    /// Cluster mode: the store node that keeps the groups' cursors.
    /// Cluster mode: the store node that keeps a group's cursor, by the group's queue (the node of the
    /// filter's first topic); nil in standalone mode.
    private let remote: (@Sendable (_ queue: String) -> StoreNodeClient)?

    init(remote: (@Sendable (_ queue: String) -> StoreNodeClient)? = nil) {
        self.remote = remote
    }

    /// The group of `filter` (a shared filter), created reading from `startOffset` when it has no members.
    func join(_ filter: TopicFilter, _ handle: ConnectionHandle, startOffset: @autoclosure () -> Int64) -> SharedSubscriptionGroup {
        let group = groups.withLockedValue { groups in
            if let existing = groups[filter.string] { return existing }
            let created = SharedSubscriptionGroup(
                key: filter.string, queue: filter.lmqName, readOffset: startOffset(), remote: remote?(filter.lmqName)
            )
            groups[filter.string] = created
            return created
        }
        group.join(handle)
        return group
    }

    /// The member leaves `group`; the group is forgotten when it was the last one.
    func leave(_ group: SharedSubscriptionGroup, connectionID: UInt64, unfinished: [LMQReadResult.Message]) {
        guard group.leave(connectionID: connectionID, unfinished: unfinished) else { return }
        let forgotten = groups.withLockedValue { groups -> Bool in
            guard groups[group.key] === group, group.memberCount == 0 else { return false }
            groups[group.key] = nil
            return true
        }
        if forgotten { group.giveBackToStoreNode() }
    }

    /// Cluster mode: the store node handed messages of group `key` back; its members here take them.
    func messagesReturned(key: String) {
        groups.withLockedValue { $0[key] }?.wakeMembers()
    }

    /// The in-memory key that holds a shared filter's dispatch registration (no client identifier can
    /// contain U+0000, [MQTT-1.5.4-2]).
    static func dispatchHolder(_ filter: TopicFilter) -> String {
        "\u{0}\(filter.string)"
    }
}

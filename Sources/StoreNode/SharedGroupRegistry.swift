import LMQStore
import NIOConcurrencyHelpers
import Remoting

/// The cursors of shared subscriptions (`$share/{ShareName}/{filter}`, MQTT 5.0 §4.8.2) for the whole
/// cluster: each message of the filter's queue goes to one gateway, which gives it to one of its members.
///
/// A gateway *takes* messages for a group when one of its members has room: first messages handed back
/// (by a gateway whose members all left, or whose connection to the store node closed), then the next
/// ones from the group's cursor. What a gateway took is outstanding until it says it *finished* it (the
/// member acknowledged it, or will never send it) or *returns* it. When a gateway's connection closes,
/// what it had outstanding is handed back and the other gateways that take from the group are told
/// (a push), so a gateway that dies loses nothing its members had not acknowledged.
///
/// The cursor starts where the first gateway to take says (the queue's end when its first member
/// subscribed). The low-water mark (the lowest offset not finished) is committed to the metadata as the
/// consume offset of group `%SHARE%<key>`, so after a restart the group goes on from there: messages taken
/// but not finished before the restart are delivered again (at least once).
public final class SharedGroupRegistry: Sendable {
    private struct Group {
        var queue: String
        var cursor: Int64
        var returned: [Int64] = []
        var outstanding: [Int64: ObjectIdentifier] = [:]
        /// Connections that took from the group, told when messages are handed back.
        var takers: [ObjectIdentifier: RemotingServerConnection] = [:]

        var lowWaterMark: Int64 { min(cursor, outstanding.keys.min() ?? cursor, returned.first ?? cursor) }
    }

    private struct State {
        var groups: [String: Group] = [:]
        var watchedConnections: Set<ObjectIdentifier> = []
        /// Low-water marks not written to the metadata yet, by group key; the highest wins.
        var uncommitted: [String: (queue: String, offset: Int64)] = [:]
        /// Whether a task is writing `uncommitted`.
        var committing = false
    }

    private let store: LMQStore
    private let metadata: LMQMetadataStore
    private let state = NIOLockedValueBox(State())

    public init(store: LMQStore, metadata: LMQMetadataStore) {
        self.store = store
        self.metadata = metadata
    }

    /// The consume-offset group under which `key`'s low-water mark is kept.
    public static func offsetGroup(_ key: String) -> String { "%SHARE%" + key }

    /// Up to `maximum` messages of group `key` (reading `queue`) for `connection`.
    /// - Parameter startOffset: where a group unknown so far starts, unless a committed offset says otherwise.
    /// - Parameter push: tells a taker that messages were handed back (`SHARED_RETURNED`).
    public func take(
        key: String, queue: String, startOffset: Int64, maximum: Int, by connection: RemotingServerConnection,
        push: @escaping @Sendable (RemotingServerConnection, String) -> Void
    ) async throws -> [LMQReadResult.Message] {
        if state.withLockedValue({ $0.groups[key] == nil }) {
            let committed = try await metadata.queryOffset(group: Self.offsetGroup(key), lmq: queue)
            state.withLockedValue { state in
                if state.groups[key] == nil { state.groups[key] = Group(queue: queue, cursor: committed ?? startOffset) }
            }
        }
        let watchClose = state.withLockedValue { $0.watchedConnections.insert(connection.id).inserted }
        if watchClose {
            connection.closeFuture.whenComplete { [weak self] _ in self?.connectionClosed(connection.id, push: push) }
        }
        let (taken, lowWater) = try state.withLockedValue { state -> ([LMQReadResult.Message], Int64?) in
            guard var group = state.groups[key] else { return ([], nil) }
            defer { state.groups[key] = group }
            group.takers[connection.id] = connection
            var taken: [LMQReadResult.Message] = []
            // Handed-back messages first; one read each (they are few: what a departed gateway held).
            while taken.count < maximum, !group.returned.isEmpty {
                let offset = group.returned.removeFirst()
                if let message = try store.read(queue: group.queue, from: offset, maxMessages: 1).messages.first, message.offset == offset {
                    taken.append(message)
                }
            }
            if taken.count < maximum, group.cursor < store.maxOffset(queue: group.queue) {
                let result = try store.read(queue: group.queue, from: group.cursor, maxMessages: maximum - taken.count)
                taken += result.messages
                group.cursor = max(group.cursor, result.nextOffset)
            }
            for message in taken { group.outstanding[message.offset] = connection.id }
            return (taken, taken.isEmpty ? nil : group.lowWaterMark)
        }
        if let lowWater { commit(key: key, queue: queue, offset: lowWater) }
        return taken
    }

    /// `connection` finished `offsets` of group `key` (delivered and acknowledged, or never to be sent).
    public func finish(key: String, offsets: [Int64]) {
        let commit = state.withLockedValue { state -> (String, Int64)? in
            guard var group = state.groups[key] else { return nil }
            for offset in offsets { group.outstanding[offset] = nil }
            state.groups[key] = group
            return (group.queue, group.lowWaterMark)
        }
        if let (queue, offset) = commit { self.commit(key: key, queue: queue, offset: offset) }
    }

    /// `connection` hands `offsets` of group `key` back (its members all left): other takers get them.
    public func giveBack(key: String, offsets: [Int64], by connection: RemotingServerConnection, push: @escaping @Sendable (RemotingServerConnection, String) -> Void) {
        let tell = state.withLockedValue { state -> [RemotingServerConnection] in
            guard var group = state.groups[key] else { return [] }
            for offset in offsets where group.outstanding[offset] == connection.id {
                group.outstanding[offset] = nil
                group.returned.append(offset)
            }
            group.returned.sort()
            group.takers[connection.id] = nil
            state.groups[key] = group
            return Array(group.takers.values)
        }
        for taker in tell { push(taker, key) }
    }

    private func connectionClosed(_ connection: ObjectIdentifier, push: @escaping @Sendable (RemotingServerConnection, String) -> Void) {
        let tell = state.withLockedValue { state -> [(RemotingServerConnection, String)] in
            state.watchedConnections.remove(connection)
            var tell: [(RemotingServerConnection, String)] = []
            for (key, var group) in state.groups {
                let held = group.outstanding.filter { $0.value == connection }.keys
                group.takers[connection] = nil
                guard !held.isEmpty else {
                    state.groups[key] = group
                    continue
                }
                for offset in held { group.outstanding[offset] = nil }
                group.returned = (group.returned + held).sorted()
                state.groups[key] = group
                tell += group.takers.values.map { ($0, key) }
            }
            return tell
        }
        for (taker, key) in tell { push(taker, key) }
    }

    /// Records `offset` as the low-water mark of group `key`, written to the metadata by one task at a
    /// time: the marks that pile up while it writes are written together (the latest per group), never
    /// out of order, so the committed mark never goes down. A mark lost to a crash only means more
    /// redelivery after the restart.
    private func commit(key: String, queue: String, offset: Int64) {
        let start = state.withLockedValue { state -> Bool in
            if let pending = state.uncommitted[key], pending.offset >= offset { return false }
            state.uncommitted[key] = (queue, offset)
            defer { state.committing = true }
            return !state.committing
        }
        guard start else { return }
        let metadata = self.metadata
        Task { [state] in
            while true {
                let batch = state.withLockedValue { state -> [String: (queue: String, offset: Int64)] in
                    defer { state.uncommitted = [:] }
                    if state.uncommitted.isEmpty { state.committing = false }
                    return state.uncommitted
                }
                if batch.isEmpty { return }
                for (key, mark) in batch {
                    try? await metadata.commitOffset(group: Self.offsetGroup(key), lmq: mark.queue, offset: mark.offset)
                }
            }
        }
    }
}

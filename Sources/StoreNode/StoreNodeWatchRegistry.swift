import LMQStore
import NIOConcurrencyHelpers
import NIOCore
import Remoting

/// Which connection watches which queues, and the notifications waiting to be pushed to each.
///
/// The store's arrival listener calls ``arrived(_:)`` after every append; only connections watching one
/// of the message's queues get anything. A connection's notifications are gathered until its event loop
/// next runs the flush, so one NOTIFY frame carries every queue that moved in the meantime, with its
/// newest maximum offset. A connection's watch set goes away when it closes.
final class StoreNodeWatchRegistry: Sendable {
    private struct Watcher {
        var connection: RemotingServerConnection
        var queues: Set<String> = []
        /// Queue → max offset (the offset the next message will get) not yet pushed.
        var pending: [String: Int64] = [:]
        var flushScheduled = false
    }

    private struct State {
        var watchers: [ObjectIdentifier: Watcher] = [:]
        var watchersByQueue: [String: Set<ObjectIdentifier>] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Adds `queues` to the watch set of `connection`.
    func watch(_ queues: [String], connection: RemotingServerConnection) {
        let id = connection.id
        let isNew = state.withLockedValue { state -> Bool in
            let isNew = state.watchers[id] == nil
            if isNew { state.watchers[id] = Watcher(connection: connection) }
            for queue in queues {
                state.watchers[id]!.queues.insert(queue)
                state.watchersByQueue[queue, default: []].insert(id)
            }
            return isNew
        }
        guard isNew else { return }
        connection.closeFuture.whenComplete { [self] _ in connectionClosed(id) }
        // Closed before the hook was added: the hook above ran at once, or the channel is already gone.
        if !connection.isActive { connectionClosed(id) }
    }

    /// Removes `queues` from the watch set of `connection`.
    func unwatch(_ queues: [String], connection: RemotingServerConnection) {
        let id = connection.id
        state.withLockedValue { state in
            guard state.watchers[id] != nil else { return }
            for queue in queues {
                state.watchers[id]!.queues.remove(queue)
                state.watchers[id]!.pending[queue] = nil
                Self.removeWatcher(id, of: queue, from: &state)
            }
        }
    }

    /// The number of connections watching something (for logs and tests).
    var connectionCount: Int { state.withLockedValue { $0.watchers.count } }

    private func connectionClosed(_ id: ObjectIdentifier) {
        state.withLockedValue { state in
            guard let watcher = state.watchers.removeValue(forKey: id) else { return }
            for queue in watcher.queues { Self.removeWatcher(id, of: queue, from: &state) }
        }
    }

    private static func removeWatcher(_ id: ObjectIdentifier, of queue: String, from state: inout State) {
        guard var ids = state.watchersByQueue[queue] else { return }
        ids.remove(id)
        state.watchersByQueue[queue] = ids.isEmpty ? nil : ids
    }

    /// Called by the store after an append, on the appending thread: records the new max offset of each
    /// watched queue and schedules one flush per watching connection.
    func arrived(_ queueOffsets: [QueueOffset]) {
        let toSchedule = state.withLockedValue { state -> [RemotingServerConnection] in
            guard !state.watchersByQueue.isEmpty else { return [] }
            var toSchedule: [RemotingServerConnection] = []
            for queueOffset in queueOffsets {
                guard let ids = state.watchersByQueue[queueOffset.queue] else { continue }
                for id in ids {
                    guard var watcher = state.watchers[id] else { continue }
                    let maxOffset = queueOffset.offset + 1
                    watcher.pending[queueOffset.queue] = max(watcher.pending[queueOffset.queue] ?? 0, maxOffset)
                    if !watcher.flushScheduled {
                        watcher.flushScheduled = true
                        toSchedule.append(watcher.connection)
                    }
                    state.watchers[id] = watcher
                }
            }
            return toSchedule
        }
        for connection in toSchedule {
            connection.eventLoop.execute { [self] in flush(connection) }
        }
    }

    /// How long a flush waits before looking again at a connection whose client does not read.
    static let unwritableRetryDelay = TimeAmount.milliseconds(20)

    /// Pushes what gathered for `connection` as one NOTIFY. While the client does not read, nothing is
    /// written: the pending offsets keep merging (at most one entry per watched queue), so a slow client
    /// costs a bounded map rather than a growing send buffer.
    private func flush(_ connection: RemotingServerConnection) {
        guard connection.isWritable || !connection.isActive else {
            connection.eventLoop.scheduleTask(in: Self.unwritableRetryDelay) { [self] in flush(connection) }
            return
        }
        let pending = state.withLockedValue { state -> [String: Int64] in
            guard var watcher = state.watchers[connection.id] else { return [:] }
            let pending = watcher.pending
            watcher.pending = [:]
            watcher.flushScheduled = false
            state.watchers[connection.id] = watcher
            return pending
        }
        guard !pending.isEmpty else { return }
        let request = RemotingCommand.request(code: StoreNodeRequestCode.notify.rawValue, body: StoreWireCodec.encode(pending))
        connection.sendOneway(request)
    }
}

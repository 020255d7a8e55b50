import LMQStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Will messages waiting for their Will Delay Interval (MQTT 5.0 §3.1.3.2.2): published when the delay (or
/// the session, if it ends first) runs out, unless the client connects again first ([MQTT-3.1.3-9]).
/// The will also stays in the session record until it is published, so a node that restarts in between
/// publishes it then (`Gateway.recoverSessions`).
final class WillScheduler: Sendable {
    private struct Pending {
        var generation: UInt64
        var task: Scheduled<Void>
    }

    private let pending = NIOLockedValueBox<[String: Pending]>([:])
    private let generation = NIOLockedValueBox<UInt64>(0)
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.eventLoop = eventLoop
    }

    /// Runs `publish` after `delayMillis` unless `cancel(clientIdentifier)` comes first. A second schedule
    /// for the same client replaces the first.
    func schedule(clientIdentifier: String, delayMillis: Int64, publish: @escaping @Sendable () -> Void) {
        let current = generation.withLockedValue { value -> UInt64 in
            value += 1
            return value
        }
        let task = eventLoop.scheduleTask(in: .milliseconds(max(0, delayMillis))) { [pending] in
            let due = pending.withLockedValue { pending -> Bool in
                guard pending[clientIdentifier]?.generation == current else { return false }
                pending[clientIdentifier] = nil
                return true
            }
            if due { publish() }
        }
        let replaced = pending.withLockedValue { pending in
            defer { pending[clientIdentifier] = Pending(generation: current, task: task) }
            return pending[clientIdentifier]
        }
        replaced?.task.cancel()
    }

    /// The client connected again: its delayed will is not published. Returns whether one was waiting.
    @discardableResult
    func cancel(clientIdentifier: String) -> Bool {
        guard let removed = pending.withLockedValue({ $0.removeValue(forKey: clientIdentifier) }) else { return false }
        removed.task.cancel()
        return true
    }

    /// Forgets every waiting will (the node is stopping; the wills stay in the session records).
    func cancelAll() {
        let all = pending.withLockedValue { pending in
            defer { pending = [:] }
            return Array(pending.values)
        }
        for entry in all { entry.task.cancel() }
    }

    /// How many wills are waiting.
    var count: Int { pending.withLockedValue { $0.count } }
}

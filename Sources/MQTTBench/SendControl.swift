import NIOConcurrencyHelpers

/// Counts the sends of `lmq-pub`'s producers against the message limit, and tells their send loops
/// when publishing stops. At a fixed rate, ``SendPermits`` says when each send is due.
final class SendControl: Sendable {
    private struct State {
        var stopped = false
        /// Sends started per producer.
        var issued: [UInt64]
        var finishedLoops = 0
    }

    /// Messages per producer; nil: until publishing stops.
    let messageLimit: UInt64?
    private let state: NIOLockedValueBox<State>

    init(producerCount: Int, messageLimit: UInt64?) {
        self.messageLimit = messageLimit
        state = NIOLockedValueBox(State(issued: Array(repeating: 0, count: producerCount)))
    }

    /// Whether a loop of `producer` may send one more message: false once publishing stopped or the
    /// producer has sent its limit.
    func take(producer: Int) -> Bool {
        state.withLockedValue { state in
            guard !state.stopped else { return false }
            if let messageLimit, state.issued[producer] >= messageLimit { return false }
            state.issued[producer] += 1
            return true
        }
    }

    func stop() {
        state.withLockedValue { $0.stopped = true }
    }

    var isStopped: Bool { state.withLockedValue { $0.stopped } }

    /// A send loop ended.
    func loopFinished() {
        state.withLockedValue { $0.finishedLoops += 1 }
    }

    var finishedLoops: Int { state.withLockedValue { $0.finishedLoops } }
}

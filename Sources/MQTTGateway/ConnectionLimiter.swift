import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Enforces `maxConn`: a connection takes a slot when it is accepted and gives it back when it closes;
/// one more than the limit is closed at once, before any MQTT is read. Refusals are counted and logged at
/// most once per second (a flood of connections must not become a flood of log lines).
final class ConnectionLimiter: Sendable {
    let maximumConnections: Int
    private struct State {
        var open = 0
        var refusedSinceLastLog = 0
        var lastLogUptimeNanos: UInt64?
    }
    private let state = NIOLockedValueBox(State())

    init(maximumConnections: Int) {
        precondition(maximumConnections > 0)
        self.maximumConnections = maximumConnections
    }

    /// The connections holding a slot.
    var openConnections: Int { state.withLockedValue { $0.open } }

    /// Takes a slot for a new connection; `false` when all are taken (the connection must be closed).
    /// A refusal is counted in `counters` and, at most once per second, logged with how many were refused.
    func tryAcquire(counters: LimitCounters, logger: Logger, nowNanos: UInt64 = NIODeadline.now().uptimeNanoseconds) -> Bool {
        let (acquired, refusedToLog) = state.withLockedValue { state -> (Bool, Int?) in
            if state.open < maximumConnections {
                state.open += 1
                return (true, nil)
            }
            state.refusedSinceLastLog += 1
            if let last = state.lastLogUptimeNanos, nowNanos &- last < 1_000_000_000 { return (false, nil) }
            state.lastLogUptimeNanos = nowNanos
            defer { state.refusedSinceLastLog = 0 }
            return (false, state.refusedSinceLastLog)
        }
        if !acquired {
            counters.add(.connectionRefused)
            if let refusedToLog {
                logger.warning("maxConn reached: refusing connections", metadata: [
                    "maxConn": "\(maximumConnections)", "refusedSinceLastLog": "\(refusedToLog)",
                ])
            }
        }
        return acquired
    }

    /// Gives back the slot of a closed connection.
    func release() {
        state.withLockedValue { state in
            precondition(state.open > 0, "a connection slot released twice")
            state.open -= 1
        }
    }
}

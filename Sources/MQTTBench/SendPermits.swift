import NIOConcurrencyHelpers

/// The fixed-rate schedule of one `lmq-pub` producer: a pacer adds the permits that are due every
/// millisecond (as `BenchClientHandler` sends what is due on each 1 ms tick), and each send loop takes
/// one before a send. One timer for the producer, rather than one sleep per message in every loop:
/// the tool's own cost stays out of the figures.
final class SendPermits: Sendable {
    private struct State {
        var available: UInt64 = 0
        var waiters: [CheckedContinuation<Bool, Never>] = []
        var isClosed = false
    }

    private let state = NIOLockedValueBox(State())

    /// Waits for a permit; false once closed.
    func acquire() async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let granted: Bool? = state.withLockedValue { state in
                if state.isClosed { return false }
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return nil
            }
            if let granted { continuation.resume(returning: granted) }
        }
    }

    /// Adds `count` permits, waking as many waiting loops.
    func release(_ count: UInt64) {
        guard count > 0 else { return }
        let woken: [CheckedContinuation<Bool, Never>] = state.withLockedValue { state in
            guard !state.isClosed else { return [] }
            let wake = Int(min(count, UInt64(state.waiters.count)))
            let woken = Array(state.waiters.prefix(wake))
            state.waiters.removeFirst(wake)
            state.available += count - UInt64(wake)
            return woken
        }
        for continuation in woken { continuation.resume(returning: true) }
    }

    /// Ends the schedule: every waiting loop (and every later ``acquire()``) gets false.
    func close() {
        let woken: [CheckedContinuation<Bool, Never>] = state.withLockedValue { state in
            state.isClosed = true
            let woken = state.waiters
            state.waiters = []
            return woken
        }
        for continuation in woken { continuation.resume(returning: false) }
    }

    /// Releases what `ratePerSecond` makes due since `startNanos`, every millisecond, until closed.
    func pace(ratePerSecond: Double, startNanos: UInt64) async {
        var released: UInt64 = 0
        while !state.withLockedValue({ $0.isClosed }) {
            let elapsedNanos = monotonicNanoseconds() - startNanos
            let due = UInt64(Double(elapsedNanos) * ratePerSecond / 1e9) + 1
            if due > released {
                release(due - released)
                released = due
            }
            try? await Task.sleep(nanoseconds: 1_000_000)
        }
    }
}

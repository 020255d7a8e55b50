import NIOConcurrencyHelpers
import NIOCore

/// Keeps publishers at most a window of deliveries ahead of what subscribers have received
/// (`pubsub --max-ahead`). Without it a QoS 0 publisher at an unlimited rate outruns a broker that
/// cannot keep up: the broker buffers without bound or drops, latency becomes queueing time, and the
/// load tool spends its core on messages that are never delivered. With it "max rate" means the
/// fastest rate the broker delivers everything at.
///
/// Publishers take allowance before a burst and add what they sent; subscribers add what they received
/// once per read batch. A publisher refused allowance parks a resume closure, which runs on its own
/// event loop once the backlog has fallen to half the window.
final class DeliveryGate: Sendable {
    private struct State {
        var publishedDeliveries: Double = 0
        var delivered: Double = 0
        var deliveredAtLastCheck: Double = 0
        var waiting: [@Sendable () -> Void] = []
    }

    /// Deliveries (messages × matching subscribers) that may be under way at once.
    let windowDeliveries: Double
    /// Deliveries one published message makes on average (matching subscribers per publisher).
    let fanOut: Double
    private let state = NIOLockedValueBox(State())

    init(windowDeliveries: Int, fanOut: Double) {
        precondition(windowDeliveries > 0)
        self.windowDeliveries = Double(windowDeliveries)
        self.fanOut = max(fanOut, 1e-9)
    }

    /// How many of `wanted` messages may be published now; 0 parks `resume` until there is room.
    func allowance(wanted: Int, resume: @escaping @Sendable () -> Void) -> Int {
        state.withLockedValue { state in
            let room = windowDeliveries - (state.publishedDeliveries - state.delivered)
            let allowed = min(wanted, max(0, Int(room / fanOut)))
            if allowed == 0 { state.waiting.append(resume) }
            return allowed
        }
    }

    func published(_ count: Int) {
        state.withLockedValue { $0.publishedDeliveries += Double(count) * fanOut }
    }

    func delivered(_ count: Int) {
        let resumes: [@Sendable () -> Void] = state.withLockedValue { state in
            state.delivered += Double(count)
            guard !state.waiting.isEmpty, state.publishedDeliveries - state.delivered <= windowDeliveries / 2 else { return [] }
            let waiting = state.waiting
            state.waiting = []
            return waiting
        }
        for resume in resumes { resume() }
    }

    /// Called by the runner every few tens of milliseconds: when nothing has been delivered since the
    /// previous call while publishers wait, the missing deliveries are taken as lost (a QoS 0 broker may
    /// drop) and the publishers resume, so that a loss cannot stop the run.
    func forgiveStall() {
        let resumes: [@Sendable () -> Void] = state.withLockedValue { state in
            defer { state.deliveredAtLastCheck = state.delivered }
            guard !state.waiting.isEmpty, state.delivered == state.deliveredAtLastCheck else { return [] }
            state.delivered = state.publishedDeliveries
            let waiting = state.waiting
            state.waiting = []
            return waiting
        }
        for resume in resumes { resume() }
    }

    /// Wakes every parked publisher: publishing is over and they must see that it stopped.
    func releaseAll() {
        let resumes = state.withLockedValue { state in
            let waiting = state.waiting
            state.waiting = []
            return waiting
        }
        for resume in resumes { resume() }
    }
}

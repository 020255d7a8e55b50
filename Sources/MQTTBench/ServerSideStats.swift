import Histogram
import NIOConcurrencyHelpers

/// The counters and histograms of the server-side clients of a run (``LMQProducer``s or the members of
/// a consumer group), which run in tasks rather than on the runner's event loops, so they sit behind a
/// lock. One instance per producer (each of its send loops records into it) or one for a whole
/// consumer group (its members share the record of what arrived, so a message handed to two members
/// counts as a duplicate).
///
/// For producers, `latencyMicros` is send → durable (the call of `send` to its return); for consumers
/// it is publish → receipt, from the payload's stamp.
final class ServerSideStats: Sendable {
    struct Snapshot: Sendable, CountedSnapshot {
        var counters: StatsCounters
        var sendFailures: UInt64
        var latencyMicros: Histogram<UInt64>

        static func empty() -> Snapshot {
            Snapshot(counters: StatsCounters(), sendFailures: 0, latencyMicros: LatencyHistogram.make())
        }

        mutating func merge(_ other: Snapshot) {
            counters = counters + other.counters
            sendFailures += other.sendFailures
            latencyMicros.add(other.latencyMicros)
        }
    }

    private struct State {
        var counters = StatsCounters()
        var sendFailures: UInt64 = 0
        var latencyMicros = LatencyHistogram.make()
        var intervalLatencyMicros = LatencyHistogram.make()
        /// Consumers: the sequence numbers seen, per publisher id.
        var seen: [SequenceBitmap] = []

        mutating func record(micros: UInt64) {
            latencyMicros.record(min(micros, LatencyHistogram.highestMicros))
            intervalLatencyMicros.record(min(micros, LatencyHistogram.highestMicros))
        }
    }

    private let state = NIOLockedValueBox(State())

    // MARK: Producers

    /// A send is about to go out.
    func sendStarted() {
        state.withLockedValue { $0.counters.published += 1 }
    }

    /// A send returned: the store node said the message is durable (or the send failed).
    func sendFinished(succeeded: Bool, micros: UInt64) {
        state.withLockedValue { state in
            if succeeded {
                state.counters.acknowledged += 1
                state.record(micros: micros)
            } else {
                state.sendFailures += 1
            }
        }
    }

    // MARK: Consumers

    /// What a consumer made of one message.
    enum Receipt: Sendable, Hashable {
        /// Its first arrival.
        case first(publisherID: UInt32, sequence: UInt64)
        /// It arrived before (at this or another member).
        case duplicate
        /// No stamp of this tool.
        case foreign
    }

    /// Records one message a consumer received: its latency, and whether it is new.
    func received(_ stamp: BenchPayload?, payloadBytes: Int, nowNanos: UInt64) -> Receipt {
        state.withLockedValue { state in
            state.counters.received += 1
            state.counters.payloadBytesReceived += UInt64(payloadBytes)
            guard let stamp else {
                state.counters.foreign += 1
                return .foreign
            }
            state.record(micros: nowNanos > stamp.sendTimeNanos ? (nowNanos - stamp.sendTimeNanos) / 1000 : 0)
            let publisher = Int(stamp.publisherID)
            if publisher >= state.seen.count {
                state.seen.append(contentsOf: repeatElement(SequenceBitmap(), count: publisher + 1 - state.seen.count))
            }
            guard state.seen[publisher].insert(stamp.sequence) else {
                state.counters.duplicates += 1
                return .duplicate
            }
            state.counters.receivedUnique += 1
            return .first(publisherID: stamp.publisherID, sequence: stamp.sequence)
        }
    }

    /// A member got a message of a publisher after a later one of the same publisher.
    func reordered() {
        state.withLockedValue { $0.counters.reordered += 1 }
    }

    // MARK: Reading

    func snapshot() -> Snapshot {
        state.withLockedValue { Snapshot(counters: $0.counters, sendFailures: $0.sendFailures, latencyMicros: $0.latencyMicros) }
    }

    /// A snapshot whose latency is that of the interval since the previous call (the progress line).
    func takeInterval() -> Snapshot {
        state.withLockedValue { state in
            let interval = state.intervalLatencyMicros
            state.intervalLatencyMicros.reset()
            return Snapshot(counters: state.counters, sendFailures: state.sendFailures, latencyMicros: interval)
        }
    }

    /// Forgets latencies recorded so far: called at the end of the warm-up.
    func resetLatency() {
        state.withLockedValue { state in
            state.latencyMicros.reset()
            state.intervalLatencyMicros.reset()
        }
    }

    /// The merged snapshot of several.
    static func merged(_ all: [ServerSideStats], interval: Bool = false) -> Snapshot {
        var total = Snapshot.empty()
        for stats in all { total.merge(interval ? stats.takeInterval() : stats.snapshot()) }
        return total
    }
}

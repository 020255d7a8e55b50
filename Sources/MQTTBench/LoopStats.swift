import Histogram

/// The counters and histograms of the clients of one event loop.
///
/// `@unchecked Sendable`: an instance is only ever touched on its event loop, by the handlers of that
/// loop and by closures the runner submits to that loop; nothing reads it from another thread. Keeping
/// one per loop means the hot path takes no lock.
final class LoopStats: @unchecked Sendable {
    var counters = StatsCounters()
    /// Publish-to-delivery latency in microseconds since the last `resetLatency()`.
    var latencyMicros = LatencyHistogram.make()
    /// The same, since the last `takeInterval()`: the progress line shows the last second.
    var intervalLatencyMicros = LatencyHistogram.make()
    /// TCP connect to CONNACK, in microseconds.
    var connectLatencyMicros = LatencyHistogram.make()

    @inline(__always)
    func recordLatency(micros: UInt64) {
        latencyMicros.record(min(micros, LatencyHistogram.highestMicros))
        intervalLatencyMicros.record(min(micros, LatencyHistogram.highestMicros))
    }

    func snapshot() -> StatsSnapshot {
        StatsSnapshot(counters: counters, latencyMicros: latencyMicros, connectLatencyMicros: connectLatencyMicros)
    }

    /// A snapshot whose latency is that of the interval since the previous call.
    func takeInterval() -> StatsSnapshot {
        let interval = intervalLatencyMicros
        intervalLatencyMicros.reset()
        return StatsSnapshot(counters: counters, latencyMicros: interval, connectLatencyMicros: connectLatencyMicros)
    }

    /// Forgets latencies recorded so far: called at the end of the warm-up.
    func resetLatency() {
        latencyMicros.reset()
        intervalLatencyMicros.reset()
    }
}

/// Monotonic counters; the runner subtracts two snapshots to get the figures of a time window.
struct StatsCounters: Sendable, Hashable {
    var connectAttempts: UInt64 = 0
    var connected: UInt64 = 0
    var connectFailures: UInt64 = 0
    /// Connections that closed without the tool asking for it.
    var unexpectedCloses: UInt64 = 0
    var published: UInt64 = 0
    /// PUBACKs (QoS 1) and PUBCOMPs (QoS 2) received by publishers.
    var acknowledged: UInt64 = 0
    /// Every PUBLISH a subscriber received.
    var received: UInt64 = 0
    /// Received PUBLISHes that carry this tool's stamp and were not duplicates.
    var receivedUnique: UInt64 = 0
    var duplicates: UInt64 = 0
    /// Messages overtaken by a later one of the same publisher.
    var reordered: UInt64 = 0
    /// PUBLISHes without this tool's stamp.
    var foreign: UInt64 = 0
    var payloadBytesReceived: UInt64 = 0

    static func + (lhs: StatsCounters, rhs: StatsCounters) -> StatsCounters {
        var sum = lhs
        sum.connectAttempts += rhs.connectAttempts
        sum.connected += rhs.connected
        sum.connectFailures += rhs.connectFailures
        sum.unexpectedCloses += rhs.unexpectedCloses
        sum.published += rhs.published
        sum.acknowledged += rhs.acknowledged
        sum.received += rhs.received
        sum.receivedUnique += rhs.receivedUnique
        sum.duplicates += rhs.duplicates
        sum.reordered += rhs.reordered
        sum.foreign += rhs.foreign
        sum.payloadBytesReceived += rhs.payloadBytesReceived
        return sum
    }

    /// `lhs - rhs` field by field; `rhs` is an earlier snapshot.
    static func - (lhs: StatsCounters, rhs: StatsCounters) -> StatsCounters {
        var difference = lhs
        difference.connectAttempts -= rhs.connectAttempts
        difference.connected -= rhs.connected
        difference.connectFailures -= rhs.connectFailures
        difference.unexpectedCloses -= rhs.unexpectedCloses
        difference.published -= rhs.published
        difference.acknowledged -= rhs.acknowledged
        difference.received -= rhs.received
        difference.receivedUnique -= rhs.receivedUnique
        difference.duplicates -= rhs.duplicates
        difference.reordered -= rhs.reordered
        difference.foreign -= rhs.foreign
        difference.payloadBytesReceived -= rhs.payloadBytesReceived
        return difference
    }
}

/// The state of every loop's stats at one moment, merged.
/// A snapshot with message counters: what `TrafficScenario.drain` watches.
protocol CountedSnapshot {
    var counters: StatsCounters { get }
}

struct StatsSnapshot: Sendable, CountedSnapshot {
    var counters: StatsCounters
    var latencyMicros: Histogram<UInt64>
    var connectLatencyMicros: Histogram<UInt64>

    static func empty() -> StatsSnapshot {
        StatsSnapshot(counters: StatsCounters(), latencyMicros: LatencyHistogram.make(), connectLatencyMicros: LatencyHistogram.make())
    }

    mutating func merge(_ other: StatsSnapshot) {
        counters = counters + other.counters
        latencyMicros.add(other.latencyMicros)
        connectLatencyMicros.add(other.connectLatencyMicros)
    }
}

/// The histograms' common shape: 1 µs to 60 s with three significant digits.
enum LatencyHistogram {
    static let highestMicros: UInt64 = 60_000_000

    static func make() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highestMicros, numberOfSignificantValueDigits: .three)
    }
}

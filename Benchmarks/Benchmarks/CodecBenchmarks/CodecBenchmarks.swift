import Benchmark
import MQTTCore
import NIOCore

// Every codec benchmark runs 1,000 inner iterations per measured sample (`scalingFactor: .kilo`), and the
// scaled metrics (marked * in the output) are per inner iteration:
//   - PUBLISH benchmarks: one inner iteration is one packet, so throughput is packets/s and
//     mallocCountTotal is mallocs per packet;
//   - mixed-stream benchmarks: one inner iteration is one whole session (`MixedSession.packetCount`
//     packets), so divide by that for per-packet numbers (docs/benchmarks.md does).
// Decoding reads from a buffer built before measurement starts; encoding writes into a buffer whose
// capacity is reserved before measurement starts, so neither counts the benchmark's own buffers.

let benchmarks: @Sendable () -> Void = {
    // `.instructions` needs a hardware PMU (perf_events); virtual machines without one report nothing,
    // so it is not listed. Add it with `--metric instructions` on a machine that has one.
    // Fixed units: throughput always in thousands per second (automatic units switch to millions for
    // the fastest benchmarks and round away everything after the first digits).
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        units: [.throughput: .count, .mallocCountTotal: .count],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    for publishCase in PublishCase.all {
        registerPublishBenchmarks(publishCase)
    }
    for version in [MQTTProtocolVersion.v3_1_1, .v5] {
        registerMixedStreamBenchmarks(MixedSession(version: version))
    }
    registerTopicFilterTrieBenchmarks()
}

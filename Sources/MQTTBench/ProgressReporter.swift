import Foundation

/// Prints one line a second on standard error while a run goes on: connections, publish and receive
/// rates of the last second, its latency percentiles, and what went wrong so far.
struct ProgressReporter: Sendable {
    let runner: BenchRunner
    let scenario: String
    let enabled: Bool

    /// Starts the reporter; cancel the task to stop it.
    func start() -> Task<Void, Never> {
        let runner = self.runner
        let scenario = self.scenario
        let enabled = self.enabled
        return Task {
            guard enabled else { return }
            let startedNanos = monotonicNanoseconds()
            var previous = await runner.intervalSnapshot()
            var previousNanos = monotonicNanoseconds()
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
                if Task.isCancelled { break }
                let current = await runner.intervalSnapshot()
                let nowNanos = monotonicNanoseconds()
                let seconds = max(Double(nowNanos - previousNanos) / 1e9, 1e-3)
                let delta = current.counters - previous.counters
                let c = current.counters
                var line = String(format: "%@ %4.0fs", scenario, Double(nowNanos - startedNanos) / 1e9)
                line += "  conn \(Format.count(c.connected))"
                if c.connectFailures > 0 { line += " (failed \(Format.count(c.connectFailures)))" }
                if c.published > 0 { line += "  pub \(Format.count(Double(delta.published) / seconds))/s" }
                if c.acknowledged > 0 { line += "  ack \(Format.count(Double(delta.acknowledged) / seconds))/s" }
                if c.received > 0 { line += "  recv \(Format.count(Double(delta.received) / seconds))/s" }
                if current.latencyMicros.totalCount > 0 {
                    let interval = PercentileSummary(micros: current.latencyMicros)
                    line += "  lat p50 \(Format.millis(interval.p50)) p99 \(Format.millis(interval.p99)) ms"
                }
                if c.duplicates > 0 { line += "  dup \(Format.count(c.duplicates))" }
                if c.reordered > 0 { line += "  reordered \(Format.count(c.reordered))" }
                if c.unexpectedCloses > 0 { line += "  closed \(Format.count(c.unexpectedCloses))" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
                previous = current
                previousNanos = nowNanos
            }
        }
    }
}

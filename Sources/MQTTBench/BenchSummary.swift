import Foundation
import Histogram

/// The machine-readable result of one run, printed as JSON on standard output (or written to `--json`).
/// Rates are per second, latencies in milliseconds, sizes in bytes.
struct BenchSummary: Codable, Sendable {
    var tool = "mqtt-bench"
    var scenario: String
    var label: String?
    var broker: String
    var protocolVersion: String
    var qos: Int?
    var payloadSizeBytes: Int?
    var publishers: Int
    var subscribers: Int
    /// Messages per second per publisher; nil when unlimited.
    var ratePerPublisher: Double?
    /// The measured window: after the warm-up, until publishing stopped (or the hold ended).
    var durationSeconds: Double
    var warmupSeconds: Double
    var connect: ConnectSummary
    var published: UInt64?
    var publishRatePerSecond: Double?
    var acknowledged: UInt64?
    var received: UInt64?
    var receiveRatePerSecond: Double?
    /// Deliveries the topology calls for (published × matching subscribers), counted over the whole
    /// run including the warm-up, so that loss compares like with like.
    var expected: UInt64?
    var lost: UInt64?
    var lossRatio: Double?
    var duplicates: UInt64?
    var reordered: UInt64?
    var foreign: UInt64?
    var latencyMillis: PercentileSummary?
    var unexpectedCloses: UInt64
    var brokerMemory: BrokerMemory?

    struct ConnectSummary: Codable, Sendable {
        var attempted: Int
        var connected: Int
        var failed: Int
        var elapsedSeconds: Double
        var ratePerSecond: Double
        var latencyMillis: PercentileSummary
        var failureReasons: [String]
    }


    struct BrokerMemory: Codable, Sendable {
        var pid: Int32
        var rssBeforeBytes: Int
        var rssAfterBytes: Int
        var bytesPerConnection: Double?
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else { return "{}" }
        return text
    }
}

/// Percentiles of a microsecond histogram, in milliseconds.
struct PercentileSummary: Codable, Sendable {
    var count: UInt64
    var mean: Double
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double

    init(micros histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        guard count > 0 else {
            mean = 0; p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0
            return
        }
        mean = (histogram.mean / 1000 * 1000).rounded() / 1000
        p50 = Self.millis(histogram.valueAtPercentile(50))
        p90 = Self.millis(histogram.valueAtPercentile(90))
        p99 = Self.millis(histogram.valueAtPercentile(99))
        p999 = Self.millis(histogram.valueAtPercentile(99.9))
        max = Self.millis(histogram.max)
    }

    private static func millis(_ micros: UInt64) -> Double {
        Double(micros) / 1000
    }

    var line: String {
        "p50 \(Format.millis(p50)) p90 \(Format.millis(p90)) p99 \(Format.millis(p99)) p99.9 \(Format.millis(p999)) max \(Format.millis(max)) ms"
    }
}

/// Number formatting for the progress line and the human summary.
enum Format {
    static func count(_ value: Double) -> String {
        let rounded = Int(value.rounded())
        let digits = String(abs(rounded))
        var grouped = ""
        for (offset, character) in digits.enumerated() {
            if offset > 0, (digits.count - offset) % 3 == 0 { grouped.append(",") }
            grouped.append(character)
        }
        return rounded < 0 ? "-" + grouped : grouped
    }

    static func count(_ value: UInt64) -> String { count(Double(value)) }
    static func count(_ value: Int) -> String { count(Double(value)) }

    static func millis(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f", value) : value >= 10 ? String(format: "%.1f", value) : String(format: "%.3f", value)
    }
}

extension BenchSummary.ConnectSummary {
    /// What opening one set of clients came to: `connected` of them, with their connect latencies.
    init(_ opened: OpenOutcome, connected: Int, latencyMicros: Histogram<UInt64>) {
        self.init(
            attempted: opened.attempted, connected: connected, failed: opened.failed, elapsedSeconds: opened.elapsedSeconds,
            ratePerSecond: opened.elapsedSeconds > 0 ? Double(connected) / opened.elapsedSeconds : 0,
            latencyMillis: PercentileSummary(micros: latencyMicros), failureReasons: opened.failureReasons
        )
    }
}

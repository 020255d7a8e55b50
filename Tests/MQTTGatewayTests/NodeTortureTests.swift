import Foundation
import Testing

/// The real `mqtt-node` under attack: thousands of misbehaving connections (garbage, truncated and
/// oversized packets, CONNECT floods, slowloris, silence) for a bounded time while a well-behaved QoS 1
/// stream goes on (`paho/torture.py`).
@Suite(
    "mqtt-node under bad clients",
    .enabled(if: PahoScenario.isAvailable, "python3 with paho-mqtt 2.x, and a built mqtt-node, are needed"),
    .timeLimit(.minutes(3))
)
struct NodeTortureTests {
    static let badConnections = 2_000
    static let goodMessages = 300

    @Test("bad connections are each closed with a logged reason; the QoS 1 stream loses nothing; memory stays bounded")
    func torture() async throws {
        // A short connect timeout, so slowloris and silent connections end within the run.
        let options = NodeProcess.Options(connect: ["connectTimeoutSeconds": "2", "maxPacketSizeInByte": "65536"])
        try await withNode(options) { node in
            let pid = try #require(node.pid)
            let before = try #require(Self.residentBytes(pid))
            let sampler = Task {
                var peak = before
                while !Task.isCancelled {
                    peak = max(peak, Self.residentBytes(pid) ?? 0)
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return peak
            }
            let result = try await PahoScenario.run(
                "torture.py", node: node, version: "5",
                ["--bad", "\(Self.badConnections)", "--seconds", "8", "--messages", "\(Self.goodMessages)"],
                timeout: .seconds(150)
            )
            sampler.cancel()
            let peak = await sampler.value

            // The well-behaved stream: everything, once, in order, never disconnected.
            let good = result["good"]
            #expect(good["count"].int == Self.goodMessages, "\(good)")
            #expect(good["distinct"].int == Self.goodMessages)
            #expect(good["in_order"].bool == true)
            #expect(good["disconnects"].array.isEmpty, "\(good)")

            // Every bad connection was accepted and then closed by the node (none left open, none refused).
            let bad = result["bad"]
            var closedByNode = 0
            for kind in ["garbage", "truncated", "oversized", "slowloris", "silent", "flood"] {
                let outcome = bad[kind]
                #expect(outcome["refused"].int == 0, "\(kind): \(outcome)")
                #expect(outcome["still_open"].int == 0, "\(kind): \(outcome)")
                #expect(outcome["opened"].int == outcome["closed_by_node"].int, "\(kind): \(outcome)")
                if kind != "flood" { closedByNode += outcome["closed_by_node"].int ?? 0 }
            }
            #expect(closedByNode >= Self.badConnections * 5 / 6 - 5)
            // ... each with a line saying why.
            let closingLines = node.log.split(separator: "\n").filter { $0.contains("closing:") }.count
            #expect(closingLines >= closedByNode, "\(closingLines) close reasons logged for \(closedByNode) connections the node closed")

            // Bounded memory: a few KiB per connection, not buffers growing with the garbage.
            #expect(peak - before < 256 * 1_048_576, "resident memory grew by \((peak - before) / 1_048_576) MiB")
        }
    }

    /// VmRSS of `pid` in bytes.
    static func residentBytes(_ pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1_024
    }
}

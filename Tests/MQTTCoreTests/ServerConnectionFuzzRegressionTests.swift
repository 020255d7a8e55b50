import Foundation
import MQTTCore
import ServerConnectionFuzzing
import Testing

/// The state-machine fuzzer's driver (`ServerConnectionFuzzDriver`, also run by `Fuzz/`'s
/// `ServerConnectionFuzzer`) in the test suite: every input the fuzzer ever broke the machine with is
/// replayed from `Fuzz/regressions/state-machine/`, and a seeded batch of random scripts runs on every
/// test run. Replay a random failure with `MQTT_TEST_SEED=<seed>`.
@Suite("Server connection: fuzz driver and regressions")
struct ServerConnectionFuzzRegressionTests {
    /// `Fuzz/regressions/state-machine/`, found from this file's path.
    static let regressionDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/regressions/state-machine")

    static func regressionFiles() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: regressionDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".bin") }.sorted().map { regressionDirectory.appendingPathComponent($0) }
    }

    @Test("every kept fuzz input keeps every invariant")
    func regressions() throws {
        let files = Self.regressionFiles()
        // The directory is part of the repository; an empty list means the path is wrong, not that all is well.
        #expect(!files.isEmpty, "no regression inputs in \(Self.regressionDirectory.path)")
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: file))
            let report = ServerConnectionFuzzDriver.run(bytes, keepTrace: true)
            #expect(report.violations.isEmpty, "\(file.lastPathComponent): \(report.violations)\n\(report.trace.suffix(20).joined(separator: "\n"))")
        }
    }

    @Test("seeded random scripts keep every invariant and reach the connected state")
    func randomScripts() {
        var (rng, seed) = SeededGenerator.fromEnvironment("ServerConnectionFuzzRegressionTests.randomScripts")
        var total = ServerConnectionFuzzDriver.Statistics()
        for run in 0..<1_500 {
            let count = Int.random(in: 0...700, using: &rng)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let report = ServerConnectionFuzzDriver.run(bytes)
            total.add(report.statistics)
            guard report.violations.isEmpty else {
                let traced = ServerConnectionFuzzDriver.run(bytes, keepTrace: true)
                Issue.record("seed \(seed) run \(run): \(report.violations)\ninput: \(bytes.map { String($0, radix: 16) }.joined(separator: " "))\n\(traced.trace.suffix(25).joined(separator: "\n"))")
                return
            }
        }
        print("ServerConnectionFuzzRegressionTests: \(total)")
        // Random bytes must get past the handshake often, or the invariants prove little.
        #expect(total.connectionsAccepted > 100)
        #expect(total.deliveriesSent > 200)
        #expect(total.storeAnswers > 200)
        #expect(total.decodeErrors > 50)
    }

    @Test("the same input plays the same events")
    func deterministic() {
        let bytes: [UInt8] = (0..<400).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let first = ServerConnectionFuzzDriver.run(bytes, keepTrace: true)
        let second = ServerConnectionFuzzDriver.run(bytes, keepTrace: true)
        #expect(first.trace == second.trace)
        #expect(first.statistics == second.statistics)
        #expect(first.trace.count > 10)
    }

    @Test("a client Maximum Packet Size too small for the CONNACK: refused with 0x95, or closed, never sent too much [MQTT-3.1.2-24]")
    func connAckForTinyMaximumPacketSize() throws {
        // Found by the seeded scripts: a 5.0 client announcing 20 bytes got a 31-byte CONNACK.
        let file = Self.regressionDirectory.appendingPathComponent("connack-exceeds-client-maximum-packet-size.bin")
        let report = ServerConnectionFuzzDriver.run([UInt8](try Data(contentsOf: file)), keepTrace: true)
        #expect(report.violations.isEmpty, "\(report.violations)")
        #expect(report.trace.contains { $0.contains("0x95") || $0.contains("Packet too large") }, "\(report.trace.suffix(10))")
    }
}

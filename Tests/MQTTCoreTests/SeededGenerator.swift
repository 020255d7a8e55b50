import Foundation

/// SplitMix64: a small, fast, seedable generator so every randomized test can be replayed from the seed
/// it prints. Set `MQTT_TEST_SEED` to replay a run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A seed from `MQTT_TEST_SEED`, or a fresh one; printed either way.
    static func fromEnvironment(_ testName: String) -> (generator: SeededGenerator, seed: UInt64) {
        let seed = ProcessInfo.processInfo.environment["MQTT_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("\(testName): seed \(seed) (replay with MQTT_TEST_SEED=\(seed))")
        return (SeededGenerator(seed: seed), seed)
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

import MQTTAuth
import NIOCore
import Testing

@Suite("Constant-time comparison")
struct ConstantTimeTests {
    @Test("equal sequences compare equal, including empty ones")
    func equal() {
        #expect(ConstantTime.isEqual(expected: [UInt8](), provided: [UInt8]()))
        #expect(ConstantTime.isEqual(expected: [0x00], provided: [0x00]))
        #expect(ConstantTime.isEqual(expected: Array("bRzy/Ltu4auwF5Okbs4pi8ArMWY=".utf8), provided: Array("bRzy/Ltu4auwF5Okbs4pi8ArMWY=".utf8)))
    }

    @Test("a difference in any single byte or bit is found")
    func unequalAtEveryPosition() {
        let expected: [UInt8] = Array(0..<32)
        for position in expected.indices {
            for bit in 0..<8 {
                var provided = expected
                provided[position] ^= UInt8(1) << bit
                #expect(!ConstantTime.isEqual(expected: expected, provided: provided), "position \(position) bit \(bit)")
            }
        }
    }

    @Test("different lengths never compare equal, whichever side is longer")
    func differentLengths() {
        let expected: [UInt8] = [1, 2, 3, 4]
        #expect(!ConstantTime.isEqual(expected: expected, provided: [1, 2, 3]))
        #expect(!ConstantTime.isEqual(expected: expected, provided: [1, 2, 3, 4, 5]))
        #expect(!ConstantTime.isEqual(expected: expected, provided: [UInt8]()))
        #expect(!ConstantTime.isEqual(expected: [UInt8](), provided: expected))
        // A provided value past the end is compared against a stand-in byte that always differs, so
        // trailing bytes equal to the expected bytes cannot cancel the length mismatch.
        #expect(!ConstantTime.isEqual(expected: [0x00, 0xFF], provided: [0x00]))
        #expect(!ConstantTime.isEqual(expected: [0x00], provided: [0x00, 0x00]))
    }

    @Test("works on a ByteBuffer's readable bytes and on slices")
    func otherCollections() {
        var buffer = ByteBuffer(string: "xxsecret")
        buffer.moveReaderIndex(forwardBy: 2)
        #expect(ConstantTime.isEqual(expected: Array("secret".utf8), provided: buffer.readableBytesView))
        let bytes: [UInt8] = Array("--secret--".utf8)
        #expect(ConstantTime.isEqual(expected: Array("secret".utf8), provided: bytes[2..<8]))
        #expect(!ConstantTime.isEqual(expected: Array("secret".utf8), provided: bytes[2..<9]))
    }

    @Test("agrees with == on seeded random pairs")
    func agreesWithEquality() {
        var generator = SplitMix64(seed: 0x5EED_A11D)
        var equalCount = 0
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...4, using: &generator)
            let lhs = (0..<length).map { _ in UInt8.random(in: 0...1, using: &generator) }
            let otherLength = Bool.random(using: &generator) ? length : Int.random(in: 0...4, using: &generator)
            let rhs = (0..<otherLength).map { _ in UInt8.random(in: 0...1, using: &generator) }
            if lhs == rhs { equalCount += 1 }
            #expect(ConstantTime.isEqual(expected: lhs, provided: rhs) == (lhs == rhs), "seed 0x5EEDA11D, \(lhs) vs \(rhs)")
        }
        // The generator must produce both outcomes, or the test shows nothing.
        #expect(equalCount > 50 && equalCount < 1_950)
    }
}

/// A small deterministic generator so failures can be replayed from the seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = self.state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

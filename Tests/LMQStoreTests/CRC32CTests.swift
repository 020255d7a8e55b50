@testable import LMQStore
import Testing

@Suite("CRC-32C")
struct CRC32CTests {
    @Test("the check value of the standard and RFC 3720 vectors")
    func knownAnswers() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map(UInt8.init)) == 0x46DD_794E)
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test("the CPU's instruction and the tables agree on every length, alignment and continuation")
    func hardwareMatchesSoftware() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<4_096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in [0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 396, 1_000, 4_000] where start + length <= all.count {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    let software = CRC32C.softwareChecksum(slice)
                    #expect(CRC32C.checksum(slice) == software, "start \(start), length \(length)")
                    // Continuing from a prefix gives the checksum of the whole.
                    let half = length / 2
                    let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slice[0..<half]))
                    #expect(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slice[half...]), continuing: first) == software)
                }
            }
        }
    }
}

import NIOCore

/// The first bytes of every payload the tool publishes: who sent it, when, and its place in the
/// publisher's sequence, so a subscriber can measure latency, loss, duplicates and reordering.
/// The rest of the payload is zeros up to the requested size.
///
/// Layout (big-endian): magic `MQB1` (4 bytes), send time in nanoseconds since the Unix epoch (8),
/// publisher id (4), sequence number from 0 (8). The wall clock is used, not a monotonic one, so that
/// `pub` and `sub` can run as separate processes on the same machine.
struct BenchPayload: Sendable, Hashable {
    /// `MQB1`.
    static let magic: UInt32 = 0x4D51_4231
    /// Bytes the stamp takes; the smallest payload the tool can publish.
    static let stampSizeBytes = 24

    var sendTimeNanos: UInt64
    var publisherID: UInt32
    var sequence: UInt64

    /// Writes the stamp followed by zeros, `payloadSizeBytes` in all.
    func write(into buffer: inout ByteBuffer, payloadSizeBytes: Int) {
        precondition(payloadSizeBytes >= Self.stampSizeBytes)
        buffer.writeInteger(Self.magic)
        buffer.writeInteger(sendTimeNanos)
        buffer.writeInteger(publisherID)
        buffer.writeInteger(sequence)
        let padding = payloadSizeBytes - Self.stampSizeBytes
        if padding > 0 {
            buffer.writeRepeatingByte(0, count: padding)
        }
    }

    /// Reads the stamp at the start of `payload`, or nil when the payload was not published by this tool
    /// (a retained message left by someone else, say).
    static func read(from payload: ByteBuffer) -> BenchPayload? {
        let start = payload.readerIndex
        guard payload.readableBytes >= stampSizeBytes,
              payload.getInteger(at: start, as: UInt32.self) == magic,
              let sendTime = payload.getInteger(at: start + 4, as: UInt64.self),
              let publisher = payload.getInteger(at: start + 12, as: UInt32.self),
              let sequence = payload.getInteger(at: start + 16, as: UInt64.self)
        else { return nil }
        return BenchPayload(sendTimeNanos: sendTime, publisherID: publisher, sequence: sequence)
    }
}

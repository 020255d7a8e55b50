import MQTTCore
import NIOCore

/// Byte streams the decode benchmarks read from.
enum Streams {
    /// `packets` encoded one after another, `times` times over, in one buffer.
    static func repeated(_ packets: [MQTTPacket], times: Int, encoder: MQTTPacketEncoder) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        for _ in 0..<times {
            for packet in packets {
                try! encoder.encode(packet, into: &buffer)
            }
        }
        return buffer
    }

    /// Stops the benchmark run if `stream` does not decode to exactly `packets`: a benchmark that measures
    /// an error path would report numbers that mean nothing.
    static func verify(_ stream: ByteBuffer, decodesTo packets: [MQTTPacket], version: MQTTProtocolVersion?) {
        var decoder = MQTTPacketDecoder(protocolVersion: version)
        var buffer = stream
        for expected in packets {
            let decoded = try! decoder.decode(&buffer)
            precondition(decoded == expected, "benchmark stream decodes to \(String(describing: decoded)), not \(expected)")
        }
        precondition(buffer.readableBytes == 0, "benchmark stream has \(buffer.readableBytes) bytes too many")
    }
}

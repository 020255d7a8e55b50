import MQTTCore
import NIOCore
import Testing

/// Helpers shared by the codec tests.
enum Codec {
    /// Encodes one packet for `version`.
    static func encode(_ packet: MQTTPacket, _ version: MQTTProtocolVersion) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try MQTTPacketEncoder(protocolVersion: version).encode(packet, into: &buffer)
        return buffer
    }

    /// The encoding of one packet as lowercase hex.
    static func hex(_ packet: MQTTPacket, _ version: MQTTProtocolVersion) throws -> String {
        try encode(packet, version).hexString
    }

    /// Decodes exactly one packet from `bytes` and checks nothing is left over.
    static func decodeOne(
        _ bytes: ByteBuffer, _ version: MQTTProtocolVersion?, limits: MQTTPacketDecoder.Limits = .init()
    ) throws(MQTTDecodeError) -> MQTTPacket? {
        var decoder = MQTTPacketDecoder(protocolVersion: version, limits: limits)
        var buffer = bytes
        let packet = try decoder.decode(&buffer)
        if packet != nil { precondition(buffer.readableBytes == 0, "decoder left \(buffer.readableBytes) bytes") }
        return packet
    }

    /// Decodes `bytes` expecting a violation; returns the error.
    static func decodeError(_ bytes: [UInt8], _ version: MQTTProtocolVersion?, limits: MQTTPacketDecoder.Limits = .init()) -> MQTTDecodeError? {
        do {
            let packet = try decodeOne(ByteBuffer(bytes: bytes), version, limits: limits)
            Issue.record("expected a decode error, got \(String(describing: packet))")
            return nil
        } catch {
            return error
        }
    }
}

extension Array where Element == UInt8 {
    init(hex: String) {
        let digits = Array(hex.filter { !$0.isWhitespace }.utf8)
        self = stride(from: 0, to: digits.count, by: 2).map { index in
            UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16)!
        }
    }
}

extension ByteBuffer {
    var hexString: String { readableBytesView.map { String(format: "%02x", $0) }.joined() }
}

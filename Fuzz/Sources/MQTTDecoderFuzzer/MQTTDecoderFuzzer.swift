import MQTTCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// libFuzzer entry point. Every input is treated as a TCP byte stream and decoded several ways; any
// disagreement between them, or between a packet and its re-encoding, stops the process through
// `check` (a `precondition` that keeps its message), which libFuzzer reports as a crash and saves the
// input for.
//
// Checks, for each of the three decoder set-ups (server side with no version yet, client 3.1.1,
// client 5.0):
//   1. decoding never crashes, consumes at least 2 bytes per packet and nothing when it needs more data;
//   2. feeding the same bytes one at a time gives the same packets and the same final error;
//   3. every decoded packet can be encoded by `MQTTPacketEncoder` of the version in force, the encoding
//      is exactly `encodedSize(of:)` bytes, decodes to an equal packet with nothing left over, and
//      encoding that again gives the same bytes;
//   4. with tight limits, no packet larger than the limit is ever returned.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: start, count: count))
    for version in FuzzConfiguration.decoderVersions {
        let whole = DecodeOutcome.decodeAtOnce(input, version: version, limits: MQTTPacketDecoder.Limits())
        FuzzConfiguration.log("version \(version.map { "\($0)" } ?? "nil (server)"): \(whole)")
        let dripped = DecodeOutcome.decodeOneByteAtATime(input, version: version)
        check(
            whole == dripped,
            "decoding at once and one byte at a time disagree:\n  at once: \(whole)\n  by byte: \(dripped)"
        )
        for (packet, packetVersion) in zip(whole.packets, whole.versions) {
            RoundTrip.verify(packet, version: packetVersion)
        }
        _ = DecodeOutcome.decodeAtOnce(input, version: version, limits: FuzzConfiguration.tightLimits)
    }
    return 0
}

/// Settings shared by every input.
enum FuzzConfiguration {
    /// nil: a server that has not seen CONNECT yet, so the first packet must be CONNECT ([MQTT-3.1.0-1]).
    static let decoderVersions: [MQTTProtocolVersion?] = [nil, .v3_1_1, .v5]

    /// Small enough that fuzz inputs (at most 4096 bytes) hit both limits often.
    static let tightLimits = MQTTPacketDecoder.Limits(maxPacketSizeBytes: 64, maxPropertiesPerPacket: 2)

    /// Set `MQTT_FUZZ_VERBOSE=1` to print what each input decodes to (useful when replaying a corpus file:
    /// `MQTT_FUZZ_VERBOSE=1 ./MQTTDecoderFuzzer input.bin`).
    static let isVerbose: Bool = {
        guard let value = getenv("MQTT_FUZZ_VERBOSE") else { return false }
        return String(cString: value) != "0"
    }()

    static func log(_ message: @autoclosure () -> String) {
        guard isVerbose else { return }
        print(message())
    }
}

/// What decoding one byte stream produced: the packets in order, the version in force after each,
/// and why decoding stopped.
struct DecodeOutcome: Equatable, CustomStringConvertible {
    enum End: Equatable {
        /// The decoder returned nil: the rest is an incomplete packet.
        case needsMoreData(unreadBytes: Int)
        case failed(MQTTDecodeError)
    }

    var packets: [MQTTPacket] = []
    var versions: [MQTTProtocolVersion] = []
    var end: End = .needsMoreData(unreadBytes: 0)

    var description: String {
        var lines = packets.enumerated().map { "  [\($0.offset)] \($0.element)" }
        switch end {
        case .needsMoreData(let unread): lines.append("  end: needs more data, \(unread) bytes unread")
        case .failed(let error): lines.append("  end: \(error)")
        }
        return "\(packets.count) packets\n" + lines.joined(separator: "\n")
    }

    /// Decodes `input` as one buffer until the decoder returns nil or throws.
    static func decodeAtOnce(
        _ input: ByteBuffer, version: MQTTProtocolVersion?, limits: MQTTPacketDecoder.Limits
    ) -> DecodeOutcome {
        var decoder = MQTTPacketDecoder(protocolVersion: version, limits: limits)
        var buffer = input
        var outcome = DecodeOutcome()
        do throws(MQTTDecodeError) {
            while true {
                let readerIndexBefore = buffer.readerIndex
                guard let packet = try decoder.decode(&buffer) else {
                    check(buffer.readerIndex == readerIndexBefore, "decode returned nil but consumed bytes")
                    break
                }
                let consumed = buffer.readerIndex - readerIndexBefore
                check(consumed >= 2, "a packet of \(consumed) bytes: the fixed header alone is 2")
                check(
                    consumed <= limits.maxPacketSizeBytes,
                    "a packet of \(consumed) bytes passed the limit of \(limits.maxPacketSizeBytes)"
                )
                guard let versionNow = decoder.protocolVersion else {
                    fail("a packet was decoded but the decoder still has no protocol version")
                }
                outcome.packets.append(packet)
                outcome.versions.append(versionNow)
            }
            outcome.end = .needsMoreData(unreadBytes: buffer.readableBytes)
        } catch {
            outcome.end = .failed(error)
        }
        return outcome
    }

    /// Decodes `input` as a peer would deliver it at its slowest: one byte per read.
    static func decodeOneByteAtATime(_ input: ByteBuffer, version: MQTTProtocolVersion?) -> DecodeOutcome {
        var decoder = MQTTPacketDecoder(protocolVersion: version)
        var pending = ByteBufferAllocator().buffer(capacity: input.readableBytes)
        var outcome = DecodeOutcome()
        do throws(MQTTDecodeError) {
            for byte in input.readableBytesView {
                pending.writeInteger(byte)
                while let packet = try decoder.decode(&pending) {
                    outcome.packets.append(packet)
                    outcome.versions.append(decoder.protocolVersion!)
                }
            }
            outcome.end = .needsMoreData(unreadBytes: pending.readableBytes)
        } catch {
            outcome.end = .failed(error)
        }
        return outcome
    }
}

/// Encode, decode, encode: a decoded packet must survive the trip unchanged.
enum RoundTrip {
    static func verify(_ packet: MQTTPacket, version: MQTTProtocolVersion) {
        let encoder = MQTTPacketEncoder(protocolVersion: version)
        let encoded = encode(packet, with: encoder, what: "a decoded packet")

        let expectedSize: Int
        do throws(MQTTEncodeError) {
            expectedSize = try encoder.encodedSize(of: packet)
        } catch {
            fail("encodedSize(of:) failed where encode succeeded: \(error)\n  packet: \(packet)")
        }
        check(
            expectedSize == encoded.readableBytes,
            "encodedSize(of:) says \(expectedSize) bytes, encode wrote \(encoded.readableBytes)\n  packet: \(packet)"
        )

        if case .publish(let publish) = packet {
            var header = ByteBuffer()
            do throws(MQTTEncodeError) {
                try encoder.encodePublishHeader(publish, into: &header)
            } catch {
                fail("encodePublishHeader failed where encode succeeded: \(error)\n  packet: \(packet)")
            }
            header.writeImmutableBuffer(publish.payload)
            check(header == encoded, "PUBLISH header + payload differs from the whole encoding\n  packet: \(packet)")
        }

        // Any decoder version reads CONNECT; every other packet is read as the version in force.
        var decoder = MQTTPacketDecoder(protocolVersion: version)
        var reread = encoded
        let decodedAgain: MQTTPacket
        do throws(MQTTDecodeError) {
            guard let packetAgain = try decoder.decode(&reread) else {
                fail("re-encoded packet is incomplete: \(hex(encoded))\n  packet: \(packet)")
            }
            decodedAgain = packetAgain
        } catch {
            fail("re-encoded packet does not decode: \(error)\n  bytes: \(hex(encoded))\n  packet: \(packet)")
        }
        check(reread.readableBytes == 0, "\(reread.readableBytes) bytes left after decoding a re-encoded packet")
        check(
            decodedAgain == packet,
            "round trip changed the packet (\(version)):\n  first:  \(packet)\n  second: \(decodedAgain)\n  bytes: \(hex(encoded))"
        )

        let encodedAgain = encode(decodedAgain, with: encoder, what: "a re-decoded packet")
        check(
            encodedAgain == encoded,
            "encoding is not stable:\n  first:  \(hex(encoded))\n  second: \(hex(encodedAgain))\n  packet: \(packet)"
        )
    }

    static func encode(_ packet: MQTTPacket, with encoder: MQTTPacketEncoder, what: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        do throws(MQTTEncodeError) {
            try encoder.encode(packet, into: &buffer)
        } catch {
            fail("\(what) cannot be encoded as \(encoder.protocolVersion): \(error)\n  packet: \(packet)")
        }
        return buffer
    }

    static func hex(_ buffer: ByteBuffer) -> String {
        buffer.readableBytesView.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }
}

// MARK: - Checks

/// `precondition` that keeps its message in optimized builds. The fuzzer is built with -O for speed,
/// and -O drops `precondition` messages; the message is what says which check failed on which packet.
func check(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fail(message(), file: file, line: line) }
}

/// `preconditionFailure` that keeps its message in optimized builds.
func fail(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError(message(), file: file, line: line)
}

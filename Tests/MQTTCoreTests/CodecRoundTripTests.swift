import MQTTCore
import NIOCore
import NIOTestUtils
import Testing

/// encode → decode → equal, over random valid packets of every type, in every protocol version.
@Suite("Codec round trips")
struct CodecRoundTripTests {
    @Test("random packets of every type survive encode and decode", arguments: MQTTProtocolVersion.allCases)
    func randomRoundTrips(version: MQTTProtocolVersion) throws {
        let (rng, _) = SeededGenerator.fromEnvironment("randomRoundTrips(\(version))")
        var generator = PacketGenerator(rng: rng, version: version)
        for _ in 0..<400 {
            for type in generator.packetTypes {
                let packet = generator.packet(of: type)
                let bytes = try Codec.encode(packet, version)
                let decoderVersion: MQTTProtocolVersion? = type == .connect ? nil : version
                let decoded = try Codec.decodeOne(bytes, decoderVersion)
                #expect(decoded == packet, "\(type) \(version) bytes \(bytes.hexString)")
                // Re-encoding the decoded packet gives the same bytes: one canonical encoding.
                #expect(try Codec.encode(try #require(decoded), version) == bytes)
                #expect(try MQTTPacketEncoder(protocolVersion: version).encodedSize(of: packet) == bytes.readableBytes)
            }
        }
    }

    @Test("a stream of random packets decodes the same fed one byte at a time and in random splits", arguments: MQTTProtocolVersion.allCases)
    func dripFeedRandomStream(version: MQTTProtocolVersion) throws {
        let (rng, _) = SeededGenerator.fromEnvironment("dripFeedRandomStream(\(version))")
        var generator = PacketGenerator(rng: rng, version: version)
        var pairs: [(ByteBuffer, [MQTTPacket])] = []
        for _ in 0..<10 {
            var stream = ByteBuffer()
            var packets: [MQTTPacket] = []
            // A server-side stream: CONNECT first, then anything.
            let connect = generator.packet(of: .connect)
            packets.append(connect)
            for _ in 0..<20 {
                packets.append(generator.packet(of: generator.packetTypes.randomElement(using: &generator.rng)!))
            }
            for packet in packets {
                var bytes = try Codec.encode(packet, version)
                stream.writeBuffer(&bytes)
            }
            pairs.append((stream, packets))
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            MQTTPacketByteDecoder(decoder: MQTTPacketDecoder(protocolVersion: nil))
        }
    }

    @Test("the PUBLISH payload is a slice of the input, not a copy")
    func publishPayloadIsASlice() throws {
        let payload = ByteBuffer(repeating: 0xAB, count: 1000)
        let bytes = try Codec.encode(.publish(PublishPacket(topicName: "a/b", payload: payload)), .v3_1_1)
        var buffer = bytes
        var decoder = MQTTPacketDecoder(protocolVersion: .v3_1_1)
        guard case .publish(let publish) = try decoder.decode(&buffer) else {
            Issue.record("not a PUBLISH")
            return
        }
        let inputBase = bytes.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let payloadBase = publish.payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        // 1 (type) + 2 (remaining length) + 2 + 3 (topic)
        #expect(payloadBase == inputBase + 8)
        #expect(publish.payload == payload)
    }

    @Test("encodePublishHeader writes everything but the payload")
    func publishHeaderWithoutPayload() throws {
        let publish = PublishPacket(topicName: "t", payload: ByteBuffer(string: "hello"), qos: .atLeastOnce, packetIdentifier: 7,
                                    properties: [.contentType("text/plain")])
        var header = ByteBuffer()
        try MQTTPacketEncoder(protocolVersion: .v5).encodePublishHeader(publish, into: &header)
        var whole = header
        whole.writeString("hello")
        #expect(whole == (try Codec.encode(.publish(publish), .v5)))
    }

    @Test("the decoder waits for a whole packet and consumes nothing meanwhile")
    func partialPacket() throws {
        let bytes = try Codec.encode(.publish(PublishPacket(topicName: "a", payload: ByteBuffer(string: "xyz"))), .v5)
        var decoder = MQTTPacketDecoder(protocolVersion: .v5)
        for length in 0..<bytes.readableBytes {
            var partial = bytes.getSlice(at: 0, length: length)!
            #expect(try decoder.decode(&partial) == nil)
            #expect(partial.readableBytes == length)
        }
    }
}

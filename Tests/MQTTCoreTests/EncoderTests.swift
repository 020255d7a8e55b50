import MQTTCore
import NIOCore
import Testing

/// The encoder's own rules: exact golden bytes for the common packets, sizes computed up front,
/// nothing written on error, and version-specific forms.
@Suite("Encoder")
struct EncoderTests {
    @Test("golden bytes of 3.1.1 packets (MQTT 3.1.1 §3)")
    func goldenV311() throws {
        // §3.1: CONNECT "MQTT" level 4, clean session, keep alive 60, client id "c".
        #expect(try Codec.hex(.connect(ConnectPacket(clientIdentifier: "c", keepAliveSeconds: 60)), .v3_1_1)
                == "100d00044d5154540402003c000163")
        #expect(try Codec.hex(.connAck(ConnAckPacket(sessionPresent: true)), .v3_1_1) == "20020100")
        #expect(try Codec.hex(.connAck(ConnAckPacket(reasonCode: .notAuthorized)), .v3_1_1) == "20020005")
        #expect(try Codec.hex(.publish(PublishPacket(topicName: "a/b", payload: ByteBuffer(string: "hi"), qos: .atLeastOnce, retain: true, dup: true, packetIdentifier: 10)), .v3_1_1)
                == "3b09" + "0003612f62" + "000a" + "6869")
        #expect(try Codec.hex(.pubAck(PubAckPacket(packetIdentifier: 10)), .v3_1_1) == "4002000a")
        #expect(try Codec.hex(.pubRel(PubAckPacket(packetIdentifier: 10)), .v3_1_1) == "6202000a")
        #expect(try Codec.hex(.subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [.init(topicFilter: "a/#", maximumQoS: .exactlyOnce)])), .v3_1_1)
                == "82080001" + "0003612f23" + "02")
        #expect(try Codec.hex(.subAck(SubAckPacket(packetIdentifier: 1, reasonCodes: [.grantedQoS2, .notAuthorized])), .v3_1_1)
                == "9004000102" + "80")  // 5.0-only codes become 0x80 Failure in 3.1.1
        #expect(try Codec.hex(.unsubAck(UnsubAckPacket(packetIdentifier: 1, reasonCodes: [.success])), .v3_1_1) == "b0020001")
        #expect(try Codec.hex(.pingReq, .v3_1_1) == "c000")
        #expect(try Codec.hex(.pingResp, .v3_1_1) == "d000")
        #expect(try Codec.hex(.disconnect(DisconnectPacket(reasonCode: .serverShuttingDown)), .v3_1_1) == "e000")
    }

    @Test("golden bytes of 5.0 packets, including the short forms of §3.4.2.1 and §3.14.2.1")
    func goldenV5() throws {
        #expect(try Codec.hex(.pubAck(PubAckPacket(packetIdentifier: 1)), .v5) == "40020001")
        #expect(try Codec.hex(.pubAck(PubAckPacket(packetIdentifier: 1, reasonCode: .noMatchingSubscribers)), .v5) == "4003000110")
        #expect(try Codec.hex(.pubAck(PubAckPacket(packetIdentifier: 1, reasonCode: .success, properties: [.reasonString("ok")])), .v5)
                == "40090001" + "00" + "05" + "1f00026f6b")
        #expect(try Codec.hex(.disconnect(DisconnectPacket()), .v5) == "e000")
        #expect(try Codec.hex(.disconnect(DisconnectPacket(reasonCode: .sessionTakenOver)), .v5) == "e0018e")
        #expect(try Codec.hex(.auth(AuthPacket()), .v5) == "f000")
        #expect(try Codec.hex(.connAck(ConnAckPacket(properties: [.receiveMaximum(10)])), .v5) == "2006" + "0000" + "03" + "21000a")
        #expect(try Codec.hex(.subscribe(SubscribePacket(packetIdentifier: 2, subscriptions: [
            .init(topicFilter: "a", maximumQoS: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend),
        ], properties: [.subscriptionIdentifier(200)])), .v5) == "82" + "0a" + "0002" + "03" + "0bc801" + "000161" + "2d")
    }

    @Test("a 5.0 CONNECT with every connect and will property")
    func connectV5AllProperties() throws {
        let connect = ConnectPacket(
            protocolVersion: .v5, clientIdentifier: "client-1", cleanStart: false, keepAliveSeconds: 30,
            username: "u", password: ByteBuffer(bytes: [0, 1, 2]),
            will: .init(topicName: "w/t", payload: ByteBuffer(string: "bye"), qos: .exactlyOnce, retain: true, properties: [
                .willDelayInterval(5), .payloadFormatIndicator(1), .messageExpiryInterval(60), .contentType("text/plain"),
                .responseTopic("r"), .correlationData(ByteBuffer(bytes: [9])), .userProperty("k", "v"),
            ]),
            properties: [
                .sessionExpiryInterval(3600), .receiveMaximum(20), .maximumPacketSize(65536), .topicAliasMaximum(10),
                .requestResponseInformation(1), .requestProblemInformation(0), .userProperty("a", "b"),
                .authenticationMethod("SCRAM"), .authenticationData(ByteBuffer(string: "x")),
            ]
        )
        let bytes = try Codec.encode(.connect(connect), .v5)
        #expect(bytes.getInteger(at: 0, as: UInt8.self) == 0x10)
        // Flags: user name, password, will retain, will QoS 2, will, not clean.
        let remainingLengthBytes = bytes.getInteger(at: 1, as: UInt8.self)! & 0x80 == 0 ? 1 : 2
        #expect(bytes.getInteger(at: 1 + remainingLengthBytes + 6 + 1, as: UInt8.self) == 0b1111_0100)
        #expect(try Codec.decodeOne(bytes, nil) == .connect(connect))
    }

    @Test("a packet over the peer's Maximum Packet Size is refused and nothing is written [MQTT-3.1.2-24]")
    func peerMaximumPacketSize() throws {
        let encoder = MQTTPacketEncoder(protocolVersion: .v5, maxPacketSizeBytes: 20)
        var buffer = ByteBuffer(string: "prefix")
        let publish = PublishPacket(topicName: "t", payload: ByteBuffer(repeating: 0, count: 100))
        #expect(throws: MQTTEncodeError.packetTooLarge(sizeBytes: 106, limitBytes: 20)) {
            try encoder.encode(.publish(publish), into: &buffer)
        }
        #expect(buffer == ByteBuffer(string: "prefix"))
    }

    @Test("strings over 65,535 bytes are refused, not truncated")
    func fieldTooLong() {
        let long = String(repeating: "x", count: 65_536)
        var buffer = ByteBuffer()
        #expect(throws: MQTTEncodeError.fieldTooLong(bytes: 65_536)) {
            try MQTTPacketEncoder(protocolVersion: .v3_1_1).encode(.publish(PublishPacket(topicName: long, payload: ByteBuffer())), into: &buffer)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test("QoS > 0 needs a non-zero packet identifier [MQTT-2.2.1-3]")
    func missingPacketIdentifier() {
        var buffer = ByteBuffer()
        let encoder = MQTTPacketEncoder(protocolVersion: .v3_1_1)
        #expect(throws: MQTTEncodeError.missingPacketIdentifier) {
            try encoder.encode(.publish(PublishPacket(topicName: "t", payload: ByteBuffer(), qos: .atLeastOnce)), into: &buffer)
        }
        #expect(throws: MQTTEncodeError.missingPacketIdentifier) {
            try encoder.encode(.pubAck(PubAckPacket(packetIdentifier: 0)), into: &buffer)
        }
    }

    @Test("AUTH cannot be sent before 5.0 and properties must belong to their packet")
    func versionAndPropertyChecks() {
        var buffer = ByteBuffer()
        #expect(throws: MQTTEncodeError.notSupported(.auth, .v3_1_1)) {
            try MQTTPacketEncoder(protocolVersion: .v3_1_1).encode(.auth(AuthPacket()), into: &buffer)
        }
        #expect(throws: MQTTEncodeError.propertyNotAllowed(.topicAlias, in: .connAck)) {
            try MQTTPacketEncoder(protocolVersion: .v5).encode(.connAck(ConnAckPacket(properties: [.topicAlias(1)])), into: &buffer)
        }
        #expect(throws: MQTTEncodeError.valueOutOfRange) {
            try MQTTPacketEncoder(protocolVersion: .v5).encode(.subscribe(SubscribePacket(
                packetIdentifier: 1, subscriptions: [.init(topicFilter: "a")], properties: [.subscriptionIdentifier(268_435_456)]
            )), into: &buffer)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test("remaining lengths at the variable byte integer boundaries (§1.5.5)",
          arguments: [(0, "00"), (127, "7f"), (128, "8001"), (16_383, "ff7f"), (16_384, "808001"), (2_097_151, "ffff7f"), (2_097_152, "80808001")])
    func variableByteIntegerBoundaries(remainingLength: Int, encoded: String) throws {
        // A QoS 0 PUBLISH with topic "t": 3 bytes of topic, the rest payload.
        guard remainingLength >= 3 else {
            #expect(try Codec.hex(.pingReq, .v3_1_1) == "c0" + encoded)
            return
        }
        let publish = PublishPacket(topicName: "t", payload: ByteBuffer(repeating: 7, count: remainingLength - 3))
        let bytes = try Codec.encode(.publish(publish), .v3_1_1)
        #expect(bytes.getSlice(at: 1, length: encoded.count / 2)!.hexString == encoded)
        #expect(try Codec.decodeOne(bytes, .v3_1_1) == .publish(publish))
    }

    @Test("the largest remaining length, 268,435,455, is the 4-byte maximum ff ff ff 7f")
    func maximumRemainingLength() throws {
        // Decoding the header alone: the decoder waits for the body instead of failing.
        var decoder = MQTTPacketDecoder(protocolVersion: .v3_1_1)
        var header = ByteBuffer(bytes: [0x30, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(try decoder.decode(&header) == nil)
        #expect(header.readableBytes == 5)
    }
}

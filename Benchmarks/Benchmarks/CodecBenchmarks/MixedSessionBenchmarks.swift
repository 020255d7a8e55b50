import Benchmark
import MQTTCore
import NIOCore

/// What a client sends in a short session: the packet types a server decodes, in a plausible order.
struct MixedSession {
    var version: MQTTProtocolVersion

    static let packetCount = 12

    var packets: [MQTTPacket] {
        let hasProperties = version.hasProperties
        let payload = ByteBuffer(bytes: (0..<64).map { UInt8($0) })
        let packets: [MQTTPacket] = [
            .connect(ConnectPacket(
                protocolVersion: version, clientIdentifier: "sensor-0017", cleanStart: false, keepAliveSeconds: 30,
                username: "device", password: ByteBuffer(bytes: Array("secret".utf8)),
                properties: hasProperties ? [.sessionExpiryInterval(3600), .receiveMaximum(100)] : []
            )),
            .subscribe(SubscribePacket(packetIdentifier: 1, subscriptions: [
                Subscription(topicFilter: "cmd/sensor-0017/#", maximumQoS: .atLeastOnce),
                Subscription(topicFilter: "broadcast/+", maximumQoS: .atMostOnce),
            ])),
            .publish(PublishPacket(topicName: "bench/t", payload: payload)),
            .publish(PublishPacket(
                topicName: "bench/t", payload: payload, qos: .atLeastOnce, packetIdentifier: 2,
                properties: hasProperties ? [.messageExpiryInterval(60)] : []
            )),
            .publish(PublishPacket(topicName: "bench/t", payload: payload, qos: .exactlyOnce, packetIdentifier: 3)),
            .pubRel(PubAckPacket(packetIdentifier: 3)),
            .pubAck(PubAckPacket(packetIdentifier: 100)),
            .pubRec(PubAckPacket(packetIdentifier: 101)),
            .pubComp(PubAckPacket(packetIdentifier: 101)),
            .unsubscribe(UnsubscribePacket(packetIdentifier: 4, topicFilters: ["broadcast/+"])),
            .pingReq,
            .disconnect(DisconnectPacket()),
        ]
        precondition(packets.count == Self.packetCount)
        return packets
    }
}

func registerMixedStreamBenchmarks(_ session: MixedSession) {
    let packets = session.packets
    let encoder = MQTTPacketEncoder(protocolVersion: session.version)
    let sessionsPerSample = BenchmarkScalingFactor.kilo.rawValue
    let oneSession = Streams.repeated(packets, times: 1, encoder: encoder)
    Streams.verify(oneSession, decodesTo: packets, version: nil)
    let stream = Streams.repeated(packets, times: sessionsPerSample, encoder: encoder)
    let name = "mixed session v\(session.version) (\(MixedSession.packetCount) packets, \(oneSession.readableBytes) B/session)"

    Benchmark("Decode \(name)") { benchmark throws in
        var buffer = stream
        for _ in benchmark.scaledIterations {
            // A server-side decoder per session: it starts without a version and learns it from CONNECT.
            var decoder = MQTTPacketDecoder()
            for _ in 0..<MixedSession.packetCount {
                blackHole(try decoder.decode(&buffer))
            }
        }
    }

    Benchmark("Encode \(name)") { benchmark throws in
        var buffer = ByteBufferAllocator().buffer(capacity: stream.readableBytes)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for packet in packets {
                try encoder.encode(packet, into: &buffer)
            }
        }
        benchmark.stopMeasurement()
        blackHole(buffer)
    }
}

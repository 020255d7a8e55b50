import Benchmark
import MQTTCore
import NIOCore

/// One PUBLISH shape: version, QoS and payload size. The topic is short enough (at most 15 UTF-8 bytes)
/// for Swift to store the decoded `String` inline, so decoding it allocates nothing.
struct PublishCase {
    var version: MQTTProtocolVersion
    var qos: MQTTQoS
    var payloadSizeBytes: Int

    static let topicName = "bench/t"

    static let all: [PublishCase] = [64, 1024].flatMap { size in
        [MQTTQoS.atMostOnce, .atLeastOnce].flatMap { qos in
            [MQTTProtocolVersion.v3_1_1, .v5].map { PublishCase(version: $0, qos: qos, payloadSizeBytes: size) }
        }
    }

    var name: String {
        let size = payloadSizeBytes >= 1024 ? "\(payloadSizeBytes / 1024) KiB" : "\(payloadSizeBytes) B"
        return "PUBLISH \(size) QoS \(qos.rawValue) v\(version)"
    }

    var packet: MQTTPacket {
        var payload = ByteBufferAllocator().buffer(capacity: payloadSizeBytes)
        for index in 0..<payloadSizeBytes {
            payload.writeInteger(UInt8(truncatingIfNeeded: index))
        }
        return .publish(PublishPacket(
            topicName: Self.topicName, payload: payload, qos: qos,
            packetIdentifier: qos == .atMostOnce ? nil : 1
        ))
    }
}

func registerPublishBenchmarks(_ publishCase: PublishCase) {
    let packet = publishCase.packet
    let encoder = MQTTPacketEncoder(protocolVersion: publishCase.version)
    let packetsPerSample = BenchmarkScalingFactor.kilo.rawValue
    let stream = Streams.repeated([packet], times: packetsPerSample, encoder: encoder)
    Streams.verify(stream, decodesTo: Array(repeating: packet, count: packetsPerSample), version: publishCase.version)
    let packetSizeBytes = stream.readableBytes / packetsPerSample

    Benchmark("Decode \(publishCase.name) (\(packetSizeBytes) B/packet)") { benchmark throws in
        var decoder = MQTTPacketDecoder(protocolVersion: publishCase.version)
        var buffer = stream
        for _ in benchmark.scaledIterations {
            blackHole(try decoder.decode(&buffer))
        }
    }

    Benchmark("Encode \(publishCase.name) (\(packetSizeBytes) B/packet)") { benchmark throws in
        var buffer = ByteBufferAllocator().buffer(capacity: stream.readableBytes)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try encoder.encode(packet, into: &buffer)
        }
        benchmark.stopMeasurement()
        blackHole(buffer)
    }
}

import MQTTCore
import NIOCore
import NIOPosix

/// Asks an MQTT port whether a node answers there: sends a 3.1.1 CONNECT and waits for any CONNACK
/// (a refusal counts: the node is up). Used by `bin/mqtt.sh` to know when a start has finished.
public enum GatewayProbe {
    /// Whether a CONNACK came back within `timeout`.
    public static func answers(host: String, port: Int, timeout: TimeAmount = .seconds(1)) async -> Bool {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let eventLoop = group.next()
        let answered = eventLoop.makePromise(of: Bool.self)
        eventLoop.scheduleTask(in: timeout) { answered.succeed(false) }
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ConnAckWatcher(answered: answered))
                    }
                }
                .connect(host: host, port: port).get()
            var bytes = channel.allocator.buffer(capacity: 32)
            let connect = ConnectPacket(protocolVersion: .v3_1_1, clientIdentifier: "mqtt-node-probe", cleanStart: true, keepAliveSeconds: 10)
            try MQTTPacketEncoder(protocolVersion: .v3_1_1).encode(.connect(connect), into: &bytes)
            try await channel.writeAndFlush(bytes)
            let result = try await answered.futureResult.get()
            try? await channel.close()
            return result
        } catch {
            answered.succeed(false)
            return false
        }
    }

    private final class ConnAckWatcher: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let answered: EventLoopPromise<Bool>

        init(answered: EventLoopPromise<Bool>) { self.answered = answered }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            // CONNACK is packet type 2 ([MQTT-3.2.1]); its first byte is 0x20.
            answered.succeed(buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0x20)
        }

        func channelInactive(context: ChannelHandlerContext) {
            answered.succeed(false)
            context.fireChannelInactive()
        }
    }
}

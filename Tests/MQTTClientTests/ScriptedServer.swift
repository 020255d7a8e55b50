import Foundation
import MQTTCore
import NIOCore
import NIOPosix

/// An MQTT server whose every packet a test writes by hand, to make the client meet situations a real
/// broker will not produce on demand: a dropped connection with a PUBLISH unacknowledged, garbage
/// bytes, topic aliases. Listens on 127.0.0.1 on a free port.
final class ScriptedServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let accepted: LockedArray<ScriptedConnection>

    private init(port: Int, channel: any Channel, accepted: LockedArray<ScriptedConnection>) {
        self.port = port
        self.channel = channel
        self.accepted = accepted
    }

    static func start(version: MQTTProtocolVersion) async throws -> ScriptedServer {
        let accepted = LockedArray<ScriptedConnection>()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = ScriptedConnection(channel: channel, version: version)
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(MQTTPacketByteDecoder(decoder: MQTTPacketDecoder())),
                        PacketRecorder(packets: connection.packets)
                    )
                    accepted.append(connection)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedServer(port: channel.localAddress!.port!, channel: channel, accepted: accepted)
    }

    /// The `index`th accepted connection (from 0), once it exists.
    func connection(_ index: Int, timeout: Duration = .seconds(5)) async throws -> ScriptedConnection {
        try await waitUntil("connection \(index)", timeout: timeout) { self.accepted.count > index }
        return accepted.elements[index]
    }

    func stop() async {
        for connection in accepted.elements { connection.close() }
        try? await channel.close()
    }
}

/// One client connection to a `ScriptedServer`.
final class ScriptedConnection: Sendable {
    let channel: any Channel
    let version: MQTTProtocolVersion
    let packets = LockedArray<MQTTPacket>()

    init(channel: any Channel, version: MQTTProtocolVersion) {
        self.channel = channel
        self.version = version
    }

    /// The `index`th packet the client sent on this connection (from 0), once it arrived.
    func packet(_ index: Int, timeout: Duration = .seconds(5)) async throws -> MQTTPacket {
        try await waitUntil("packet \(index) (have \(packets.elements.map(\.type)))", timeout: timeout) { self.packets.count > index }
        return packets.elements[index]
    }

    func send(_ packet: MQTTPacket) async throws {
        var buffer = channel.allocator.buffer(capacity: 64)
        try MQTTPacketEncoder(protocolVersion: version).encode(packet, into: &buffer)
        try await channel.writeAndFlush(buffer)
    }

    func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Records decoded packets; the channel's own event loop is the only writer.
private final class PacketRecorder: ChannelInboundHandler {
    typealias InboundIn = MQTTPacket
    let packets: LockedArray<MQTTPacket>

    init(packets: LockedArray<MQTTPacket>) {
        self.packets = packets
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        packets.append(Self.unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// An array shared between an event loop and a test.
///
/// `@unchecked Sendable`: `storage` is only touched under `lock`.
final class LockedArray<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Element] = []

    func append(_ element: Element) {
        lock.withLock { storage.append(element) }
    }

    var elements: [Element] {
        lock.withLock { storage }
    }

    var count: Int {
        lock.withLock { storage.count }
    }
}

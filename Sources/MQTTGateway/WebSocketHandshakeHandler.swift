import NIOCore
import NIOHTTP1

/// Guards a WebSocket connection until it is upgraded: answers an HTTP request that is not an MQTT
/// WebSocket upgrade (404 for another path, 400 otherwise) and closes; closes a connection that has not
/// upgraded within `timeout`, so idle HTTP connections cannot hold sockets. Removed at the upgrade.
final class WebSocketHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "mqtt-websocket-handshake"

    private let path: String
    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(path: String, timeout: TimeAmount = .seconds(10)) {
        self.path = path
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let requestPath = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let status: HTTPResponseStatus = requestPath == path ? .badRequest : .notFound
        let body = requestPath == path
            ? "MQTT over WebSocket: send a WebSocket upgrade with subprotocol mqtt\n"
            : "not found: MQTT over WebSocket is served on \(path)\n"
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(buffer.readableBytes)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }
}

import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Carries the MQTT byte stream in WebSocket binary frames (MQTT 5.0 section 6, MQTT 3.1.1 section 6):
/// inbound frame payloads are passed on as bytes, so a packet may span frames and a frame may hold
/// several packets [MQTT-6.0.0-2]; every outbound buffer goes out as one binary frame. Pings are
/// answered, a close is answered and ends the connection, and a close from the MQTT side sends a close
/// frame first so browsers see a clean close.
final class WebSocketMQTTHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    /// The subprotocols a client may ask for, preferred first: `mqtt` (MQTT 3.1.1 and 5.0, what MQTT.js and
    /// Paho send) and `mqttv3.1` (older clients).
    static let subprotocols = ["mqtt", "mqttv3.1"]

    private var context: ChannelHandlerContext?
    private var closeSent = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// The MQTT handlers were added after the connection became active (at the upgrade); tells them it is.
    func activateMQTTHandlers() {
        guard let context, context.channel.isActive else { return }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .continuation:
            let payload = frame.unmaskedData
            if payload.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(payload))
            }
        case .text:
            // [MQTT-6.0.0-1] MQTT travels in binary frames; a text frame closes the connection.
            sendClose(context: context, code: .unacceptableData)
            context.close(promise: nil)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            // RFC 6455 5.5.1: answer with a close (echoing the status code), then close the connection.
            var payload = frame.unmaskedData
            let code = payload.readWebSocketErrorCode() ?? .normalClosure
            sendClose(context: context, code: code)
            context.close(promise: nil)
        default:
            // The frame decoder refuses reserved opcodes; close rather than guess.
            sendClose(context: context, code: .protocolError)
            context.close(promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: buffer)), promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, context.channel.isActive {
            sendClose(context: context, code: .normalClosure)
        }
        context.close(mode: mode, promise: promise)
    }

    private func sendClose(context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closeSent else { return }
        closeSent = true
        var payload = context.channel.allocator.buffer(capacity: 2)
        payload.write(webSocketErrorCode: code)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: nil)
    }

    /// The headers that accept a WebSocket upgrade request for MQTT on `path`, or nil to refuse it: the
    /// path must match (a query is ignored) and, when the client names subprotocols, one of them must be
    /// MQTT's; the answer names the one chosen (browsers drop a connection whose answer names none).
    static func upgradeHeaders(for head: HTTPRequestHead, path: String) -> HTTPHeaders? {
        let requestPath = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard requestPath == path else { return nil }
        let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map { $0.lowercased() }
        if offered.isEmpty {
            return HTTPHeaders()
        }
        guard let chosen = subprotocols.first(where: { offered.contains($0) }) else { return nil }
        return HTTPHeaders([("Sec-WebSocket-Protocol", chosen)])
    }
}

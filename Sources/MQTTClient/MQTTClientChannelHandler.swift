import MQTTCore
import NIOCore

/// The last handler of a client connection's pipeline: forwards what happens on the channel to
/// `MQTTClientCore` (which feeds the state machine) and writes the packets the core asks for.
///
/// Each connection has its own handler, tagged with the connection's number, so events of a
/// connection that has since been replaced are recognised and ignored.
final class MQTTClientChannelHandler: ChannelInboundHandler {
    typealias InboundIn = MQTTPacket
    typealias OutboundOut = MQTTPacket

    let connectionID: UInt64
    /// The encoder of this pipeline; its limit is set once the server's Maximum Packet Size is known.
    let encoderHandler: MQTTPacketEncoderHandler
    /// Strong on purpose: the core drops its reference to this handler when the channel closes.
    private let core: MQTTClientCore
    private var context: ChannelHandlerContext?

    init(core: MQTTClientCore, connectionID: UInt64, encoderHandler: MQTTPacketEncoderHandler) {
        self.core = core
        self.connectionID = connectionID
        self.encoderHandler = encoderHandler
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added by the bootstrap's initializer, before the connection is active: `channelActive` follows.
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        core.connectionEstablished(self)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.connectionClosed(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.packetReceived(Self.unwrapInboundIn(data), on: self)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.errorCaught(error, on: self)
    }

    // MARK: Used by the core

    func write(_ packet: MQTTPacket, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(Self.wrapOutboundOut(packet), promise: promise)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }
}

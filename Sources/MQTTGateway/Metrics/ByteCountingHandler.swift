import NIOCore

/// Counts the bytes of one connection in both directions, first in the pipeline so it sees what the
/// socket does. It adds them up locally and hands them to the shared counters at the end of each read
/// burst and at each flush: one atomic add per socket read or write, not per packet.
final class ByteCountingHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let metrics: GatewayMetrics
    private var bytesReceived = 0
    private var bytesSent = 0

    init(metrics: GatewayMetrics) {
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytesReceived += unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reportReceived()
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        bytesSent += unwrapOutboundIn(data).readableBytes
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        reportSent()
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        reportReceived()
        reportSent()
        context.fireChannelInactive()
    }

    private func reportReceived() {
        guard bytesReceived > 0 else { return }
        metrics.received(bytes: bytesReceived)
        bytesReceived = 0
    }

    private func reportSent() {
        guard bytesSent > 0 else { return }
        metrics.sent(bytes: bytesSent)
        bytesSent = 0
    }
}

import MQTTCore
import NIOCore

/// Holds a connection to `maxInboundMessagesPerSecond` and `maxInboundBytesPerSecond` by back-pressure:
/// when a PUBLISH puts the connection over its budget, the packets after it wait here and the `read`
/// requests that pass this handler are held, so the socket is not read and TCP flow control slows the
/// sender; as the budget refills the waiting packets go on, then reading resumes. The connection is never
/// closed for it. What waits is bounded by what was already read from the socket when the budget ran out
/// (one read: `maxMessagesPerRead` buffers). Sits after the decoder (it counts decoded PUBLISHes: topic
/// and payload bytes), only in pipelines of a gateway that has a rate limit.
final class InboundRateLimitHandler: ChannelDuplexHandler {
    typealias InboundIn = MQTTPacket
    typealias InboundOut = MQTTPacket
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var limiter: InboundRateLimiter
    private let counters: LimitCounters
    /// Packets read while over budget, in arrival order.
    private var waiting: CircularBuffer<NIOAny> = []
    private var paused = false
    private var readRequested = false
    private var resumeTask: Scheduled<Void>?

    init(messagesPerSecond: Int, bytesPerSecond: Int, counters: LimitCounters) {
        self.limiter = InboundRateLimiter(
            messagesPerSecond: messagesPerSecond, bytesPerSecond: bytesPerSecond, nowNanos: NIODeadline.now().uptimeNanoseconds
        )
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !paused else {
            waiting.append(data)
            return
        }
        forward(context: context, data)
    }

    func read(context: ChannelHandlerContext) {
        guard !paused else {
            // Passed on when the budget has refilled.
            readRequested = true
            return
        }
        context.read()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resumeTask?.cancel()
        resumeTask = nil
        waiting.removeAll()
    }

    /// Passes `data` on, taking a PUBLISH from the budget; pauses when that leaves the budget in debt.
    private func forward(context: ChannelHandlerContext, _ data: NIOAny) {
        if case .publish(let publish) = unwrapInboundIn(data) {
            let bytes = publish.topicName.utf8.count + publish.payload.readableBytes
            if let pauseNanos = limiter.take(bytes: bytes, nowNanos: NIODeadline.now().uptimeNanoseconds) {
                counters.add(.inboundRateLimited)
                pause(context: context, forNanos: pauseNanos)
            }
        }
        context.fireChannelRead(data)
    }

    private func pause(context: ChannelHandlerContext, forNanos pauseNanos: UInt64) {
        paused = true
        resumeTask = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(pauseNanos))) { [self] in
            resumeTask = nil
            paused = false
            var forwarded = false
            while !paused, let next = waiting.popFirst() {
                forward(context: context, next)
                forwarded = true
            }
            // The connection handler answers (and flushes) what a read brought at read-complete.
            if forwarded { context.fireChannelReadComplete() }
            if !paused && readRequested {
                readRequested = false
                context.read()
            }
        }
    }
}

import NIOCore

/// The limits every MQTT connection's pipeline applies, whatever its transport (docs/limits.md).
extension MQTTChannelPipeline {
    /// Thrown from a channel initializer when `maxConn` connections are open; the bootstrap then closes
    /// the new channel before anything is read from it.
    struct ConnectionLimitReached: Error, CustomStringConvertible {
        var maximumConnections: Int
        var description: String { "maxConn (\(maximumConnections)) connections are open" }
    }

    /// Takes a `maxConn` slot for `channel` (given back when it closes) and sets its write-buffer water
    /// marks, so that a slow consumer stops being writable, and delivery to it pauses, instead of its
    /// unsent bytes growing without bound. Call on the channel's event loop.
    ///
    /// - Throws: ``ConnectionLimitReached`` when every slot is taken.
    static func admit(_ channel: any Channel, services: GatewayServices) throws {
        let limiter = services.connectionLimiter
        guard limiter.tryAcquire(counters: services.limitCounters, logger: services.logger) else {
            throw ConnectionLimitReached(maximumConnections: limiter.maximumConnections)
        }
        channel.closeFuture.whenComplete { _ in limiter.release() }
        let limits = services.configuration.limits
        try channel.syncOptions?.setOption(
            .writeBufferWaterMark,
            value: .init(low: limits.writeBufferLowWaterMarkBytes, high: limits.writeBufferHighWaterMarkBytes)
        )
    }

    /// The handlers that go right after the MQTT decoder: the inbound rate limiter when one is configured.
    static func inboundLimitHandlers(services: GatewayServices) -> [any ChannelHandler] {
        let limits = services.configuration.limits
        guard limits.limitsInboundRate else { return [] }
        return [InboundRateLimitHandler(
            messagesPerSecond: limits.maximumInboundMessagesPerSecond, bytesPerSecond: limits.maximumInboundBytesPerSecond,
            counters: services.limitCounters
        )]
    }
}

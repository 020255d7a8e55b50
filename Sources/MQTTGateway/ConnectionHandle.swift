import NIOCore

/// A way to reach one connection's handler from any thread: every call hops to the connection's event
/// loop, where all of its state lives.
struct ConnectionHandle: Sendable {
    /// Unique per connection for the life of the process.
    let connectionID: UInt64
    let eventLoop: any EventLoop
    private let handler: NIOLoopBound<MQTTConnectionHandler>

    init(connectionID: UInt64, handler: MQTTConnectionHandler, eventLoop: any EventLoop) {
        self.connectionID = connectionID
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    /// Another connection attached this one's session ([MQTT-3.1.4-3]). `settled` completes once this
    /// connection has written what it holds of the session, so the new owner reads it whole.
    func sessionTakenOver(settled: EventLoopPromise<Void>) {
        let handler = self.handler
        eventLoop.execute { handler.value.sessionTakenOver(settled: settled) }
    }

    /// The store appended to `queue`, which this connection reads.
    func queueHasMessages(_ queue: String) {
        let handler = self.handler
        eventLoop.execute { handler.value.queueHasMessages(queue) }
    }

    /// The node is stopping.
    func serverShuttingDown() {
        let handler = self.handler
        eventLoop.execute { handler.value.serverShuttingDown() }
    }
}

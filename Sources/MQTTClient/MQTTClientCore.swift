import Logging
import MQTTCore
import NIOCore
import NIOPosix

/// The event-loop-confined part of `MQTTClient`: it owns the state machine, the callers' promises, the
/// current connection and the timers, and runs the machine's actions. Every method runs on `eventLoop`
/// (the client reaches it through a `NIOLoopBoundBox`), so nothing here needs a lock.
final class MQTTClientCore {
    typealias RequestID = ClientStateMachine.RequestID
    typealias Action = ClientStateMachine.Action

    /// A caller waiting for a request to finish.
    enum PendingRequest {
        case connect(EventLoopPromise<ConnAckPacket>)
        case publish(EventLoopPromise<Void>)
        case subscribe(EventLoopPromise<SubAckPacket>)
        case unsubscribe(EventLoopPromise<UnsubAckPacket>)
        case close(EventLoopPromise<Void>)

        func fail(_ error: MQTTClientError) {
            switch self {
            case .connect(let promise): promise.fail(error)
            case .publish(let promise): promise.fail(error)
            case .subscribe(let promise): promise.fail(error)
            case .unsubscribe(let promise): promise.fail(error)
            case .close(let promise): promise.fail(error)
            }
        }
    }

    let eventLoop: any EventLoop
    private let configuration: MQTTClient.Configuration
    private let logger: Logger
    private var stateMachine: ClientStateMachine
    private var requests: [RequestID: PendingRequest] = [:]
    private var nextRequestID: RequestID = 0
    /// The handler of the current connection, from `channelActive` to `channelInactive`.
    private var connection: MQTTClientChannelHandler?
    /// Numbers connection attempts, so events of an older connection are ignored.
    private var connectionID: UInt64 = 0
    private var connAckTimer: Scheduled<Void>?
    private var keepAliveTimer: Scheduled<Void>?
    private let messages: AsyncStream<MQTTMessage>.Continuation
    private var closeWaiters: [EventLoopPromise<MQTTClientError?>] = []
    private var lastCloseReason: MQTTClientError?

    init(
        configuration: MQTTClient.Configuration,
        eventLoop: any EventLoop,
        messages: AsyncStream<MQTTMessage>.Continuation,
        logger: Logger
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.messages = messages
        self.logger = logger
        self.stateMachine = ClientStateMachine(configuration: configuration)
    }

    // MARK: - Requests from MQTTClient

    func connect(cleanStart: Bool?, promise: EventLoopPromise<ConnAckPacket>) {
        let requestID = register(.connect(promise))
        run(stateMachine.connectRequested(requestID, cleanStart: cleanStart))
    }

    func publish(_ publish: PublishPacket, promise: EventLoopPromise<Void>) {
        let requestID = register(.publish(promise))
        run(stateMachine.publishRequested(requestID, publish))
    }

    func subscribe(_ subscriptions: [Subscription], properties: MQTTProperties, promise: EventLoopPromise<SubAckPacket>) {
        let requestID = register(.subscribe(promise))
        run(stateMachine.subscribeRequested(requestID, subscriptions, properties: properties))
    }

    func unsubscribe(_ topicFilters: [String], properties: MQTTProperties, promise: EventLoopPromise<UnsubAckPacket>) {
        let requestID = register(.unsubscribe(promise))
        run(stateMachine.unsubscribeRequested(requestID, topicFilters, properties: properties))
    }

    func disconnect(reasonCode: MQTTReasonCode, properties: MQTTProperties, promise: EventLoopPromise<Void>) {
        let requestID = register(.close(promise))
        run(stateMachine.disconnectRequested(requestID, reasonCode: reasonCode, properties: properties))
    }

    func closeAbruptly(promise: EventLoopPromise<Void>) {
        let requestID = register(.close(promise))
        run(stateMachine.closeAbruptlyRequested(requestID))
    }

    /// Fails everything still pending, closes the connection and ends `messages`. Idempotent.
    func shutdown() {
        run(stateMachine.shutdownRequested())
        connAckTimer?.cancel()
        keepAliveTimer?.cancel()
        messages.finish()
        // Every request ends through the machine; this only guards against a promise outliving the client.
        let leftovers = requests
        requests.removeAll()
        for request in leftovers.values { request.fail(.shutdown) }
        completeCloseWaiters(lastCloseReason ?? .shutdown)
    }

    func waitUntilClosed(promise: EventLoopPromise<MQTTClientError?>) {
        switch stateMachine.state {
        case .connected, .closing:
            closeWaiters.append(promise)
        case .disconnected, .connecting, .awaitingConnAck, .shutdown:
            promise.succeed(lastCloseReason)
        }
    }

    var isConnected: Bool { stateMachine.isConnected }

    var assignedClientIdentifier: String? { stateMachine.assignedClientIdentifier }

    // MARK: - Events from the channel

    func connectionEstablished(_ handler: MQTTClientChannelHandler) {
        guard handler.connectionID == connectionID, connection == nil else {
            handler.close()
            return
        }
        connection = handler
        logger.debug("TCP connection established", metadata: ["mqtt.server": "\(configuration.host):\(configuration.port)"])
        run(stateMachine.connectionEstablished(now: .now()))
    }

    func packetReceived(_ packet: MQTTPacket, on handler: MQTTClientChannelHandler) {
        guard handler === connection else { return }
        logger.trace("received", metadata: ["mqtt.packet": "\(packet.type)"])
        run(stateMachine.packetReceived(packet))
    }

    func errorCaught(_ error: any Error, on handler: MQTTClientChannelHandler) {
        guard handler === connection else { return }
        let clientError: MQTTClientError
        if let decodeError = error as? MQTTDecodeError {
            clientError = .decodeFailed(decodeError)
        } else {
            clientError = .connectionError(String(describing: error))
        }
        logger.debug("connection error", metadata: ["mqtt.error": "\(clientError)"])
        run(stateMachine.errorCaught(clientError))
    }

    func connectionClosed(_ handler: MQTTClientChannelHandler) {
        guard handler === connection else { return }
        connection = nil
        connAckTimer?.cancel()
        connAckTimer = nil
        keepAliveTimer?.cancel()
        keepAliveTimer = nil
        logger.debug("connection closed")
        run(stateMachine.connectionClosed())
    }

    private func connectionFailed(_ error: any Error, connectionID: UInt64) {
        guard connectionID == self.connectionID, connection == nil else { return }
        let clientError: MQTTClientError
        if case .connectTimeout = error as? ChannelError {
            clientError = .connectTimeout
        } else {
            clientError = .connectionError(String(describing: error))
        }
        logger.debug("TCP connection failed", metadata: ["mqtt.error": "\(clientError)"])
        run(stateMachine.connectionFailed(clientError))
    }

    // MARK: - Running actions

    private func run(_ actions: [Action]) {
        var wrote = false
        var closeRequested = false
        // A close must wait for the last write (DISCONNECT) to leave: closing fails pending writes.
        let closes = actions.contains { if case .close = $0 { true } else { false } }
        var lastWrite: EventLoopFuture<Void>?

        func write(_ packet: MQTTPacket) {
            guard let connection else { return }
            if closes {
                let promise = eventLoop.makePromise(of: Void.self)
                connection.write(packet, promise: promise)
                lastWrite = promise.futureResult
            } else {
                connection.write(packet, promise: nil)
            }
            wrote = true
        }

        for action in actions {
            switch action {
            case .openConnection:
                openConnection()
            case .startConnAckTimer:
                startConnAckTimer()
            case .scheduleKeepAlive(let deadline):
                scheduleKeepAlive(at: deadline)
            case .setMaximumOutboundPacketSize(let maximum):
                connection?.encoderHandler.encoder.maxPacketSizeBytes = maximum
            case .send(let packet):
                write(packet)
            case .sendPublish(let publish, let requestID):
                guard case .publish(let promise) = requests.removeValue(forKey: requestID) else { break }
                guard let connection else {
                    promise.fail(MQTTClientError.notConnected)
                    break
                }
                let written = eventLoop.makePromise(of: Void.self)
                connection.write(.publish(publish), promise: written)
                promise.completeWith(written.futureResult.flatMapErrorThrowing { error in throw Self.writeError(error) })
                lastWrite = written.futureResult
                wrote = true
            case .deliver(let message, let acknowledgement):
                switch messages.yield(message) {
                case .enqueued, .terminated:
                    // Terminated only after shutdown, when the connection is closing anyway.
                    if let acknowledgement { write(acknowledgement) }
                case .dropped:
                    logger.warning("messages buffer full; closing the connection", metadata: ["mqtt.limit": "\(configuration.maxBufferedMessages)"])
                    run(stateMachine.deliveryRefused(message, acknowledgement: acknowledgement))
                @unknown default:
                    if let acknowledgement { write(acknowledgement) }
                }
            case .close:
                closeRequested = true
            case .reportClosed(let reason):
                lastCloseReason = reason
                switch reason {
                case .none, .shutdown?:
                    logger.debug("connection closed")
                case .some(let reason):
                    logger.info("connection closed", metadata: ["mqtt.reason": "\(reason)"])
                }
                completeCloseWaiters(reason)
            case .succeedConnect(let requestID, let connAck):
                connAckTimer?.cancel()
                connAckTimer = nil
                lastCloseReason = nil
                if case .connect(let promise) = requests.removeValue(forKey: requestID) { promise.succeed(connAck) }
            case .succeedPublish(let requestID):
                if case .publish(let promise) = requests.removeValue(forKey: requestID) { promise.succeed(()) }
            case .succeedSubscribe(let requestID, let subAck):
                if case .subscribe(let promise) = requests.removeValue(forKey: requestID) { promise.succeed(subAck) }
            case .succeedUnsubscribe(let requestID, let unsubAck):
                if case .unsubscribe(let promise) = requests.removeValue(forKey: requestID) { promise.succeed(unsubAck) }
            case .succeedClose(let requestID):
                if case .close(let promise) = requests.removeValue(forKey: requestID) { promise.succeed(()) }
            case .fail(let requestID, let error):
                guard let request = requests.removeValue(forKey: requestID) else { break }
                if case .connect = request {
                    connAckTimer?.cancel()
                    connAckTimer = nil
                }
                request.fail(error)
            }
        }
        guard let connection else { return }
        if wrote {
            connection.flush()
            stateMachine.packetsSent(now: .now())
        }
        if closeRequested {
            if let lastWrite {
                let handler = NIOLoopBound(connection, eventLoop: eventLoop)
                lastWrite.whenComplete { _ in handler.value.close() }
            } else {
                connection.close()
            }
        }
    }

    private func register(_ request: PendingRequest) -> RequestID {
        nextRequestID += 1
        requests[nextRequestID] = request
        return nextRequestID
    }

    private func completeCloseWaiters(_ reason: MQTTClientError?) {
        let waiters = closeWaiters
        closeWaiters.removeAll()
        for waiter in waiters { waiter.succeed(reason) }
    }

    private static func writeError(_ error: any Error) -> MQTTClientError {
        if let encodeError = error as? MQTTEncodeError { return .encodeFailed(encodeError) }
        if let clientError = error as? MQTTClientError { return clientError }
        return .connectionClosed
    }

    // MARK: - I/O

    private func openConnection() {
        connectionID += 1
        let connectionID = self.connectionID
        let configuration = self.configuration
        let core = NIOLoopBound(self, eventLoop: eventLoop)
        logger.debug("connecting", metadata: ["mqtt.server": "\(configuration.host):\(configuration.port)"])
        ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let decoder = MQTTPacketDecoder(
                        protocolVersion: configuration.protocolVersion,
                        limits: MQTTPacketDecoder.Limits(maxPacketSizeBytes: configuration.maxPacketSizeBytes)
                    )
                    let encoderHandler = MQTTPacketEncoderHandler(encoder: MQTTPacketEncoder(protocolVersion: configuration.protocolVersion))
                    let handler = MQTTClientChannelHandler(core: core.value, connectionID: connectionID, encoderHandler: encoderHandler)
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(MQTTPacketByteDecoder(decoder: decoder)),
                        encoderHandler,
                        handler
                    )
                }
            }
            .connect(host: configuration.host, port: configuration.port)
            .whenFailure { error in
                core.value.connectionFailed(error, connectionID: connectionID)
            }
    }

    private func startConnAckTimer() {
        connAckTimer?.cancel()
        let core = NIOLoopBound(self, eventLoop: eventLoop)
        let connectionID = self.connectionID
        connAckTimer = eventLoop.scheduleTask(in: configuration.connectTimeout) {
            let core = core.value
            guard core.connectionID == connectionID else { return }
            core.run(core.stateMachine.connAckTimeoutFired())
        }
    }

    private func scheduleKeepAlive(at deadline: NIODeadline) {
        keepAliveTimer?.cancel()
        let core = NIOLoopBound(self, eventLoop: eventLoop)
        let connectionID = self.connectionID
        keepAliveTimer = eventLoop.scheduleTask(deadline: deadline) {
            let core = core.value
            guard core.connectionID == connectionID else { return }
            core.run(core.stateMachine.keepAliveTimerFired(now: .now()))
        }
    }
}

import Logging
import NIOCore

/// The handler of one server connection: runs each request's handler in a task and writes the response
/// back on the event loop.
///
/// Back-pressure: at most `maxInFlight` requests of one connection run at once. Beyond that the handler
/// stops reading from the socket, and the few requests already decoded wait in a queue; reading resumes
/// as requests finish. Reading also pauses while the connection is not writable (the client is not
/// reading its responses), so neither requests nor responses pile up without bound.
final class RemotingServerHandler: ChannelDuplexHandler {
    typealias InboundIn = RemotingCommand
    typealias OutboundIn = NIOAny
    typealias OutboundOut = RemotingCommand

    private let dispatcher: RemotingServer.Dispatcher
    private let limits: RemotingLimits
    private let maxInFlight: Int
    private let logger: Logger
    private var inFlight = 0
    /// Requests decoded while `maxInFlight` were running; bounded by what one read delivers, since no
    /// further read is issued until there is room.
    private var waiting = CircularBuffer<RemotingCommand>()
    /// A read the channel asked for and this handler held back.
    private var readHeldBack = false
    private var context: ChannelHandlerContext?
    /// The peer's address and a logger naming it, read once per connection (each read is a system call).
    private var peer: (address: SocketAddress?, logger: Logger)?
    /// Responses written since the last flush: one flush at the end of the loop tick covers them all.
    private var flushScheduled = false

    init(dispatcher: RemotingServer.Dispatcher, limits: RemotingLimits, maxInFlight: Int, logger: Logger) {
        self.dispatcher = dispatcher
        self.limits = limits
        self.maxInFlight = maxInFlight
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Reading

    private var mayRead: Bool {
        inFlight < maxInFlight && waiting.isEmpty && (context?.channel.isWritable ?? true)
    }

    func read(context: ChannelHandlerContext) {
        if mayRead {
            context.read()
        } else {
            readHeldBack = true
        }
    }

    private func resumeReadingIfPossible() {
        guard readHeldBack, mayRead, let context else { return }
        readHeldBack = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReadingIfPossible()
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = Self.unwrapInboundIn(data)
        guard !request.isResponse else {
            logger.debug("unexpected response from client dropped", metadata: ["remoting.opaque": "\(request.opaque)"])
            return
        }
        if inFlight < maxInFlight && waiting.isEmpty {
            start(request, context: context)
        } else {
            waiting.append(request)
        }
    }

    // MARK: Running

    private func start(_ request: RemotingCommand, context: ChannelHandlerContext) {
        guard let handler = dispatcher.handler(for: request.code) else {
            respond(to: request, with: .response(to: request, code: .requestCodeNotSupported, remark: "request code \(request.code) not supported"))
            return
        }
        guard dispatcher.requestStarting() else {
            respond(to: request, with: .response(to: request, code: .serviceNotAvailable, remark: "server is shutting down"))
            return
        }
        inFlight += 1
        let peer = self.peer ?? {
            let address = context.remoteAddress
            var peerLogger = logger
            peerLogger[metadataKey: "remoting.peer"] = "\(address.map { "\($0)" } ?? "unknown")"
            self.peer = (address, peerLogger)
            return (address, peerLogger)
        }()
        let requestContext = RemotingRequestContext(
            remoteAddress: peer.address, logger: peer.logger, connection: RemotingServerConnection(channel: context.channel)
        )
        let handlerBox = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let dispatcher = self.dispatcher
        switch handler {
        case .concurrent(let handler):
            Self.run(handler, request: request, requestContext: requestContext) { response in
                eventLoop.execute {
                    handlerBox.value.finished(request, response: response)
                    // Counted as finished once its response is written, so a shutdown waiting for running
                    // requests does not close the connection under it.
                    dispatcher.requestFinished()
                }
            }
        case .onLoop(let handler):
            // Called here, synchronously, so the requests of this connection start in arrival order.
            handler(request, requestContext).hop(to: eventLoop).whenComplete { result in
                let response: RemotingCommand
                switch result {
                case .success(let success): response = success
                case .failure(let error): response = Self.errorResponse(to: request, error: error, logger: requestContext.logger)
                }
                handlerBox.value.finished(request, response: response)
                dispatcher.requestFinished()
            }
        }
    }

    private static func run(
        _ handler: @escaping RemotingServer.Handler, request: RemotingCommand, requestContext: RemotingRequestContext,
        then complete: @escaping @Sendable (RemotingCommand) -> Void
    ) {
        Task {
            let response: RemotingCommand
            do {
                response = try await handler(request, requestContext)
            } catch {
                response = errorResponse(to: request, error: error, logger: requestContext.logger)
            }
            complete(response)
        }
    }

    private static func errorResponse(to request: RemotingCommand, error: any Error, logger: Logger) -> RemotingCommand {
        if let error = error as? RemotingResponseError {
            return .response(to: request, code: error.code, remark: error.remark)
        }
        logger.warning("request failed", metadata: ["remoting.code": "\(request.code)", "remoting.reason": "\(error)"])
        return .response(to: request, code: .systemError, remark: "\(error)")
    }

    private func finished(_ request: RemotingCommand, response: RemotingCommand) {
        inFlight -= 1
        respond(to: request, with: response)
        while inFlight < maxInFlight, let context, let next = waiting.popFirst() {
            start(next, context: context)
        }
        resumeReadingIfPossible()
    }

    /// Writes `response` with the request's opaque, unless the request was oneway.
    private func respond(to request: RemotingCommand, with response: RemotingCommand) {
        guard !request.isOneway, let context else { return }
        var response = response
        response.opaque = request.opaque
        response.flags = .response
        do {
            try RemotingFrameEncoder.validate(response, limits: limits)
        } catch {
            logger.warning("response cannot be sent", metadata: ["remoting.code": "\(request.code)", "remoting.reason": "\(error)"])
            response = .response(to: request, code: .systemError, remark: "response cannot be sent: \(error)")
        }
        context.write(Self.wrapOutboundOut(response), promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            handler.value.flushScheduled = false
            handler.value.context?.flush()
        }
    }
}

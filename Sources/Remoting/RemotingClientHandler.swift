import Logging
import NIOCore

/// The handler of one client connection: gives each request an opaque, remembers it until its response
/// arrives or its timeout fires, and fails every request still waiting when the connection closes.
///
/// Runs on the channel's event loop only, so its table of requests in flight needs no lock.
final class RemotingClientHandler: ChannelDuplexHandler {
    typealias InboundIn = RemotingCommand
    typealias OutboundIn = Request
    typealias OutboundOut = RemotingCommand

    /// A request handed to the channel by ``RemotingClient``.
    struct Request: Sendable {
        var command: RemotingCommand
        var timeout: TimeAmount
        /// Completed with the response; `nil` for a oneway request, which completes with its write.
        var responsePromise: EventLoopPromise<RemotingCommand>?
        /// Written without a flush of its own: one flush at the end of the loop tick covers every request
        /// written in it (``RemotingClient/send(_:to:timeout:)``).
        var flushesLater = false
    }

    /// The request never left this process: the channel was closed before it could be written. Safe to
    /// send again on a new connection.
    struct NotSent: Error {
        var reason: String
    }

    private struct InFlight {
        var promise: EventLoopPromise<RemotingCommand>
        var timeoutTask: Scheduled<Void>
    }

    private let address: String
    private let maxInFlight: Int
    private let logger: Logger
    /// Gets the oneway requests the server pushes; nil: they are dropped.
    private let onRequest: (@Sendable (RemotingCommand) -> Void)?
    private var inFlight: [Int32: InFlight] = [:]
    /// A flush is scheduled for the end of this loop tick.
    private var flushScheduled = false
    private var lastOpaque: Int32 = 0
    /// Why the connection is going away, for the errors of the requests it takes with it.
    private var closeReason: String?

    init(address: String, maxInFlight: Int, logger: Logger, onRequest: (@Sendable (RemotingCommand) -> Void)? = nil) {
        self.address = address
        self.maxInFlight = maxInFlight
        self.logger = logger
        self.onRequest = onRequest
    }

    /// Flushes once after the writes of this tick (those already queued on the loop run first).
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            handler.value.flushScheduled = false
            boundContext.value.flush()
        }
    }

    /// Writes whose flush was put off to the end of the loop tick go out before the connection closes:
    /// a oneway request sent just before `shutdown()` (a consumer's last acknowledgement) is not lost.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        context.flush()
        context.close(mode: mode, promise: promise)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = Self.unwrapOutboundIn(data)
        var command = request.command
        command.flags.remove(.response)
        guard let responsePromise = request.responsePromise else {
            command.flags.insert(.oneway)
            command.opaque = nextOpaque()
            context.write(Self.wrapOutboundOut(command), promise: promise)
            return
        }
        command.flags.remove(.oneway)
        guard inFlight.count < maxInFlight else {
            responsePromise.fail(RemotingError.tooManyRequestsInFlight(address: address, limit: maxInFlight))
            promise?.succeed()
            return
        }
        let opaque = nextOpaque()
        command.opaque = opaque
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let code = command.code
        let timeout = request.timeout
        let timeoutTask = context.eventLoop.scheduleTask(in: timeout) {
            let error = RemotingError.timeout(address: handler.value.address, requestCode: code, timeoutMilliseconds: timeout.nanoseconds / 1_000_000)
            handler.value.fail(opaque: opaque, with: error)
        }
        inFlight[opaque] = InFlight(promise: responsePromise, timeoutTask: timeoutTask)
        let writePromise = context.eventLoop.makePromise(of: Void.self)
        writePromise.futureResult.whenComplete { result in
            switch result {
            case .success:
                promise?.succeed()
            case .failure(let error):
                if let frameError = error as? RemotingFrameError {
                    handler.value.fail(opaque: opaque, with: RemotingError.invalidRequest(frameError))
                } else if case .ioOnClosedChannel = error as? ChannelError {
                    handler.value.fail(opaque: opaque, with: NotSent(reason: "\(error)"))
                } else {
                    handler.value.fail(opaque: opaque, with: RemotingError.connectionClosed(address: handler.value.address, reason: "\(error)"))
                }
                promise?.fail(error)
            }
        }
        context.write(Self.wrapOutboundOut(command), promise: writePromise)
        if request.flushesLater { scheduleFlush(context: context) }
    }

    /// The next opaque not in use: they wrap around after 2^32 requests, and a very slow request could
    /// still hold the one that comes round again.
    private func nextOpaque() -> Int32 {
        repeat {
            lastOpaque &+= 1
        } while inFlight[lastOpaque] != nil
        return lastOpaque
    }

    private func fail(opaque: Int32, with error: any Error) {
        guard let entry = inFlight.removeValue(forKey: opaque) else { return }
        entry.timeoutTask.cancel()
        entry.promise.fail(error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let command = Self.unwrapInboundIn(data)
        guard command.isResponse else {
            if command.isOneway, let onRequest {
                onRequest(command)
                return
            }
            // This client serves no requests; say so rather than leave the peer waiting.
            logger.debug("request from server ignored", metadata: ["remoting.peer": "\(address)", "remoting.code": "\(command.code)"])
            if !command.isOneway {
                let response = RemotingCommand.response(
                    to: command, code: .requestCodeNotSupported, remark: "request code \(command.code) not supported by this client"
                )
                context.writeAndFlush(Self.wrapOutboundOut(response), promise: nil)
            }
            return
        }
        guard let entry = inFlight.removeValue(forKey: command.opaque) else {
            // The request timed out before its response came.
            logger.debug("late response dropped", metadata: ["remoting.peer": "\(address)", "remoting.opaque": "\(command.opaque)"])
            return
        }
        entry.timeoutTask.cancel()
        entry.promise.succeed(command)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closeReason == nil {
            closeReason = error is RemotingFrameError ? "malformed frame from server: \(error)" : "\(error)"
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let waiting = inFlight
        inFlight.removeAll()
        for entry in waiting.values {
            entry.timeoutTask.cancel()
            entry.promise.fail(RemotingError.connectionClosed(address: address, reason: closeReason))
        }
        context.fireChannelInactive()
    }
}

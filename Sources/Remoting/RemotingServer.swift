import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Serves remoting requests: accepts connections, decodes frames, runs the async handler registered
/// for each request code and writes its response back with the request's opaque.
///
/// Requests on one connection are handled concurrently; their responses go out as they finish, in any
/// order. A connection that sends a malformed frame is closed (the reason is logged); the others are
/// not affected.
///
/// ```swift
/// let server = RemotingServer(configuration: .init(host: "127.0.0.1", port: 0))
/// server.register(code: 101) { request, _ in .response(to: request, body: ByteBuffer(string: "pong")) }
/// let port = try await server.start()
/// ...
/// await server.shutdown()
/// ```
public final class RemotingServer: Sendable {
    /// Runs one request; returns the response (built with ``RemotingCommand/response(to:code:remark:headers:body:)``).
    /// Throw ``RemotingResponseError`` to answer with a given code.
    public typealias Handler = @Sendable (RemotingCommand, RemotingRequestContext) async throws -> RemotingCommand

    /// Runs one request synchronously on the connection's event loop, in the order the requests of that
    /// connection arrived; the returned future completes with the response (a failed future is answered
    /// like a handler that throws). Keep the synchronous part short: it holds up the loop.
    public typealias OnLoopHandler = @Sendable (RemotingCommand, RemotingRequestContext) -> EventLoopFuture<RemotingCommand>

    /// How a request code is served.
    enum RegisteredHandler: Sendable {
        /// In a task of its own, concurrently with the connection's other requests.
        case concurrent(Handler)
        /// Started on the event loop in arrival order.
        case onLoop(OnLoopHandler)
    }

    /// Settings of a server; every field but the address has a default.
    public struct Configuration: Sendable, Hashable {
        /// The address to bind: `0.0.0.0` for every IPv4 interface, `127.0.0.1` for local use only.
        public var host: String
        /// The port to bind; 0 picks a free one (see ``RemotingServer/port``).
        public var port: Int
        /// Frame limits. Default: ``RemotingLimits/init(maxFrameSizeBytes:maxHeaderCount:maxHeaderBlockBytes:)``.
        public var limits: RemotingLimits
        /// Requests one connection may have running at once; beyond that the server stops reading from
        /// the connection until one finishes (back-pressure). Default: 256.
        public var maxInFlightRequestsPerConnection: Int
        /// How long ``RemotingServer/shutdown()`` lets running requests finish before closing
        /// connections. Default: 5 s.
        public var shutdownGracePeriod: Duration

        public init(
            host: String,
            port: Int,
            limits: RemotingLimits = RemotingLimits(),
            maxInFlightRequestsPerConnection: Int = 256,
            shutdownGracePeriod: Duration = .seconds(5)
        ) {
            precondition((0...65535).contains(port), "port must be 0...65535")
            precondition(maxInFlightRequestsPerConnection > 0, "maxInFlightRequestsPerConnection must be positive")
            self.host = host
            self.port = port
            self.limits = limits
            self.maxInFlightRequestsPerConnection = maxInFlightRequestsPerConnection
            self.shutdownGracePeriod = shutdownGracePeriod
        }
    }

    private enum Phase {
        case idle
        /// Binding; connections that arrive before `bind` returns are served.
        case starting
        case running(any Channel)
        case shuttingDown
        case stopped

        var isServing: Bool {
            switch self {
            case .starting, .running: return true
            case .idle, .shuttingDown, .stopped: return false
            }
        }
    }

    private struct State {
        var phase: Phase = .idle
        var handlers: [Int32: RegisteredHandler] = [:]
        var connections: [ObjectIdentifier: any Channel] = [:]
        var requestsRunning = 0
    }

    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    public init(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "remoting.server")
    ) {
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
    }

    /// Registers the handler of `code`, replacing any earlier one. Call before ``start()``.
    public func register(code: Int32, handler: @escaping Handler) {
        state.withLockedValue { state in
            guard case .idle = state.phase else { preconditionFailure("RemotingServer.register called after start()") }
            state.handlers[code] = .concurrent(handler)
        }
    }

    /// Registers an ordered handler for `code`, replacing any earlier one. Call before ``start()``.
    ///
    /// The requests of one connection with such codes are started in the order they arrived, each
    /// synchronously in the connection's `channelRead`: what the handler does before returning its future
    /// (e.g. an append) happens in arrival order. Their responses still go out as their futures complete.
    public func register(code: Int32, onLoop handler: @escaping OnLoopHandler) {
        state.withLockedValue { state in
            guard case .idle = state.phase else { preconditionFailure("RemotingServer.register called after start()") }
            state.handlers[code] = .onLoop(handler)
        }
    }

    /// Binds the listening socket and starts accepting connections.
    ///
    /// - Returns: the bound port (the one chosen by the system when the configuration says 0).
    /// - Throws: the bind error, e.g. the address is in use.
    @discardableResult
    public func start() async throws -> Int {
        let handlers = state.withLockedValue { state -> [Int32: RegisteredHandler] in
            guard case .idle = state.phase else { preconditionFailure("RemotingServer.start called twice") }
            state.phase = .starting
            return state.handlers
        }
        let dispatcher = Dispatcher(handlers: handlers, server: self)
        let configuration = self.configuration
        let logger = self.logger
        let serverChannel: any Channel
        do {
            serverChannel = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 256)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        guard self.connectionOpened(channel) else {
                            throw ChannelError.ioOnClosedChannel
                        }
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(RemotingFrameDecoder(limits: configuration.limits)),
                            MessageToByteHandler(RemotingFrameEncoderHandler(limits: configuration.limits)),
                            RemotingServerHandler(
                                dispatcher: dispatcher, limits: configuration.limits,
                                maxInFlight: configuration.maxInFlightRequestsPerConnection, logger: logger
                            ),
                            RemotingProtocolErrorHandler(logger: logger, peerRole: "client")
                        )
                    }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            state.withLockedValue { $0.phase = .stopped }
            throw error
        }
        let stillStarting = state.withLockedValue { state -> Bool in
            guard case .starting = state.phase else { return false }
            state.phase = .running(serverChannel)
            return true
        }
        if !stillStarting {
            // shutdown() ran while binding.
            try? await serverChannel.close()
        }
        return serverChannel.localAddress?.port ?? configuration.port
    }

    /// The bound port while the server runs.
    public var port: Int? {
        state.withLockedValue { state in
            guard case .running(let channel) = state.phase else { return nil }
            return channel.localAddress?.port
        }
    }

    /// Stops accepting connections, answers new requests with ``RemotingResponseCode/serviceNotAvailable``,
    /// lets running requests finish (up to ``Configuration/shutdownGracePeriod``), then closes every
    /// connection. Does not shut down the event loop group.
    public func shutdown() async {
        let serverChannel = state.withLockedValue { state -> (any Channel)? in
            switch state.phase {
            case .running(let channel):
                state.phase = .shuttingDown
                return channel
            case .idle, .starting:
                state.phase = .stopped
                return nil
            case .shuttingDown, .stopped:
                return nil
            }
        }
        guard let serverChannel else { return }
        try? await serverChannel.close()

        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.shutdownGracePeriod)
        while state.withLockedValue({ $0.requestsRunning }) > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let connections = state.withLockedValue { state in
            state.phase = .stopped
            return Array(state.connections.values)
        }
        for connection in connections {
            try? await connection.close()
        }
    }

    // MARK: Bookkeeping (called by connections)

    /// Records a new connection; `false` when the server is no longer running and it must be refused.
    private func connectionOpened(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let accepted = state.withLockedValue { state -> Bool in
            guard state.phase.isServing else { return false }
            state.connections[id] = channel
            return true
        }
        if accepted {
            channel.closeFuture.whenComplete { [state] _ in
                _ = state.withLockedValue { $0.connections.removeValue(forKey: id) }
            }
        }
        return accepted
    }

    /// Counts a request about to run; `false` when shutting down, so it must be refused.
    fileprivate func requestStarting() -> Bool {
        state.withLockedValue { state in
            guard state.phase.isServing else { return false }
            state.requestsRunning += 1
            return true
        }
    }

    fileprivate func requestFinished() {
        state.withLockedValue { $0.requestsRunning -= 1 }
    }

    /// The handlers and the server's counters, shared by every connection.
    struct Dispatcher: Sendable {
        let handlers: [Int32: RegisteredHandler]
        fileprivate let server: RemotingServer

        func handler(for code: Int32) -> RegisteredHandler? { handlers[code] }
        func requestStarting() -> Bool { server.requestStarting() }
        func requestFinished() { server.requestFinished() }
    }
}

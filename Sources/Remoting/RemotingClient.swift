import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Sends requests to remoting servers and awaits their responses.
///
/// One TCP connection per address, opened on the first request and shared by every request after it:
/// many requests can be in flight on it at once, their responses matched by opaque. When a connection
/// fails or closes, the requests in flight on it fail with ``RemotingError/connectionClosed(address:reason:)``
/// and the next request opens a new one.
///
/// ```swift
/// let client = RemotingClient()
/// let response = try await client.invoke(.request(code: 101, headers: ["key": "k"]), to: address)
/// await client.shutdown()
/// ```
public final class RemotingClient: Sendable {
    /// Settings of a client; every field has a default.
    public struct Configuration: Sendable, Hashable {
        /// How long a TCP connect may take. Default: 3 s.
        public var connectTimeout: Duration
        /// The timeout of a request that does not name its own. Default: 3 s.
        public var requestTimeout: Duration
        /// Frame limits, for what is sent and what is accepted. Default: ``RemotingLimits/init(maxFrameSizeBytes:maxHeaderCount:maxHeaderBlockBytes:)``.
        public var limits: RemotingLimits
        /// Requests that may wait for a response on one connection; more fail at once with
        /// ``RemotingError/tooManyRequestsInFlight(address:limit:)``. Default: 4096.
        public var maxInFlightRequestsPerConnection: Int

        public init(
            connectTimeout: Duration = .seconds(3),
            requestTimeout: Duration = .seconds(3),
            limits: RemotingLimits = RemotingLimits(),
            maxInFlightRequestsPerConnection: Int = 4096
        ) {
            precondition(maxInFlightRequestsPerConnection > 0, "maxInFlightRequestsPerConnection must be positive")
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.limits = limits
            self.maxInFlightRequestsPerConnection = maxInFlightRequestsPerConnection
        }
    }

    private enum Connection {
        case connecting(EventLoopFuture<any Channel>)
        case ready(any Channel)
    }

    private struct State {
        var connections: [RemotingAddress: Connection] = [:]
        var isShutDown = false
    }

    /// What happened to the connection to an address (see ``init(configuration:eventLoopGroup:logger:onServerRequest:onConnectionEvent:)``).
    public enum ConnectionEvent: Sendable, Hashable {
        /// A connection is established (the first one, or a new one after a close).
        case opened
        /// The connection closed; requests in flight on it failed, and the next request opens a new one.
        case closed
    }

    /// Called on the connection's event loop with each oneway request a server pushes; keep it short.
    public typealias ServerRequestHandler = @Sendable (RemotingCommand, RemotingAddress) -> Void
    /// Called on the connection's event loop when a connection opens or closes.
    public typealias ConnectionEventHandler = @Sendable (RemotingAddress, ConnectionEvent) -> Void

    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let onServerRequest: ServerRequestHandler?
    private let onConnectionEvent: ConnectionEventHandler?

    /// - Parameters:
    ///   - eventLoopGroup: where connections run. Default: the process-wide NIO group.
    ///   - logger: connection events (debug) and malformed frames from servers (warning).
    ///   - onServerRequest: gets the oneway requests servers push on the client's connections
    ///     (notifications); without it they are dropped. Requests that expect a response are answered
    ///     `REQUEST_CODE_NOT_SUPPORTED` either way.
    ///   - onConnectionEvent: told when a connection to an address opens and when it closes, so an owner
    ///     can restore per-connection state (e.g. subscriptions to notifications) on the next one.
    public init(
        configuration: Configuration = Configuration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "remoting.client"),
        onServerRequest: ServerRequestHandler? = nil,
        onConnectionEvent: ConnectionEventHandler? = nil
    ) {
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        self.onServerRequest = onServerRequest
        self.onConnectionEvent = onConnectionEvent
    }

    /// Sends `request` to `address` and returns the response, whatever its code.
    ///
    /// The client sets the opaque and the flags. Use ``RemotingCommand/expectSuccess(from:)`` to turn an
    /// error response into a ``RemotingError/remote(address:code:remark:)``.
    ///
    /// - Parameter timeout: how long to wait for the response once the connection is up. Default:
    ///   ``Configuration/requestTimeout``.
    public func invoke(_ request: RemotingCommand, to address: RemotingAddress, timeout: Duration? = nil) async throws(RemotingError) -> RemotingCommand {
        do {
            try RemotingFrameEncoder.validate(request, limits: configuration.limits)
        } catch {
            throw .invalidRequest(error)
        }
        // A request that never left because its connection had just closed (the server restarted,
        // and the close was not yet seen) is sent once more, on a new connection.
        for attempt in 1...2 {
            let channel = try await channel(to: address)
            let promise = channel.eventLoop.makePromise(of: RemotingCommand.self)
            let message = RemotingClientHandler.Request(
                command: request, timeout: TimeAmount(timeout ?? configuration.requestTimeout), responsePromise: promise
            )
            channel.writeAndFlush(message).whenFailure { error in
                // The handler fails the promise itself for writes it accepted; this covers a channel that
                // closed before the handler saw the write.
                promise.fail(RemotingClientHandler.NotSent(reason: "\(error)"))
            }
            do {
                return try await promise.futureResult.get()
            } catch let error as RemotingError {
                throw error
            } catch let error as RemotingClientHandler.NotSent {
                forget(channel, address: address)
                if attempt == 2 { throw .connectionClosed(address: "\(address)", reason: error.reason) }
            } catch {
                throw .connectionClosed(address: "\(address)", reason: "\(error)")
            }
        }
        preconditionFailure("unreachable: the second attempt returns or throws")
    }

    /// Drops `channel` from the cache if it is still there, so the next request connects again.
    private func forget(_ channel: any Channel, address: RemotingAddress) {
        state.withLockedValue { state in
            if case .ready(let current) = state.connections[address], current === channel {
                state.connections[address] = nil
            }
        }
    }

    /// Sends `request` and returns its response, whatever its code, keeping the order of calls: requests
    /// sent one after another reach the wire in that order, even while the connection is still being
    /// opened (they wait on it together). Unlike ``invoke(_:to:timeout:)`` a request is never sent twice:
    /// if the connection closes first it fails with ``RemotingError/connectionClosed(address:reason:)``.
    /// Requests written in one event-loop tick share one flush.
    ///
    /// - Parameter timeout: how long to wait for the response once the connection is up. Default:
    ///   ``Configuration/requestTimeout``.
    public func send(_ request: RemotingCommand, to address: RemotingAddress, timeout: Duration? = nil) -> EventLoopFuture<RemotingCommand> {
        let connection: EventLoopFuture<any Channel>
        switch lookUpChannel(to: address) {
        case .shutDown:
            return group.next().makeFailedFuture(RemotingError.clientShutDown)
        case .existing(let existing):
            connection = existing
        case .connect(let promise):
            connect(to: address, promise: promise)
            connection = promise.futureResult
        }
        do {
            try RemotingFrameEncoder.validate(request, limits: configuration.limits)
        } catch {
            return connection.eventLoop.makeFailedFuture(RemotingError.invalidRequest(error))
        }
        let connectTimeout = configuration.connectTimeout
        let requestTimeout = TimeAmount(timeout ?? configuration.requestTimeout)
        // Callbacks on one future run in the order they were added, and a completed future's callbacks
        // run on its loop in call order: either way the writes keep the order of the calls.
        return connection.flatMapError { error in
            let remotingError = (error as? RemotingError) ?? Self.connectError(error, address: address, timeout: connectTimeout)
            return connection.eventLoop.makeFailedFuture(remotingError)
        }.flatMap { channel in
            let promise = channel.eventLoop.makePromise(of: RemotingCommand.self)
            let message = RemotingClientHandler.Request(command: request, timeout: requestTimeout, responsePromise: promise, flushesLater: true)
            channel.write(message).whenFailure { error in
                promise.fail(RemotingError.connectionClosed(address: "\(address)", reason: "\(error)"))
            }
            return promise.futureResult.flatMapErrorThrowing { error in
                if let error = error as? RemotingClientHandler.NotSent {
                    throw RemotingError.connectionClosed(address: "\(address)", reason: error.reason)
                }
                throw error
            }
        }
    }

    /// Sends `request` without waiting for (or getting) a response; returns once it is written.
    public func invokeOneway(_ request: RemotingCommand, to address: RemotingAddress) async throws(RemotingError) {
        do {
            try RemotingFrameEncoder.validate(request, limits: configuration.limits)
        } catch {
            throw .invalidRequest(error)
        }
        let channel = try await channel(to: address)
        let message = RemotingClientHandler.Request(command: request, timeout: TimeAmount(configuration.requestTimeout), responsePromise: nil)
        do {
            try await channel.writeAndFlush(message).get()
        } catch {
            throw .connectionClosed(address: "\(address)", reason: "\(error)")
        }
    }

    /// Closes every connection and fails their requests in flight; later requests fail with
    /// ``RemotingError/clientShutDown``. Does not shut down the event loop group.
    public func shutdown() async {
        let connections = state.withLockedValue { state in
            state.isShutDown = true
            defer { state.connections.removeAll() }
            return Array(state.connections.values)
        }
        for connection in connections {
            switch connection {
            case .ready(let channel):
                try? await channel.close()
            case .connecting(let future):
                if let channel = try? await future.get() { try? await channel.close() }
            }
        }
    }

    // MARK: Connections

    private enum Lookup {
        case existing(EventLoopFuture<any Channel>)
        case connect(EventLoopPromise<any Channel>)
        case shutDown
    }

    private func lookUpChannel(to address: RemotingAddress) -> Lookup {
        state.withLockedValue { state -> Lookup in
            guard !state.isShutDown else { return .shutDown }
            switch state.connections[address] {
            case .ready(let channel):
                return .existing(channel.eventLoop.makeSucceededFuture(channel))
            case .connecting(let future):
                return .existing(future)
            case nil:
                let promise = group.next().makePromise(of: (any Channel).self)
                state.connections[address] = .connecting(promise.futureResult)
                return .connect(promise)
            }
        }
    }

    private func channel(to address: RemotingAddress) async throws(RemotingError) -> any Channel {
        let future: EventLoopFuture<any Channel>
        switch lookUpChannel(to: address) {
        case .shutDown:
            throw .clientShutDown
        case .existing(let existing):
            future = existing
        case .connect(let promise):
            // Outside the lock: the callbacks below take it.
            connect(to: address, promise: promise)
            future = promise.futureResult
        }
        do {
            return try await future.get()
        } catch let error as RemotingError {
            throw error
        } catch {
            throw Self.connectError(error, address: address, timeout: configuration.connectTimeout)
        }
    }

    private func connect(to address: RemotingAddress, promise: EventLoopPromise<any Channel>) {
        let configuration = self.configuration
        let logger = self.logger
        let state = self.state
        let onConnectionEvent = self.onConnectionEvent
        let onRequest = Self.boundRequestHandler(onServerRequest, address: address)
        logger.debug("connecting", metadata: ["remoting.peer": "\(address)"])
        ClientBootstrap(group: promise.futureResult.eventLoop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(RemotingFrameDecoder(limits: configuration.limits)),
                        MessageToByteHandler(RemotingFrameEncoderHandler(limits: configuration.limits)),
                        RemotingClientHandler(
                            address: "\(address)", maxInFlight: configuration.maxInFlightRequestsPerConnection, logger: logger,
                            onRequest: onRequest
                        ),
                        RemotingProtocolErrorHandler(logger: logger, peerRole: "server")
                    )
                }
            }
            .connect(host: address.host, port: address.port)
            .cascade(to: promise)

        promise.futureResult.whenComplete { result in
            let channel = try? result.get()
            let isCurrent = state.withLockedValue { state -> Bool in
                guard case .connecting(let future) = state.connections[address], future === promise.futureResult else { return false }
                if let channel, !state.isShutDown {
                    state.connections[address] = .ready(channel)
                } else {
                    // A failed connect is forgotten, so the next request tries again.
                    state.connections[address] = nil
                }
                return true
            }
            guard let channel else { return }
            guard isCurrent else {
                // Shut down while connecting.
                channel.close(promise: nil)
                return
            }
            onConnectionEvent?(address, .opened)
            channel.closeFuture.whenComplete { _ in
                logger.debug("connection closed", metadata: ["remoting.peer": "\(address)"])
                state.withLockedValue { state in
                    if case .ready(let current) = state.connections[address], current === channel {
                        state.connections[address] = nil
                    }
                }
                onConnectionEvent?(address, .closed)
            }
        }
    }

    private static func boundRequestHandler(_ handler: ServerRequestHandler?, address: RemotingAddress) -> (@Sendable (RemotingCommand) -> Void)? {
        guard let handler else { return nil }
        return { command in handler(command, address) }
    }

    private static func connectError(_ error: any Error, address: RemotingAddress, timeout: Duration) -> RemotingError {
        let name = "\(address)"
        if let connectionError = error as? NIOConnectionError {
            let errors = connectionError.connectionErrors.map(\.error)
            if errors.contains(where: { ($0 as? IOError)?.errnoCode == ECONNREFUSED }) {
                return .connectionRefused(address: name)
            }
            if errors.contains(where: { if case .connectTimeout = $0 as? ChannelError { true } else { false } }) {
                return .connectTimeout(address: name, timeoutMilliseconds: Int64(TimeAmount(timeout).nanoseconds / 1_000_000))
            }
            if let first = errors.first {
                return .connectionFailed(address: name, reason: "\(first)")
            }
            let dnsError = connectionError.dnsAError ?? connectionError.dnsAAAAError
            return .connectionFailed(address: name, reason: "cannot resolve \(address.host)" + (dnsError.map { ": \($0)" } ?? ""))
        }
        if let ioError = error as? IOError, ioError.errnoCode == ECONNREFUSED {
            return .connectionRefused(address: name)
        }
        if case .connectTimeout = error as? ChannelError {
            return .connectTimeout(address: name, timeoutMilliseconds: Int64(TimeAmount(timeout).nanoseconds / 1_000_000))
        }
        return .connectionFailed(address: name, reason: "\(error)")
    }
}

import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs a server that is already started until SIGTERM or SIGINT, then stops it: a `ServiceGroup` of
/// swift-service-lifecycle with one service, whose graceful shutdown is the server's `stop`.
public struct ForegroundService: Service {
    private let stop: @Sendable () async -> Void

    /// - Parameter stop: stops the server (drains clients, flushes the store); runs once, on SIGTERM or
    ///   SIGINT.
    public init(stop: @escaping @Sendable () async -> Void) {
        self.stop = stop
    }

    public func run() async throws {
        // Returns once the group starts its graceful shutdown (a signal); throws only if cancelled.
        try? await gracefulShutdown()
        await stop()
    }

    /// The signals that stop the server.
    static let signals: [UnixSignal] = [.sigterm, .sigint]

    /// Starts a server with `start` (a failure is logged as "cannot start" and returns false), then runs it
    /// until SIGTERM or SIGINT and stops it with `stop`; returns true once it is stopped.
    public static func run<Server: Sendable>(
        logger: Logger, start: () async throws -> Server, stop: @escaping @Sendable (Server) async -> Void
    ) async throws -> Bool {
        let server: Server
        do {
            server = try await start()
        } catch {
            logger.critical("cannot start: \(error)")
            return false
        }
        try await runUntilSignalled(logger: logger) { await stop(server) }
        return true
    }

    /// Runs `stop` on the first SIGTERM or SIGINT and returns once it is done.
    public static func runUntilSignalled(logger: Logger, stop: @escaping @Sendable () async -> Void) async throws {
        // Children of some supervisors (and test runners) start with SIGTERM blocked; a server that
        // cannot hear SIGTERM cannot stop gracefully, so unblock the signals the group listens for.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [
                .init(service: ForegroundService(stop: stop)),
                // The group logs the signal at debug level only; operators want to see why a server stopped.
                .init(service: SignalLogger(logger: logger), successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: signals,
            logger: logger
        ))
        try await group.run()
    }
}

/// Logs the signal that stops the server: "received SIGTERM, shutting down".
struct SignalLogger: Service {
    let logger: Logger

    func run() async throws {
        // Not cancelled on graceful shutdown: that starts with this very signal, and the line must still be
        // written. The group cancels this service when the server has stopped.
        for await signal in await UnixSignalsSequence(trapping: ForegroundService.signals) {
            logger.info("received \(signal), shutting down")
            return
        }
    }
}

import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Remoting

/// A name server: the KV metadata and topic routes in SQLite, the registry of store and gateway nodes,
/// served over the remoting protocol.
///
/// `mqnamesrv` runs one; a standalone node runs one in process and uses ``client`` directly.
///
/// ```swift
/// let server = NameServer(configuration: configuration)
/// try await server.start()
/// try await server.client.putKV(namespace: "LMQ", key: "LMQ_CONNECT_NODES", value: "10.0.0.1")
/// await server.shutdown()
/// ```
public final class NameServer: Sendable {
    public let configuration: NameServerConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger

    private struct Running: Sendable {
        var service: NameServerService
        var server: RemotingServer
        var lock: DataDirectoryLock
        var expiryTask: RepeatedTask
        var port: Int
    }

    private let state = NIOLockedValueBox<Running?>(nil)

    /// - Parameter logger: where the server logs; its level is set to ``NameServerConfiguration/logLevel``.
    public init(
        configuration: NameServerConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "namesrv")
    ) {
        self.configuration = configuration
        self.group = eventLoopGroup
        var logger = logger
        logger.logLevel = configuration.logLevel
        self.logger = logger
    }

    /// Creates the data folder if needed, locks it, opens the database, and starts listening.
    ///
    /// - Throws: ``NameServerError/storageFailed(_:)`` for the data folder or database, or the bind error.
    public func start() async throws {
        precondition(state.withLockedValue { $0 == nil }, "NameServer.start called twice")
        let directory = configuration.dataDirectoryPath
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw NameServerError.storageFailed("cannot create \(directory): \((error as NSError).localizedDescription)")
        }
        let lock = try DataDirectoryLock(directory: directory)
        let service = try NameServerService(directory: directory, configuration: configuration, logger: logger)
        let summary = service.summary
        logger.info(
            "metadata loaded",
            metadata: ["dataDir": "\(directory)", "namespaces": "\(summary.namespaces)", "keys": "\(summary.keys)", "topics": "\(summary.topics)"]
        )

        let server = RemotingServer(
            configuration: .init(host: configuration.listenAddress, port: configuration.listenPort, limits: configuration.remotingLimits),
            eventLoopGroup: group,
            logger: logger
        )
        NameServerRequestHandlers.register(on: server, service: service)
        let port: Int
        do {
            port = try await server.start()
        } catch {
            await service.close()
            throw error
        }
        let interval = TimeAmount(configuration.expiryCheckInterval)
        let expiryTask = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            service.expireNodes()
        }
        state.withLockedValue { $0 = Running(service: service, server: server, lock: lock, expiryTask: expiryTask, port: port) }
        logger.info("listening on \(configuration.listenAddress):\(port)", metadata: ["nodeExpiry": "\(configuration.nodeExpiry)"])
    }

    /// The bound port while running (the chosen one when ``NameServerConfiguration/listenPort`` is 0).
    public var port: Int? {
        state.withLockedValue { $0?.port }
    }

    /// The in-process client: the same service the network is served from. Valid between ``start()``
    /// and ``shutdown()``.
    public var client: any NameServerClient {
        guard let service = state.withLockedValue({ $0?.service }) else {
            preconditionFailure("NameServer.client used before start()")
        }
        return service
    }

    /// Stops listening, lets requests in flight finish, and closes the database.
    public func shutdown() async {
        guard let running = state.withLockedValue({ state -> Running? in
            defer { state = nil }
            return state
        }) else { return }
        running.expiryTask.cancel()
        await running.server.shutdown()
        await running.service.close()
        withExtendedLifetime(running.lock) {}
        logger.info("stopped")
    }
}

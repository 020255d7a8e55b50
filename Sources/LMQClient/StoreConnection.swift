import Logging
import MQTTCore
import NIOConcurrencyHelpers
import NameServer
import Remoting
import StoreNode

/// A server application's connections to the store nodes: the primary found through the name servers,
/// and the node of each first topic learnt from its route (``StoreNodeRoutes``, as a gateway does).
///
/// Each producer and consumer has its own: a consumer's connection is its membership (when it closes,
/// the node hands what the member held to the others).
final class StoreConnection: Sendable {
    let routes: StoreNodeRoutes
    private let nameServers: [any NameServerClient]
    private let nameServerRemoting: RemotingClient
    private let configuration: LMQClientConfiguration
    private let logger: Logger
    /// First topics known to exist in the name servers (created by this client or found there).
    private let knownFirstTopics = NIOLockedValueBox<Set<String>>([])
    private let refresher: NIOLockedValueBox<Task<Void, Never>?> = NIOLockedValueBox(nil)

    var primary: StoreNodeClient { routes.primary }

    private init(
        routes: StoreNodeRoutes, nameServers: [any NameServerClient], nameServerRemoting: RemotingClient,
        configuration: LMQClientConfiguration, logger: Logger
    ) {
        self.routes = routes
        self.nameServers = nameServers
        self.nameServerRemoting = nameServerRemoting
        self.configuration = configuration
        self.logger = logger
    }

    /// Finds the primary store node (``LMQClientConfiguration/storeNodeAddress``, else the first registered,
    /// waiting up to ``LMQClientConfiguration/storeNodeWaitSeconds``) and connects to it.
    static func open(_ configuration: LMQClientConfiguration, logger: Logger) async throws -> StoreConnection {
        let remoting = RemotingClient(logger: logger)
        let nameServers: [any NameServerClient]
        do {
            nameServers = try configuration.nameServerAddresses.map { text in
                guard let address = RemotingAddress(parsing: text) else { throw LMQClientError.invalidAddress(text) }
                return RemotingNameServerClient(address: address, remotingClient: remoting)
            }
        } catch {
            await remoting.shutdown()
            throw error
        }
        let primaryAddress: RemotingAddress
        do {
            primaryAddress = try await findPrimary(configuration, nameServers: nameServers)
        } catch {
            await remoting.shutdown()
            throw error
        }
        let routes = StoreNodeRoutes(
            primary: StoreNodeClient(address: primaryAddress, logger: logger), nameServers: nameServers, logger: logger,
            makeClient: { address in StoreNodeClient(address: address, logger: logger) }
        )
        let connection = StoreConnection(
            routes: routes, nameServers: nameServers, nameServerRemoting: remoting, configuration: configuration, logger: logger
        )
        // An operator may move a first topic to another store node.
        let task = Task { [routes] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(StoreNodeRoutes.refreshSeconds))
                guard !Task.isCancelled else { return }
                await routes.refresh()
            }
        }
        connection.refresher.withLockedValue { $0 = task }
        return connection
    }

    private static func findPrimary(
        _ configuration: LMQClientConfiguration, nameServers: [any NameServerClient]
    ) async throws -> RemotingAddress {
        if let configured = configuration.storeNodeAddress {
            guard let address = RemotingAddress(parsing: configured) else { throw LMQClientError.invalidAddress(configured) }
            return address
        }
        do {
            return try await StoreNodeLookup.firstRegistered(nameServers: nameServers, waitSeconds: configuration.storeNodeWaitSeconds)
        } catch let notFound as StoreNodeLookup.NotFound {
            throw LMQClientError.noStoreNode(
                nameServers: configuration.nameServerAddresses, waitedSeconds: configuration.storeNodeWaitSeconds,
                nameServerError: notFound.lastError.map { "\($0)" }
            )
        }
    }

    /// The store node of `firstTopic`, learning its route first if needed. With
    /// ``LMQClientConfiguration/autoCreateFirstTopic``, a first topic the name servers do not know is
    /// created, routed to the primary, as a gateway creates it on a PUBLISH.
    func node(forFirstTopic firstTopic: String, creating: Bool) async throws -> StoreNodeClient {
        if creating, configuration.autoCreateFirstTopic, !firstTopic.isEmpty, !knownFirstTopics.withLockedValue({ $0.contains(firstTopic) }) {
            await createIfUnknown(firstTopic)
        }
        if !routes.unknown([firstTopic]).isEmpty {
            try await routes.learn([firstTopic])
        }
        return routes.node(forFirstTopic: firstTopic) ?? routes.primary
    }

    /// On every name server, as a gateway writes it. One attempt per first topic and connection: a name
    /// server that does not answer does not stop the message (it goes to the primary), and is not asked
    /// again for every message.
    private func createIfUnknown(_ firstTopic: String) async {
        defer { knownFirstTopics.withLockedValue { _ = $0.insert(firstTopic) } }
        for nameServer in nameServers {
            do throws(NameServerError) {
                do {
                    _ = try await nameServer.topicRoute(firstTopic)
                } catch .topicNotFound {
                    _ = try await nameServer.updateTopic(firstTopic, target: .storeAddress("\(routes.primary.address)"))
                    logger.info("first topic created", metadata: ["topic": "\(firstTopic)", "store": "\(routes.primary.address)"])
                }
            } catch {
                logger.warning("cannot create first topic \(firstTopic) on a name server: \(error)")
            }
        }
    }

    func close() async {
        refresher.withLockedValue { $0 }?.cancel()
        await routes.closeOthers()
        try? await routes.primary.close()
        await nameServerRemoting.shutdown()
    }
}

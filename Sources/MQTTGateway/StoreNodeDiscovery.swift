import Logging
import NameServer
import Remoting
import StoreNode

/// How a gateway in cluster mode finds its store node: `storeNodeAddress` when set, else the store node
/// the name servers list first (by address), waiting up to `storeNodeWaitSeconds` for one to register.
enum StoreNodeDiscovery {
    struct NoStoreNode: Error, CustomStringConvertible {
        var nameServers: [String]
        var waitedSeconds: Int
        var description: String {
            "no store node registered with the name servers \(nameServers.joined(separator: ";")) within \(waitedSeconds) s: "
                + "start one with bin/mqbroker start, or name it with storeNodeAddress in service.conf"
        }
    }

    static func connect(cluster: ClusterConfiguration, logger: Logger) async throws -> StoreNodeClient {
        let address = try await storeNodeAddress(cluster: cluster, logger: logger)
        logger.info("cluster mode: messages and sessions on store node \(address)")
        return StoreNodeClient(address: address, logger: logger)
    }

    private static func storeNodeAddress(cluster: ClusterConfiguration, logger: Logger) async throws -> RemotingAddress {
        if let configured = cluster.storeNodeAddress {
            guard let address = RemotingAddress(parsing: configured) else {
                throw GatewayConfiguration.LoadError(message: "storeNodeAddress: \(configured) is not host:port")
            }
            return address
        }
        let nameServers = try cluster.nameServerClients()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(cluster.storeNodeWaitSeconds))
        var lastReport = clock.now
        while true {
            for nameServer in nameServers {
                guard let nodes = try? await nameServer.listNodes(kind: .store) else { continue }
                if let first = nodes.map(\.node.address).sorted().first, let address = RemotingAddress(parsing: first) {
                    return address
                }
            }
            guard clock.now < deadline else {
                throw NoStoreNode(nameServers: cluster.nameServerAddresses, waitedSeconds: cluster.storeNodeWaitSeconds)
            }
            if clock.now - lastReport >= .seconds(5) {
                logger.info("waiting for a store node to register with the name servers")
                lastReport = clock.now
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}

extension ClusterConfiguration {
    /// Network clients of the name servers of `NAMESRV_ADDR`, sharing one remoting client.
    func nameServerClients() throws -> [any NameServerClient] {
        let remoting = RemotingClient()
        return try nameServerAddresses.map { text in
            guard let address = RemotingAddress(parsing: text) else {
                throw GatewayConfiguration.LoadError(message: "NAMESRV_ADDR: \(text) is not host:port")
            }
            return RemotingNameServerClient(address: address, remotingClient: remoting)
        }
    }
}

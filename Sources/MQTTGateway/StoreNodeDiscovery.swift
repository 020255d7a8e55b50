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
        do {
            return try await StoreNodeLookup.firstRegistered(nameServers: nameServers, waitSeconds: cluster.storeNodeWaitSeconds) {
                logger.info("waiting for a store node to register with the name servers")
            }
        } catch is StoreNodeLookup.NotFound {
            throw NoStoreNode(nameServers: cluster.nameServerAddresses, waitedSeconds: cluster.storeNodeWaitSeconds)
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

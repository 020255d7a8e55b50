import NameServer
import Remoting

/// Finds the store node a gateway or a server application uses when none is configured: the first one
/// registered with the name servers, by address (the same one for every client of a cluster).
public enum StoreNodeLookup {
    /// Why no store node was found.
    public struct NotFound: Error, Sendable {
        /// A name server's error when none of them answered the last time they were asked (connection
        /// refused, ...); nil when one answered and listed no store node.
        public var lastError: NameServerError?
    }

    /// The first store node registered with the first name server that lists one, asking again every
    /// 250 ms for up to `waitSeconds`; `waiting` is called every 5 s while it waits.
    public static func firstRegistered(
        nameServers: [any NameServerClient], waitSeconds: Int, waiting: @Sendable () -> Void = {}
    ) async throws -> RemotingAddress {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(waitSeconds))
        var lastReport = clock.now
        while true {
            var lastError: NameServerError?
            var answered = false
            for nameServer in nameServers {
                let nodes: [NodeStatus]
                do {
                    nodes = try await nameServer.listNodes(kind: .store)
                } catch {
                    lastError = error
                    continue
                }
                answered = true
                if let first = nodes.map(\.node.address).sorted().first, let address = RemotingAddress(parsing: first) {
                    return address
                }
            }
            guard clock.now < deadline else { throw NotFound(lastError: answered ? nil : lastError) }
            if clock.now - lastReport >= .seconds(5) {
                waiting()
                lastReport = clock.now
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}

import Logging

/// Keeps a node (store or gateway) in the registries of every name server: registers it, then
/// heartbeats every `interval`, registering again whenever a name server has forgotten it (it restarted,
/// or the node was silent past the expiry). Failures are logged and retried on the next beat; one
/// unreachable name server does not stop the others.
///
/// Run `run()` in a task (or a service group) and cancel the task to stop; `run()` then unregisters
/// the node, so the cluster learns at once that it left rather than after the expiry.
public struct NodeHeartbeater: Sendable {
    public let node: NodeInfo
    public let nameServers: [any NameServerClient]
    /// Default 10 s, a third of the name server's default 30 s expiry.
    public let interval: Duration
    let logger: Logger

    public init(node: NodeInfo, nameServers: [any NameServerClient], interval: Duration = .seconds(10), logger: Logger = Logger(label: "node.heartbeat")) {
        self.node = node
        self.nameServers = nameServers
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        var registered = [Bool](repeating: false, count: nameServers.count)
        while !Task.isCancelled {
            for (index, nameServer) in nameServers.enumerated() {
                registered[index] = await beat(nameServer, registered: registered[index])
            }
            try? await Task.sleep(for: interval)
        }
        for nameServer in nameServers {
            _ = try? await nameServer.unregisterNode(kind: node.kind, address: node.address)
        }
    }

    /// One registration or heartbeat; returns whether the node is registered there afterwards.
    func beat(_ nameServer: any NameServerClient, registered: Bool) async -> Bool {
        do throws(NameServerError) {
            if registered {
                do throws(NameServerError) {
                    try await nameServer.heartbeat(kind: node.kind, address: node.address)
                    return true
                } catch .nodeNotRegistered {
                    logger.info("name server forgot this node; registering again", metadata: ["node": "\(node.address)"])
                }
            }
            try await nameServer.registerNode(node)
            return true
        } catch {
            logger.warning("heartbeat to a name server failed; retrying on the next beat", metadata: ["node": "\(node.address)", "error": "\(error)"])
            return false
        }
    }
}
